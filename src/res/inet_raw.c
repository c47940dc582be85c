/*
 * Raw inet sockets (SOCK_RAW, any IP protocol, IPv4 and IPv6) and ICMP
 * ping sockets (SOCK_DGRAM with IPPROTO_ICMP or IPPROTO_ICMPV6, what an
 * unprivileged ping uses): the FILE_INET_RAW kind.
 *
 * Dump, from stasis's duplicate of the fd: family, type, protocol, the
 * bound address (and a ping socket's echo identifier, its "port"), the
 * connected peer, buffer sizes as set, and the socket options of the
 * table below that differ from a fresh socket of the same kind (IP_HDRINCL,
 * ICMP_FILTER, ICMPV6_FILTER, IPV6_CHECKSUM, TTL, TOS ...), so restore
 * sets exactly what the program set.  Refused by name: a socket of another
 * network namespace, a socket filter, a multicast option (the memberships
 * cannot be read back).  Packets waiting unread are the network's, not the
 * program's: they are dropped, with a warning naming the socket, as the
 * network may drop any packet (peeked only, so a failed or -R dump keeps
 * them).
 *
 * Restore, in the task that opens it: socket, IPV6_V6ONLY, options,
 * buffers, bind, connect, file flags.  A ping socket can only be created
 * by a group in net.ipv4.ping_group_range (the restorer's group: it is
 * still root's when the fds are built); the error says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inet.h"
#include "log.h"
#include "sk.h"
#include "util.h"

#ifndef SOL_RAW
#define SOL_RAW 255
#endif
#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36
#endif

#define F_RAW	 1	       /* raw sockets only */
#define F_ICMP4	 2	       /* raw IPv4 ICMP sockets only */
#define F_ICMP6	 4	       /* raw ICMPv6 sockets only */
#define F_REFUSE SK_OPT_REFUSE /* set: refuse the socket (multicast) */

static const struct sk_opt raw_opts[] = {
	{ SOL_SOCKET, SO_REUSEADDR, 0, "SO_REUSEADDR" },
	{ SOL_SOCKET, SO_BROADCAST, 0, "SO_BROADCAST" },
	{ SOL_SOCKET, SO_DONTROUTE, 0, "SO_DONTROUTE" },
	{ SOL_SOCKET, SO_PRIORITY, 0, "SO_PRIORITY" },
	{ SOL_SOCKET, SO_MARK, 0, "SO_MARK" },
	{ SOL_SOCKET, SO_RCVTIMEO, 0, "SO_RCVTIMEO" },
	{ SOL_SOCKET, SO_SNDTIMEO, 0, "SO_SNDTIMEO" },
	{ SOL_SOCKET, SO_BINDTODEVICE, 0, "SO_BINDTODEVICE" },
	{ SOL_SOCKET, SO_TIMESTAMP, 0, "SO_TIMESTAMP" },
	{ SOL_SOCKET, SO_TIMESTAMPNS, 0, "SO_TIMESTAMPNS" },
	{ SOL_SOCKET, SO_RCVLOWAT, 0, "SO_RCVLOWAT" },
	{ IPPROTO_IP, IP_TOS, 0, "IP_TOS" },
	{ IPPROTO_IP, IP_TTL, 0, "IP_TTL" },
	{ IPPROTO_IP, IP_HDRINCL, F_RAW, "IP_HDRINCL" },
	{ IPPROTO_IP, IP_RECVERR, 0, "IP_RECVERR" },
	{ IPPROTO_IP, IP_PKTINFO, 0, "IP_PKTINFO" },
	{ IPPROTO_IP, IP_RECVTTL, 0, "IP_RECVTTL" },
	{ IPPROTO_IP, IP_RECVTOS, 0, "IP_RECVTOS" },
	{ IPPROTO_IP, IP_MTU_DISCOVER, 0, "IP_MTU_DISCOVER" },
	{ IPPROTO_IP, IP_FREEBIND, 0, "IP_FREEBIND" },
	{ IPPROTO_IP, IP_TRANSPARENT, 0, "IP_TRANSPARENT" },
	{ IPPROTO_IP, IP_MULTICAST_TTL, F_REFUSE, "IP_MULTICAST_TTL" },
	{ IPPROTO_IP, IP_MULTICAST_LOOP, F_REFUSE, "IP_MULTICAST_LOOP" },
	{ IPPROTO_IP, IP_MULTICAST_IF, F_REFUSE, "IP_MULTICAST_IF" },
	{ SOL_RAW, ICMP_FILTER, F_ICMP4, "ICMP_FILTER" },
	{ IPPROTO_IPV6, IPV6_UNICAST_HOPS, 0, "IPV6_UNICAST_HOPS" },
	{ IPPROTO_IPV6, IPV6_TCLASS, 0, "IPV6_TCLASS" },
	{ IPPROTO_IPV6, IPV6_RECVERR, 0, "IPV6_RECVERR" },
	{ IPPROTO_IPV6, IPV6_RECVPKTINFO, 0, "IPV6_RECVPKTINFO" },
	{ IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 0, "IPV6_RECVHOPLIMIT" },
	{ IPPROTO_IPV6, IPV6_MTU_DISCOVER, 0, "IPV6_MTU_DISCOVER" },
	{ IPPROTO_IPV6, IPV6_CHECKSUM, F_RAW, "IPV6_CHECKSUM" },
	{ IPPROTO_IPV6, IPV6_HDRINCL, F_RAW, "IPV6_HDRINCL" },
	{ IPPROTO_IPV6, IPV6_MULTICAST_HOPS, F_REFUSE, "IPV6_MULTICAST_HOPS" },
	{ IPPROTO_IPV6, IPV6_MULTICAST_LOOP, F_REFUSE, "IPV6_MULTICAST_LOOP" },
	{ IPPROTO_IPV6, IPV6_MULTICAST_IF, F_REFUSE, "IPV6_MULTICAST_IF" },
	{ IPPROTO_ICMPV6, ICMP6_FILTER, F_ICMP6, "ICMP6_FILTER" },
};

