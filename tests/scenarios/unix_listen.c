// SPDX-License-Identifier: MIT
/*
 * unix_listen - a listening stream socket bound to the relative path
 * "listen.sock" (in WORKDIR), backlog 8, with:
 *   - one accepted connection from child C0: C0 wrote "hello" (unread by
 *     the parent), the parent wrote "world" (unread by C0);
 *   - two connections from children C1 and C2 still waiting in the accept
 *     queue (C1 connected first).  With UNIX_LISTEN_DATA=1 in the
 *     environment, C2 also sends "early" before it is accepted (a state
 *     stasis refuses: see the suite), and its answer starts with it;
 *   - with UNIX_LISTEN_CLOSED=1, a third pending connection, from a socket
 *     that was closed since (a short-lived child C3, reaped): refused too.
 * With UNIX_LISTEN_TYPE=seqpacket every socket is SOCK_SEQPACKET.
 * Each child then waits for a "q" and answers "cN:" followed by what it
 * read before the "q".  WORKDIR/pids lists C0 C1 C2 (parent-death signal
 * SIGKILL).
 *
 * Check: the listener still has its name; the accepted connection yields
 * "hello" and C0 answers "c0:world"; accept() returns C1's connection,
 * then C2's (queue order), each answers as expected; then C3's if any,
 * which reads end-of-stream at once; nothing more waits.
 */
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "scenario.h"

static int lsk, conn0, type = SOCK_STREAM;
static pid_t kid[3];
static struct sockaddr_un addr;
static socklen_t alen;

static void __attribute__((noreturn)) child(int i, pid_t parent, const char *early)
{
	char buf[256], out[300];
	size_t got = 0;
	ssize_t n;
	int s;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	s = socket(AF_UNIX, type, 0);
	if (connect(s, (struct sockaddr *)&addr, alen))
		_exit(4);
	if (i == 0 && write(s, "hello", 5) != 5)
		_exit(5);
	if (early && write(s, early, strlen(early)) < 0)
		_exit(5);
	while (got < sizeof(buf) && (n = read(s, buf + got, sizeof(buf) - got)) > 0) {
		got += n;
		if (buf[got - 1] == 'q')
			break;
	}
	n = snprintf(out, sizeof(out), "c%d:%.*s", i, got ? (int)got - 1 : 0, buf);
	if (write(s, out, n) != n)
		_exit(6);
	pause();
	_exit(0);
}

static void kill_kids(void)
{
	int i;

	for (i = 0; i < 3; i++)
		if (kid[i] > 0) {
			kill(kid[i], SIGKILL);
			waitpid(kid[i], NULL, 0);
		}
}

static void ask(int s, const char *want)
{
	char buf[64] = { 0 };
	ssize_t n;

	if (write(s, "q", 1) != 1) {
		kill_kids();
		scn_fail("cannot ask for %s", want);
	}
	for (n = 0; n < (ssize_t)strlen(want);) {
		ssize_t k = read(s, buf + n, sizeof(buf) - 1 - n);

		if (k <= 0)
			break;
		n += k;
	}
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, n)) {
		kill_kids();
		scn_fail("expected '%s', got '%s' (%zd)", want, buf, n);
	}
}

static void verify(void)
{
	struct sockaddr_un name;
	socklen_t nl = sizeof(name);
	char buf[16];
	int c;

	if (getsockname(lsk, (struct sockaddr *)&name, &nl) || nl != alen ||
	    strcmp(name.sun_path, "listen.sock")) {
		kill_kids();
		scn_fail("the listener lost its name");
	}
	if (recv(conn0, buf, sizeof(buf), MSG_DONTWAIT) != 5 || memcmp(buf, "hello", 5)) {
		kill_kids();
		scn_fail("the accepted connection lost its data");
	}
	ask(conn0, "c0:world");
	c = accept(lsk, NULL, NULL);
	if (c < 0) {
		kill_kids();
		scn_fail("accept 1: %s", strerror(errno));
	}
	ask(c, "c1:");
	c = accept(lsk, NULL, NULL);
	if (c < 0) {
		kill_kids();
		scn_fail("accept 2: %s", strerror(errno));
	}
	ask(c, getenv("UNIX_LISTEN_DATA") ? "earlyc2:" : "c2:");
	c = getenv("UNIX_LISTEN_CLOSED") ? accept(lsk, NULL, NULL) : -2;
	if (c == -1 || (c >= 0 && read(c, buf, sizeof(buf)) != 0)) {
		kill_kids();
		scn_fail("the connection from the closed client: %s",
			 c < 0 ? strerror(errno) : "no end-of-stream");
	}
	fcntl(lsk, F_SETFL, O_NONBLOCK);
	if (accept(lsk, NULL, NULL) >= 0 || errno != EAGAIN) {
		kill_kids();
		scn_fail("a fourth connection was waiting");
	}
	kill_kids();
}

/* The listener's queue holds n connections: /proc/net/unix lists them as
 * connecting (state 02) with the listener's name. */
static void wait_queued(int n)
{
	int tries;

	for (tries = 0; tries < 500; tries++) {
		FILE *f = fopen("/proc/net/unix", "r");
		char line[512];
		int count = 0;

		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, " 02 ") && strstr(line, " listen.sock\n"))
				count++;
		if (f)
			fclose(f);
		if (count >= n)
			return;
		scn_msleep(10);
	}
}

int main(int argc, char **argv)
{
	const char *early = getenv("UNIX_LISTEN_DATA") ? "early" : NULL;
	pid_t parent = getpid();
	char pids[64];
	int i;

	scn_init(argc, argv, 1);
	unlink("listen.sock");
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	strcpy(addr.sun_path, "listen.sock");
	alen = offsetof(struct sockaddr_un, sun_path) + strlen(addr.sun_path) + 1;
	if (getenv("UNIX_LISTEN_TYPE") && !strcmp(getenv("UNIX_LISTEN_TYPE"), "seqpacket"))
		type = SOCK_SEQPACKET;
	lsk = socket(AF_UNIX, type, 0);
	if (lsk < 0 || bind(lsk, (struct sockaddr *)&addr, alen) || listen(lsk, 8))
		scn_fail("listen: %s", strerror(errno));
	for (i = 0; i < 3; i++) {
		kid[i] = fork();
		if (kid[i] < 0)
			scn_fail("fork: %s", strerror(errno));
		if (!kid[i])
			child(i, parent, i == 2 ? early : NULL);
		if (i == 0) {
			conn0 = accept(lsk, NULL, NULL);
			if (conn0 < 0 || write(conn0, "world", 5) != 5) {
				kill_kids();
				scn_fail("accept: %s", strerror(errno));
			}
		} else {
			wait_queued(i);
		}
	}
	if (getenv("UNIX_LISTEN_CLOSED")) {
		pid_t c3 = fork();
		int s;

		if (c3 < 0)
			scn_fail("fork: %s", strerror(errno));
		if (!c3) {
			s = socket(AF_UNIX, type, 0);
			_exit(connect(s, (struct sockaddr *)&addr, alen) ? 4 : 0);
		}
		if (waitpid(c3, &s, 0) != c3 || s) {
			kill_kids();
			scn_fail("C3 could not connect");
		}
	}
	/* C0's "hello" and C2's early bytes are on their way: let them land */
	scn_msleep(100);
	snprintf(pids, sizeof(pids), "%d %d %d\n", (int)kid[0], (int)kid[1], (int)kid[2]);
	scn_write_file("pids", pids);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
