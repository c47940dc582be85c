// SPDX-License-Identifier: MIT
/*
 * soak_busy - a busy multi-threaded program for long checkpoint/restore
 * soaks (tests/suites/soak.sh).  Its threads:
 *
 *   - five byte streams, each a writer and a reader thread: a pipe, both
 *     ways of a unix stream socketpair, both ways of a TCP connection over
 *     127.0.0.1 (accepted from a listener that is then closed; dump with
 *     --tcp-established).  Byte i of every stream is stream_byte(k, i);
 *     writers write chunks of varying size, readers read and check every
 *     byte: one byte lost, duplicated or reordered is seen at once;
 *   - two compute threads hashing in bursts, counting rounds;
 *   - a timerfd (2 ms period) read by its own thread, adding up expirations;
 *   - a POSIX timer (3 ms) sending SIGRTMIN+1, counted by a handler in a
 *     thread that sleeps in nanosleep (every other thread blocks it).
 *
 * All memory is allocated before 'ready'.  SIGUSR1 asks for a verdict: the
 * main thread waits (2 s at most) until every stream, compute thread and
 * timer has moved on since the previous verdict, then writes
 * WORKDIR/verdict ("ok N ..." or "FAIL why"): no byte lost or doubled,
 * nothing stuck, every counter monotonic.  The check (SIGUSR2) is a last
 * verdict.
 */
#include "scenario.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#define NSTREAM	 5
#define NCOMPUTE 2
#define CHUNK	 (16 << 10)

struct stream {
	const char *name;
	int wfd, rfd;
	pthread_t wt, rt;
	volatile uint64_t wpos, rpos; /* bytes written / read and checked */
	uint64_t seen;		      /* rpos at the last verdict */
	char err[160];
	unsigned char wbuf[CHUNK], rbuf[CHUNK];
};

static struct stream st[NSTREAM];
static volatile uint64_t rounds[NCOMPUTE], ticks, sigs, sink[NCOMPUTE];
static uint64_t seen_rounds[NCOMPUTE], seen_ticks, seen_sigs;
static uint64_t verdicts;
static int tfd;
static timer_t ptimer;
static volatile sig_atomic_t want_verdict;
static char fail_why[200];

static unsigned char stream_byte(int k, uint64_t i)
{
	return (unsigned char)(scn_hash(i >> 3 ^ (uint64_t)k << 56) >> ((i & 7) * 8));
}

