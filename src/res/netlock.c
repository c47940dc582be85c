/*
 * The network lock: while the tree is not running, the packets of its TCP
 * sockets (connections both ways, and whatever reaches its listeners) are
 * dropped, so that a peer sees a pause and retransmits, never a reset
 * from a socket that is gone or not built yet (--network-lock nftables,
 * the default; skip goes without).
 *
 * The lock is one nftables table of family inet, "stasis-held-PID-TIME",
 * with two chains at the raw priority of the input and output hooks, and
 * sets of the sockets' addresses: connections as
 * (src addr . src port . dst addr . dst port) in both directions, so that
 * a peer on this host (loopback) is held at either hook, and listeners as
 * (addr . port) or, bound to any address, the port alone, on input only.
 * It goes in as one nfnetlink batch (one transaction) built with
 * libnftnl, the set elements as binary keys (a script for libnftables to
 * parse took some 10 ms per 1,000 connections, each of the three times a
 * dump and its restore make the table), with the table's owner flag: the
 * kernel deletes it when our netfilter netlink socket closes, so a stasis
 * that dies in any way (a crash, SIGKILL) leaves nothing behind.  What
 * `nft list table` shows is what the same table written as an nft script
 * would be.
 *
 * Dump: dump_check (the tree is frozen, nothing read yet) finds the TCP
 * sockets of the tree (every task's socket fds, each read from a
 * duplicate: protocol, state, addresses) and installs the table;
 * dump_write records it (IMG_NETLOCK, once).  At dump_end a dump that
 * failed or let the tree go on (-R) deletes it; when the tree is killed it
 * is swapped, in one transaction, for a table of the same name without
 * the owner flag, which outlives stasis until restore lifts it (or
 * `nft delete table inet NAME`, see docs/user-guide.md).
 *
 * Restore: restore_check (nothing forked, no socket built) installs a
 * table of its own for the recorded sockets (the dump's may be gone: a
 * restore on another host); restore_end lifts it once the tree runs, and
 * with it the dump's table if it is still there.  A failed restore lifts
 * only its own: the dump's lock stays as it was, for the next try.
 *
 * nftables tables are per network namespace: the lock goes where the
 * tree's sockets are.  At dump that is the tree's namespace (sk.h,
 * res/ns_net.c sets it), at restore ours (which --join-ns may have
 * changed), or, when the root creates a namespace of its own, that new
 * namespace: the root's restore child puts the table in (without the
 * owner flag: it goes with the namespace if the restore fails) before it
 * makes any device (netlock_hold_here), and its release lifts it.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "netlock.pb-c.h"
#include "ns.h"
#include "res.h"
#include "sk.h"
#include "util.h"

/* TCP states held: all but TIME_WAIT, CLOSE and SYN_SENT (never dumped). */
#define HELD_STATES \
	((1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11))

/* A lock in place: our netfilter netlink socket (it owns the table) and the name. */
struct netlock {
	struct mnl_socket *nl;
	int netns; /* where its socket is made: -1 ours */
	char *table;
	bool held;	/* the table exists */
	uint64_t since; /* CLOCK_REALTIME ns when it was made (also in its name) */
};

struct netlock_dump {
	struct netlock lock;
	NetlockEntry ne;
	bool written;
	pthread_t closer; /* closing lock.nl while the dump ends (lock_close_behind) */
	bool closing;
};

struct netlock_image {
	NetlockEntry *ne; /* the IMG_NETLOCK record, if any */
	struct netlock lock;
	bool inside; /* the root makes a network namespace: the lock goes in there */
};

/* CAP_NET_ADMIN over our network namespace (nftables wants it)? */
static bool net_admin(void)
{
	return cap_effective(CAP_NET_ADMIN) && owned_by_our_userns("net");
}

static bool is_v4(const ProtobufCBinaryData *a)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	return a->len == 4 || (a->len == 16 && !memcmp(a->data, mapped, 12));
}

static bool is_any(const ProtobufCBinaryData *a)
{
	size_t i;

	for (i = 0; i < a->len; i++)
		if (a->data[i])
			return false;
	return true;
}

enum set_kind { SET_C4, SET_C6, SET_L4, SET_L6, SET_LP, SET_MAX };

static enum set_kind sock_set(const NetlockSock *s)
{
	bool v4 = is_v4(&s->src_addr);

	if (s->has_dst_addr)
		return v4 ? SET_C4 : SET_C6;
	if (is_any(&s->src_addr))
		return SET_LP;
	return v4 ? SET_L4 : SET_L6;
}

/* ------------------------------------------------ nftables messages */

/*
 * The lock is built as one nfnetlink batch (one transaction) with
 * libnftnl: its sets get their elements as binary keys, not as text that
 * libnftables would parse (some 10 ms for 1,000 connections, three times
 * from a dump to its restore: the lock's install at dump, the table that
 * outlives the dump, the restore's own).
 */

