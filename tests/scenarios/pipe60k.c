// SPDX-License-Identifier: MIT
/*
 * pipe60k - a parent and its child share pipes with data in flight:
 *
 *   pipe A (default 64 KiB capacity): 60 KiB of a pattern written by the
 *     child, which keeps the write end; the parent keeps the read end,
 *     O_NONBLOCK, and has not read anything yet;
 *   pipe B: capacity raised to 256 KiB, 200 KiB written by the parent into
 *     the write end it keeps; the child keeps the read end.
 *
 * WORKDIR/pids lists the child (parent-death signal SIGKILL).
 *
 * Check (parent): pipe A gives exactly the 60 KiB pattern, then EAGAIN (not
 * EOF: the child still holds the write end); its capacity is 64 KiB and the
 * read end is still O_NONBLOCK.  Pipe B's capacity is 256 KiB and it still
 * holds 200 KiB (FIONREAD); the parent then asks the child (SIGUSR1) to
 * drain B and check the pattern, and waits for it to exit 0.
 */
#include "scenario.h"

#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define A_BYTES (60 * 1024)
#define B_BYTES (200 * 1024)
#define B_CAP	(256 * 1024)

static int a[2], b[2];
static pid_t kid;
static volatile sig_atomic_t drain;

static unsigned char pattern(size_t i, unsigned int seed)
{
	return (unsigned char)((i * 131 + seed) ^ (i >> 9));
}

static int fill(int fd, size_t len, unsigned int seed)
{
	unsigned char buf[4096];
	size_t done = 0, i;

	while (done < len) {
		size_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);

		for (i = 0; i < n; i++)
			buf[i] = pattern(done + i, seed);
		if (scn_write_all(fd, (const char *)buf, n))
			return -1;
		done += n;
	}
	return 0;
}

/* Read exactly len bytes of the pattern; 0 if they are all there and right. */
static int drain_check(int fd, size_t len, unsigned int seed)
{
	unsigned char buf[4096];
	size_t done = 0, i;

	while (done < len) {
		ssize_t n = read(fd, buf, len - done < sizeof(buf) ? len - done : sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		for (i = 0; i < (size_t)n; i++)
			if (buf[i] != pattern(done + i, seed))
				return -1;
		done += (size_t)n;
	}
	return 0;
}

static void on_drain(int sig)
{
	drain = 1;
}

static void __attribute__((noreturn)) kid_main(void)
{
	sigset_t none;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGUSR1, on_drain);
	close(a[0]);
	close(b[1]);
	if (fill(a[1], A_BYTES, 7))
		_exit(2);
	sigemptyset(&none);
	while (!drain)
		sigsuspend(&none);
	_exit(drain_check(b[0], B_BYTES, 11) ? 1 : 0);
}

static void verify(void)
{
	int n = -1, status;
	char c;

	SCN_CHECK(fcntl(a[0], F_GETFL) & O_NONBLOCK, "pipe A lost O_NONBLOCK");
	SCN_CHECK(fcntl(a[0], F_GETPIPE_SZ) == 65536, "pipe A capacity %d",
		  fcntl(a[0], F_GETPIPE_SZ));
	SCN_CHECK(ioctl(a[0], FIONREAD, &n) == 0 && n == A_BYTES, "pipe A holds %d bytes, not %d",
		  n, A_BYTES);
	SCN_CHECK(drain_check(a[0], A_BYTES, 7) == 0, "pipe A bytes differ from the pattern");
	SCN_CHECK(read(a[0], &c, 1) < 0 && errno == EAGAIN,
		  "pipe A: more than 60 KiB, or EOF (the child's write end is gone)");
	SCN_CHECK(fcntl(b[1], F_GETPIPE_SZ) == B_CAP, "pipe B capacity %d",
		  fcntl(b[1], F_GETPIPE_SZ));
	SCN_CHECK(ioctl(b[1], FIONREAD, &n) == 0 && n == B_BYTES, "pipe B holds %d bytes, not %d",
		  n, B_BYTES);
	SCN_CHECK(kill(kid, SIGUSR1) == 0, "child %d is gone", (int)kid);
	SCN_CHECK(waitpid(kid, &status, 0) == kid && WIFEXITED(status) && !WEXITSTATUS(status),
		  "the child found pipe B wrong (status %#x)", status);
}

int main(int argc, char **argv)
{
	char buf[32];
	int n = 0;

	scn_init(argc, argv, 0);
	if (pipe(a) || pipe(b) || fcntl(b[1], F_SETPIPE_SZ, B_CAP) < B_CAP)
		scn_fail("pipes: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		scn_fail("fork: %s", strerror(errno));
	if (kid == 0)
		kid_main();
	close(a[1]);
	close(b[0]);
	fcntl(a[0], F_SETFL, O_NONBLOCK);
	if (fill(b[1], B_BYTES, 11))
		scn_fail("fill pipe B: %s", strerror(errno));
	while (ioctl(a[0], FIONREAD, &n) == 0 && n < A_BYTES)
		scn_msleep(5);
	snprintf(buf, sizeof(buf), "%d\n", (int)kid);
	scn_write_file("pids", buf);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
