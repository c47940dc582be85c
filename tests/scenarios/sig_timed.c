// SPDX-License-Identifier: MIT
/*
 * sig_timed - threads looping in blocking calls, none of which retries on
 * EINTR, each counting the EINTRs it gets (no signal is ever sent to them:
 * an EINTR can only come from a checkpoint):
 *   - untimed: epoll_wait(-1) on an idle pipe;
 *   - timed, 5 s each, relative: epoll_wait(5000), epoll_pwait2(5 s),
 *     sigtimedwait(5 s), poll(5000), nanosleep(5 s) (glibc: a relative
 *     clock_nanosleep on CLOCK_REALTIME), clock_nanosleep(CLOCK_MONOTONIC,
 *     5 s), FUTEX_WAIT with a 5 s timeout;
 *   - timed, absolute: pthread_cond_timedwait 5 s ahead (FUTEX_WAIT_BITSET);
 *   - timed, 5 s, the kernel writing the time left back: select, ppoll.
 * A timed call must end when its timeout says, measured on
 * CLOCK_MONOTONIC from just before the call: each wakeup's lateness (or
 * earliness) is recorded; the largest in WORKDIR/bound ms (default 100)
 * passes.  The main thread has a SIGUSR1 handler (no SA_RESTART) and waits
 * in `while (!flag) pause();`, logging "usr1 N".
 *
 * With WORKDIR/children, two children wait in `for (;;) pause();` with a
 * SIGUSR1 handler logging "child G usr1 N": one leads a process group of
 * its own (G = pgrp), the other a session (G = session); WORKDIR/pids
 * lists them.  With WORKDIR/bigmem holding N, the root holds N MiB of
 * touched memory (a restore long enough to be signalled in the middle).
 * With WORKDIR/timeout holding N, the timed calls wait N s instead of 5.
 *
 * The waiters start together right before the ready file is written and
 * log "wake NAME LATENESS_US" each time; the check (SIGUSR2) wants no
 * EINTR, no early return of the untimed call, every timed waiter woken at
 * least WORKDIR/wakes times (default 1), all within the bound.
 */
#include <poll.h>
#include <sys/select.h>
#include <pthread.h>
#include <linux/futex.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#include "scenario.h"

enum {
	W_EPOLL_INF,
	W_EPOLL,
	W_EPOLL2,
	W_SIGTIMED,
	W_POLL,
	W_NANOSLEEP,
	W_CLOCK_NS,
	W_FUTEX,
	W_COND,
	W_SELECT,
	W_PPOLL,
	NWAITERS
};
static const char *const waiter_name[NWAITERS] = {
	"epoll_wait(-1)", "epoll_wait(5000)", "epoll_pwait2", "sigtimedwait",		"poll",
	"nanosleep",	  "clock_nanosleep",  "futex",	      "pthread_cond_timedwait", "select",
	"ppoll",
};

/* WORKDIR/timeout holding N: N s instead of 5 (whole seconds) */
static long timeout_ms = 5000;

static int pipes[NWAITERS][2];
static volatile int eintr[NWAITERS], other_err[NWAITERS], wakes[NWAITERS], ready_n;
static volatile long long worst_us[NWAITERS]; /* largest |lateness| */
static volatile sig_atomic_t usr1;
static int futex_word;
static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static void on_usr1(int sig)
{
	usr1++;
}

static const char *child_kind;

static void child_usr1(int sig)
{
	char buf[64];
	int n;

	n = snprintf(buf, sizeof(buf), "child %s usr1 %d\n", child_kind, (int)++usr1);
	scn_write_all(1, buf, n);
}

/* A child in its own group or session, answering SIGUSR1 in pause(). */
static pid_t start_child(const char *kind)
{
	struct sigaction sa = { .sa_handler = child_usr1 };
	pid_t pid = fork();

	if (pid)
		return pid;
	child_kind = kind;
	sigaction(SIGUSR1, &sa, NULL);
	if (!strcmp(kind, "session"))
		setsid();
	else
		setpgid(0, 0);
	for (;;)
		pause();
}

static void start_children(void)
{
	char buf[64];
	pid_t a, b;
	int tries;

	if (scn_read_small("children", buf, sizeof(buf)))
		return;
	a = start_child("pgrp");
	b = start_child("session");
	if (a < 0 || b < 0)
		scn_fail("fork: %s", strerror(errno));
	setpgid(a, a);
	for (tries = 0; tries < 500 && (getpgid(a) != a || getsid(b) != b); tries++)
		scn_msleep(2);
	snprintf(buf, sizeof(buf), "%d %d\n", (int)a, (int)b);
	scn_write_file("pids", buf);
}

static char *volatile held; /* global and volatile: the stores stay */

static void hold_memory(void)
{
	char buf[32];
	size_t len, i;
	char *mem;

	if (scn_read_small("bigmem", buf, sizeof(buf)))
		return;
	len = strtoul(buf, NULL, 10) << 20;
	mem = malloc(len);
	for (i = 0; mem && i < len; i += 4096)
		mem[i] = (char)scn_hash(i);
	held = mem;
}