/* A network-order field of a packet loaded into the registers. */
struct nl_field {
	uint8_t base; /* NFT_PAYLOAD_NETWORK_HEADER or _TRANSPORT_HEADER */
	uint8_t off, len;
};

#define IP_SADDR                                  \
	{                                         \
		NFT_PAYLOAD_NETWORK_HEADER, 12, 4 \
	}
#define IP_DADDR                                  \
	{                                         \
		NFT_PAYLOAD_NETWORK_HEADER, 16, 4 \
	}
#define IP6_SADDR                                 \
	{                                         \
		NFT_PAYLOAD_NETWORK_HEADER, 8, 16 \
	}
#define IP6_DADDR                                  \
	{                                          \
		NFT_PAYLOAD_NETWORK_HEADER, 24, 16 \
	}
#define TCP_SPORT                                  \
	{                                          \
		NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2 \
	}
#define TCP_DPORT                                  \
	{                                          \
		NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2 \
	}

/* What a set's rule matches: nft's "ip saddr . tcp sport . ..." */
struct nl_match {
	uint8_t nfproto; /* 0: both (a port alone) */
	uint8_t n;
	struct nl_field f[4];
};

static const struct nl_match set_match[SET_MAX] = {
	[SET_C4] = { NFPROTO_IPV4, 4, { IP_SADDR, TCP_SPORT, IP_DADDR, TCP_DPORT } },
	[SET_C6] = { NFPROTO_IPV6, 4, { IP6_SADDR, TCP_SPORT, IP6_DADDR, TCP_DPORT } },
	[SET_L4] = { NFPROTO_IPV4, 2, { IP_DADDR, TCP_DPORT } },
	[SET_L6] = { NFPROTO_IPV6, 2, { IP6_DADDR, TCP_DPORT } },
	[SET_LP] = { 0, 1, { TCP_DPORT } },
};

/* Connections are entered one way: their packets the other way match this. */
static const struct nl_match set_match_back[SET_MAX] = {
	[SET_C4] = { NFPROTO_IPV4, 4, { IP_DADDR, TCP_DPORT, IP_SADDR, TCP_SPORT } },
	[SET_C6] = { NFPROTO_IPV6, 4, { IP6_DADDR, TCP_DPORT, IP6_SADDR, TCP_SPORT } },
};

/* nft's datatypes (its src/datatype.h), concatenated 6 bits each */
#define NFT_TYPE_IPADDR	      7
#define NFT_TYPE_IP6ADDR      8
#define NFT_TYPE_INET_SERVICE 13
#define NFT_TYPE_BITS	      6

static const uint32_t set_key_type[SET_MAX] = {
	[SET_C4] = ((NFT_TYPE_IPADDR << 6 | NFT_TYPE_INET_SERVICE) << 6 | NFT_TYPE_IPADDR) << 6 |
		   NFT_TYPE_INET_SERVICE,
	[SET_C6] = ((NFT_TYPE_IP6ADDR << 6 | NFT_TYPE_INET_SERVICE) << 6 | NFT_TYPE_IP6ADDR) << 6 |
		   NFT_TYPE_INET_SERVICE,
	[SET_L4] = NFT_TYPE_IPADDR << 6 | NFT_TYPE_INET_SERVICE,
	[SET_L6] = NFT_TYPE_IP6ADDR << 6 | NFT_TYPE_INET_SERVICE,
	[SET_LP] = NFT_TYPE_INET_SERVICE,
};

#define PRIO_RAW (-300) /* nft's "priority raw" */

#define KEY_MAX 40 /* bytes of the longest key: [16][4][16][4] */

/* A key's length: each field of a concatenation takes whole 32-bit registers. */
static size_t key_len(enum set_kind k)
{
	const struct nl_match *m = &set_match[k];
	size_t i, len = 0;

	if (m->n == 1)
		return m->f[0].len;
	for (i = 0; i < m->n; i++)
		len += (m->f[i].len + 3) & ~3U;
	return len;
}

/* One socket's key in set k (zero-padded); an IPv4-mapped address goes as IPv4. */
static void sock_key(const NetlockSock *s, enum set_kind k, uint8_t *key)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	const ProtobufCBinaryData *a[2] = { &s->src_addr, &s->dst_addr };
	uint32_t port[2] = { s->src_port, s->dst_port };
	uint8_t end[2][20];
	size_t alen = (k == SET_C4 || k == SET_L4) ? 4 : 16, elen = alen + 4, i;

	memset(key, 0, KEY_MAX);
	for (i = 0; i < 2; i++) {
		const uint8_t *p = a[i]->data;

		memset(end[i], 0, sizeof(end[i]));
		if (i == 0 || k == SET_C4 || k == SET_C6) {
			if (alen == 4 && a[i]->len == 16 && !memcmp(p, mapped, 12))
				p += 12;
			memcpy(end[i], p, alen);
		}
		end[i][alen] = port[i] >> 8;
		end[i][alen + 1] = port[i] & 0xff;
	}
	if (k == SET_LP) {
		memcpy(key, end[0] + alen, 2);
	} else if (k == SET_L4 || k == SET_L6) {
		memcpy(key, end[0], elen);
	} else {
		/* both ends of a connection inside the tree make the same element */
		i = memcmp(end[0], end[1], elen) > 0;
		memcpy(key, end[i], elen);
		memcpy(key + elen, end[!i], elen);
	}
}

