// SPDX-License-Identifier: MIT
/*
 * inet_raw - raw and ICMP ping sockets (the runner sets
 * net.ipv4.ping_group_range so that ping sockets can be made):
 *   - P: an ICMP ping socket bound to 127.0.0.1 (its echo identifier
 *     chosen by the kernel), connected to 127.0.0.1, IP_TTL 33;
 *   - Q: an ICMPv6 ping socket, unbound;
 *   - R: a raw ICMP socket bound to 127.0.0.1 with an ICMP_FILTER that lets
 *     only echo replies through, IP_RECVTTL on;
 *   - S: a raw IPv4 socket of protocol 253 with IP_HDRINCL and IP_TOS 0x10;
 *   - T: a raw ICMPv6 socket on ::1 whose ICMP6_FILTER lets only echo
 *     replies through.
 *
 * Check: kinds, addresses (P's identifier too), peers and options are as
 * at start; P pings 127.0.0.1 and gets its reply (the kernel matches it by
 * P's identifier), which R sees too; T sends an echo request to ::1 and
 * gets the reply; Q pings ::1 and gets its reply.
 */
#include <arpa/inet.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "scenario.h"

static int P, Q, R, S, T;
static struct sockaddr_storage name0[5], peer0[5];

static int sock(int family, int type, int proto)
{
	int fd = socket(family, type, proto);

	if (fd < 0)
		scn_fail("socket(%d, %d, %d): %s", family, type, proto, strerror(errno));
	return fd;
}

static void addr4(struct sockaddr_in *a, const char *ip)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &a->sin_addr);
}

static void addr6(struct sockaddr_in6 *a, const char *ip)
{
	memset(a, 0, sizeof(*a));
	a->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &a->sin6_addr);
}

static void names(int i, int fd, struct sockaddr_storage *n, struct sockaddr_storage *p)
{
	socklen_t len = sizeof(*n);

	memset(&n[i], 0, sizeof(n[i]));
	memset(&p[i], 0, sizeof(p[i]));
	getsockname(fd, (struct sockaddr *)&n[i], &len);
	len = sizeof(*p);
	getpeername(fd, (struct sockaddr *)&p[i], &len);
}

static int get_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	return getsockopt(fd, level, name, &v, &len) ? -1 : v;
}