static const char *kind_name(const InetRawEntry *re)
{
	if (re->type == SOCK_RAW)
		return re->family == AF_INET ? "raw IPv4" : "raw IPv6";
	return re->family == AF_INET ? "ICMP ping" : "ICMPv6 ping";
}

/* ------------------------------------------------------------- dump */

static bool is_ping(int type, int proto)
{
	return type == SOCK_DGRAM && (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6);
}

static bool raw_match(const struct fd_dump *d)
{
	const struct sk_kind *k;

	if (!S_ISSOCK(d->st.st_mode))
		return false;
	k = sk_kind(d);
	if (k->family != AF_INET && k->family != AF_INET6)
		return false;
	return k->type == SOCK_RAW || is_ping(k->type, k->proto);
}

static int refuse(const struct fd_dump *d, const InetRawEntry *re, const char *why)
{
	pr_err("pid %d fd %d: %s socket (protocol %u) %s\n", d->pid, d->fd, kind_name(re),
	       re->proto, why);
	return -1;
}

static void set_bytes(ProtobufCBinaryData *b, const void *p, size_t len)
{
	b->data = xmalloc(len ? len : 1);
	memcpy(b->data, p, len);
	b->len = len;
}

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* The local (peer false) or peer address, if it is set. */
static void read_addr(int fd, bool peer, InetRawEntry *re)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const void *a;
	size_t alen;
	uint16_t port;

	memset(&ss, 0, sizeof(ss));
	if (peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		 : getsockname(fd, (struct sockaddr *)&ss, &len))
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s = (void *)&ss;

		a = &s->sin_addr;
		alen = 4;
		port = ntohs(s->sin_port);
	} else {
		struct sockaddr_in6 *s = (void *)&ss;

		a = &s->sin6_addr;
		alen = 16;
		port = ntohs(s->sin6_port);
		if (!peer) {
			re->has_scope_id = true;
			re->scope_id = s->sin6_scope_id;
		}
	}
	/* a raw socket's "port" is its protocol; a ping socket's its identifier */
	if (re->type == SOCK_RAW)
		port = 0;
	if (peer) {
		set_bytes(&re->dst_addr, a, alen);
		re->has_dst_addr = true;
	} else if (port || !all_zero(a, alen)) {
		set_bytes(&re->src_addr, a, alen);
		re->has_src_addr = true;
		re->has_src_port = port != 0;
		re->src_port = port;
	}
}

static bool opt_applies(const struct sk_opt *o, const void *arg)
{
	const InetRawEntry *re = arg;

	if ((o->flags & F_RAW) && re->type != SOCK_RAW)
		return false;
	if ((o->flags & F_ICMP4) && !(re->type == SOCK_RAW && re->proto == IPPROTO_ICMP))
		return false;
	if ((o->flags & F_ICMP6) && !(re->type == SOCK_RAW && re->proto == IPPROTO_ICMPV6))
		return false;
	if (re->family == AF_INET && (o->level == IPPROTO_IPV6 || o->level == IPPROTO_ICMPV6))
		return false;
	return !(re->family == AF_INET6 && (o->level == IPPROTO_IP || o->level == SOL_RAW));
}

static void add_opt(void *arg, const struct sk_opt_diff *diff)
{
	InetRawEntry *re = arg;
	InetSkOpt *e = xmalloc(sizeof(*e));

	inet_sk_opt__init(e);
	e->level = diff->o->level;
	e->name = diff->o->name;
	set_bytes(&e->val, diff->val, diff->len);
	re->opts = xrealloc(re->opts, (re->n_opts + 1) * sizeof(*re->opts));
	re->opts[re->n_opts++] = e;
}