/* One batch being built: its messages after the BEGIN, what each makes. */
struct nl_batch {
	char *buf;
	size_t len, cap;
	uint32_t seq0; /* the BEGIN's sequence number; message i has seq0 + 1 + i */
	const char **what;
	size_t n;
};

static void batch_room(struct nl_batch *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	b->cap = (b->len + more) * 2;
	b->buf = xrealloc(b->buf, b->cap);
}

static void batch_init(struct nl_batch *b)
{
	static uint32_t seq;

	memset(b, 0, sizeof(*b));
	if (!seq)
		seq = (uint32_t)time(NULL);
	b->seq0 = seq;
	seq += 1 << 20; /* a batch has fewer messages */
	batch_room(b, 65536);
	nftnl_batch_begin(b->buf, b->seq0);
	b->len = NLMSG_ALIGN(((struct nlmsghdr *)b->buf)->nlmsg_len);
}

/* Room for a message of at most 64 KiB; its header.  Done with batch_add. */
static struct nlmsghdr *batch_msg(struct nl_batch *b, uint16_t type, uint16_t flags,
				  const char *what)
{
	batch_room(b, 65536);
	b->what = xrealloc(b->what, (b->n + 1) * sizeof(*b->what));
	b->what[b->n] = what;
	return nftnl_nlmsg_build_hdr(b->buf + b->len, type, NFPROTO_INET, flags | NLM_F_ACK,
				     b->seq0 + 1 + b->n);
}

static void batch_add(struct nl_batch *b, struct nlmsghdr *nlh)
{
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
	b->n++;
}

static void batch_free(struct nl_batch *b)
{
	free(b->buf);
	free(b->what);
}

/* A netfilter netlink socket in network namespace netns (-1: ours). */
static struct mnl_socket *nl_open_in(int netns)
{
	struct mnl_socket *nl = NULL;
	int ours = -1, one = 1;

	if (netns >= 0) {
		ours = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (ours < 0 || setns(netns, CLONE_NEWNET)) {
			if (ours >= 0)
				close(ours);
			return NULL;
		}
	}
	nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (ours >= 0) {
		if (setns(ours, CLONE_NEWNET)) {
			pr_perror("cannot go back to our own network namespace");
			abort();
		}
		close(ours);
	}
	if (nl && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl);
		return NULL;
	}
	if (nl) {
		/* acks without the request in them, errors with the kernel's reason */
		mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
		mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	}
	return nl;
}

static int ext_ack_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && !mnl_attr_validate(a, MNL_TYPE_STRING))
		*(const char **)data = mnl_attr_get_str(a);
	return MNL_CB_OK;
}

/*
 * Send the batch in l's socket (opened on first use) and read an answer
 * for each message; 0, or -1 with the first error in *err ("what: why")
 * and its errno in *errnum.
 */
static int batch_run(struct netlock *l, struct nl_batch *b, char **err, int *errnum)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	size_t answers = 0;
	int size, ret = 0;

	*errnum = 0;
	/* say which capability, rather than the kernel's EPERM for one message */
	if (l->netns < 0 && !net_admin()) {
		*errnum = EPERM;
		*err = xstrdup(
		    "nftables needs CAP_NET_ADMIN over this network namespace, which we lack");
		return -1;
	}
	if (!l->nl) {
		l->nl = nl_open_in(l->netns);
		if (!l->nl) {
			*errnum = errno;
			*err =
			    xsprintf("cannot open a netfilter netlink socket: %s", strerror(errno));
			return -1;
		}
	}
	batch_room(b, 64);
	nftnl_batch_end(b->buf + b->len, b->seq0 + 1 + b->n);
	b->len += NLMSG_ALIGN(((struct nlmsghdr *)(b->buf + b->len))->nlmsg_len);
	size = (int)b->len + 65536;
	if (b->len > 100000 &&
	    setsockopt(mnl_socket_get_fd(l->nl), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)))
		setsockopt(mnl_socket_get_fd(l->nl), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (mnl_socket_sendto(l->nl, b->buf, b->len) < 0) {
		*errnum = errno;
		*err = xsprintf("cannot send the nftables batch: %s", strerror(errno));
		return -1;
	}
	while (answers < b->n) {
		ssize_t n = mnl_socket_recvfrom(l->nl, buf, sizeof(buf));
		const struct nlmsghdr *h = (const void *)buf;
		int left = (int)n;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*errnum = errno;
			*err = xsprintf("no answer from nftables: %s", strerror(errno));
			return -1;
		}
		for (; mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
			uint32_t i = h->nlmsg_seq - b->seq0 - 1;
			const char *why = NULL;

			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			answers++;
			if (!e->error || ret)
				continue;
			if (h->nlmsg_flags & NLM_F_ACK_TLVS)
				mnl_attr_parse(h, sizeof(*e), ext_ack_cb, &why);
			*errnum = -e->error;
			*err = xsprintf("%s: %s", i < b->n ? b->what[i] : "batch",
					why ? why : strerror(-e->error));
			ret = -1;
			if (h->nlmsg_seq == b->seq0)
				return -1; /* the batch as a whole: nothing else comes */
		}
	}
	return ret;
}

