/*
 * The datagrams waiting in a UDP socket's receive queue.
 *
 * Dump: each one is read with MSG_PEEK along a peek offset (SO_PEEK_OFF,
 * put back afterwards), with its sender's address: nothing is consumed,
 * so a failed dump or -R leaves the queue as it was.
 *
 * Restore: each one is sent again, in order, to the restored socket as a
 * packet built whole (IP and UDP headers) on a raw socket: it carries the
 * original sender's address and port whatever socket holds that port now
 * (the sender may be a socket of the tree, restored next to it, or a
 * program outside that still runs).  The packet goes through loopback
 * routing like any local datagram; the queue is read back to check that
 * every datagram arrived.
 *
 * Known limit: once an empty datagram has been peeked at (by the program,
 * or by an earlier dump -R), the kernel skips it in every later peek at an
 * offset, so a dump cannot see it any more and it is not saved.  A queue
 * that holds one is therefore not read back at restore either.
 */
#include <errno.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inet.h"
#include "log.h"
#include "util.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

#define DGRAM_MAX 65536

/* ------------------------------------------------------------- dump */

static void add_dgram(InetSkEntry *ie, const void *data, size_t len,
		      const struct sockaddr_storage *from)
{
	InetDgram *g = xmalloc(sizeof(*g));

	inet_dgram__init(g);
	g->data.data = xmalloc(len ? len : 1);
	memcpy(g->data.data, data, len);
	g->data.len = len;
	if (from->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)from;

		g->src_addr.len = 4;
		g->src_addr.data = xmalloc(4);
		memcpy(g->src_addr.data, &s->sin_addr, 4);
		g->src_port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const void *)from;

		g->src_addr.len = 16;
		g->src_addr.data = xmalloc(16);
		memcpy(g->src_addr.data, &s->sin6_addr, 16);
		g->src_port = ntohs(s->sin6_port);
	}
	ie->queue = xrealloc(ie->queue, (ie->n_queue + 1) * sizeof(*ie->queue));
	ie->queue[ie->n_queue++] = g;
}

/* Walk the queue with MSG_PEEK; fn gets each datagram.  -1 on error. */
static int peek_walk(int fd, char *buf, InetSkEntry *ie, size_t *count, const char *who)
{
	size_t guard;

	for (guard = 0; guard < 1 << 20; guard++) {
		struct sockaddr_storage from;
		struct iovec iov = { buf, DGRAM_MAX };
		struct msghdr mh = { .msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = &iov,
				     .msg_iovlen = 1 };
		ssize_t n = recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0) {
			pr_perror("%s: cannot read a UDP socket's queue", who);
			return -1;
		}
		if (n > DGRAM_MAX) {
			pr_err("%s: a queued datagram is larger than %u bytes\n", who, DGRAM_MAX);
			return -1;
		}
		if (ie)
			add_dgram(ie, buf, n, &from);
		(*count)++;
	}
	return 0;
}

/* The queue, walked from offset 0; the socket's peek offset is put back. */
static int peek_queue(int fd, InetSkEntry *ie, size_t *count, const char *who)
{
	int off0 = -1, zero = 0, ret;
	socklen_t len = sizeof(off0);
	char *buf;

	if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off0, &len) ||
	    setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero))) {
		pr_perror("%s: cannot peek into a UDP socket", who);
		return -1;
	}
	buf = xmalloc(DGRAM_MAX);
	*count = 0;
	ret = peek_walk(fd, buf, ie, count, who);
	free(buf);
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off0, sizeof(off0))) {
		pr_perror("%s: cannot put back the peek offset", who);
		ret = -1;
	}
	return ret;
}

/* May we open the raw socket that queues datagrams back (a normal user may not)? */
static bool raw_allowed(void)
{
	static int ok = -1;
	int fd;

	if (ok < 0) {
		fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
		ok = fd >= 0 || errno != EPERM;
		if (fd >= 0)
			close(fd);
	}
	return ok;
}

int udp_dump_queue(const struct fd_dump *d, InetSkEntry *ie)
{
	char who[64];
	size_t n;

	snprintf(who, sizeof(who), "pid %d fd %d", d->pid, d->fd);
	if (peek_queue(d->lfd, ie, &n, who))
		return -1;
	if (ie->n_queue && !raw_allowed()) {
		pr_err("%s: UDP socket with %zu datagram(s) waiting: they are put back from their "
		       "senders' addresses through a raw socket, which needs CAP_NET_RAW\n",
		       who, ie->n_queue);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------- restore */

uint32_t inet_csum_add(const void *p, size_t len, uint32_t s)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		s += (b[i] << 8) | b[i + 1];
	if (len & 1)
		s += b[len - 1] << 8;
	return s;
}

uint16_t inet_csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	s = ~s & 0xffff;
	return htons(s ? s : 0xffff);
}

