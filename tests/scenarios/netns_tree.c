// SPDX-License-Identifier: MIT
/*
 * netns_tree - a process in a network namespace of its own (tests/suites/
 * netns.sh).  It unshares one, writes WORKDIR/unshared and waits for the
 * test to build it (WORKDIR/netready): lo up, a veth to the host with
 * NETNS_ADDR (the inner end), a route, sysctls, an nftables table.  Then:
 *   - a TCP listener on NETNS_ADDR:NETNS_PORT, whose one client the test
 *     starts on the host (through the veth): it says "hello", gets
 *     "welcome", and later every "pingN" gets "pongN";
 *   - an established TCP pair over lo (127.0.0.1) with data unread both
 *     ways;
 *   - a UDP socket bound to NETNS_ADDR:NETNS_PORT+1 with a datagram queued;
 *   - a unix listener with an abstract name (abstract names are per
 *     network namespace).
 * Without NETNS_ADDR (the migration test, netns.sh) it does not unshare:
 * it serves the client on NETNS_SERVE_ADDR:NETNS_PORT in the namespace it
 * was started in, nothing else.
 *
 * Check: a ping was answered; the pair still holds its data and carries
 * more; the datagram is still queued and a new one to the same address
 * arrives; the abstract unix name takes a connection; the listener still
 * listens on its address.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "scenario.h"

static int L, S, P[2], U, X, answered;
static const char abstract[] = "\0stasis-netns-tree";

static void serve(void)
{
	char buf[64];

	while (!scn_check) {
		struct pollfd p = { S, POLLIN, 0 };

		if (poll(&p, 1, 10) != 1 || !(p.revents & POLLIN))
			continue;
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

static void addr_of(struct sockaddr_in *a, const char *ip, int port)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
		scn_fail("bad address %s", ip);
}

static void listen_on(const char *ip, int port)
{
	struct sockaddr_in a;
	int one = 1;

	addr_of(&a, ip, port);
	L = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(L, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (L < 0 || bind(L, (struct sockaddr *)&a, sizeof(a)) || listen(L, 4))
		scn_fail("listener on %s:%d: %s", ip, port, strerror(errno));
}

static void accept_client(void)
{
	char buf[64];

	S = accept(L, NULL, NULL);
	if (S < 0 || scn_read_line(S, buf, sizeof(buf), 10000) || strcmp(buf, "hello\n"))
		scn_fail("no hello from the client");
	if (write(S, "welcome\n", 8) != 8)
		scn_fail("answer: %s", strerror(errno));
}

/* The pair over lo, the UDP socket and the abstract unix listener. */
static void inside(const char *ip, int port)
{
	struct sockaddr_in a;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int l2, one = 1;

	addr_of(&a, "127.0.0.1", port + 2);
	l2 = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l2 < 0 || bind(l2, (struct sockaddr *)&a, sizeof(a)) || listen(l2, 1))
		scn_fail("lo listener: %s", strerror(errno));
	P[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(P[0], (struct sockaddr *)&a, sizeof(a)) || (P[1] = accept(l2, NULL, NULL)) < 0)
		scn_fail("lo pair: %s", strerror(errno));
	close(l2);
	if (write(P[0], "abc", 3) != 3 || write(P[1], "xyz", 3) != 3)
		scn_fail("lo pair write: %s", strerror(errno));

	addr_of(&a, ip, port + 1);
	U = socket(AF_INET, SOCK_DGRAM, 0);
	if (U < 0 || bind(U, (struct sockaddr *)&a, sizeof(a)) ||
	    sendto(U, "dgram1", 6, 0, (struct sockaddr *)&a, sizeof(a)) != 6)
		scn_fail("udp: %s", strerror(errno));

	memcpy(un.sun_path, abstract, sizeof(abstract) - 1);
	X = socket(AF_UNIX, SOCK_STREAM, 0);
	if (X < 0 ||
	    bind(X, (struct sockaddr *)&un,
		 offsetof(struct sockaddr_un, sun_path) + sizeof(abstract) - 1) ||
	    listen(X, 2))
		scn_fail("unix: %s", strerror(errno));
}

static void check_inside(const char *ip, int port)
{
	struct sockaddr_in a;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	char buf[16];
	int c, u;

	SCN_CHECK(read(P[1], buf, 3) == 3 && !memcmp(buf, "abc", 3), "lo pair lost abc");
	SCN_CHECK(read(P[0], buf, 3) == 3 && !memcmp(buf, "xyz", 3), "lo pair lost xyz");
	SCN_CHECK(write(P[0], "more", 4) == 4 && read(P[1], buf, 4) == 4 && !memcmp(buf, "more", 4),
		  "lo pair carries no more data");
	SCN_CHECK(recv(U, buf, sizeof(buf), MSG_DONTWAIT) == 6 && !memcmp(buf, "dgram1", 6),
		  "the queued datagram is lost");
	addr_of(&a, ip, port + 1);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	SCN_CHECK(sendto(u, "dgram2", 6, 0, (struct sockaddr *)&a, sizeof(a)) == 6, "udp send: %s",
		  strerror(errno));
	scn_msleep(50);
	SCN_CHECK(recv(U, buf, sizeof(buf), MSG_DONTWAIT) == 6 && !memcmp(buf, "dgram2", 6),
		  "a new datagram does not arrive");
	memcpy(un.sun_path, abstract, sizeof(abstract) - 1);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	SCN_CHECK(!connect(c, (struct sockaddr *)&un,
			   offsetof(struct sockaddr_un, sun_path) + sizeof(abstract) - 1),
		  "abstract unix name: connect: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	const char *ip = getenv("NETNS_ADDR");
	const char *serve_ip = getenv("NETNS_SERVE_ADDR");
	int port = getenv("NETNS_PORT") ? atoi(getenv("NETNS_PORT")) : 7101;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	char buf[32];

	scn_init(argc, argv, 1);
	if (ip) {
		if (unshare(CLONE_NEWNET))
			scn_fail("unshare: %s", strerror(errno));
		snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
		scn_write_file("unshared", buf);
		while (access("netready", F_OK))
			scn_msleep(10);
		listen_on(ip, port);
		inside(ip, port);
	} else {
		listen_on(serve_ip ? serve_ip : "127.0.0.1", port);
	}
	scn_write_file("listening", "1\n");
	accept_client();
	scn_ready();
	serve();
	SCN_CHECK(answered > 0, "no ping from the client");
	SCN_CHECK(!getsockname(L, (struct sockaddr *)&a, &len) && ntohs(a.sin_port) == port,
		  "listener lost its address");
	if (ip)
		check_inside(ip, port);
	scn_pass();
}
