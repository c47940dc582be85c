// SPDX-License-Identifier: MIT
/*
 * sig_wait - threads blocked in calls the kernel never restarts after a
 * stop, none of which retries on EINTR:
 *   - epoll_wait(-1) and epoll_pwait(-1, NULL mask) on an idle pipe, in
 *     other threads (every signal blocked) and ...
 *   - sigwaitinfo for SIGRTMIN (blocked), in another thread;
 *   - the main thread in `while (!flag) pause();` for SIGUSR1 (a handler
 *     without SA_RESTART), logging "usr1 N" each time it sees one.
 * A call that returns EINTR is recorded: no signal reached those threads,
 * so an EINTR can only come from a checkpoint.
 *
 * With WORKDIR/bigmem holding N, it also holds N MiB of touched memory, so
 * that a restore takes long enough to be signalled in the middle.
 *
 * Check (SIGUSR2, caught by the main thread): no call returned early; then
 * each waiter is woken for real (a byte in its pipe, SIGRTMIN) and must
 * report the wakeup within 2 s.
 */
#include <pthread.h>
#include <sys/epoll.h>

#include "scenario.h"

enum { W_EPOLL, W_EPOLL_P, W_SIGWAIT, NWAITERS };
static const char *const waiter_name[NWAITERS] = { "epoll_wait", "epoll_pwait", "sigwaitinfo" };

static int pipes[NWAITERS][2];
static volatile int early[NWAITERS];  /* returned before being woken, errno */
static volatile int woken[NWAITERS];  /* returned after being woken */
static volatile sig_atomic_t go_wake; /* the check has begun */
static volatile sig_atomic_t usr1;
static pid_t waiter_tid[NWAITERS];

static void on_usr1(int sig)
{
	usr1++;
}

static void block_all(void)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
}

static void *epoll_waiter(void *arg)
{
	long w = (long)arg;
	struct epoll_event ev = { .events = EPOLLIN }, out;
	int ep = epoll_create1(0), n;

	block_all();
	waiter_tid[w] = gettid();
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, pipes[w][0], &ev))
		scn_fail("epoll setup: %s", strerror(errno));
	n = w == W_EPOLL ? epoll_wait(ep, &out, 1, -1) : epoll_pwait(ep, &out, 1, -1, NULL);
	if (!go_wake)
		early[w] = n < 0 ? errno : -1;
	else
		woken[w] = n == 1;
	return NULL;
}

static void *sig_waiter(void *arg)
{
	sigset_t set;
	siginfo_t si;
	int n;

	block_all();
	waiter_tid[W_SIGWAIT] = gettid();
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	n = sigwaitinfo(&set, &si);
	if (!go_wake)
		early[W_SIGWAIT] = n < 0 ? errno : -1;
	else
		woken[W_SIGWAIT] = n == SIGRTMIN;
	return NULL;
}

static void verify_and_wake(void)
{
	int w, ms;

	for (w = 0; w < NWAITERS; w++)
		SCN_CHECK(!early[w], "%s returned before it was woken (%s)", waiter_name[w],
			  early[w] > 0 ? strerror(early[w]) : "not an error");
	go_wake = 1;
	for (w = 0; w < NWAITERS; w++)
		if (w == W_SIGWAIT)
			tgkill(getpid(), waiter_tid[w], SIGRTMIN);
		else if (write(pipes[w][1], "x", 1) != 1)
			scn_fail("cannot wake %s", waiter_name[w]);
	for (ms = 0; ms < 2000; ms += 10) {
		for (w = 0; w < NWAITERS && woken[w]; w++)
			;
		if (w == NWAITERS)
			return;
		scn_msleep(10);
	}
	for (w = 0; w < NWAITERS; w++)
		SCN_CHECK(woken[w], "%s missed its wakeup", waiter_name[w]);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	pthread_t t;
	sigset_t rt;
	long w;
	int seen = 0;
	char buf[32];

	scn_init(argc, argv, 0);
	sigaction(SIGUSR1, &sa, NULL);
	/* SIGRTMIN stays blocked everywhere but in sigwaitinfo */
	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &rt, NULL);
	for (w = 0; w < NWAITERS; w++)
		if (pipe(pipes[w]))
			scn_fail("pipe: %s", strerror(errno));
	for (w = 0; w < NWAITERS; w++)
		if (pthread_create(&t, NULL, w == W_SIGWAIT ? sig_waiter : epoll_waiter, (void *)w))
			scn_fail("pthread_create");
	for (w = 0; w < NWAITERS; w++)
		while (!waiter_tid[w])
			scn_msleep(1);
	if (!scn_read_small("bigmem", buf, sizeof(buf))) {
		size_t len = strtoul(buf, NULL, 10) << 20, i;
		char *mem = malloc(len);

		for (i = 0; mem && i < len; i += 4096)
			mem[i] = (char)scn_hash(i);
	}
	scn_msleep(20); /* let them reach their calls */
	scn_ready();
	for (;;) {
		while (!usr1 && !scn_check)
			pause();
		if (usr1 != seen) {
			seen = usr1;
			scn_log("usr1 %d", seen);
		}
		if (scn_check) {
			verify_and_wake();
			scn_pass();
		}
	}
}