/* The options of the table that differ from a fresh socket's. */
static int dump_opts(const struct fd_dump *d, InetRawEntry *re)
{
	const struct sk_opt *bad = NULL;
	char why[160];
	int r = sk_diff_opts(d->lfd, sk_kind(d), raw_opts, ARRAY_SIZE(raw_opts), opt_applies,
			     add_opt, re, &bad);

	if (r < 0) {
		snprintf(
		    why, sizeof(why), "cannot be compared with a fresh one: %s%s", strerror(errno),
		    re->type == SOCK_DGRAM ? " (is our group in net.ipv4.ping_group_range?)" : "");
		return refuse(d, re, why);
	}
	if (r > 0) {
		snprintf(why, sizeof(why),
			 "has %s set: multicast is not supported (its memberships cannot be read "
			 "back)",
			 bad->label);
		return refuse(d, re, why);
	}
	return 0;
}

static int raw_dump(const struct fd_dump *d, FileEntry *fe)
{
	InetRawEntry *re;
	socklen_t flen = 0;
	char byte;

	re = fe->inet_raw = xmalloc(sizeof(*re));
	inet_raw_entry__init(re);
	re->family = sk_kind(d)->family;
	re->type = sk_kind(d)->type;
	re->proto = sk_kind(d)->proto;
	if (!sk_in_our_netns(d->lfd))
		return refuse(d, re,
			      "of another network namespace; not supported (network namespaces "
			      "are not saved yet)");
	if (getsockopt(d->lfd, SOL_SOCKET, SO_GET_FILTER, NULL, &flen) || flen)
		return refuse(d, re, "has a socket filter attached; not supported");
	read_addr(d->lfd, false, re);
	read_addr(d->lfd, true, re);
	if (re->family == AF_INET6) {
		re->has_v6only = true;
		re->v6only = sk_get_int(d->lfd, IPPROTO_IPV6, IPV6_V6ONLY) == 1;
	}
	re->has_rcvbuf = re->has_sndbuf = true;
	re->rcvbuf = sk_get_int(d->lfd, SOL_SOCKET, SO_RCVBUF) / 2;
	re->sndbuf = sk_get_int(d->lfd, SOL_SOCKET, SO_SNDBUF) / 2;
	if (dump_opts(d, re))
		return -1;
	if (recv(d->lfd, &byte, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) >= 0)
		pr_warn("pid %d fd %d: packets waiting in its %s socket are not saved (dropped, "
			"as the network may drop any packet)\n",
			d->pid, d->fd, kind_name(re));
	return 0;
}

/* ---------------------------------------------------------- restore */

static int build(int fd, const InetRawEntry *re, const char **step)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i;
	int v = re->v6only;

	/* only when set: the kernel refuses it on a raw socket (bound to its protocol) */
	*step = "setting IPV6_V6ONLY on it";
	if (re->family == AF_INET6 && v && sk_set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v))
		return -1;
	*step = "setting its options";
	for (i = 0; i < re->n_opts; i++)
		if (setsockopt(fd, re->opts[i]->level, re->opts[i]->name, re->opts[i]->val.data,
			       re->opts[i]->val.len))
			return -1;
	*step = "setting its buffer sizes";
	if ((re->has_rcvbuf && sk_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, re->rcvbuf)) ||
	    (re->has_sndbuf && sk_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, re->sndbuf)))
		return -1;
	*step = "binding it";
	len = inet_make_addr(&ss, re->family, &re->src_addr, re->src_port, re->scope_id);
	if (re->has_src_addr && bind(fd, (struct sockaddr *)&ss, len))
		return -1;
	*step = "connecting it";
	len = inet_make_addr(&ss, re->family, &re->dst_addr, 0, 0);
	return re->has_dst_addr && connect(fd, (struct sockaddr *)&ss, len) ? -1 : 0;
}

static int raw_open(struct rst_ctx *c, const FileEntry *fe)
{
	const InetRawEntry *re = fe->inet_raw;
	const char *step = "creating it";
	char addr[64] = "";
	int fd, err;

	if (!re || (re->family != AF_INET && re->family != AF_INET6)) {
		pr_err("pid %u: raw socket entry %u lacks its state\n", c->t->te->pid, fe->id);
		return -1;
	}
	fd = socket(re->family, re->type | SOCK_CLOEXEC, re->proto);
	if (fd >= 0 && !build(fd, re, &step) &&
	    (step = "setting its file flags",
	     !fcntl(fd, F_SETFL, fe->flags & (O_NONBLOCK | O_ASYNC))))
		return fd;
	err = errno;
	if (re->has_src_addr)
		inet_addr_str(&re->src_addr, re->src_port, addr, sizeof(addr));
	pr_err("pid %u: %s socket (protocol %u)%s%s: %s failed: %s%s\n", c->t->te->pid,
	       kind_name(re), re->proto, *addr ? " bound to " : "", addr, step, strerror(err),
	       re->type == SOCK_DGRAM && fd < 0
		   ? " (ping sockets need the group in net.ipv4.ping_group_range)"
		   : "");
	if (fd >= 0)
		close(fd);
	return -1;
}

const struct fd_ops inet_raw_fd_ops = {
	.type = FILE_TYPE__FILE_INET_RAW,
	.kind = FILE_ENTRY__KIND_INET_RAW,
	.name = "raw inet socket",
	.match = raw_match,
	.dump = raw_dump,
	.open = raw_open,
};
