// SPDX-License-Identifier: MIT
/*
 * sock_timed - socket calls timed by their socket's SO_RCVTIMEO or
 * SO_SNDTIMEO (2 s), looping, none retrying on EINTR, each counting the
 * EINTRs it gets (no signal is sent to the threads: an EINTR can only
 * come from a checkpoint):
 *   - threads (every signal blocked): recv on a UDP socket, read on
 *     another, recv on an idle TCP connection, accept on a listener, and
 *     recv on a unix datagram socketpair, and a recv on a UDP socket
 *     without a timeout (which must never return);
 *   - with WORKDIR/send: a send on a TCP connection whose peer does not
 *     read (both buffers full);
 *   - the main thread: recvmsg on a UDP socket with the timeout, with
 *     handlers for SIGUSR1 (no SA_RESTART: its EINTR is the program's own,
 *     logged "usr1 N") and the check's SIGUSR2.
 * Each timed call must end when its timeout says, measured on
 * CLOCK_MONOTONIC from just before the call, "wake NAME LATENESS_US":
 * no earlier than WORKDIR/bound ms (default 100) before, and no later
 * than that plus the timer wheel's own rounding of a 2 s timeout (32 ms
 * at HZ 250; 40 ms allowed) after.  The check (SIGUSR2) wants no EINTR,
 * no return of the untimed recv, every timed waiter woken at least
 * WORKDIR/wakes times (default 1), all within the bounds.
 */
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "scenario.h"

enum { W_UDP, W_READ, W_TCP, W_ACCEPT, W_UNTIMED, W_UNIX, W_SEND, W_MAIN, NWAITERS };
static const char *const waiter_name[NWAITERS] = {
	"udp_recv",	    "udp_read",	 "tcp_recv", "accept",
	"udp_recv_untimed", "unix_recv", "tcp_send", "main_recvmsg",
};

#define TIMEOUT_MS 2000
#define WHEEL_MS   40

static int fds[NWAITERS];
static volatile int eintr[NWAITERS], other_err[NWAITERS], wakes[NWAITERS], ready_n;
static volatile long long worst_early_us[NWAITERS], worst_late_us[NWAITERS];
static volatile sig_atomic_t usr1;
static int with_send;

static void on_usr1(int sig)
{
	usr1++;
}

static long long mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void set_timeo(int fd, int opt)
{
	struct timeval tv = { TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000 };

	if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)))
		scn_fail("setsockopt: %s", strerror(errno));
}

static struct sockaddr_in loopback(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int udp(int timed)
{
	struct sockaddr_in a = loopback();
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)))
		scn_fail("udp: %s", strerror(errno));
	if (timed)
		set_timeo(fd, SO_RCVTIMEO);
	return fd;
}

static int listener(void)
{
	struct sockaddr_in a = loopback();
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4))
		scn_fail("listen: %s", strerror(errno));
	return fd;
}

/* A connected TCP pair over loopback: *a the connecting end, *b the accepted one. */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in addr;
	socklen_t len = sizeof(addr);
	int l = listener();

	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0 || getsockname(l, (struct sockaddr *)&addr, &len) ||
	    connect(*a, (struct sockaddr *)&addr, sizeof(addr)) || (*b = accept(l, NULL, NULL)) < 0)
		scn_fail("tcp pair: %s", strerror(errno));
	close(l);
}

/* Fill fd's send buffer and its peer's receive buffer. */
static void fill(int fd)
{
	static char chunk[65536];
	int small = 16384;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	while (send(fd, chunk, sizeof(chunk), MSG_DONTWAIT) > 0)
		;
	scn_msleep(50);
	while (send(fd, chunk, sizeof(chunk), MSG_DONTWAIT) > 0)
		;
}

static void setup(void)
{
	char buf[8];
	int peer;

	with_send = !scn_read_small("send", buf, sizeof(buf));
	fds[W_UDP] = udp(1);
	fds[W_READ] = udp(1);
	fds[W_UNTIMED] = udp(0);
	fds[W_MAIN] = udp(1);
	{
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
			scn_fail("socketpair: %s", strerror(errno));
		fds[W_UNIX] = sv[0];
		set_timeo(fds[W_UNIX], SO_RCVTIMEO);
	}
	tcp_pair(&fds[W_TCP], &peer);
	set_timeo(fds[W_TCP], SO_RCVTIMEO);
	fds[W_ACCEPT] = listener();
	set_timeo(fds[W_ACCEPT], SO_RCVTIMEO);
	if (with_send) {
		int small = 4096;

		tcp_pair(&fds[W_SEND], &peer);
		setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		fill(fds[W_SEND]);
		set_timeo(fds[W_SEND], SO_SNDTIMEO);
	}
}

