/*
 * Inet sockets: TCP and UDP over IPv4 and IPv6, and the refusal of the
 * other inet sockets (SCTP, UDP-Lite, MPTCP; raw and ping sockets are
 * inet_raw.c's).
 *
 * Dump: everything is read from stasis's duplicate of the fd: family,
 * type and protocol (SO_DOMAIN, SO_TYPE, SO_PROTOCOL), the local and peer
 * addresses, the TCP state and, for a listener, its backlog and accept
 * queue (TCP_INFO reports both for listeners), and the socket options
 * that change behaviour: each one of the table below is compared with a
 * fresh socket of the same kind and saved if it differs, so restore sets
 * exactly what the program had set.  Buffer sizes are saved as set
 * (the kernel's value is twice the one asked for) with their lock bits
 * (SO_BUF_LOCK): a size the kernel tunes by itself stays tunable.  UDP
 * queues are in udp.c, established connections in tcp.c.
 *
 * Restore: all inet sockets of the image form one group, built by the
 * task above all their users, in an order that lets every step succeed:
 * create and set options (before bind, so SO_REUSEADDR, IP_FREEBIND,
 * IPV6_V6ONLY, SO_BINDTODEVICE apply), bind listeners and unconnected
 * sockets, listen, refill UDP queues (before connect: a queued datagram
 * may come from another sender), connect UDP, rebuild connections in
 * repair mode (their ports may be a listener's), and only when every
 * socket exists take them out of repair mode: a connection between two
 * sockets of the tree never sees a packet for a socket not yet there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "inet.h"
#include "log.h"
#include "res.h"
#include "sk.h"
#include "util.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

#define F_TCP	 1	       /* TCP sockets only */
#define F_UDP	 2	       /* UDP sockets only */
#define F_NOEST	 4	       /* not for established connections (repair sets it) */
#define F_REFUSE SK_OPT_REFUSE /* set: refuse the socket (multicast) */

