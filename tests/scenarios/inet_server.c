// SPDX-License-Identifier: MIT
/*
 * inet_server - a TCP server whose client is outside the tree: it listens
 * on 127.0.0.1 (ephemeral port, written to WORKDIR/port), accepts the one
 * client the runner starts, reads its "hello" line and answers "welcome",
 * and keeps both the listener and the connection.  From then on it answers
 * every "pingN" line with "pongN", whenever it comes (the runner's client
 * sends one after each restore and checks the answer).
 *
 * Check: at least one ping was answered on that connection; the listener
 * is still listening on its port.  With INET_SERVER_CLOSED=1
 * (restore --tcp-close) the connection's fd is an unconnected TCP socket
 * instead: reads fail with ENOTCONN, writes with EPIPE; the listener still
 * takes a new connection.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "scenario.h"

static int L, S, closed, answered;

/* Answer "pingN" with "pongN" until the check signal. */
static void serve(void)
{
	char buf[64];

	while (!scn_check) {
		struct pollfd p = { S, POLLIN, 0 };

		if (poll(&p, 1, 10) != 1 || !(p.revents & POLLIN)) {
			if (p.revents)
				scn_msleep(10); /* closed (restore --tcp-close) */
			continue;
		}
		if (scn_read_line(S, buf, sizeof(buf), 10000) || strncmp(buf, "ping", 4)) {
			scn_msleep(10);
			continue;
		}
		buf[1] = 'o';
		if (write(S, buf, strlen(buf)) != (ssize_t)strlen(buf))
			scn_fail("answer: %s", strerror(errno));
		answered++;
	}
}

/* The connection came back closed; the listener at a takes a new client. */
static void __attribute__((noreturn)) check_closed(struct sockaddr_in *a)
{
	char buf[8];
	int c, n;

	SCN_CHECK(recv(S, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == ENOTCONN,
		  "the connection is not closed (recv: %s)", strerror(errno));
	SCN_CHECK(send(S, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE,
		  "the connection is not closed (send: %s)", strerror(errno));
	c = socket(AF_INET, SOCK_STREAM, 0);
	SCN_CHECK(!connect(c, (struct sockaddr *)a, sizeof(*a)), "listener: connect: %s",
		  strerror(errno));
	n = accept(L, NULL, NULL);
	SCN_CHECK(n >= 0, "listener: accept: %s", strerror(errno));
	scn_pass();
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	char buf[64];

	scn_init(argc, argv, 1);
	closed = getenv("INET_SERVER_CLOSED") != NULL;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	L = socket(AF_INET, SOCK_STREAM, 0);
	if (L < 0 || bind(L, (struct sockaddr *)&a, sizeof(a)) || listen(L, 4) ||
	    getsockname(L, (struct sockaddr *)&a, &len))
		scn_fail("listener: %s", strerror(errno));
	snprintf(buf, sizeof(buf), "%u\n", ntohs(a.sin_port));
	scn_write_file("port", buf);
	S = accept(L, NULL, NULL);
	if (S < 0 || scn_read_line(S, buf, sizeof(buf), 10000) || strcmp(buf, "hello\n"))
		scn_fail("no hello from the client");
	if (write(S, "welcome\n", 8) != 8)
		scn_fail("answer: %s", strerror(errno));
	scn_ready();
	serve();
	if (closed)
		check_closed(&a);
	SCN_CHECK(answered > 0, "no ping from the client");
	len = sizeof(a);
	SCN_CHECK(!getsockname(L, (struct sockaddr *)&a, &len) && a.sin_port, "listener lost");
	scn_pass();
}
