// SPDX-License-Identifier: MIT
/*
 * sig_masked - threads looping in blocking calls that sleep with a signal
 * mask of their own, and the other calls the kernel fails with EINTR
 * after a stop; none retries on EINTR, each counts the EINTRs it gets:
 *   - with a mask of their own (every signal blocked, SIGURG too, which
 *     the thread itself does not block): epoll_pwait(-1), and, 5 s each,
 *     epoll_pwait(5000), epoll_pwait2, ppoll, pselect;
 *   - sigwaitinfo (a signal never sent); with WORKDIR/aio, io_getevents
 *     untimed and with a 5 s timeout, on an idle AIO context.
 * A timed call must end when its timeout says (lateness on CLOCK_MONOTONIC
 * from just before the call, bound WORKDIR/bound ms, default 100).
 *
 * With handlers (default): a SIGURG handler notes when it runs, and a
 * kicker thread sends each timed masked waiter SIGURG (tgkill) 300 ms into
 * each call.  The call's mask blocks it, so it stays pending until the
 * call returns: the handler must run then, never earlier (before the call
 * sleeps again) and never not at all.  The main thread waits in
 * sigsuspend() with only SIGUSR2 (the check) unblocked.  With
 * WORKDIR/plain: no handler but the check's; the main thread loops in
 * epoll_pwait(-1) with a mask of its own (SIGUSR2 let through: its EINTR
 * then is the check), and nothing is sent.
 *
 * Check (SIGUSR2): no EINTR, no early return of an untimed call, no
 * handler early or lost, every timed waiter woken WORKDIR/wakes times
 * (default 1), all within the bound.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <linux/aio_abi.h>

#include "scenario.h"

enum {
	W_PWAIT_INF,
	W_PWAIT,
	W_PWAIT2,
	W_PPOLL,
	W_PSELECT,
	W_SIGWAITINFO,
	W_AIO_INF,
	W_AIO,
	NWAITERS
};
static const char *const waiter_name[NWAITERS] = {
	"epoll_pwait(-1)", "epoll_pwait(5000)", "epoll_pwait2",	    "ppoll",
	"pselect",	   "sigwaitinfo",	"io_getevents(-1)", "io_getevents",
};
#define MASKED(w) ((w) >= W_PWAIT && (w) <= W_PSELECT)
#define TIMED(w)  (MASKED(w) || (w) == W_AIO)

#define TIMEOUT_MS 5000

static int pipes[NWAITERS][2], use_aio, plain;
static aio_context_t aio_ctx;
static volatile int eintr[NWAITERS], other_err[NWAITERS], wakes[NWAITERS], ready_n;
static volatile int early[NWAITERS], lost[NWAITERS];
static volatile long long worst_us[NWAITERS];
static volatile pid_t tids[NWAITERS];
static volatile long long call_start[NWAITERS];
static volatile int in_call[NWAITERS], kicked[NWAITERS];
static __thread volatile long long urg_at;

static long long mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void on_urg(int sig)
{
	urg_at = mono_us();
}

/* One call of waiter w: 0 timed out, else -errno (or 1: returned with data). */
static int one_call(long w, int ep)
{
	struct timespec ts = { TIMEOUT_MS / 1000, 0 };
	struct pollfd pfd = { pipes[w][0], POLLIN, 0 };
	struct epoll_event ev;
	struct io_event aev;
	sigset_t mask, wait;
	fd_set rd;
	int n;

	sigfillset(&mask); /* SIGURG too, which the thread lets through */
	switch (w) {
	case W_PWAIT_INF:
	case W_PWAIT:
		n = epoll_pwait(ep, &ev, 1, w == W_PWAIT ? TIMEOUT_MS : -1, &mask);
		break;
	case W_PWAIT2:
		n = epoll_pwait2(ep, &ev, 1, &ts, &mask);
		break;
	case W_PPOLL:
		n = ppoll(&pfd, 1, &ts, &mask);
		break;
	case W_PSELECT:
		FD_ZERO(&rd);
		FD_SET(pipes[w][0], &rd);
		n = pselect(pipes[w][0] + 1, &rd, NULL, NULL, &ts, &mask);
		break;
	case W_SIGWAITINFO:
		sigemptyset(&wait);
		sigaddset(&wait, SIGRTMIN + 3);
		n = sigwaitinfo(&wait, NULL);
		break;
	default:
		n = syscall(SYS_io_getevents, aio_ctx, 1, 1, &aev, w == W_AIO ? &ts : NULL);
		break;
	}
	return n < 0 ? -errno : n > 0;
}