static long long mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* One call of waiter w: 0 timed out, else -errno (or 1: returned with data). */
static int one_call(long w, int ep)
{
	struct timespec ts = { timeout_ms / 1000, 0 };
	struct pollfd pfd = { pipes[w][0], POLLIN, 0 };
	struct epoll_event ev;
	sigset_t set;
	int n;

	switch (w) {
	case W_EPOLL_INF:
	case W_EPOLL:
		n = epoll_wait(ep, &ev, 1, w == W_EPOLL ? timeout_ms : -1);
		break;
	case W_SIGTIMED:
		sigemptyset(&set);
		sigaddset(&set, SIGRTMIN);
		n = sigtimedwait(&set, NULL, &ts);
		if (n < 0 && errno == EAGAIN)
			n = 0;
		break;
	case W_POLL:
		n = poll(&pfd, 1, timeout_ms);
		break;
	case W_NANOSLEEP:
		n = nanosleep(&ts, NULL);
		break;
	case W_EPOLL2:
		n = epoll_pwait2(ep, &ev, 1, &ts, NULL);
		break;
	case W_CLOCK_NS:
		n = -clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		if (n < 0) {
			errno = -n;
			n = -1;
		}
		break;
	case W_COND: /* an absolute deadline: FUTEX_WAIT_BITSET, re-issued unchanged */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += timeout_ms / 1000;
		pthread_mutex_lock(&cond_lock);
		n = pthread_cond_timedwait(&cond, &cond_lock, &ts);
		pthread_mutex_unlock(&cond_lock);
		n = n == ETIMEDOUT ? 0 : n ? (errno = n, -1) : 1;
		break;
	case W_SELECT: {
		struct timeval tv = { timeout_ms / 1000, 0 };
		fd_set rd;

		FD_ZERO(&rd);
		FD_SET(pipes[w][0], &rd);
		n = select(pipes[w][0] + 1, &rd, NULL, NULL, &tv);
		break;
	}
	case W_PPOLL:
		n = ppoll(&pfd, 1, &ts, NULL);
		break;
	default:
		n = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
		if (n < 0 && errno == ETIMEDOUT)
			n = 0;
		break;
	}
	return n < 0 ? -errno : n > 0;
}

static void *waiter(void *arg)
{
	long w = (long)arg;
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(0), r;
	sigset_t all;
	long long start, late;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, pipes[w][0], &ev))
		scn_fail("epoll setup: %s", strerror(errno));
	__atomic_fetch_add(&ready_n, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		start = mono_us();
		r = one_call(w, ep);
		if (r == -EINTR) {
			eintr[w]++;
			scn_log("eintr %s", waiter_name[w]);
			continue;
		}
		if (r < 0 || w == W_EPOLL_INF) {
			other_err[w] = r < 0 ? -r : -1;
			scn_log("%s returned %d", waiter_name[w], r);
			scn_msleep(1000);
			continue;
		}
		late = mono_us() - start - timeout_ms * 1000LL;
		if (llabs(late) > worst_us[w])
			worst_us[w] = llabs(late);
		wakes[w]++;
		scn_log("wake %s %lld", waiter_name[w], late);
	}
	return NULL;
}

static void verify(void)
{
	char buf[32];
	long bound_ms = 100, want = 1;
	int w;

	if (!scn_read_small("bound", buf, sizeof(buf)))
		bound_ms = atol(buf);
	if (!scn_read_small("wakes", buf, sizeof(buf)))
		want = atol(buf);
	for (w = 0; w < NWAITERS; w++) {
		SCN_CHECK(!eintr[w], "%s got EINTR %d times", waiter_name[w], eintr[w]);
		SCN_CHECK(!other_err[w], "%s returned early (%s)", waiter_name[w],
			  other_err[w] > 0 ? strerror(other_err[w]) : "not an error");
		if (w == W_EPOLL_INF)
			continue;
		SCN_CHECK(wakes[w] >= want, "%s woke %d times, expected %ld", waiter_name[w],
			  wakes[w], want);
		SCN_CHECK(worst_us[w] <= bound_ms * 1000,
			  "%s woke %lld us off its deadline (bound %ld ms)", waiter_name[w],
			  worst_us[w], bound_ms);
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	pthread_t t;
	long w;
	int seen = 0;

	char buf[32];

	scn_init(argc, argv, 0);
	if (!scn_read_small("timeout", buf, sizeof(buf)) && atol(buf) > 0)
		timeout_ms = atol(buf) * 1000;
	start_children();
	hold_memory();
	sigaction(SIGUSR1, &sa, NULL);
	for (w = 0; w < NWAITERS; w++)
		if (pipe(pipes[w]))
			scn_fail("pipe: %s", strerror(errno));
	for (w = 0; w < NWAITERS; w++)
		if (pthread_create(&t, NULL, waiter, (void *)w))
			scn_fail("pthread_create");
	while (ready_n < NWAITERS)
		scn_msleep(1);
	scn_msleep(5); /* let them reach their calls */
	scn_ready();
	for (;;) {
		while (!usr1 && !scn_check)
			pause();
		if (usr1 != seen) {
			seen = usr1;
			scn_log("usr1 %d", seen);
		}
		if (scn_check) {
			verify();
			scn_pass();
		}
	}
}
