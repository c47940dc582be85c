// SPDX-License-Identifier: MIT
/*
 * inet_tcp - established TCP connections with both ends in this process
 * (dumped with --tcp-established), data in flight both ways:
 *   - L: listener on 127.0.0.1, still listening;
 *   - C connected to L, S accepted from it.  C has a small receive buffer
 *     (8 KiB, locked); S wrote until its send buffer was full, so most of
 *     it waits in S's send queue (partly never sent: C's window is shut)
 *     and some in C's receive queue, unread.  C wrote 100000 bytes to S,
 *     S read the first 30000: 70000 wait in S's receive queue.  S has
 *     TCP_NODELAY, SO_KEEPALIVE and TCP_KEEPIDLE 99;
 *   - C6/S6: the same over ::1, "hello6" and "world6" waiting unread;
 *   - M/SM: an IPv6 socket M connected to L over IPv4 (::ffff:127.0.0.1,
 *     a v4-mapped connection), SM accepted by L; "mapped" waits in SM.
 *
 * Check: C reads everything S wrote, in order; S reads C's remaining
 * 70000 bytes; both ways go on ("more" and "back"); C6 and S6 read their
 * lines; SM reads "mapped" and M still has its v4-mapped addresses;
 * S's options are as set; L accepts a new connection.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include "scenario.h"

#define CS   100000
#define READ 30000

static int L, C, S, L6, C6, S6, M, SM;
static size_t sent; /* bytes S wrote */

static unsigned char pat(int k, size_t i)
{
	return (unsigned char)(k * 13 + i * 7 + (i >> 9));
}

static int listener(int family, struct sockaddr_storage *ss, socklen_t *len)
{
	int fd = socket(family, SOCK_STREAM, 0);

	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET) {
		inet_pton(AF_INET, "127.0.0.1", &((struct sockaddr_in *)ss)->sin_addr);
		*len = sizeof(struct sockaddr_in);
	} else {
		inet_pton(AF_INET6, "::1", &((struct sockaddr_in6 *)ss)->sin6_addr);
		*len = sizeof(struct sockaddr_in6);
	}
	if (fd < 0 || bind(fd, (struct sockaddr *)ss, *len) || listen(fd, 8) ||
	    getsockname(fd, (struct sockaddr *)ss, len))
		scn_fail("listener: %s", strerror(errno));
	return fd;
}

static void pair(int family, int *l, int *c, int *s, int rcvbuf)
{
	struct sockaddr_storage ss;
	socklen_t len;

	*l = listener(family, &ss, &len);
	*c = socket(family, SOCK_STREAM, 0);
	if (rcvbuf)
		setsockopt(*c, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (*c < 0 || connect(*c, (struct sockaddr *)&ss, len))
		scn_fail("connect: %s", strerror(errno));
	*s = accept(*l, NULL, NULL);
	if (*s < 0)
		scn_fail("accept: %s", strerror(errno));
}

/* Read exactly len bytes of pattern k (from offset off) within 10 s. */
static void read_pattern(int fd, const char *who, int k, size_t off, size_t len)
{
	static unsigned char buf[65536];
	size_t got = 0, i;

	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		size_t want = len - got < sizeof(buf) ? len - got : sizeof(buf);
		ssize_t n;

		SCN_CHECK(poll(&p, 1, 10000) == 1, "%s: stuck after %zu of %zu bytes", who, got,
			  len);
		n = recv(fd, buf, want, MSG_DONTWAIT);
		SCN_CHECK(n > 0, "%s: read failed after %zu bytes: %s", who, got,
			  n ? strerror(errno) : "end of stream");
		for (i = 0; i < (size_t)n; i++)
			SCN_CHECK(buf[i] == pat(k, off + got + i), "%s: byte %zu differs", who,
				  off + got + i);
		got += n;
	}
}

static void expect_line(int fd, const char *who, const char *line)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char buf[64];
	ssize_t n;

	SCN_CHECK(poll(&p, 1, 10000) == 1, "%s: nothing to read", who);
	n = recv(fd, buf, sizeof(buf), 0);
	SCN_CHECK(n == (ssize_t)strlen(line) && !memcmp(buf, line, n), "%s: got %zd bytes", who, n);
}

static int geti(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	getsockopt(fd, level, name, &v, &len);
	return v;
}