static void set_err(struct stream *s, const char *fmt, ...)
{
	va_list ap;

	if (s->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

static void block_all_but(int keep)
{
	sigset_t set;

	sigfillset(&set);
	if (keep)
		sigdelset(&set, keep);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
}

static void *writer(void *arg)
{
	struct stream *s = arg;
	int k = (int)(s - st);
	uint64_t seed = (uint64_t)k * 77 + 1;

	block_all_but(0);
	for (;;) {
		size_t n = 1 + scn_hash(seed++) % CHUNK, i, off = 0;
		uint64_t p = s->wpos;

		for (i = 0; i < n; i++)
			s->wbuf[i] = stream_byte(k, p + i);
		while (off < n) {
			ssize_t w = write(s->wfd, s->wbuf + off, n - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				set_err(s, "%s: write at %llu: %s", s->name,
					(unsigned long long)(p + off),
					w ? strerror(errno) : "0 bytes");
				return NULL;
			}
			off += (size_t)w;
			__atomic_store_n(&s->wpos, p + off, __ATOMIC_RELEASE);
		}
		scn_msleep(1);
	}
}

static void *reader(void *arg)
{
	struct stream *s = arg;
	int k = (int)(s - st);
	uint64_t seed = (uint64_t)k * 91 + 7;

	block_all_but(0);
	for (;;) {
		size_t want = 1 + scn_hash(seed++) % CHUNK;
		ssize_t r = read(s->rfd, s->rbuf, want), i;
		uint64_t p = s->rpos;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			set_err(s, "%s: read at %llu: %s", s->name, (unsigned long long)p,
				r ? strerror(errno) : "end of stream");
			return NULL;
		}
		for (i = 0; i < r; i++)
			if (s->rbuf[i] != stream_byte(k, p + (uint64_t)i)) {
				set_err(s,
					"%s: byte %llu is 0x%02x, expected 0x%02x (lost or doubled "
					"data)",
					s->name, (unsigned long long)(p + (uint64_t)i), s->rbuf[i],
					stream_byte(k, p + (uint64_t)i));
				return NULL;
			}
		__atomic_store_n(&s->rpos, p + (uint64_t)r, __ATOMIC_RELEASE);
		if (scn_hash(seed) % 3 == 0)
			scn_msleep(1 + scn_hash(seed + 1) % 3);
	}
}

static void *compute(void *arg)
{
	int k = (int)(long)arg, i;
	uint64_t x = (uint64_t)k;

	block_all_but(0);
	for (;;) {
		for (i = 0; i < 20000; i++)
			x = scn_hash(x);
		sink[k] = x;
		__atomic_store_n(&rounds[k], rounds[k] + 1, __ATOMIC_RELEASE);
		scn_msleep(2);
	}
	return NULL;
}

static void *timer_reader(void *arg)
{
	uint64_t n;

	block_all_but(0);
	for (;;) {
		ssize_t r = read(tfd, &n, sizeof(n));

		if (r < 0 && errno == EINTR)
			continue;
		if (r != sizeof(n) || n == 0) {
			snprintf(fail_why, sizeof(fail_why), "timerfd read returned %zd (%s)", r,
				 r < 0 ? strerror(errno) : "short");
			return NULL;
		}
		__atomic_store_n(&ticks, ticks + n, __ATOMIC_RELEASE);
	}
}

static void on_rt(int sig)
{
	sigs++;
}

static void *signal_sleeper(void *arg)
{
	block_all_but(SIGRTMIN + 1);
	for (;;)
		scn_msleep(1000);
	return NULL;
}

static void on_usr1(int sig)
{
	want_verdict = 1;
}

static void make_tcp(int *a, int *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sin, &len))
		scn_fail("tcp listener: %s", strerror(errno));
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sin, sizeof(sin)))
		scn_fail("tcp connect: %s", strerror(errno));
	*b = accept(l, NULL, NULL);
	if (*b < 0)
		scn_fail("tcp accept: %s", strerror(errno));
	close(l);
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * Every stream, compute thread and timer moved on since the last verdict;
 * *fatal set if what is wrong will not mend by waiting.
 */
static const char *stuck(int *fatal)
{
	static char why[200];
	int k;

	*fatal = 1;
	for (k = 0; k < NSTREAM; k++)
		if (st[k].err[0])
			return st[k].err;
	if (fail_why[0])
		return fail_why;
	*fatal = 0;
	for (k = 0; k < NSTREAM; k++) {
		if (st[k].rpos <= st[k].seen) {
			snprintf(why, sizeof(why), "%s: stuck at byte %llu (%llu written)",
				 st[k].name, (unsigned long long)st[k].rpos,
				 (unsigned long long)st[k].wpos);
			return why;
		}
	}
	for (k = 0; k < NCOMPUTE; k++)
		if (rounds[k] <= seen_rounds[k]) {
			snprintf(why, sizeof(why), "compute thread %d stuck at round %llu", k,
				 (unsigned long long)rounds[k]);
			return why;
		}
	if (ticks <= seen_ticks) {
		snprintf(why, sizeof(why), "timerfd stuck at %llu expirations",
			 (unsigned long long)ticks);
		return why;
	}
	if (sigs <= seen_sigs) {
		snprintf(why, sizeof(why), "POSIX timer stuck at %llu signals",
			 (unsigned long long)sigs);
		return why;
	}
	return NULL;
}