/* One call of waiter w: 0 timed out, else -errno (or 1: returned with data). */
static int one_call(long w)
{
	static char chunk[4096];
	char buf[64];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	switch (w) {
	case W_READ:
		n = read(fds[w], buf, sizeof(buf));
		break;
	case W_ACCEPT:
		n = accept(fds[w], NULL, NULL);
		break;
	case W_SEND:
		n = send(fds[w], chunk, sizeof(chunk), 0);
		break;
	case W_MAIN:
		n = recvmsg(fds[w], &mh, 0);
		break;
	default:
		n = recv(fds[w], buf, sizeof(buf), 0);
		break;
	}
	if (n < 0 && errno == EAGAIN)
		return 0;
	return n < 0 ? -errno : 1;
}

/* What one call of waiter w that began at start gave. */
static void record(long w, int r, long long start)
{
	long long late;

	if (r == -EINTR) {
		eintr[w]++;
		scn_log("eintr %s", waiter_name[w]);
		return;
	}
	if (r != 0 || w == W_UNTIMED) {
		other_err[w] = r < 0 ? -r : -1;
		scn_log("%s returned %d", waiter_name[w], r);
		scn_msleep(1000);
		return;
	}
	late = mono_us() - start - TIMEOUT_MS * 1000LL;
	if (late < 0 && -late > worst_early_us[w])
		worst_early_us[w] = -late;
	if (late > worst_late_us[w])
		worst_late_us[w] = late;
	wakes[w]++;
	scn_log("wake %s %lld", waiter_name[w], late);
}

static void *waiter(void *arg)
{
	long w = (long)arg;
	sigset_t all;
	long long start;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	__atomic_fetch_add(&ready_n, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		start = mono_us();
		record(w, one_call(w), start);
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
		if (w == W_SEND && !with_send)
			continue;
		SCN_CHECK(!eintr[w], "%s got EINTR %d times", waiter_name[w], eintr[w]);
		SCN_CHECK(!other_err[w], "%s returned early (%s)", waiter_name[w],
			  other_err[w] > 0 ? strerror(other_err[w]) : "not an error");
		if (w == W_UNTIMED)
			continue;
		SCN_CHECK(wakes[w] >= want, "%s woke %d times, expected %ld", waiter_name[w],
			  wakes[w], want);
		SCN_CHECK(worst_early_us[w] <= bound_ms * 1000,
			  "%s woke %lld us before its deadline (bound %ld ms)", waiter_name[w],
			  worst_early_us[w], bound_ms);
		SCN_CHECK(worst_late_us[w] <= (bound_ms + WHEEL_MS) * 1000,
			  "%s woke %lld us after its deadline (bound %ld ms)", waiter_name[w],
			  worst_late_us[w], bound_ms + WHEEL_MS);
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	long long start;
	int seen = 0, r;
	pthread_t t;
	long w;

	scn_init(argc, argv, 0);
	sigaction(SIGUSR1, &sa, NULL);
	setup();
	for (w = 0; w < W_MAIN; w++)
		if ((w != W_SEND || with_send) && pthread_create(&t, NULL, waiter, (void *)w))
			scn_fail("pthread_create");
	while (ready_n < W_MAIN - !with_send)
		scn_msleep(1);
	scn_msleep(5); /* let them reach their calls */
	scn_ready();
	for (;;) {
		int before = usr1 + scn_check;

		start = mono_us();
		r = one_call(W_MAIN);
		if (usr1 != seen) {
			seen = usr1;
			scn_log("usr1 %d", seen);
		}
		if (scn_check) {
			verify();
			scn_pass();
		}
		if (r == -EINTR && usr1 + scn_check != before)
			continue; /* the program's own signal: its EINTR is real */
		record(W_MAIN, r, start);
	}
}