static const struct sk_opt sk_opts[] = {
	{ SOL_SOCKET, SO_REUSEADDR, 0, "SO_REUSEADDR" },
	{ SOL_SOCKET, SO_REUSEPORT, 0, "SO_REUSEPORT" },
	{ SOL_SOCKET, SO_KEEPALIVE, 0, "SO_KEEPALIVE" },
	{ SOL_SOCKET, SO_LINGER, 0, "SO_LINGER" },
	{ SOL_SOCKET, SO_RCVTIMEO, 0, "SO_RCVTIMEO" },
	{ SOL_SOCKET, SO_SNDTIMEO, 0, "SO_SNDTIMEO" },
	{ SOL_SOCKET, SO_BINDTODEVICE, 0, "SO_BINDTODEVICE" },
	{ SOL_SOCKET, SO_MARK, 0, "SO_MARK" },
	{ SOL_SOCKET, SO_PRIORITY, 0, "SO_PRIORITY" },
	{ SOL_SOCKET, SO_BROADCAST, 0, "SO_BROADCAST" },
	{ SOL_SOCKET, SO_OOBINLINE, 0, "SO_OOBINLINE" },
	{ SOL_SOCKET, SO_RCVLOWAT, 0, "SO_RCVLOWAT" },
	{ SOL_SOCKET, SO_DONTROUTE, 0, "SO_DONTROUTE" },
	{ SOL_SOCKET, SO_TIMESTAMP, 0, "SO_TIMESTAMP" },
	{ SOL_SOCKET, SO_TIMESTAMPNS, 0, "SO_TIMESTAMPNS" },
	{ SOL_SOCKET, SO_PEEK_OFF, 0, "SO_PEEK_OFF" },
	{ SOL_SOCKET, SO_NO_CHECK, F_UDP, "SO_NO_CHECK" },
	{ IPPROTO_IP, IP_TOS, 0, "IP_TOS" },
	{ IPPROTO_IP, IP_TTL, 0, "IP_TTL" },
	{ IPPROTO_IP, IP_FREEBIND, 0, "IP_FREEBIND" },
	{ IPPROTO_IP, IP_TRANSPARENT, 0, "IP_TRANSPARENT" },
	{ IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 0, "IP_BIND_ADDRESS_NO_PORT" },
	{ IPPROTO_IP, IP_MTU_DISCOVER, 0, "IP_MTU_DISCOVER" },
	{ IPPROTO_IP, IP_RECVERR, 0, "IP_RECVERR" },
	{ IPPROTO_IP, IP_PKTINFO, 0, "IP_PKTINFO" },
	{ IPPROTO_IP, IP_RECVTOS, 0, "IP_RECVTOS" },
	{ IPPROTO_IP, IP_RECVTTL, 0, "IP_RECVTTL" },
	{ IPPROTO_IP, IP_MULTICAST_TTL, F_UDP | F_REFUSE, "IP_MULTICAST_TTL" },
	{ IPPROTO_IP, IP_MULTICAST_LOOP, F_UDP | F_REFUSE, "IP_MULTICAST_LOOP" },
	{ IPPROTO_IP, IP_MULTICAST_IF, F_UDP | F_REFUSE, "IP_MULTICAST_IF" },
	{ IPPROTO_IPV6, IPV6_TCLASS, 0, "IPV6_TCLASS" },
	{ IPPROTO_IPV6, IPV6_UNICAST_HOPS, 0, "IPV6_UNICAST_HOPS" },
	{ IPPROTO_IPV6, IPV6_MTU_DISCOVER, 0, "IPV6_MTU_DISCOVER" },
	{ IPPROTO_IPV6, IPV6_RECVERR, 0, "IPV6_RECVERR" },
	{ IPPROTO_IPV6, IPV6_RECVPKTINFO, 0, "IPV6_RECVPKTINFO" },
	{ IPPROTO_IPV6, IPV6_FREEBIND, 0, "IPV6_FREEBIND" },
	{ IPPROTO_IPV6, IPV6_TRANSPARENT, 0, "IPV6_TRANSPARENT" },
	{ IPPROTO_IPV6, IPV6_MULTICAST_HOPS, F_UDP | F_REFUSE, "IPV6_MULTICAST_HOPS" },
	{ IPPROTO_IPV6, IPV6_MULTICAST_LOOP, F_UDP | F_REFUSE, "IPV6_MULTICAST_LOOP" },
	{ IPPROTO_IPV6, IPV6_MULTICAST_IF, F_UDP | F_REFUSE, "IPV6_MULTICAST_IF" },
	{ IPPROTO_TCP, TCP_NODELAY, F_TCP, "TCP_NODELAY" },
	{ IPPROTO_TCP, TCP_CORK, F_TCP, "TCP_CORK" },
	{ IPPROTO_TCP, TCP_KEEPIDLE, F_TCP, "TCP_KEEPIDLE" },
	{ IPPROTO_TCP, TCP_KEEPINTVL, F_TCP, "TCP_KEEPINTVL" },
	{ IPPROTO_TCP, TCP_KEEPCNT, F_TCP, "TCP_KEEPCNT" },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, F_TCP, "TCP_USER_TIMEOUT" },
	{ IPPROTO_TCP, TCP_CONGESTION, F_TCP, "TCP_CONGESTION" },
	{ IPPROTO_TCP, TCP_DEFER_ACCEPT, F_TCP, "TCP_DEFER_ACCEPT" },
	{ IPPROTO_TCP, TCP_FASTOPEN, F_TCP | F_NOEST, "TCP_FASTOPEN" },
	{ IPPROTO_TCP, TCP_FASTOPEN_CONNECT, F_TCP | F_NOEST, "TCP_FASTOPEN_CONNECT" },
	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT, F_TCP, "TCP_NOTSENT_LOWAT" },
	{ IPPROTO_TCP, TCP_LINGER2, F_TCP, "TCP_LINGER2" },
	{ IPPROTO_TCP, TCP_SYNCNT, F_TCP, "TCP_SYNCNT" },
	{ IPPROTO_TCP, TCP_MAXSEG, F_TCP | F_NOEST, "TCP_MAXSEG" },
	{ IPPROTO_UDP, UDP_SEGMENT, F_UDP, "UDP_SEGMENT" },
	{ IPPROTO_UDP, UDP_GRO, F_UDP, "UDP_GRO" },
};

/* ------------------------------------------------------------ names */

static const char *family_name(int f)
{
	switch (f) {
	case AF_INET:
		return "AF_INET";
	case AF_INET6:
		return "AF_INET6";
	case AF_NETLINK:
		return "AF_NETLINK";
	case AF_PACKET:
		return "AF_PACKET";
	case AF_VSOCK:
		return "AF_VSOCK";
	case AF_ALG:
		return "AF_ALG";
	case AF_BLUETOOTH:
		return "AF_BLUETOOTH";
	case AF_XDP:
		return "AF_XDP";
	}
	return "unknown family";
}

static const char *type_name(int t)
{
	switch (t) {
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "datagram";
	case SOCK_RAW:
		return "raw";
	case SOCK_SEQPACKET:
		return "seqpacket";
	}
	return "unknown type";
}

const char *tcp_state_name(uint32_t state)
{
	static const char *const n[] = { "?",	       "ESTABLISHED", "SYN_SENT",  "SYN_RECV",
					 "FIN_WAIT1",  "FIN_WAIT2",   "TIME_WAIT", "CLOSE",
					 "CLOSE_WAIT", "LAST_ACK",    "LISTEN",	   "CLOSING" };

	return state < ARRAY_SIZE(n) ? n[state] : "?";
}