static void *waiter(void *arg)
{
	long w = (long)arg;
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(0), r, seq = 0;
	sigset_t own;
	long long start, end, late;

	/* the thread's own mask: everything blocked but SIGURG */
	sigfillset(&own);
	sigdelset(&own, SIGURG);
	pthread_sigmask(SIG_SETMASK, &own, NULL);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, pipes[w][0], &ev))
		scn_fail("epoll setup: %s", strerror(errno));
	tids[w] = gettid();
	__atomic_fetch_add(&ready_n, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		urg_at = 0;
		seq++;
		start = mono_us();
		call_start[w] = start;
		in_call[w] = seq;
		r = one_call(w, ep);
		end = mono_us();
		in_call[w] = 0;
		if (kicked[w] == seq) {
			if (!urg_at) {
				lost[w]++;
				scn_log("lost SIGURG %s", waiter_name[w]);
			} else if (end - urg_at > 50000) {
				early[w]++;
				scn_log("early SIGURG %s %lld us before the return", waiter_name[w],
					end - urg_at);
			}
		}
		if (r == -EINTR) {
			eintr[w]++;
			scn_log("eintr %s", waiter_name[w]);
			continue;
		}
		if (r < 0 || !TIMED(w)) {
			other_err[w] = r < 0 ? -r : -1;
			scn_log("%s returned %d", waiter_name[w], r);
			scn_msleep(1000);
			continue;
		}
		late = end - start - TIMEOUT_MS * 1000LL;
		if (llabs(late) > worst_us[w])
			worst_us[w] = llabs(late);
		wakes[w]++;
		scn_log("wake %s %lld", waiter_name[w], late);
	}
	return NULL;
}

/* SIGURG to each timed masked waiter 300 ms into each of its calls. */
static void *kicker(void *arg)
{
	sigset_t all;
	int w, s;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	for (;;) {
		for (w = 0; w < NWAITERS; w++) {
			s = in_call[w];
			if (!MASKED(w) || !s || kicked[w] == s ||
			    mono_us() - call_start[w] < 300000)
				continue;
			kicked[w] = s;
			syscall(SYS_tgkill, getpid(), tids[w], SIGURG);
		}
		scn_msleep(20);
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
		if (!use_aio && (w == W_AIO || w == W_AIO_INF))
			continue;
		SCN_CHECK(!eintr[w], "%s got EINTR %d times", waiter_name[w], eintr[w]);
		SCN_CHECK(!other_err[w], "%s returned early (%s)", waiter_name[w],
			  other_err[w] > 0 ? strerror(other_err[w]) : "not an error");
		SCN_CHECK(!early[w],
			  "%s: the SIGURG handler ran before the call returned, %d times",
			  waiter_name[w], early[w]);
		SCN_CHECK(!lost[w], "%s: a SIGURG was lost %d times", waiter_name[w], lost[w]);
		if (!TIMED(w))
			continue;
		SCN_CHECK(wakes[w] >= want, "%s woke %d times, expected %ld", waiter_name[w],
			  wakes[w], want);
		SCN_CHECK(worst_us[w] <= bound_ms * 1000,
			  "%s woke %lld us off its deadline (bound %ld ms)", waiter_name[w],
			  worst_us[w], bound_ms);
	}
}

/* The main thread, plain: epoll_pwait(-1) with a mask of its own. */
static void main_plain(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int p[2], ep = epoll_create1(0), n, main_eintr = 0;
	sigset_t own, call;

	sigfillset(&own);
	sigdelset(&own, SIGUSR2);
	sigdelset(&own, SIGURG);
	pthread_sigmask(SIG_SETMASK, &own, NULL);
	sigfillset(&call);
	sigdelset(&call, SIGUSR2);
	if (pipe(p) || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev))
		scn_fail("epoll setup: %s", strerror(errno));
	while (!scn_check) {
		n = epoll_pwait(ep, &ev, 1, -1, &call);
		if (scn_check)
			break;
		if (n < 0 && errno == EINTR) {
			main_eintr++;
			scn_log("eintr main epoll_pwait(-1)");
			continue;
		}
		scn_fail("main epoll_pwait(-1) returned %d", n);
	}
	verify();
	SCN_CHECK(!main_eintr, "the main thread's epoll_pwait(-1) got EINTR %d times", main_eintr);
	scn_pass();
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_urg };
	char buf[8];
	sigset_t own, wait;
	pthread_t t;
	long w;

	scn_init(argc, argv, 0);
	plain = !scn_read_small("plain", buf, sizeof(buf));
	use_aio = !scn_read_small("aio", buf, sizeof(buf));
	if (use_aio && syscall(SYS_io_setup, 4, &aio_ctx))
		scn_fail("io_setup: %s", strerror(errno));
	if (!plain)
		sigaction(SIGURG, &sa, NULL);
	for (w = 0; w < NWAITERS; w++)
		if (pipe(pipes[w]))
			scn_fail("pipe: %s", strerror(errno));
	for (w = 0; w < NWAITERS; w++)
		if ((use_aio || (w != W_AIO && w != W_AIO_INF)) &&
		    pthread_create(&t, NULL, waiter, (void *)w))
			scn_fail("pthread_create");
	if (!plain && pthread_create(&t, NULL, kicker, NULL))
		scn_fail("pthread_create");
	while (ready_n < NWAITERS - (use_aio ? 0 : 2))
		scn_msleep(1);
	scn_msleep(5); /* let them reach their calls */
	scn_ready();
	if (plain)
		main_plain();
	sigfillset(&own);
	pthread_sigmask(SIG_SETMASK, &own, NULL);
	sigfillset(&wait);
	sigdelset(&wait, SIGUSR2);
	while (!scn_check)
		sigsuspend(&wait);
	verify();
	scn_pass();
}
