// SPDX-License-Identifier: MIT
/*
 * inet_udp - UDP sockets with datagrams waiting:
 *   - A: bound to 127.0.0.1, connected to B, SO_RCVBUF 1 MiB, a peek
 *     offset left by the program (SO_PEEK_OFF 0 after one peek);
 *   - B: bound to 127.0.0.1, connected to A; it sent ten datagrams of
 *     different sizes (1 byte to 60000 bytes, one empty) to A, unread;
 *   - C: IPv6 on [::] (dual stack), unconnected; D (IPv4, 127.0.0.1) and
 *     E (IPv6, ::1) sent it two datagrams each, unread; C has IP_TOS and
 *     SO_RCVTIMEO set;
 *   - O: IPv6 with IPV6_V6ONLY, unbound.
 *
 * Check: A yields the ten datagrams in order, each with its size and
 * contents, from B's address; C yields its four from D's and E's
 * addresses (D's as a v4-mapped one); addresses, peers and options are as
 * at start; B and A still talk to each other; O still has IPV6_V6ONLY.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "scenario.h"

#define NA 10

static const int sizes[NA] = { 1, 10, 0, 100, 1000, 5000, 20000, 60000, 7, 3 };
static int A, B, C, D, E, O;
static struct sockaddr_storage addr[6];

static unsigned char pat(int k, int i)
{
	return (unsigned char)(k * 31 + i * 7 + (i >> 8));
}

static socklen_t name_of(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	getsockname(fd, (struct sockaddr *)ss, &len);
	return len;
}

static int udp(int family, const char *ip)
{
	struct sockaddr_storage ss = { 0 };
	int fd = socket(family, SOCK_DGRAM, 0);
	socklen_t len;

	if (fd < 0)
		scn_fail("socket: %s", strerror(errno));
	if (!ip)
		return fd;
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;

		a->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &a->sin_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;

		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &a->sin6_addr);
		len = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, len))
		scn_fail("bind %s: %s", ip, strerror(errno));
	return fd;
}

static int port_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? ntohs(((struct sockaddr_in *)ss)->sin_port)
					: ntohs(((struct sockaddr_in6 *)ss)->sin6_port);
}

/* One datagram of fd: size, contents (pattern k), sender's port and family. */
static void expect(int fd, const char *who, int k, int size, int from, int family)
{
	static unsigned char buf[65536];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&ss, &len);
	int i;

	SCN_CHECK(n == size, "%s: datagram %d has %zd bytes, expected %d (%s)", who, k, n, size,
		  n < 0 ? strerror(errno) : "");
	for (i = 0; i < size; i++)
		SCN_CHECK(buf[i] == pat(k, i), "%s: datagram %d: byte %d differs", who, k, i);
	SCN_CHECK(port_of(&ss) == port_of(&addr[from]) && ss.ss_family == family,
		  "%s: datagram %d from port %d family %d, expected %d", who, k, port_of(&ss),
		  ss.ss_family, port_of(&addr[from]));
	if (family == AF_INET6 && addr[from].ss_family == AF_INET) {
		struct sockaddr_in6 *s6 = (void *)&ss;

		SCN_CHECK(IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr), "%s: sender not v4-mapped", who);
	}
}