static void build(void)
{
	struct sockaddr_in a;
	struct sockaddr_in6 a6;
	struct icmp_filter f = { ~(1U << ICMP_ECHOREPLY) };
	struct icmp6_filter f6;
	int v;

	P = sock(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	addr4(&a, "127.0.0.1");
	v = 33;
	if (bind(P, (struct sockaddr *)&a, sizeof(a)) ||
	    connect(P, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(P, IPPROTO_IP, IP_TTL, &v, sizeof(v)))
		scn_fail("ping socket: %s", strerror(errno));
	Q = sock(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
	R = sock(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	v = 1;
	if (bind(R, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(R, SOL_RAW, ICMP_FILTER, &f, sizeof(f)) ||
	    setsockopt(R, IPPROTO_IP, IP_RECVTTL, &v, sizeof(v)))
		scn_fail("raw ICMP socket: %s", strerror(errno));
	S = sock(AF_INET, SOCK_RAW, 253);
	v = 0x10;
	if (setsockopt(S, IPPROTO_IP, IP_HDRINCL, (int[]){ 1 }, sizeof(int)) ||
	    setsockopt(S, IPPROTO_IP, IP_TOS, &v, sizeof(v)))
		scn_fail("raw socket: %s", strerror(errno));
	T = sock(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	ICMP6_FILTER_SETBLOCKALL(&f6);
	ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f6);
	addr6(&a6, "::1");
	if (bind(T, (struct sockaddr *)&a6, sizeof(a6)) ||
	    setsockopt(T, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, sizeof(f6)))
		scn_fail("raw ICMPv6 socket: %s", strerror(errno));
	/* P gets its identifier when bound */
	names(0, P, name0, peer0);
	names(1, Q, name0, peer0);
	names(2, R, name0, peer0);
	names(3, S, name0, peer0);
	names(4, T, name0, peer0);
}

/* A reply of type want within a second on fd (raw: after its IP header if ip). */
static int wait_reply(int fd, int want, int ip, uint16_t seq)
{
	char buf[1500];
	int i;

	for (i = 0; i < 100; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		int off = ip ? (buf[0] & 0xf) * 4 : 0;
		struct icmphdr *h = (void *)(buf + off);

		if (n < 0) {
			scn_msleep(10);
			continue;
		}
		if (n >= off + (ssize_t)sizeof(*h) && h->type == want &&
		    ntohs(h->un.echo.sequence) == seq)
			return 0;
	}
	return -1;
}

static int ping(int fd, int family, uint8_t type, uint16_t seq, const char *to)
{
	struct icmphdr h = { .type = type };
	struct sockaddr_storage ss;
	socklen_t len;

	h.un.echo.sequence = htons(seq);
	if (family == AF_INET) {
		addr4((void *)&ss, to);
		len = sizeof(struct sockaddr_in);
	} else {
		addr6((void *)&ss, to);
		len = sizeof(struct sockaddr_in6);
	}
	return sendto(fd, &h, sizeof(h), 0, (struct sockaddr *)&ss, len) == sizeof(h) ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage n[5], p[5];
	struct icmp_filter f;
	struct icmp6_filter f6;
	socklen_t len;
	int i, fds[5];

	scn_init(argc, argv, 1);
	build();
	scn_ready_then_wait();
	fds[0] = P, fds[1] = Q, fds[2] = R, fds[3] = S, fds[4] = T;
	for (i = 0; i < 5; i++) {
		names(i, fds[i], n, p);
		SCN_CHECK(!memcmp(&n[i], &name0[i], sizeof(n[i])),
			  "socket %d: local address changed", i);
		SCN_CHECK(!memcmp(&p[i], &peer0[i], sizeof(p[i])), "socket %d: peer changed", i);
	}
	SCN_CHECK(get_int(P, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_ICMP &&
		      get_int(P, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM,
		  "P is no longer a ping socket");
	SCN_CHECK(get_int(Q, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_ICMPV6, "Q is no longer ICMPv6");
	SCN_CHECK(get_int(S, SOL_SOCKET, SO_PROTOCOL) == 253 &&
		      get_int(S, SOL_SOCKET, SO_TYPE) == SOCK_RAW,
		  "S is no longer raw protocol 253");
	SCN_CHECK(get_int(P, IPPROTO_IP, IP_TTL) == 33, "P: IP_TTL %d",
		  get_int(P, IPPROTO_IP, IP_TTL));
	SCN_CHECK(get_int(R, IPPROTO_IP, IP_RECVTTL) == 1, "R: IP_RECVTTL lost");
	SCN_CHECK(get_int(S, IPPROTO_IP, IP_HDRINCL) == 1, "S: IP_HDRINCL lost");
	SCN_CHECK(get_int(S, IPPROTO_IP, IP_TOS) == 0x10, "S: IP_TOS %d",
		  get_int(S, IPPROTO_IP, IP_TOS));
	len = sizeof(f);
	SCN_CHECK(!getsockopt(R, SOL_RAW, ICMP_FILTER, &f, &len) &&
		      f.data == ~(1U << ICMP_ECHOREPLY),
		  "R: ICMP_FILTER %#x", f.data);
	len = sizeof(f6);
	SCN_CHECK(!getsockopt(T, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, &len) &&
		      !ICMP6_FILTER_WILLBLOCK(ICMP6_ECHO_REPLY, &f6) &&
		      ICMP6_FILTER_WILLBLOCK(ICMP6_ECHO_REQUEST, &f6),
		  "T: ICMP6_FILTER changed");
	SCN_CHECK(!ping(P, AF_INET, ICMP_ECHO, 7, "127.0.0.1") &&
		      !wait_reply(P, ICMP_ECHOREPLY, 0, 7),
		  "P: no echo reply from 127.0.0.1 (%s)", strerror(errno));
	SCN_CHECK(!wait_reply(R, ICMP_ECHOREPLY, 1, 7), "R did not see P's echo reply");
	SCN_CHECK(!ping(T, AF_INET6, ICMP6_ECHO_REQUEST, 8, "::1") &&
		      !wait_reply(T, ICMP6_ECHO_REPLY, 0, 8),
		  "T: no ICMPv6 echo reply from ::1");
	SCN_CHECK(!ping(Q, AF_INET6, ICMP6_ECHO_REQUEST, 9, "::1") &&
		      !wait_reply(Q, ICMP6_ECHO_REPLY, 0, 9),
		  "Q: no ICMPv6 echo reply from ::1");
	scn_pass();
}