static void put_table(struct nl_batch *b, const char *name, uint16_t type, uint32_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	if (type == NFT_MSG_NEWTABLE)
		nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, flags);
	nlh = batch_msg(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE | NLM_F_EXCL : 0,
			type == NFT_MSG_NEWTABLE ? "table" : "delete table");
	nftnl_table_nlmsg_build_payload(nlh, t);
	batch_add(b, nlh);
	nftnl_table_free(t);
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, KEY_MAX);
}

#define ELEMS_PER_MSG 512

/* Set k with the keys of its sockets (each once); false if it has none. */
static bool put_set(struct nl_batch *b, const char *table, const NetlockEntry *ne, enum set_kind k)
{
	uint8_t(*keys)[KEY_MAX] = xmalloc((ne->n_socks + 1) * KEY_MAX);
	size_t i, n = 0, len = key_len(k);
	struct nftnl_set *s, *chunk = NULL;
	char name[8];
	struct nlmsghdr *nlh;

	for (i = 0; i < ne->n_socks; i++)
		if (sock_set(ne->socks[i]) == k)
			sock_key(ne->socks[i], k, keys[n++]);
	if (!n) {
		free(keys);
		return false;
	}
	sort_array(keys, n, KEY_MAX, key_cmp);
	snprintf(name, sizeof(name), "s%d", k);
	s = nftnl_set_alloc();
	nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, set_key_type[k]);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, len);
	nftnl_set_set_u32(s, NFTNL_SET_ID, k + 1);
	nlh = batch_msg(b, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, "set");
	nftnl_set_nlmsg_build_payload(nlh, s);
	batch_add(b, nlh);
	nftnl_set_free(s);
	for (i = 0; i < n; i++) {
		struct nftnl_set_elem *e;

		/*
		 * a key twice (one socket at two fds) goes in once; the last
		 * key a repeat or not, what is gathered is sent (a repeat at
		 * the end left the last chunk unsent, and leaked it)
		 */
		if (!i || memcmp(keys[i], keys[i - 1], KEY_MAX)) {
			if (!chunk) {
				chunk = nftnl_set_alloc();
				nftnl_set_set_str(chunk, NFTNL_SET_TABLE, table);
				nftnl_set_set_str(chunk, NFTNL_SET_NAME, name);
				nftnl_set_set_u32(chunk, NFTNL_SET_FAMILY, NFPROTO_INET);
				nftnl_set_set_u32(chunk, NFTNL_SET_ID, k + 1);
			}
			e = nftnl_set_elem_alloc();
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, keys[i], len);
			nftnl_set_elem_add(chunk, e);
		}
		if (!chunk || ((i + 1) % ELEMS_PER_MSG && i + 1 < n))
			continue;
		nlh = batch_msg(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, "set elements");
		nftnl_set_elems_nlmsg_build_payload(nlh, chunk);
		batch_add(b, nlh);
		nftnl_set_free(chunk);
		chunk = NULL;
	}
	free(keys);
	return true;
}

static void put_chain(struct nl_batch *b, const char *table, const char *name, uint32_t hook)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, PRIO_RAW);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nlh = batch_msg(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, "chain");
	nftnl_chain_nlmsg_build_payload(nlh, c);
	batch_add(b, nlh);
	nftnl_chain_free(c);
}

static void expr_meta_cmp(struct nftnl_rule *r, uint32_t key, const void *val, size_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
	e = nftnl_expr_alloc("cmp");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, val, len);
	nftnl_rule_add_expr(r, e);
}

static void expr_verdict(struct nftnl_rule *r, int verdict)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, verdict);
	nftnl_rule_add_expr(r, e);
}

static struct nftnl_rule *rule_new(const char *table, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	return r;
}

static void put_rule(struct nl_batch *b, struct nftnl_rule *r)
{
	struct nlmsghdr *nlh = batch_msg(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, "rule");

	nftnl_rule_nlmsg_build_payload(nlh, r);
	batch_add(b, nlh);
	nftnl_rule_free(r);
}