const char *inet_addr_str(const ProtobufCBinaryData *addr, uint32_t port, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (addr->len == 4 || addr->len == 16)
		inet_ntop(addr->len == 4 ? AF_INET : AF_INET6, addr->data, a, sizeof(a));
	snprintf(buf, size, addr->len == 16 ? "[%s]:%u" : "%s:%u", a, port);
	return buf;
}

const char *inet_sk_str(const InetSkEntry *ie, char *buf, size_t size)
{
	char s[64], d[64];

	if (!ie->has_src_addr)
		snprintf(s, sizeof(s), "(unbound)");
	else
		inet_addr_str(&ie->src_addr, ie->src_port, s, sizeof(s));
	if (ie->has_dst_addr)
		snprintf(buf, size, "%s -> %s", s,
			 inet_addr_str(&ie->dst_addr, ie->dst_port, d, sizeof(d)));
	else
		snprintf(buf, size, "%s", s);
	return buf;
}

socklen_t inet_make_addr(struct sockaddr_storage *ss, int family, const ProtobufCBinaryData *addr,
			 uint32_t port, uint32_t scope_id)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (void *)ss;

		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		if (addr->len == 4)
			memcpy(&s->sin_addr, addr->data, 4);
		return sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (void *)ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		s->sin6_scope_id = scope_id;
		if (addr->len == 16)
			memcpy(&s->sin6_addr, addr->data, 16);
		return sizeof(*s);
	}
}

/* ------------------------------------------------------------- dump */

static bool inet_match(const struct fd_dump *d)
{
	/* every inet socket: TCP and UDP are saved, the others refused by inet_dump */
	return S_ISSOCK(d->st.st_mode) &&
	       (sk_kind(d)->family == AF_INET || sk_kind(d)->family == AF_INET6);
}

static void set_bytes(ProtobufCBinaryData *b, const void *p, size_t len)
{
	b->data = xmalloc(len ? len : 1);
	memcpy(b->data, p, len);
	b->len = len;
}

/* One address of the socket into (addr, port); false if none. */
static bool read_addr(int fd, bool peer, ProtobufCBinaryData *addr, uint32_t *port, uint32_t *scope)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		     : getsockname(fd, (struct sockaddr *)&ss, &len);

	if (r)
		return false;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s = (void *)&ss;

		set_bytes(addr, &s->sin_addr, 4);
		*port = ntohs(s->sin_port);
		return true;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s = (void *)&ss;

		set_bytes(addr, &s->sin6_addr, 16);
		*port = ntohs(s->sin6_port);
		if (scope)
			*scope = s->sin6_scope_id;
		return true;
	}
	return false;
}

static bool addr_is_any(const ProtobufCBinaryData *a)
{
	size_t i;

	for (i = 0; i < a->len; i++)
		if (a->data[i])
			return false;
	return true;
}

/* what the option hooks of sk_diff_opts get */
struct opt_arg {
	InetSkEntry *ie;
	bool est;
};

static void add_opt(void *arg, const struct sk_opt_diff *diff)
{
	InetSkEntry *ie = ((struct opt_arg *)arg)->ie;
	InetSkOpt *e = xmalloc(sizeof(*e));

	inet_sk_opt__init(e);
	e->level = diff->o->level;
	e->name = diff->o->name;
	set_bytes(&e->val, diff->val, diff->len);
	ie->opts = xrealloc(ie->opts, (ie->n_opts + 1) * sizeof(*ie->opts));
	ie->opts[ie->n_opts++] = e;
}

static bool opt_applies(const struct sk_opt *o, const void *arg)
{
	const struct opt_arg *a = arg;

	if ((o->flags & F_TCP) && a->ie->proto != IPPROTO_TCP)
		return false;
	if ((o->flags & F_UDP) && a->ie->proto != IPPROTO_UDP)
		return false;
	if ((o->flags & F_NOEST) && a->est)
		return false;
	return o->level != IPPROTO_IPV6 || a->ie->family == AF_INET6;
}

/*
 * An int option of the table as the socket has it: saved if it differs,
 * else what a fresh socket of the kind has (fresh: the kernel's default).
 */
int inet_sk_opt_int(const InetSkEntry *ie, int level, int name, int fresh)
{
	size_t i;
	int v;

	for (i = 0; i < ie->n_opts; i++)
		if ((int)ie->opts[i]->level == level && (int)ie->opts[i]->name == name &&
		    ie->opts[i]->val.len >= sizeof(v)) {
			memcpy(&v, ie->opts[i]->val.data, sizeof(v));
			return v;
		}
	return fresh;
}

/* The options of the table that differ from a fresh socket's. */
static int dump_opts(const struct fd_dump *d, InetSkEntry *ie, bool est)
{
	struct opt_arg arg = { ie, est };
	const struct sk_opt *bad = NULL;
	int r = sk_diff_opts(d->lfd, sk_kind(d), sk_opts, ARRAY_SIZE(sk_opts), opt_applies, add_opt,
			     &arg, &bad);

	if (r < 0) {
		pr_perror("pid %d fd %d: cannot create a socket to compare options with", d->pid,
			  d->fd);
		return -1;
	}
	if (r > 0) {
		pr_err("pid %d fd %d: %s socket has %s set: multicast is not supported (its "
		       "memberships cannot be read back)\n",
		       d->pid, d->fd, family_name(ie->family), bad->label);
		return -1;
	}
	return 0;
}