static bool is_mapped(const uint8_t *a)
{
	static const uint8_t pre[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(a, pre, 12);
}

/* Where a datagram was sent: the socket's address, loopback if wildcard. */
static void dst_addr(const InetSkEntry *ie, bool v4, uint8_t *out)
{
	static const uint8_t lo4[4] = { 127, 0, 0, 1 }, lo6[16] = { [15] = 1 }, any[16];
	const uint8_t *a = ie->src_addr.data;

	if (v4) {
		if (ie->src_addr.len == 16)
			a = is_mapped(a) ? a + 12 : any; /* a socket on :: receives v4 too */
		memcpy(out, memcmp(a, any, 4) ? a : lo4, 4);
		return;
	}
	memcpy(out, memcmp(a, any, 16) ? a : lo6, 16);
}

/* The packet: [IP header][UDP header][data], checksums filled. */
static size_t build_packet(uint8_t *pkt, const InetSkEntry *ie, const InetDgram *g, bool v4,
			   uint8_t *dst)
{
	size_t hl = v4 ? sizeof(struct iphdr) : sizeof(struct ip6_hdr);
	struct udphdr *u = (struct udphdr *)(pkt + hl);
	size_t ulen = sizeof(*u) + g->data.len;
	const uint8_t *src = g->src_addr.len == 16 && v4 ? g->src_addr.data + 12 : g->src_addr.data;
	uint32_t s;

	dst_addr(ie, v4, dst);
	memset(pkt, 0, hl + sizeof(*u));
	u->source = htons(g->src_port);
	u->dest = htons(ie->src_port);
	u->len = htons(ulen);
	if (g->data.len) /* an empty datagram has no data buffer */
		memcpy(u + 1, g->data.data, g->data.len);
	s = inet_csum_add(src, v4 ? 4 : 16, 0);
	s = inet_csum_add(dst, v4 ? 4 : 16, s) + IPPROTO_UDP + ulen;
	u->check = inet_csum_fold(inet_csum_add(u, ulen, s));
	if (v4) {
		struct iphdr *ip = (struct iphdr *)pkt;

		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_UDP;
		ip->tot_len = htons(hl + ulen);
		memcpy(&ip->saddr, src, 4);
		memcpy(&ip->daddr, dst, 4);
	} else {
		struct ip6_hdr *ip = (struct ip6_hdr *)pkt;

		ip->ip6_flow = htonl(6U << 28);
		ip->ip6_plen = htons(ulen);
		ip->ip6_nxt = IPPROTO_UDP;
		ip->ip6_hlim = 64;
		memcpy(&ip->ip6_src, src, 16);
		memcpy(&ip->ip6_dst, dst, 16);
	}
	return hl + ulen;
}

static int send_dgram(int raw[2], uint8_t *pkt, const InetSkEntry *ie, const InetDgram *g)
{
	bool v4 = g->src_addr.len == 4 || is_mapped(g->src_addr.data);
	struct sockaddr_storage ss = { 0 };
	uint8_t dst[16];
	size_t len = build_packet(pkt, ie, g, v4, dst);
	int *fd = &raw[v4 ? 0 : 1];

	if (*fd < 0)
		*fd = socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (*fd < 0)
		return -1;
	if (v4) {
		struct sockaddr_in *s = (void *)&ss;

		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, dst, 4);
	} else {
		struct sockaddr_in6 *s = (void *)&ss;

		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, dst, 16);
	}
	return sendto(*fd, pkt, len, 0, (struct sockaddr *)&ss, sizeof(ss)) == (ssize_t)len ? 0
											    : -1;
}

/* Every datagram arrived (loopback delivers them in a softirq): count them. */
static int check_arrived(pid_t pid, int fd, size_t want)
{
	char who[64];
	size_t n = 0;
	int i;

	snprintf(who, sizeof(who), "pid %d", pid);
	for (i = 0; i < 200; i++) {
		if (peek_queue(fd, NULL, &n, who))
			return -1;
		if (n >= want)
			break;
		usleep(5000);
	}
	if (n != want) {
		pr_err("pid %d: %zu of %zu datagrams reached a restored UDP socket\n", pid, n,
		       want);
		return -1;
	}
	return 0;
}

int udp_fill_queue(pid_t pid, int fd, const InetSkEntry *ie)
{
	uint8_t *pkt;
	int raw[2] = { -1, -1 }, ret = -1, big = 1 << 26;
	size_t i;

	if (!ie->n_queue)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	pkt = xmalloc(DGRAM_MAX + 128);
	for (i = 0; i < ie->n_queue; i++) {
		if (send_dgram(raw, pkt, ie, ie->queue[i])) {
			pr_perror("pid %d: cannot queue a datagram into a restored UDP socket",
				  pid);
			goto out;
		}
	}
	/* a peek hides an empty datagram from later peeks at an offset: not those */
	for (i = 0; i < ie->n_queue && ie->queue[i]->data.len; i++)
		;
	ret = i < ie->n_queue ? 0 : check_arrived(pid, fd, ie->n_queue);
out:
	free(pkt);
	for (i = 0; i < 2; i++)
		if (raw[i] >= 0)
			close(raw[i]);
	return ret;
}
