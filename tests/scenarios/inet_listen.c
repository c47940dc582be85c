// SPDX-License-Identifier: MIT
/*
 * inet_listen - TCP sockets that are not connected, with options:
 *   - L4: IPv4 listener on 127.0.0.1 (ephemeral port), backlog 7,
 *     non-blocking, with SO_REUSEADDR, SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT,
 *     SO_LINGER, SO_RCVBUF, SO_SNDBUF, SO_RCVTIMEO, SO_SNDTIMEO,
 *     SO_BINDTODEVICE lo, SO_MARK, SO_PRIORITY, IP_TOS, IP_TTL, IP_FREEBIND,
 *     IP_TRANSPARENT, TCP_NODELAY, TCP_USER_TIMEOUT, TCP_CONGESTION reno,
 *     TCP_DEFER_ACCEPT, TCP_FASTOPEN, TCP_NOTSENT_LOWAT, TCP_LINGER2,
 *     TCP_SYNCNT, TCP_MAXSEG;
 *   - B also has TCP_CORK set;
 *   - L6: IPv6 listener on [::] (dual stack, IPV6_V6ONLY off), SO_REUSEPORT;
 *   - L6only: IPv6 listener on [::1] with IPV6_V6ONLY;
 *   - B: TCP socket bound to 127.0.0.1 (not listening); U: unbound socket.
 * Every option's value is read back at start (getsockopt) and kept.
 *
 * Check: every socket has the same local address, state and options as
 * at start (O_NONBLOCK too); a client in this process connects to each
 * listener (to L6 also over IPv4, as a v4-mapped address), sends a line,
 * the listener accepts and answers; L6only refuses IPv4.  U can still be
 * bound and connected.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "scenario.h"

struct opt {
	int level, name;
	const char *label;
};

static const struct opt opts[] = {
	{ SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR" },
	{ SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT" },
	{ SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE" },
	{ SOL_SOCKET, SO_LINGER, "SO_LINGER" },
	{ SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF" },
	{ SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF" },
	{ SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO" },
	{ SOL_SOCKET, SO_SNDTIMEO, "SO_SNDTIMEO" },
	{ SOL_SOCKET, SO_BINDTODEVICE, "SO_BINDTODEVICE" },
	{ IPPROTO_IP, IP_TRANSPARENT, "IP_TRANSPARENT" },
	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT" },
	{ IPPROTO_TCP, TCP_LINGER2, "TCP_LINGER2" },
	{ IPPROTO_TCP, TCP_SYNCNT, "TCP_SYNCNT" },
	{ IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG" },
	{ IPPROTO_TCP, TCP_CORK, "TCP_CORK" },
	{ SOL_SOCKET, SO_MARK, "SO_MARK" },
	{ SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY" },
	{ IPPROTO_IP, IP_TOS, "IP_TOS" },
	{ IPPROTO_IP, IP_TTL, "IP_TTL" },
	{ IPPROTO_IP, IP_FREEBIND, "IP_FREEBIND" },
	{ IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY" },
	{ IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE" },
	{ IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL" },
	{ IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT" },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT" },
	{ IPPROTO_TCP, TCP_CONGESTION, "TCP_CONGESTION" },
	{ IPPROTO_TCP, TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT" },
	{ IPPROTO_TCP, TCP_FASTOPEN, "TCP_FASTOPEN" },
};

#define NOPT (sizeof(opts) / sizeof(opts[0]))
#define NSK  5

static struct sk {
	const char *name;
	int fd, family, flags;
	struct sockaddr_storage addr;
	socklen_t alen;
	unsigned char val[NOPT][64];
	socklen_t vlen[NOPT];
	int v6only;
	unsigned int backlog; /* listeners: TCP_INFO's tcpi_sacked */
} sk[NSK];

static void seti(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)))
		scn_fail("setsockopt %d:%d: %s", level, name, strerror(errno));
}