/* meta mark SK_INJECT_MARK accept (see sk.h) */
static void put_mark_rule(struct nl_batch *b, const char *table, const char *chain)
{
	struct nftnl_rule *r = rule_new(table, chain);
	uint32_t mark = SK_INJECT_MARK;

	expr_meta_cmp(r, NFT_META_MARK, &mark, sizeof(mark));
	expr_verdict(r, NF_ACCEPT);
	put_rule(b, r);
}

/* "FIELDS @sK drop", as nft makes it: its protocols checked first */
static void put_drop_rule(struct nl_batch *b, const char *table, const char *chain,
			  const struct nl_match *m, enum set_kind k)
{
	struct nftnl_rule *r = rule_new(table, chain);
	uint8_t tcp = IPPROTO_TCP;
	unsigned int i, word = 0;
	struct nftnl_expr *e;
	char name[8];

	if (m->nfproto)
		expr_meta_cmp(r, NFT_META_NFPROTO, &m->nfproto, 1);
	expr_meta_cmp(r, NFT_META_L4PROTO, &tcp, 1);
	for (i = 0; i < m->n; i++) {
		e = nftnl_expr_alloc("payload");
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, m->f[i].base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, m->f[i].off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, m->f[i].len);
		/* a 128-bit register where one starts, else its 32-bit part */
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG,
				   word % 4 ? NFT_REG32_00 + word : NFT_REG_1 + word / 4);
		nftnl_rule_add_expr(r, e);
		word += (m->f[i].len + 3) / 4;
	}
	snprintf(name, sizeof(name), "s%d", k);
	e = nftnl_expr_alloc("lookup");
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, name);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, k + 1);
	nftnl_rule_add_expr(r, e);
	expr_verdict(r, NF_DROP);
	put_rule(b, r);
}

/* The drop rules of set k (both ways for connections). */
static void put_set_rules(struct nl_batch *b, const char *table, const char *chain, enum set_kind k)
{
	put_drop_rule(b, table, chain, &set_match[k], k);
	if (set_match_back[k].n)
		put_drop_rule(b, table, chain, &set_match_back[k], k);
}

/*
 * The batch that creates the table (owned: with the owner flag), after
 * deleting the one of the same name if replace: sets of the sockets, a
 * chain at the raw priority of input (every set) and of output (what
 * the tree's connections send; a listener sends only SYN-ACKs).
 */
static void lock_batch(struct nl_batch *b, const char *table, const NetlockEntry *ne, bool owned,
		       bool replace)
{
	bool has[SET_MAX];
	int k;

	batch_init(b);
	if (replace)
		put_table(b, table, NFT_MSG_DELTABLE, 0);
	put_table(b, table, NFT_MSG_NEWTABLE, owned ? NFT_TABLE_F_OWNER : 0);
	for (k = 0; k < SET_MAX; k++)
		has[k] = put_set(b, table, ne, k);
	put_chain(b, table, "in", NF_INET_LOCAL_IN);
	put_mark_rule(b, table, "in");
	for (k = 0; k < SET_MAX; k++)
		if (has[k])
			put_set_rules(b, table, "in", k);
	put_chain(b, table, "out", NF_INET_LOCAL_OUT);
	put_mark_rule(b, table, "out");
	for (k = SET_C4; k <= SET_C6; k++)
		if (has[k])
			put_set_rules(b, table, "out", k);
}