static void verify(void)
{
	int fds[6] = { A, B, C, D, E, O }, i, v = 0, tos = 0;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(v);
	char buf[16];

	for (i = 0; i < 6; i++) {
		socklen_t l = name_of(fds[i], &ss);

		SCN_CHECK(l && !memcmp(&ss, &addr[i], l), "socket %d: local address changed", i);
	}
	getsockopt(A, SOL_SOCKET, SO_PEEK_OFF, &v, &len);
	SCN_CHECK(v == 0, "A: SO_PEEK_OFF is %d, expected 0", v);
	v = -1;
	setsockopt(A, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v));
	for (i = 0; i < NA; i++)
		expect(A, "A", i, sizes[i], 1, AF_INET);
	SCN_CHECK(recv(A, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN,
		  "A: more datagrams than expected");
	expect(C, "C", 20, 33, 3, AF_INET6);
	expect(C, "C", 21, 500, 4, AF_INET6);
	expect(C, "C", 22, 1, 3, AF_INET6);
	expect(C, "C", 23, 9000, 4, AF_INET6);
	len = sizeof(tos);
	getsockopt(C, IPPROTO_IP, IP_TOS, &tos, &len);
	SCN_CHECK(tos == 0x20, "C: IP_TOS is %#x", tos);
	len = sizeof(v);
	getsockopt(O, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len);
	SCN_CHECK(v == 1, "O: IPV6_V6ONLY is off");
	/* A and B are still connected to each other */
	SCN_CHECK(send(B, "ping", 4, 0) == 4, "B: send: %s", strerror(errno));
	scn_msleep(20);
	SCN_CHECK(recv(A, buf, sizeof(buf), MSG_DONTWAIT) == 4 && !memcmp(buf, "ping", 4),
		  "A: no ping from B");
	SCN_CHECK(send(A, "pong", 4, 0) == 4, "A: send: %s", strerror(errno));
	scn_msleep(20);
	SCN_CHECK(recv(B, buf, sizeof(buf), MSG_DONTWAIT) == 4 && !memcmp(buf, "pong", 4),
		  "B: no pong from A");
}

/* A datagram with pattern k to C, over IPv4 (127.0.0.1) or IPv6 (::1). */
static void send_pattern(int fd, int k, int size, int family)
{
	static unsigned char buf[65536];
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int i;

	for (i = 0; i < size; i++)
		buf[i] = pat(k, i);
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port_of(&addr[2]));
		inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port_of(&addr[2]));
		inet_pton(AF_INET6, "::1", &a->sin6_addr);
		len = sizeof(*a);
	}
	if (sendto(fd, buf, size, 0, (struct sockaddr *)&ss, len) != size)
		scn_fail("sendto C: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct timeval tv = { 3, 0 };
	int i, big = 1 << 20, zero = 0, tos = 0x20, on = 1;
	char c;

	scn_init(argc, argv, 1);
	A = udp(AF_INET, "127.0.0.1");
	setsockopt(A, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	B = udp(AF_INET, "127.0.0.1");
	C = udp(AF_INET6, "::");
	D = udp(AF_INET, "127.0.0.1");
	E = udp(AF_INET6, "::1");
	O = udp(AF_INET6, NULL);
	setsockopt(O, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	setsockopt(C, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	setsockopt(C, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	name_of(A, &addr[0]);
	name_of(B, &addr[1]);
	name_of(C, &addr[2]);
	name_of(D, &addr[3]);
	name_of(E, &addr[4]);
	name_of(O, &addr[5]);
	if (connect(A, (struct sockaddr *)&addr[1], sizeof(struct sockaddr_in)) ||
	    connect(B, (struct sockaddr *)&addr[0], sizeof(struct sockaddr_in)))
		scn_fail("connect: %s", strerror(errno));
	for (i = 0; i < NA; i++) {
		static unsigned char buf[65536];
		int j;

		for (j = 0; j < sizes[i]; j++)
			buf[j] = pat(i, j);
		if (send(B, buf, sizes[i], 0) != sizes[i])
			scn_fail("send %d: %s", i, strerror(errno));
	}
	send_pattern(D, 20, 33, AF_INET);
	send_pattern(E, 21, 500, AF_INET6);
	send_pattern(D, 22, 1, AF_INET);
	send_pattern(E, 23, 9000, AF_INET6);
	/* a peek offset: peek one byte of the first datagram, offset moves to 1, back to 0 */
	setsockopt(A, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero));
	scn_msleep(50);
	if (recv(A, &c, 1, MSG_PEEK) != 1 || c != (char)pat(0, 0))
		scn_fail("peek failed");
	setsockopt(A, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero));
	scn_ready_then_wait();
	verify();
	scn_pass();
}