/* Wait until everything moved on (2 s at most); NULL, or why not. */
static const char *verdict(void)
{
	const char *why = NULL;
	int t, k, fatal;

	for (t = 0; t < 200; t++) {
		why = stuck(&fatal);
		if (!why || fatal)
			break;
		scn_msleep(10);
	}
	if (why)
		return why;
	for (k = 0; k < NSTREAM; k++)
		st[k].seen = st[k].rpos;
	for (k = 0; k < NCOMPUTE; k++)
		seen_rounds[k] = rounds[k];
	seen_ticks = ticks;
	seen_sigs = sigs;
	verdicts++;
	return NULL;
}

static void write_verdict(void)
{
	char buf[512];
	const char *why = verdict();
	uint64_t total = 0;
	int k;

	for (k = 0; k < NSTREAM; k++)
		total += st[k].rpos;
	if (why)
		snprintf(buf, sizeof(buf), "FAIL %s\n", why);
	else
		snprintf(buf, sizeof(buf),
			 "ok %llu bytes=%llu rounds=%llu,%llu ticks=%llu sigs=%llu\n",
			 (unsigned long long)verdicts, (unsigned long long)total,
			 (unsigned long long)rounds[0], (unsigned long long)rounds[1],
			 (unsigned long long)ticks, (unsigned long long)sigs);
	scn_write_file("verdict", buf);
}

int main(int argc, char **argv)
{
	static const char *const names[NSTREAM] = { "pipe", "unix a>b", "unix b>a", "tcp a>b",
						    "tcp b>a" };
	struct itimerspec its = { { 0, 2000000 }, { 0, 2000000 } };
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL };
	struct sigaction sa;
	pthread_t th;
	int p[2], u[2], a, b, k;

	scn_init(argc, argv, 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_rt;
	sigaction(SIGRTMIN + 1, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);

	if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, u))
		scn_fail("pipe/socketpair: %s", strerror(errno));
	make_tcp(&a, &b);
	st[0].wfd = p[1], st[0].rfd = p[0];
	st[1].wfd = u[0], st[1].rfd = u[1];
	st[2].wfd = dup(u[1]), st[2].rfd = dup(u[0]);
	st[3].wfd = a, st[3].rfd = b;
	st[4].wfd = dup(b), st[4].rfd = dup(a);
	for (k = 0; k < NSTREAM; k++)
		st[k].name = names[k];

	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL))
		scn_fail("timerfd: %s", strerror(errno));
	sev.sigev_signo = SIGRTMIN + 1;
	its.it_interval.tv_nsec = its.it_value.tv_nsec = 3000000;
	if (timer_create(CLOCK_MONOTONIC, &sev, &ptimer) || timer_settime(ptimer, 0, &its, NULL))
		scn_fail("timer_create: %s", strerror(errno));

	/* the threads start with everything blocked; each opens what it needs */
	block_all_but(0);
	for (k = 0; k < NSTREAM; k++)
		if (pthread_create(&st[k].wt, NULL, writer, &st[k]) ||
		    pthread_create(&st[k].rt, NULL, reader, &st[k]))
			scn_fail("pthread_create: %s", strerror(errno));
	for (k = 0; k < NCOMPUTE; k++)
		if (pthread_create(&th, NULL, compute, (void *)(long)k))
			scn_fail("pthread_create: %s", strerror(errno));
	if (pthread_create(&th, NULL, timer_reader, NULL) ||
	    pthread_create(&th, NULL, signal_sleeper, NULL))
		scn_fail("pthread_create: %s", strerror(errno));
	/* the main thread takes only the verdict and check signals */
	{
		sigset_t set;

		sigfillset(&set);
		sigdelset(&set, SIGUSR1);
		sigdelset(&set, SIGUSR2);
		pthread_sigmask(SIG_SETMASK, &set, NULL);
	}
	{
		const char *why = verdict();

		if (why)
			scn_fail("not running at ready: %s", why);
	}
	scn_ready();

	while (!scn_check) {
		if (want_verdict) {
			want_verdict = 0;
			write_verdict();
		}
		scn_msleep(5);
	}
	{
		const char *why = verdict();

		if (why)
			scn_fail("%s", why);
	}
	scn_pass();
}