/* Buffer sizes as set, their lock bits, the BPF filter (refused). */
static int dump_bufs(const struct fd_dump *d, InetSkEntry *ie)
{
	int snd = 0, rcv = 0, lock = 0;
	socklen_t len = sizeof(int), flen = 0;

	if (getsockopt(d->lfd, SOL_SOCKET, SO_SNDBUF, &snd, &len) ||
	    getsockopt(d->lfd, SOL_SOCKET, SO_RCVBUF, &rcv, &len)) {
		pr_perror("pid %d fd %d: cannot read the buffer sizes", d->pid, d->fd);
		return -1;
	}
	if (getsockopt(d->lfd, SOL_SOCKET, SO_BUF_LOCK, &lock, &len))
		lock = 3; /* an old kernel: keep them as they are */
	ie->has_sndbuf = ie->has_rcvbuf = ie->has_sndbuf_locked = ie->has_rcvbuf_locked = true;
	ie->sndbuf = snd / 2;
	ie->rcvbuf = rcv / 2;
	ie->sndbuf_locked = lock & 1;
	ie->rcvbuf_locked = !!(lock & 2);
	if (getsockopt(d->lfd, SOL_SOCKET, SO_GET_FILTER, NULL, &flen) || flen) {
		pr_err("pid %d fd %d: %s socket has a socket filter attached; not supported\n",
		       d->pid, d->fd, family_name(ie->family));
		return -1;
	}
	return 0;
}

/* The socket must live in our network namespace: restore creates it there. */
static int check_netns(const struct fd_dump *d, int family, int type)
{
	if (sk_in_our_netns(d->lfd))
		return 0;
	pr_err("pid %d fd %d: %s %s socket of another network namespace than the tree's; "
	       "not supported\n",
	       d->pid, d->fd, family_name(family), type_name(type));
	return -1;
}

static int refuse_kind(const struct fd_dump *d, int family, int type, int proto)
{
	const char *why = "not supported";

	if (family == AF_INET || family == AF_INET6) {
		/* raw and ping sockets are inet_raw.c's */
		if (proto == IPPROTO_SCTP)
			why = "SCTP is not supported";
		else if (proto == IPPROTO_UDPLITE)
			why = "UDP-Lite is not supported";
		else if (proto == IPPROTO_MPTCP)
			why = "MPTCP is not supported";
	} else if (family == AF_NETLINK || family == AF_PACKET) {
		why = "netlink and packet sockets are not supported yet";
	}
	pr_err("pid %d fd %d (%s): %s %s socket (protocol %d): %s\n", d->pid, d->fd, d->link,
	       family_name(family), type_name(type), proto, why);
	return -1;
}

/* TCP_INFO and what follows from it: the state, the options that apply. */
static int read_tcp(const struct fd_dump *d, InetSkEntry *ie, struct tcp_info *ti)
{
	socklen_t len = sizeof(*ti);

	memset(ti, 0, sizeof(*ti));
	if (getsockopt(d->lfd, IPPROTO_TCP, TCP_INFO, ti, &len)) {
		pr_perror("pid %d fd %d: cannot read the TCP state", d->pid, d->fd);
		return -1;
	}
	ie->state = ti->tcpi_state;
	return dump_opts(d, ie, tcp_state_repaired(ie->state));
}

static int dump_tcp(const struct fd_dump *d, InetSkEntry *ie, const struct tcp_info *ti)
{
	char buf[160];

	switch (ie->state) {
	case TCP_ST_CLOSE:
		return 0;
	case TCP_ST_LISTEN:
		/* for listeners TCP_INFO holds the backlog and the accept queue */
		ie->has_backlog = true;
		ie->backlog = ti->tcpi_sacked;
		if (!ti->tcpi_unacked)
			return 0;
		pr_err("pid %d fd %d: TCP listener %s has %u connection(s) waiting in its accept "
		       "queue; not supported\n",
		       d->pid, d->fd, inet_sk_str(ie, buf, sizeof(buf)), ti->tcpi_unacked);
		return -1;
	case TCP_ST_ESTABLISHED:
	case TCP_ST_FIN_WAIT1: /* shut down for writing: its FIN is replayed */
	case TCP_ST_FIN_WAIT2:
	case TCP_ST_CLOSE_WAIT: /* shut down by the peer: its FIN is replayed */
	case TCP_ST_LAST_ACK:
		return tcp_dump_conn(d, ie, ti);
	}
	pr_err("pid %d fd %d: %s TCP socket %s in state %s; not supported\n", d->pid, d->fd,
	       family_name(ie->family), inet_sk_str(ie, buf, sizeof(buf)),
	       tcp_state_name(ie->state));
	return -1;
}

