// SPDX-License-Identifier: MIT
/*
 * unix_ext - unix sockets connected across the boundary of a dumped
 * subtree.  The scenario P listens on "ext.sock" (relative, in WORKDIR)
 * and has a datagram socket bound to "log.sock" (like /dev/log), and
 * forks C, which connects to the listener (P accepts) and connects a
 * datagram socket to log.sock; unless UNIX_EXT_NOPAIR=1 is set, C also
 * holds one end of a stream socketpair whose other end only P holds.  The
 * runner dumps C alone: its peers are outside.
 * WORKDIR/pids lists C (no parent-death signal: it is restored with -d).
 *
 * C answers every "q" it reads on either socket with "C", after sending
 * "L" to log.sock.  If its
 * connection to P ends (end-of-stream), it waits for the next one.
 *
 * Check (in P): C answers on the accepted connection -- or, if that one
 * was closed (C was dumped and restored), on a new connection accepted
 * within 3 s; and, with the pair, on the socketpair; each answer came
 * with an "L" on log.sock.
 */
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "scenario.h"

static int lsk, logsk, conn = -1, sp[2] = { -1, -1 };
static pid_t kid;

static void __attribute__((noreturn)) child(pid_t parent, struct sockaddr_un *a, socklen_t al)
{
	struct pollfd pf[2];
	int s, lg, n, i;
	char ch;

	if (getppid() != parent)
		_exit(3);
	close(lsk); /* the listener and log.sock stay P's alone */
	close(logsk);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(s, (struct sockaddr *)a, al))
		_exit(4);
	lg = socket(AF_UNIX, SOCK_DGRAM, 0);
	strcpy(a->sun_path, "log.sock");
	if (connect(lg, (struct sockaddr *)a, al))
		_exit(4);
	for (;;) {
		pf[0] = (struct pollfd){ s, POLLIN, 0 };
		pf[1] = (struct pollfd){ sp[1], POLLIN, 0 };
		n = poll(pf, sp[1] >= 0 ? 2 : 1, -1);
		for (i = 0; n > 0 && i < 2; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP)))
				continue;
			if (read(pf[i].fd, &ch, 1) == 1) {
				if (ch == 'q' &&
				    (send(lg, "L", 1, 0) != 1 || write(pf[i].fd, "C", 1) != 1))
					_exit(5);
			} else {
				pause(); /* the other end is gone */
			}
		}
	}
}

static int answers(int fd)
{
	char ch = 0, l = 0;

	return write(fd, "q", 1) == 1 && read(fd, &ch, 1) == 1 && ch == 'C' &&
	       recv(logsk, &l, 1, MSG_DONTWAIT) == 1 && l == 'L';
}

static void verify(void)
{
	struct pollfd pf = { lsk, POLLIN, 0 };
	char ch;

	if (recv(conn, &ch, 1, MSG_DONTWAIT | MSG_PEEK) == 0) {
		/* C was restored: it connects again */
		close(conn);
		conn = poll(&pf, 1, 3000) == 1 ? accept(lsk, NULL, NULL) : -1;
	}
	if (conn < 0 || !answers(conn)) {
		kill(kid, SIGKILL);
		scn_fail("C does not answer through the listener");
	}
	if (sp[0] >= 0 && !answers(sp[0])) {
		kill(kid, SIGKILL);
		scn_fail("C does not answer through the socketpair");
	}
	kill(kid, SIGKILL);
	waitpid(kid, NULL, WNOHANG);
}

int main(int argc, char **argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX, .sun_path = "ext.sock" };
	socklen_t al = offsetof(struct sockaddr_un, sun_path) + 9;
	pid_t parent = getpid();
	char pids[32];

	scn_init(argc, argv, 1);
	unlink("ext.sock");
	lsk = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lsk < 0 || bind(lsk, (struct sockaddr *)&a, al) || listen(lsk, 4))
		scn_fail("listen: %s", strerror(errno));
	unlink("log.sock");
	strcpy(a.sun_path, "log.sock");
	logsk = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (logsk < 0 || bind(logsk, (struct sockaddr *)&a, al))
		scn_fail("log.sock: %s", strerror(errno));
	strcpy(a.sun_path, "ext.sock");
	if (!getenv("UNIX_EXT_NOPAIR") && socketpair(AF_UNIX, SOCK_STREAM, 0, sp))
		scn_fail("socketpair: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		scn_fail("fork: %s", strerror(errno));
	if (!kid) {
		if (sp[0] >= 0)
			close(sp[0]);
		child(parent, &a, al);
	}
	if (sp[1] >= 0)
		close(sp[1]);
	conn = accept(lsk, NULL, NULL);
	if (conn < 0)
		scn_fail("accept: %s", strerror(errno));
	snprintf(pids, sizeof(pids), "%d\n", (int)kid);
	scn_write_file("pids", pids);
	scn_ready();
	while (!scn_check) {
		scn_msleep(10);
		waitpid(-1, NULL, WNOHANG); /* a dumped C leaves its PID free */
	}
	verify();
	scn_pass();
}