static void record(struct sk *s)
{
	size_t i;

	for (i = 0; i < NOPT; i++) {
		s->vlen[i] = sizeof(s->val[i]);
		memset(s->val[i], 0, sizeof(s->val[i]));
		if (getsockopt(s->fd, opts[i].level, opts[i].name, s->val[i], &s->vlen[i]))
			s->vlen[i] = 0;
	}
	s->alen = sizeof(s->addr);
	getsockname(s->fd, (struct sockaddr *)&s->addr, &s->alen);
	s->flags = fcntl(s->fd, F_GETFL);
	{
		struct tcp_info ti;
		socklen_t l = sizeof(ti);

		memset(&ti, 0, sizeof(ti));
		getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &ti, &l);
		s->backlog = ti.tcpi_state == TCP_LISTEN ? ti.tcpi_sacked : 0;
	}
	if (s->family == AF_INET6) {
		socklen_t l = sizeof(s->v6only);

		getsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &s->v6only, &l);
	}
}

static void compare(const struct sk *s)
{
	struct sk now = *s;
	size_t i;

	record(&now);
	SCN_CHECK(now.alen == s->alen && !memcmp(&now.addr, &s->addr, s->alen),
		  "%s: local address changed", s->name);
	SCN_CHECK(now.flags == s->flags, "%s: file flags 0%o, expected 0%o", s->name, now.flags,
		  s->flags);
	SCN_CHECK(now.backlog == s->backlog, "%s: backlog %u, expected %u", s->name, now.backlog,
		  s->backlog);
	SCN_CHECK(now.v6only == s->v6only, "%s: IPV6_V6ONLY is %d", s->name, now.v6only);
	for (i = 0; i < NOPT; i++)
		SCN_CHECK(now.vlen[i] == s->vlen[i] && !memcmp(now.val[i], s->val[i], s->vlen[i]),
			  "%s: %s changed (%d, was %d)", s->name, opts[i].label, *(int *)now.val[i],
			  *(int *)s->val[i]);
}

static int make(struct sk *s, const char *name, int family)
{
	s->name = name;
	s->family = family;
	s->fd = socket(family, SOCK_STREAM, 0);
	if (s->fd < 0)
		scn_fail("socket: %s", strerror(errno));
	return s->fd;
}

static void bind_to(struct sk *s, const char *addr, int listen_q)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;

	if (s->family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;

		a->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &a->sin_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;

		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &a->sin6_addr);
		len = sizeof(*a);
	}
	if (bind(s->fd, (struct sockaddr *)&ss, len))
		scn_fail("%s: bind: %s", s->name, strerror(errno));
	if (listen_q && listen(s->fd, listen_q))
		scn_fail("%s: listen: %s", s->name, strerror(errno));
}