static int read_udp(const struct fd_dump *d, InetSkEntry *ie)
{
	ie->state = ie->has_dst_addr ? TCP_ST_ESTABLISHED : TCP_ST_CLOSE;
	return dump_opts(d, ie, false);
}

/*
 * What inet_dump reads without changing anything: the addresses, buffer
 * sizes, TCP_INFO and the option table (some 45 calls for a connection).
 * The entry, or NULL with the reason said.
 */
static InetSkEntry *inet_read(const struct fd_dump *d, const struct sk_kind *k, struct tcp_info *ti)
{
	InetSkEntry *ie = xmalloc(sizeof(*ie));

	inet_sk_entry__init(ie);
	ie->family = k->family;
	ie->type = k->type;
	ie->proto = k->proto;
	ie->has_src_addr = read_addr(d->lfd, false, &ie->src_addr, &ie->src_port, &ie->scope_id);
	if (ie->has_src_addr && !ie->src_port && addr_is_any(&ie->src_addr)) {
		free(ie->src_addr.data); /* not bound */
		ie->src_addr.data = NULL;
		ie->src_addr.len = 0;
		ie->has_src_addr = false;
	}
	ie->has_src_port = ie->has_scope_id = ie->has_src_addr;
	ie->has_dst_addr = read_addr(d->lfd, true, &ie->dst_addr, &ie->dst_port, NULL);
	ie->has_dst_port = ie->has_dst_addr;
	if (k->family == AF_INET6) {
		ie->has_v6only = true;
		ie->v6only = sk_get_int(d->lfd, IPPROTO_IPV6, IPV6_V6ONLY) == 1;
	}
	if (dump_bufs(d, ie) || (k->proto == IPPROTO_TCP ? read_tcp(d, ie, ti) : read_udp(d, ie))) {
		inet_sk_entry__free_unpacked(ie, NULL);
		return NULL;
	}
	return ie;
}

/* ------------------------------------------------------ reading ahead */

/*
 * A process with a thousand connections spends most of its dump in
 * inet_read's calls, one socket after the other, on one CPU.  Those calls
 * change nothing, so a second thread makes them for the tree's TCP and
 * UDP sockets from the last one (by inode) backwards while the dumper
 * goes through the fds from the first on; each socket is read by
 * whichever of the two comes first (its state, taken with one atomic
 * exchange), and the dumper waits only for a socket the other thread is
 * reading at that moment.  The thread reads quietly: a socket it could
 * not read is read again by the dumper, which then says why.  Repair
 * mode, the queues and the records stay with the dumper.
 */
enum { AHEAD_FREE, AHEAD_READING, AHEAD_READ, AHEAD_FAILED, AHEAD_DUMPER };

struct ahead_sk {
	unsigned long ino;
	pid_t pid;
	int fd;
	_Atomic int state;
	InetSkEntry *ie;
	struct tcp_info ti;
};

static struct {
	struct ahead_sk *v; /* in the dumper's order: task by task, fd by fd */
	struct ahead_sk **by_ino;
	size_t n;
	pthread_t thread;
	bool running;
	atomic_bool listed; /* v, by_ino and n are set (by the thread) */
	atomic_bool stop;
	size_t taken; /* sockets the dumper found read */
} ahead;

static int ahead_cmp(const void *a, const void *b)
{
	const struct ahead_sk *x = *(struct ahead_sk *const *)a, *y = *(struct ahead_sk *const *)b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x < y ? -1 : x > y; /* the first fd of a socket first */
}

/* One socket of the tree, read from a duplicate of its fd; its state after. */
static int ahead_one(struct ahead_sk *s, int pidfd)
{
	struct fd_dump d = { .pid = s->pid, .fd = s->fd };
	struct sk_kind k;
	int ret = AHEAD_FAILED;

	d.lfd = syscall(__NR_pidfd_getfd, pidfd, s->fd, 0);
	if (d.lfd < 0)
		return AHEAD_FAILED;
	k.family = sk_get_int(d.lfd, SOL_SOCKET, SO_DOMAIN);
	k.type = sk_get_int(d.lfd, SOL_SOCKET, SO_TYPE);
	k.proto = sk_get_int(d.lfd, SOL_SOCKET, SO_PROTOCOL);
	if (!fstat(d.lfd, &d.st) && (unsigned long)d.st.st_ino == s->ino &&
	    (k.family == AF_INET || k.family == AF_INET6) &&
	    ((k.type == SOCK_STREAM && k.proto == IPPROTO_TCP) ||
	     (k.type == SOCK_DGRAM && k.proto == IPPROTO_UDP))) {
		s->ie = inet_read(&d, &k, &s->ti);
		ret = s->ie ? AHEAD_READ : AHEAD_FAILED;
	}
	close(d.lfd);
	return ret;
}