static void verify(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int c, a;

	SCN_CHECK(geti(S, IPPROTO_TCP, TCP_NODELAY) == 1, "S: TCP_NODELAY lost");
	SCN_CHECK(geti(S, SOL_SOCKET, SO_KEEPALIVE) == 1, "S: SO_KEEPALIVE lost");
	SCN_CHECK(geti(S, IPPROTO_TCP, TCP_KEEPIDLE) == 99, "S: TCP_KEEPIDLE lost");
	SCN_CHECK(geti(C, SOL_SOCKET, SO_RCVBUF) == 16384, "C: SO_RCVBUF is %d",
		  geti(C, SOL_SOCKET, SO_RCVBUF));
	read_pattern(C, "C", 1, 0, sent);
	read_pattern(S, "S", 2, READ, CS - READ);
	SCN_CHECK(send(S, "more", 4, 0) == 4, "S: send: %s", strerror(errno));
	expect_line(C, "C", "more");
	SCN_CHECK(send(C, "back", 4, 0) == 4, "C: send: %s", strerror(errno));
	expect_line(S, "S", "back");
	expect_line(S6, "S6", "hello6");
	expect_line(C6, "C6", "world6");
	expect_line(SM, "SM", "mapped");
	{
		struct sockaddr_in6 m;
		socklen_t ml = sizeof(m);

		SCN_CHECK(!getpeername(M, (struct sockaddr *)&m, &ml) &&
			      IN6_IS_ADDR_V4MAPPED(&m.sin6_addr),
			  "M: not connected to a v4-mapped address");
	}
	getsockname(L, (struct sockaddr *)&ss, &len);
	c = socket(AF_INET, SOCK_STREAM, 0);
	SCN_CHECK(!connect(c, (struct sockaddr *)&ss, len), "L: connect: %s", strerror(errno));
	a = accept(L, NULL, NULL);
	SCN_CHECK(a >= 0, "L: accept: %s", strerror(errno));
	close(a);
	close(c);
}

static void fill(void)
{
	static unsigned char buf[65536];
	size_t i, done = 0;
	int one = 1, idle = 99, outq = 0, nsd = 0;

	setsockopt(S, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(S, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(S, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	/* C -> S: 100000 bytes, S reads 30000 */
	while (done < CS) {
		size_t n = CS - done < sizeof(buf) ? CS - done : sizeof(buf);

		for (i = 0; i < n; i++)
			buf[i] = pat(2, done + i);
		if (write(C, buf, n) != (ssize_t)n)
			scn_fail("C: write: %s", strerror(errno));
		done += n;
	}
	scn_msleep(50);
	done = 0;
	while (done < READ) {
		ssize_t n = read(S, buf, READ - done);

		if (n <= 0)
			scn_fail("S: read: %s", strerror(errno));
		done += n;
	}
	/* S -> C until S's send buffer is full */
	for (;;) {
		ssize_t n;

		for (i = 0; i < 4096; i++)
			buf[i] = pat(1, sent + i);
		n = send(S, buf, 4096, MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN) {
			scn_msleep(100); /* let the window close */
			n = send(S, buf, 4096, MSG_DONTWAIT);
			if (n < 0 && errno == EAGAIN)
				break;
		}
		if (n < 0)
			scn_fail("S: send: %s", strerror(errno));
		sent += n;
	}
	ioctl(S, SIOCOUTQ, &outq);
	ioctl(S, SIOCOUTQNSD, &nsd);
	scn_log("S wrote %zu bytes: %d in its send queue, %d of them never sent", sent, outq, nsd);
}

int main(int argc, char **argv)
{
	scn_init(argc, argv, 1);
	pair(AF_INET, &L, &C, &S, 8192);
	pair(AF_INET6, &L6, &C6, &S6, 0);
	fill();
	{
		struct sockaddr_in l;
		struct sockaddr_in6 m = { .sin6_family = AF_INET6 };
		socklen_t ll = sizeof(l);

		getsockname(L, (struct sockaddr *)&l, &ll);
		m.sin6_port = l.sin_port;
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &m.sin6_addr);
		M = socket(AF_INET6, SOCK_STREAM, 0);
		if (M < 0 || connect(M, (struct sockaddr *)&m, sizeof(m)))
			scn_fail("mapped connect: %s", strerror(errno));
		SM = accept(L, NULL, NULL);
		if (SM < 0 || send(M, "mapped", 6, 0) != 6)
			scn_fail("mapped: %s", strerror(errno));
	}
	if (send(C6, "hello6", 6, 0) != 6 || send(S6, "world6", 6, 0) != 6)
		scn_fail("send6: %s", strerror(errno));
	scn_msleep(20);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
