// SPDX-License-Identifier: MIT
/*
 * inet_fork - a pre-forking server in miniature (dumped with
 * --tcp-established): the parent P listens on 127.0.0.1 (L), forks a
 * worker K that inherits L and accepts the connection (S) of a client
 * socket C held by P.  "request" waits unread in S (in K), "response"
 * waits unread in C (in P).  At restore the listener is shared by both
 * processes, each connection end is held by one.  WORKDIR/pids lists K,
 * which has parent-death signal SIGKILL.
 *
 * Check (P): it sends K SIGUSR1; K reads "request" on S, answers "done"
 * and exits 0 (any failure: its own exit status); P reads "response" then
 * "done" on C, and K's status must be 0.  L still accepts in P.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "scenario.h"

static int L, C, S;
static volatile sig_atomic_t k_go;

static void on_usr1(int sig)
{
	k_go = 1;
}

static int read_exact(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 10000) != 1)
			return -1;
		n = read(fd, buf + got, len - got);
		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

static void __attribute__((noreturn)) worker(void)
{
	char buf[16];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGUSR1, on_usr1);
	S = accept(L, NULL, NULL);
	if (S < 0 || write(S, "response", 8) != 8)
		_exit(2);
	while (!k_go)
		scn_msleep(10);
	if (read_exact(S, buf, 7) || memcmp(buf, "request", 7))
		_exit(3);
	if (write(S, "done", 4) != 4)
		_exit(4);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	char buf[64];
	int st, c;
	pid_t k;

	scn_init(argc, argv, 1);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	L = socket(AF_INET, SOCK_STREAM, 0);
	if (L < 0 || bind(L, (struct sockaddr *)&a, sizeof(a)) || listen(L, 4) ||
	    getsockname(L, (struct sockaddr *)&a, &len))
		scn_fail("listener: %s", strerror(errno));
	k = fork();
	if (k < 0)
		scn_fail("fork: %s", strerror(errno));
	if (!k)
		worker();
	snprintf(buf, sizeof(buf), "%d\n", (int)k);
	scn_write_file("pids", buf);
	C = socket(AF_INET, SOCK_STREAM, 0);
	if (C < 0 || connect(C, (struct sockaddr *)&a, sizeof(a)) || write(C, "request", 7) != 7)
		scn_fail("client: %s", strerror(errno));
	scn_msleep(100); /* K accepts and answers */
	scn_ready_then_wait();
	SCN_CHECK(!kill(k, SIGUSR1), "worker %d gone", (int)k);
	SCN_CHECK(!read_exact(C, buf, 8) && !memcmp(buf, "response", 8), "C: no response");
	SCN_CHECK(!read_exact(C, buf, 4) && !memcmp(buf, "done", 4), "C: no done from K");
	SCN_CHECK(waitpid(k, &st, 0) == k && WIFEXITED(st) && !WEXITSTATUS(st),
		  "worker exited with status %#x", st);
	c = socket(AF_INET, SOCK_STREAM, 0);
	SCN_CHECK(!connect(c, (struct sockaddr *)&a, sizeof(a)), "L: connect: %s", strerror(errno));
	SCN_CHECK(accept(L, NULL, NULL) >= 0, "L: accept: %s", strerror(errno));
	scn_pass();
}