static void ahead_list(struct dump_ctx *ctx);

static void *ahead_thread(void *arg)
{
	int pidfd = -1;
	pid_t pid = 0;
	size_t i;

	log_quiet = true;
	unpin();	 /* the dumper is pinned to its CPU; this belongs on the other */
	ahead_list(arg); /* the tree's fds, walked here: the dumper goes on meanwhile */
	atomic_store(&ahead.listed, true);
	for (i = ahead.n; i-- && !atomic_load(&ahead.stop);) {
		struct ahead_sk *s = &ahead.v[i];
		int expect = AHEAD_FREE;

		if (!atomic_compare_exchange_strong(&s->state, &expect, AHEAD_READING))
			continue; /* the dumper's (or another fd of a socket) */
		if (s->pid != pid) {
			if (pidfd >= 0)
				close(pidfd);
			pid = s->pid;
			pidfd = syscall(__NR_pidfd_open, pid, 0);
		}
		atomic_store(&s->state, pidfd < 0 ? AHEAD_FAILED : ahead_one(s, pidfd));
	}
	if (pidfd >= 0)
		close(pidfd);
	return NULL;
}

/* The socket fds of the tree; each socket read at its first fd only. */
static void ahead_list(struct dump_ctx *ctx)
{
	struct tree_sk *t = sk_tree_fds(ctx, &ahead.n);
	size_t i;

	ahead.v = xzalloc((ahead.n ? ahead.n : 1) * sizeof(*ahead.v));
	for (i = 0; i < ahead.n; i++) {
		ahead.v[i].ino = t[i].ino;
		ahead.v[i].pid = ctx->tasks[t[i].task].pid;
		ahead.v[i].fd = t[i].fd;
	}
	free(t);
	ahead.by_ino = xmalloc((ahead.n ? ahead.n : 1) * sizeof(*ahead.by_ino));
	for (i = 0; i < ahead.n; i++)
		ahead.by_ino[i] = &ahead.v[i];
	if (ahead.n)
		sort_array(ahead.by_ino, ahead.n, sizeof(*ahead.by_ino), ahead_cmp);
	for (i = 1; i < ahead.n; i++)
		if (ahead.by_ino[i]->ino == ahead.by_ino[i - 1]->ino)
			atomic_store(&ahead.by_ino[i]->state, AHEAD_DUMPER);
}

/* The first fd of socket ino in the list, or NULL. */
static struct ahead_sk *ahead_find(unsigned long ino)
{
	size_t lo = 0, hi = ahead.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ahead.by_ino[mid]->ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ahead.n && ahead.by_ino[lo]->ino == ino ? ahead.by_ino[lo] : NULL;
}

#define AHEAD_MIN 64 /* fewer sockets: not worth a thread */

/*
 * The tree is frozen: start reading its sockets ahead, if it may have
 * many (the size of its fd tables is what files.c read cheaply).
 */
static int inet_ahead_start(struct dump_ctx *ctx)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || getenv("STASIS_TEST_NO_AHEAD") ||
	    files_tree_table_sizes(ctx) < AHEAD_MIN)
		return 0;
	atomic_store(&ahead.stop, false);
	atomic_store(&ahead.listed, false);
	if (pthread_create(&ahead.thread, NULL, ahead_thread, ctx) == 0)
		ahead.running = true;
	return 0;
}

/* The entry read ahead for the socket d, or NULL: the dumper reads it. */
static InetSkEntry *ahead_take(const struct fd_dump *d, struct tcp_info *ti)
{
	struct ahead_sk *s;
	int st = AHEAD_FREE;
	InetSkEntry *ie;

	if (!ahead.running || !atomic_load(&ahead.listed) || !ahead.n)
		return NULL; /* not listed yet: the dumper reads this one */
	s = ahead_find(d->st.st_ino);
	if (!s || atomic_compare_exchange_strong(&s->state, &st, AHEAD_DUMPER))
		return NULL;
	while ((st = atomic_load(&s->state)) == AHEAD_READING)
		sched_yield();
	if (st != AHEAD_READ)
		return NULL;
	ie = s->ie;
	s->ie = NULL;
	*ti = s->ti;
	atomic_store(&s->state, AHEAD_DUMPER);
	ahead.taken++;
	return ie;
}

/* The dump ends: stop the thread, drop what it read that no one took. */
static void inet_ahead_end(struct dump_ctx *ctx, bool kill)
{
	size_t i;

	(void)ctx;
	(void)kill;
	atomic_store(&ahead.stop, true);
	if (ahead.running) {
		pthread_join(ahead.thread, NULL);
		pr_info("%zu of %zu sockets read ahead\n", ahead.taken, ahead.n);
	}
	ahead.running = false;
	ahead.taken = 0;
	for (i = 0; i < ahead.n; i++)
		if (ahead.v[i].ie)
			inet_sk_entry__free_unpacked(ahead.v[i].ie, NULL);
	free(ahead.v);
	free(ahead.by_ino);
	ahead.v = NULL;
	ahead.by_ino = NULL;
	ahead.n = 0;
}