/* Run the batch that makes the table; 0, or -1 with why in *err. */
static int lock_make(struct netlock *l, const char *table, const NetlockEntry *ne, bool owned,
		     bool replace, char **err)
{
	struct nl_batch b;
	int ret, errnum;

	lock_batch(&b, table, ne, owned, replace);
	ret = batch_run(l, &b, err, &errnum);
	batch_free(&b);
	return ret;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* "stasis-held-PID-[r]TIME": unique, and says since when it holds */
static void table_name(struct netlock *l, pid_t pid, const char *what)
{
	l->since = realtime_ns();
	l->table = xsprintf("stasis-held-%d-%s%llx", pid, what, (unsigned long long)l->since);
}

/* The time a table named by table_name() was made, 0 if the name does not say. */
static uint64_t table_since(const char *name)
{
	const char *p = strrchr(name, '-');

	return p ? strtoull(p + 1, NULL, 16) : 0;
}

/* Install the lock for ne's sockets; 0, or -1 after one error line. */
static int lock_install(struct netlock *l, const NetlockEntry *ne, const char *who)
{
	char *err = NULL;

	if (lock_make(l, l->table, ne, true, false, &err)) {
		pr_err("%s: cannot lock the network of %zu TCP socket(s) with nftables (table inet "
		       "%s): %s (--network-lock skip goes without)\n",
		       who, ne->n_socks, l->table, err);
		free(err);
		return -1;
	}
	l->held = true;
	pr_debug("network lock: table inet %s holds %zu TCP socket(s)\n", l->table, ne->n_socks);
	return 0;
}

/* Delete table name: 0 deleted, 1 it was not there (missing_ok), -1 after a warning. */
static int lock_delete(struct netlock *l, const char *name, bool missing_ok)
{
	struct nl_batch b;
	char *err = NULL;
	int ret, errnum;

	batch_init(&b);
	put_table(&b, name, NFT_MSG_DELTABLE, 0);
	ret = batch_run(l, &b, &err, &errnum);
	batch_free(&b);
	if (ret && !(missing_ok && errnum == ENOENT)) {
		pr_warn("cannot lift the network lock (nft delete table inet %s): %s\n", name, err);
		free(err);
		return -1;
	}
	free(err);
	return ret ? 1 : 0;
}

static void lock_lift(struct netlock *l)
{
	if (l->held && !lock_delete(l, l->table, false))
		l->held = false;
}

static void lock_free(struct netlock *l)
{
	if (l->nl)
		mnl_socket_close(l->nl); /* an owned table still there goes with its socket */
	l->nl = NULL;
	free(l->table);
	l->table = NULL;
}

/*
 * stasis check: can a lock be installed here?  NULL, or why not.  An
 * owned table made and deleted in one transaction.
 */
const char *netlock_probe(void)
{
	static char why[200];
	struct netlock l = { .netns = -1 };
	struct nl_batch b;
	char *err = NULL;
	int errnum;

	l.table = xsprintf("stasis-probe-%d", (int)getpid());
	batch_init(&b);
	put_table(&b, l.table, NFT_MSG_NEWTABLE, NFT_TABLE_F_OWNER);
	put_table(&b, l.table, NFT_MSG_DELTABLE, 0);
	if (batch_run(&l, &b, &err, &errnum)) {
		snprintf(why, sizeof(why), "%s", err);
		free(err);
	}
	batch_free(&b);
	lock_free(&l);
	return why[0] ? why : NULL;
}

/* ------------------------------------------------------------- dump */

static int tree_sk_cmp(const void *a, const void *b)
{
	const struct tree_sk *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* The socket fds of every task, each socket once. */
static struct tree_sk *tree_sockets(struct dump_ctx *ctx, size_t *np)
{
	size_t i, n, u = 0;
	struct tree_sk *v = sk_tree_fds(ctx, &n);

	if (n)
		sort_array(v, n, sizeof(*v), tree_sk_cmp);
	for (i = 0; i < n; i++)
		if (!u || v[i].ino != v[u - 1].ino)
			v[u++] = v[i];
	*np = u;
	return v;
}

static void set_bytes(ProtobufCBinaryData *b, const void *p, size_t len)
{
	b->data = xmalloc(len);
	memcpy(b->data, p, len);
	b->len = len;
}

/* One end's address (AF_INET or AF_INET6) into (addr, port); false if none. */
static bool end_addr(const struct sockaddr_storage *ss, ProtobufCBinaryData *a, uint32_t *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;

		set_bytes(a, &s->sin_addr, 4);
		*port = ntohs(s->sin_port);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;

		set_bytes(a, &s->sin6_addr, 16);
		*port = ntohs(s->sin6_port);
		return true;
	}
	return false;
}

/*
 * A TCP socket of the tree in a held state: its addresses, read from our
 * duplicate of it; NULL if it is not one (or cannot be read: the fd walk
 * says why later).
 */
static NetlockSock *tcp_sock(int fd)
{
	struct sockaddr_storage src, dst;
	socklen_t len = sizeof(src);
	uint8_t state = 0;
	NetlockSock *s;

	/* TCP_INFO is refused by every other protocol (an MPTCP socket is refused later) */
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &state, &(socklen_t){ 1 }) ||
	    !(HELD_STATES & (1U << state)) || getsockname(fd, (struct sockaddr *)&src, &len))
		return NULL;
	len = sizeof(dst);
	if (state != 10 && getpeername(fd, (struct sockaddr *)&dst, &len))
		return NULL;
	s = xmalloc(sizeof(*s));
	netlock_sock__init(s);
	s->family = src.ss_family;
	if (!end_addr(&src, &s->src_addr, &s->src_port) ||
	    (state != 10 &&
	     (dst.ss_family != src.ss_family || !end_addr(&dst, &s->dst_addr, &s->dst_port)))) {
		netlock_sock__free_unpacked(s, NULL);
		return NULL;
	}
	s->has_dst_addr = s->has_dst_port = state != 10; /* not a listener */
	return s;
}

/*
 * The tree's TCP sockets, from duplicates of its fds (pidfd_getfd): a
 * few calls per socket of the tree, where a sock_diag dump walks every
 * bucket of the host's TCP hash tables (some 12 ms on this machine,
 * whatever the tree holds).
 */