static void set_l4(int fd)
{
	struct linger lg = { 1, 3 };
	struct timeval tv = { 2, 500000 };

	seti(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	seti(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	seti(fd, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	seti(fd, IPPROTO_TCP, TCP_KEEPINTVL, 11);
	seti(fd, IPPROTO_TCP, TCP_KEEPCNT, 4);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	seti(fd, SOL_SOCKET, SO_RCVBUF, 50000);
	seti(fd, SOL_SOCKET, SO_SNDBUF, 70000);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = 7;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3))
		scn_fail("SO_BINDTODEVICE: %s", strerror(errno));
	seti(fd, IPPROTO_IP, IP_TRANSPARENT, 1);
	seti(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 65536);
	seti(fd, IPPROTO_TCP, TCP_LINGER2, 17);
	seti(fd, IPPROTO_TCP, TCP_SYNCNT, 3);
	seti(fd, IPPROTO_TCP, TCP_MAXSEG, 1400);
	seti(fd, SOL_SOCKET, SO_MARK, 42);
	seti(fd, SOL_SOCKET, SO_PRIORITY, 3);
	seti(fd, IPPROTO_IP, IP_TOS, 0x10);
	seti(fd, IPPROTO_IP, IP_TTL, 33);
	seti(fd, IPPROTO_IP, IP_FREEBIND, 1);
	seti(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	seti(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 12345);
	if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4))
		scn_fail("TCP_CONGESTION: %s", strerror(errno));
	seti(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, 5);
	seti(fd, IPPROTO_TCP, TCP_FASTOPEN, 5);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Connect to s (by addr: family af), send a line, accept, answer, read it. */
static void exchange(const struct sk *s, int af, const char *addr)
{
	struct sockaddr_storage ss = { 0 };
	struct pollfd p = { s->fd, POLLIN, 0 };
	int c = socket(af, SOCK_STREAM, 0), a;
	char buf[32];
	socklen_t len;

	if (af == AF_INET) {
		struct sockaddr_in *i = (void *)&ss;

		i->sin_family = AF_INET;
		i->sin_port = ((struct sockaddr_in *)&s->addr)->sin_port;
		if (s->family == AF_INET6)
			i->sin_port = ((struct sockaddr_in6 *)&s->addr)->sin6_port;
		inet_pton(AF_INET, addr, &i->sin_addr);
		len = sizeof(*i);
	} else {
		struct sockaddr_in6 *i = (void *)&ss;

		i->sin6_family = AF_INET6;
		i->sin6_port = ((struct sockaddr_in6 *)&s->addr)->sin6_port;
		inet_pton(AF_INET6, addr, &i->sin6_addr);
		len = sizeof(*i);
	}
	SCN_CHECK(c >= 0 && !connect(c, (struct sockaddr *)&ss, len), "%s: connect via %s: %s",
		  s->name, addr, strerror(errno));
	SCN_CHECK(write(c, "hi\n", 3) == 3, "%s: write failed", s->name);
	SCN_CHECK(poll(&p, 1, 5000) == 1, "%s: no connection to accept", s->name);
	a = accept(s->fd, NULL, NULL);
	SCN_CHECK(a >= 0, "%s: accept: %s", s->name, strerror(errno));
	SCN_CHECK(read(a, buf, sizeof(buf)) == 3 && !memcmp(buf, "hi\n", 3), "%s: bad request",
		  s->name);
	SCN_CHECK(write(a, "ok\n", 3) == 3, "%s: answer failed", s->name);
	SCN_CHECK(read(c, buf, sizeof(buf)) == 3 && !memcmp(buf, "ok\n", 3), "%s: bad answer",
		  s->name);
	close(a);
	close(c);
}

static void verify(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int i, c;

	for (i = 0; i < NSK; i++)
		compare(&sk[i]);
	exchange(&sk[0], AF_INET, "127.0.0.1");
	exchange(&sk[1], AF_INET6, "::1");
	exchange(&sk[1], AF_INET, "127.0.0.1");
	exchange(&sk[2], AF_INET6, "::1");
	/* L6only takes no IPv4 */
	c = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = ((struct sockaddr_in6 *)&sk[2].addr)->sin6_port;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	SCN_CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == ECONNREFUSED,
		  "L6only accepted an IPv4 connection");
	close(c);
	/* U is a fresh socket still */
	a.sin_port = 0;
	SCN_CHECK(!bind(sk[4].fd, (struct sockaddr *)&a, sizeof(a)), "U: bind: %s",
		  strerror(errno));
}

int main(int argc, char **argv)
{
	int i;

	scn_init(argc, argv, 1);
	set_l4(make(&sk[0], "L4", AF_INET));
	bind_to(&sk[0], "127.0.0.1", 7);
	seti(make(&sk[1], "L6", AF_INET6), SOL_SOCKET, SO_REUSEPORT, 1);
	seti(sk[1].fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	bind_to(&sk[1], "::", 16);
	seti(make(&sk[2], "L6only", AF_INET6), IPPROTO_IPV6, IPV6_V6ONLY, 1);
	bind_to(&sk[2], "::1", 3);
	seti(make(&sk[3], "B", AF_INET), IPPROTO_TCP, TCP_CORK, 1);
	bind_to(&sk[3], "127.0.0.1", 0);
	make(&sk[4], "U", AF_INET);
	for (i = 0; i < NSK; i++)
		record(&sk[i]);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