static void inet_ahead_fini(struct dump_ctx *ctx, void *state)
{
	(void)state;
	inet_ahead_end(ctx, false);
}

const struct res_ops inet_res = {
	.name = "inet",
	.dump_check = inet_ahead_start,
	.dump_end = inet_ahead_end,
	.dump_fini = inet_ahead_fini,
};

static int inet_dump(const struct fd_dump *d, FileEntry *fe)
{
	const struct sk_kind *k = sk_kind(d);
	int family = k->family, type = k->type, proto = k->proto;
	struct tcp_info ti;
	InetSkEntry *ie;

	if ((family != AF_INET && family != AF_INET6) ||
	    !((type == SOCK_STREAM && proto == IPPROTO_TCP) ||
	      (type == SOCK_DGRAM && proto == IPPROTO_UDP)))
		return refuse_kind(d, family, type, proto);
	if (check_netns(d, family, type))
		return -1;
	ie = ahead_take(d, &ti);
	if (!ie)
		ie = inet_read(d, k, &ti);
	if (!ie)
		return -1;
	fe->inet_sk = ie;
	if (proto == IPPROTO_TCP)
		return dump_tcp(d, ie, &ti);
	return ie->has_src_addr ? udp_dump_queue(d, ie) : 0;
}

/* All inet sockets of the image are built together (see the top). */
static uint64_t inet_group(const FileEntry *fe)
{
	return 1;
}

/* ---------------------------------------------------------- restore */

struct isk {
	const FileEntry *fe;
	const InetSkEntry *ie;
	int fd;
	bool closed; /* restore --tcp-close: a connection comes back unconnected */
	bool grown;  /* a buffer was made larger while it was filled: set the sizes again */
};

static bool repaired(const struct isk *s)
{
	return s->ie->proto == IPPROTO_TCP && tcp_state_repaired(s->ie->state) && s->ie->tcp &&
	       !s->closed;
}

static int fail(pid_t pid, const struct isk *s, const char *what)
{
	char buf[160];
	int err = errno;

	pr_err("pid %d: cannot %s %s socket %s: %s%s\n", pid, what, family_name(s->ie->family),
	       inet_sk_str(s->ie, buf, sizeof(buf)), strerror(err),
	       err == EADDRNOTAVAIL ? " (no such address in this network namespace)" : "");
	return -1;
}

/*
 * The buffer sizes as set.  Setting them locks them (the kernel tunes
 * them no more): they stay so while the socket is built, and set_lock,
 * last, gives back the lock bits the socket had.
 */
static int set_bufs(int fd, const InetSkEntry *ie)
{
	if ((ie->has_sndbuf && sk_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, ie->sndbuf)) ||
	    (ie->has_rcvbuf && sk_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, ie->rcvbuf)))
		return -1;
	return 0;
}

/* Whether the kernel may tune the sizes. */
static int set_lock(int fd, const InetSkEntry *ie)
{
	int lock = (ie->sndbuf_locked ? 1 : 0) | (ie->rcvbuf_locked ? 2 : 0);

	return ie->has_sndbuf_locked ? sk_set_int(fd, SOL_SOCKET, SO_BUF_LOCK, lock) : 0;
}

static int create_one(pid_t pid, struct isk *s)
{
	const InetSkEntry *ie = s->ie;
	size_t i;
	int v;

	s->fd = socket(ie->family, ie->type | SOCK_CLOEXEC, ie->proto);
	if (s->fd < 0)
		return fail(pid, s, "create");
	v = ie->v6only;
	if (ie->family == AF_INET6 && setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v)))
		return fail(pid, s, "set IPV6_V6ONLY on");
	for (i = 0; i < ie->n_opts; i++) {
		const InetSkOpt *o = ie->opts[i];
		socklen_t len = o->val.len;

		if (o->level == IPPROTO_TCP && o->name == TCP_CONGESTION)
			len = strnlen((const char *)o->val.data, o->val.len);
		if (setsockopt(s->fd, o->level, o->name, o->val.data, len)) {
			pr_perror("pid %d: cannot set socket option %u:%u", pid, o->level, o->name);
			return -1;
		}
	}
	/* before connect: a connection's window follows its receive buffer */
	if (set_bufs(s->fd, ie))
		return fail(pid, s, "set the buffer sizes of");
	if (repaired(s) && tcp_repair_prepare(s->fd, ie))
		return fail(pid, s, "prepare the repair of");
	return 0;
}

static int bind_one(pid_t pid, struct isk *s)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!s->ie->has_src_addr || s->closed)
		return 0;
	len =
	    inet_make_addr(&ss, s->ie->family, &s->ie->src_addr, s->ie->src_port, s->ie->scope_id);
	return bind(s->fd, (struct sockaddr *)&ss, len) ? fail(pid, s, "bind") : 0;
}