static void tree_tcp(struct dump_ctx *ctx, struct netlock_dump *st)
{
	size_t i, n;
	struct tree_sk *v = tree_sockets(ctx, &n);
	int *pidfd = xmalloc((ctx->ntasks + 1) * sizeof(*pidfd));
	NetlockEntry *ne = &st->ne;

	for (i = 0; i < ctx->ntasks; i++)
		pidfd[i] = -2; /* not opened yet */
	for (i = 0; i < n; i++) {
		size_t t = v[i].task;
		NetlockSock *s;
		int fd;

		if (pidfd[t] == -2)
			pidfd[t] = syscall(__NR_pidfd_open, ctx->tasks[t].pid, 0);
		fd = pidfd[t] < 0 ? -1 : syscall(__NR_pidfd_getfd, pidfd[t], v[i].fd, 0);
		if (fd < 0)
			continue;
		s = tcp_sock(fd);
		close(fd);
		if (!s)
			continue;
		ne->socks = xrealloc(ne->socks, (ne->n_socks + 1) * sizeof(*ne->socks));
		ne->socks[ne->n_socks++] = s;
	}
	for (i = 0; i < ctx->ntasks; i++)
		if (pidfd[i] >= 0)
			close(pidfd[i]);
	free(pidfd);
	free(v);
}

/* The tree is frozen, nothing read yet: hold its TCP sockets' packets. */
static int netlock_dump_check(struct dump_ctx *ctx)
{
	struct netlock_dump *st = res_dump_state(ctx, &netlock_res);
	char who[32];

	if (ctx->opts->network_lock_skip)
		return 0;
	netlock_entry__init(&st->ne);
	tree_tcp(ctx, st);
	if (!st->ne.n_socks)
		return 0;
	table_name(&st->lock, ctx->opts->pid, "");
	st->lock.netns = sk_netns_fd(); /* the tree's */
	st->ne.table = st->lock.table;
	snprintf(who, sizeof(who), "pid %d", ctx->opts->pid);
	return lock_install(&st->lock, &st->ne, who);
}

/* Once per dump, with the first task's records. */
static int netlock_dump_write(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct netlock_dump *st = res_dump_state(ctx, &netlock_res);

	if (!st->lock.held || st->written)
		return 0;
	st->written = true;
	return img_write_msg(&ctx->w, IMG_NETLOCK, &st->ne.base);
}

/*
 * The tree goes on (-R, a failed dump): lift the lock.  It is killed:
 * the owned table becomes one that outlives us, until restore.
 */
static void *close_nl(void *nl)
{
	mnl_socket_close(nl);
	return NULL;
}

/*
 * The lock is made for good (or lifted): its socket is not needed any
 * more, but closing it waits until the kernel has destroyed the
 * transactions just committed (nf_tables flushes its destroy work, an
 * RCU grace period: 8-20 ms on this 2-CPU VM).  A thread closes it while
 * the dump ends (the tree's kill, the guardian's exit); dump_fini waits
 * for it.
 */
static void lock_close_behind(struct netlock_dump *st)
{
	if (!st->lock.nl || pthread_create(&st->closer, NULL, close_nl, st->lock.nl))
		return; /* lock_free closes it */
	st->lock.nl = NULL;
	st->closing = true;
}

static void netlock_dump_end(struct dump_ctx *ctx, bool kill)
{
	struct netlock_dump *st = res_dump_state(ctx, &netlock_res);
	char *err = NULL;

	if (!st->lock.held)
		return;
	if (!kill) {
		lock_lift(&st->lock);
		lock_close_behind(st);
		pr_info("network lock lifted after %.1f ms\n",
			(realtime_ns() - st->lock.since) / 1e6);
		return;
	}
	if (lock_make(&st->lock, st->lock.table, &st->ne, false, true, &err)) {
		pr_warn("the network lock cannot outlive the dump (table inet %s): %s; the peers "
			"of the tree's connections may see them reset\n",
			st->lock.table, err);
		free(err);
	} else {
		st->lock.held = false;
		lock_close_behind(st);
		pr_info("network lock: table inet %s drops the tree's TCP packets until restore "
			"(`nft delete table inet %s` lifts it)\n",
			st->lock.table, st->lock.table);
	}
}

static void netlock_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct netlock_dump *st = state;
	size_t i;

	if (st->closing)
		pthread_join(st->closer, NULL);
	lock_free(&st->lock);
	for (i = 0; i < st->ne.n_socks; i++)
		netlock_sock__free_unpacked(st->ne.socks[i], NULL);
	free(st->ne.socks);
}

/* ---------------------------------------------------------- restore */

int netlock_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct netlock_image *ni = res_image_state(img, &netlock_res);
	NetlockEntry *ne = msg;
	size_t i;

	if (ni->ne || strncmp(ne->table, "stasis-held-", 12) ||
	    strspn(ne->table, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(ne->table))
		goto bad;
	for (i = 0; i < ne->n_socks; i++) {
		const NetlockSock *s = ne->socks[i];
		size_t alen = s->family == AF_INET ? 4 : 16;

		if ((s->family != AF_INET && s->family != AF_INET6) || s->src_addr.len != alen ||
		    s->src_port > 65535 || s->has_dst_addr != s->has_dst_port ||
		    (s->has_dst_addr && (s->dst_addr.len != alen || s->dst_port > 65535)))
			goto bad;
	}
	ni->ne = ne;
	return 0;
bad:
	pr_err("image %s is corrupt: bad network lock record\n", img->r.path);
	netlock_entry__free_unpacked(ne, NULL);
	return -1;
}

/* Nothing forked, no socket built: hold the recorded sockets again. */
static int netlock_restore_check(struct image *img, const struct restore_opts *o)
{
	struct netlock_image *ni = res_image_state(img, &netlock_res);
	pid_t root = img->ntasks ? (pid_t)img->tasks[0].te->pid : 0;

	if (!ni->ne || !ni->ne->n_socks || o->network_lock_skip)
		return 0;
	table_name(&ni->lock, root, "r");
	ni->lock.netns = -1;
	ni->inside = image_task(img, img->hdr->root_pid) &&
		     image_task(img, img->hdr->root_pid)->te->has_net_ns && !net_ns_joined();
	if (ni->inside)
		return 0; /* netlock_hold_here, in the namespace the root makes */
	return lock_install(&ni->lock, ni->ne, "restore");
}

int netlock_hold_here(struct image *img)
{
	struct netlock_image *ni = res_image_state(img, &netlock_res);
	struct netlock l = { .netns = -1 };
	char *err = NULL;
	int ret;

	if (!ni->inside)
		return 0;
	ret = lock_make(&l, ni->lock.table, ni->ne, false, false, &err);
	if (ret) {
		pr_err("restore: cannot lock the network of %zu TCP socket(s) in the new network "
		       "namespace (table inet %s): %s (--network-lock skip goes without)\n",
		       ni->ne->n_socks, ni->lock.table, err);
		free(err);
	}
	lock_free(&l);
	return ret;
}

/* The root is let go: lift the lock in the namespace it made (see the top). */
static int netlock_release(struct rst_ctx *c)
{
	struct netlock_image *ni = res_image_state(c->img, &netlock_res);
	struct netlock l = { .netns = -1 };
	char path[64];

	if (!ni->inside || c->t != image_task(c->img, c->img->hdr->root_pid))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", c->host_pid);
	l.netns = open(path, O_RDONLY | O_CLOEXEC);
	if (l.netns < 0) {
		pr_perror("cannot open %s to lift the network lock", path);
		return -1;
	}
	lock_delete(&l, ni->lock.table, false);
	lock_free(&l);
	close(l.netns);
	return 0;
}

/* The tree runs (ok), or nothing of it is left: lift our lock (and the dump's). */
static void netlock_restore_end(struct image *img, const struct restore_opts *o, bool ok)
{
	struct netlock_image *ni = res_image_state(img, &netlock_res);

	uint64_t since = ni->ne ? table_since(ni->ne->table) : 0, now = realtime_ns();
	uint64_t ours = ni->lock.held ? ni->lock.since : 0;

	lock_lift(&ni->lock);
	if (!ok || !ni->ne || o->network_lock_skip)
		return;
	/*
	 * From the dump's freeze, if its lock was still there (and the clocks of
	 * both hosts agree); after dump -R the original answered meanwhile: from
	 * our own lock.
	 */
	if (lock_delete(&ni->lock, ni->ne->table, true) == 1)
		since = ours;
	if (since && since < now)
		pr_info("network lock lifted: the tree's TCP peers got no answer for %.1f ms\n",
			(now - since) / 1e6);
}

static void netlock_image_fini(struct image *img, void *state)
{
	struct netlock_image *ni = state;

	lock_free(&ni->lock);
	if (ni->ne)
		netlock_entry__free_unpacked(ni->ne, NULL);
}

/*
 * The network lock: after tcp (whose dump_end takes the sockets out of
 * repair mode before the lock goes).
 */
const struct res_ops netlock_res = {
	.name = "netlock",
	.dump_state_size = sizeof(struct netlock_dump),
	.image_state_size = sizeof(struct netlock_image),
	.dump_check = netlock_dump_check,
	.dump_write = netlock_dump_write,
	.dump_end = netlock_dump_end,
	.dump_fini = netlock_dump_fini,
	.restore_check = netlock_restore_check,
	.release = netlock_release,
	.restore_end = netlock_restore_end,
	.image_fini = netlock_image_fini,
};