static int connect_one(pid_t pid, struct isk *s)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!s->ie->has_dst_addr || s->closed)
		return 0;
	len = inet_make_addr(&ss, s->ie->family, &s->ie->dst_addr, s->ie->dst_port, 0);
	return connect(s->fd, (struct sockaddr *)&ss, len) ? fail(pid, s, "connect") : 0;
}

/* Last: SO_REUSEADDR again (repair mode's end clears it), buffers, flags. */
static int finish_one(pid_t pid, struct isk *s)
{
	const InetSkEntry *ie = s->ie;
	size_t i;

	for (i = 0; repaired(s) && i < ie->n_opts; i++)
		if (ie->opts[i]->level == SOL_SOCKET && ie->opts[i]->name == SO_REUSEADDR &&
		    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, ie->opts[i]->val.data,
			       ie->opts[i]->val.len))
			return fail(pid, s, "set SO_REUSEADDR on");
	if ((s->grown && set_bufs(s->fd, ie)) || set_lock(s->fd, ie))
		return fail(pid, s, "set the buffer sizes of");
	if (fcntl(s->fd, F_SETFL, s->fe->flags & (O_NONBLOCK | O_ASYNC)))
		return fail(pid, s, "set the file flags of");
	return 0;
}

static int build_all(pid_t pid, struct isk *sk, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (create_one(pid, &sk[i]))
			return -1;
	/* sockets of their own first; connections in repair mode may share their ports */
	for (i = 0; i < n; i++)
		if (!repaired(&sk[i]) && bind_one(pid, &sk[i]))
			return -1;
	for (i = 0; i < n; i++)
		if (sk[i].ie->state == TCP_ST_LISTEN &&
		    listen(sk[i].fd, sk[i].ie->has_backlog ? (int)sk[i].ie->backlog : 0))
			return fail(pid, &sk[i], "listen on");
	for (i = 0; i < n; i++)
		if (sk[i].ie->proto == IPPROTO_UDP) {
			sk[i].grown = sk[i].ie->n_queue > 0; /* see udp_fill_queue */
			if (udp_fill_queue(pid, sk[i].fd, sk[i].ie) || connect_one(pid, &sk[i]))
				return -1;
		}
	for (i = 0; i < n; i++)
		if (repaired(&sk[i]) && (bind_one(pid, &sk[i]) || connect_one(pid, &sk[i]) ||
					 tcp_repair_finish(sk[i].fd, sk[i].ie, &sk[i].grown)))
			return fail(pid, &sk[i], "rebuild the connection of");
	for (i = 0; i < n; i++)
		if (repaired(&sk[i]) && tcp_repair_off(sk[i].fd, sk[i].ie, &sk[i].grown))
			return fail(pid, &sk[i], "end the repair of");
	for (i = 0; i < n; i++)
		if (finish_one(pid, &sk[i]))
			return -1;
	return 0;
}

static int inet_open(struct rst_ctx *c, const FileEntry *fe)
{
	pid_t pid = c->t->te->pid;
	size_t i, n = 0, nfiles;
	FileEntry **files = image_files(c->img, &nfiles);
	struct isk *sk = xzalloc(nfiles * sizeof(*sk) + 1);
	int mine = -1;

	for (i = 0; i < nfiles; i++) {
		const FileEntry *o = files[i];

		if (o->type != FILE_TYPE__FILE_INET)
			continue;
		if (!o->inet_sk) {
			pr_err("pid %d: inet socket entry %u lacks its state\n", pid, o->id);
			goto out;
		}
		if (o != fe && fd_shared_placed(c, o->id))
			continue; /* built already */
		sk[n++] = (struct isk){ o, o->inet_sk, -1,
					c->opts->tcp_close && o->inet_sk->proto == IPPROTO_TCP &&
					    tcp_state_repaired(o->inet_sk->state) };
	}
	if (build_all(pid, sk, n))
		goto out;
	for (i = 0; i < n; i++) {
		if (sk[i].fe == fe) {
			mine = sk[i].fd;
		} else if (fd_place_shared(c, sk[i].fe->id, sk[i].fd)) {
			sk[i].fd = -1; /* closed by fd_place_shared */
			if (mine >= 0)
				close(mine);
			mine = -1;
			goto out;
		}
		sk[i].fd = -1;
	}
out:
	for (i = 0; i < n; i++)
		if (sk[i].fd >= 0)
			close(sk[i].fd);
	free(sk);
	return mine;
}

const struct fd_ops inet_fd_ops = {
	.type = FILE_TYPE__FILE_INET,
	.kind = FILE_ENTRY__KIND_INET_SK,
	.name = "inet socket",
	.match = inet_match,
	.dump = inet_dump,
	.group = inet_group,
	.open = inet_open,
};
