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
 * It goes in through libnftables in one transaction, with the table's
 * owner flag: the kernel deletes it when the netlink socket of our nft
 * context closes, so a stasis that dies in any way (a crash, SIGKILL)
 * leaves nothing behind.
 *
 * Dump: dump_check (the tree is frozen, nothing read yet) finds the TCP
 * sockets of the tree (socket inodes of every task's fds, matched against
 * a sock_diag dump of TCP over IPv4 and IPv6) and installs the table;
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
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* A lock in place: our nft context (its socket owns the table) and the name. */
struct netlock {
	struct nft_ctx *nft;
	int netns; /* where its context is made: -1 ours */
	char *table;
	bool held;	/* the table exists */
	uint64_t since; /* CLOCK_REALTIME ns when it was made (also in its name) */
};

struct netlock_dump {
	struct netlock lock;
	NetlockEntry ne;
	unsigned long *inos; /* socket inodes of the tree, sorted */
	size_t ninos;
	bool written;
};

struct netlock_image {
	NetlockEntry *ne; /* the IMG_NETLOCK record, if any */
	struct netlock lock;
	bool inside; /* the root makes a network namespace: the lock goes in there */
};

/* ------------------------------------------------------ nft commands */

/* An nft context whose netlink socket lives in network namespace netns (-1: ours). */
static struct nft_ctx *nft_ctx_in(int netns)
{
	struct nft_ctx *nft;
	int ours;

	if (netns < 0)
		return nft_ctx_new(NFT_CTX_DEFAULT);
	ours = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ours < 0 || setns(netns, CLONE_NEWNET)) {
		if (ours >= 0)
			close(ours);
		return NULL;
	}
	nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (setns(ours, CLONE_NEWNET)) {
		pr_perror("cannot go back to our own network namespace");
		abort();
	}
	close(ours);
	return nft;
}

/* CAP_NET_ADMIN over our network namespace (nftables wants it)? */
static bool net_admin(void)
{
	return cap_effective(CAP_NET_ADMIN) && ns_owned_by_us("net");
}

/* Run one nft script in the lock's context; 0, or -1 with nft's error in *err. */
static int nft_run(struct netlock *l, const char *script, char **err)
{
	const char *e;

	/* libnftables would print a line of its own to stderr: say it once, here */
	if (l->netns < 0 && !net_admin()) {
		*err = xstrdup(
		    "nftables needs CAP_NET_ADMIN over this network namespace, which we lack");
		return -1;
	}
	if (!l->nft) {
		l->nft = nft_ctx_in(l->netns);
		if (!l->nft) {
			*err = xstrdup("cannot create an nftables context");
			return -1;
		}
		nft_ctx_buffer_output(l->nft);
		nft_ctx_buffer_error(l->nft);
	}
	if (!nft_run_cmd_from_buffer(l->nft, script))
		return 0;
	e = nft_ctx_get_error_buffer(l->nft);
	if (e && !strncmp(e, "Error: ", 7))
		e += 7;
	*err = xstrdup(e && *e ? e : "nft command failed");
	/* the first line says it: "Could not process rule: ..." */
	(*err)[strcspn(*err, "\n")] = '\0';
	return -1;
}

static void addr_text(FILE *f, uint32_t family, const ProtobufCBinaryData *a)
{
	char buf[INET6_ADDRSTRLEN] = "?";
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	/* an IPv4-mapped address on an AF_INET6 socket travels as IPv4 */
	if (a->len == 16 && !memcmp(a->data, mapped, 12))
		inet_ntop(AF_INET, a->data + 12, buf, sizeof(buf));
	else
		inet_ntop(a->len == 4 ? AF_INET : AF_INET6, a->data, buf, sizeof(buf));
	fputs(buf, f);
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

static const char *const set_type[SET_MAX] = {
	[SET_C4] = "ipv4_addr . inet_service . ipv4_addr . inet_service",
	[SET_C6] = "ipv6_addr . inet_service . ipv6_addr . inet_service",
	[SET_L4] = "ipv4_addr . inet_service",
	[SET_L6] = "ipv6_addr . inet_service",
	[SET_LP] = "inet_service",
};

static enum set_kind sock_set(const NetlockSock *s)
{
	bool v4 = is_v4(&s->src_addr);

	if (s->has_dst_addr)
		return v4 ? SET_C4 : SET_C6;
	if (is_any(&s->src_addr))
		return SET_LP;
	return v4 ? SET_L4 : SET_L6;
}

/* "ADDR . PORT" of one end. */
static char *end_text(uint32_t family, const ProtobufCBinaryData *a, uint32_t port)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	addr_text(f, family, a);
	fprintf(f, " . %u", port);
	fclose(f);
	return buf;
}

/*
 * One socket's element of set k.  A connection's two ends go in a fixed
 * order (the rules match both ways), so that both ends of a connection
 * inside the tree make the same element.
 */
static char *sock_element(const NetlockSock *s, enum set_kind k)
{
	char *src, *dst, *e;

	if (k == SET_LP)
		return xsprintf("%u", s->src_port);
	src = end_text(s->family, &s->src_addr, s->src_port);
	if (k == SET_L4 || k == SET_L6)
		return src;
	dst = end_text(s->family, &s->dst_addr, s->dst_port);
	e = strcmp(src, dst) < 0 ? xsprintf("%s . %s", src, dst) : xsprintf("%s . %s", dst, src);
	free(src);
	free(dst);
	return e;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The elements of one set, comma separated, each once; false if it has none. */
static bool set_elements(FILE *f, const NetlockEntry *ne, enum set_kind k)
{
	char **v = xmalloc((ne->n_socks + 1) * sizeof(*v));
	size_t i, n = 0;

	for (i = 0; i < ne->n_socks; i++)
		if (sock_set(ne->socks[i]) == k)
			v[n++] = sock_element(ne->socks[i], k);
	if (n)
		sort_array(v, n, sizeof(*v), str_cmp);
	for (i = 0; i < n; i++) {
		if (!i || strcmp(v[i], v[i - 1]))
			fprintf(f, "%s%s", i ? ", " : "", v[i]);
	}
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return n > 0;
}

static const char *const set_match[SET_MAX] = {
	[SET_C4] = "ip saddr . tcp sport . ip daddr . tcp dport",
	[SET_C6] = "ip6 saddr . tcp sport . ip6 daddr . tcp dport",
	[SET_L4] = "ip daddr . tcp dport",
	[SET_L6] = "ip6 daddr . tcp dport",
	[SET_LP] = "tcp dport",
};

/* Connections are entered one way: their packets the other way match this. */
static const char *const set_match_back[SET_MAX] = {
	[SET_C4] = "ip daddr . tcp dport . ip saddr . tcp sport",
	[SET_C6] = "ip6 daddr . tcp dport . ip6 saddr . tcp sport",
};

/* The drop rules of set k (both ways for connections), if it has elements. */
static void set_rules(FILE *f, int k, bool has)
{
	if (!has)
		return;
	fprintf(f, "\t\t%s @s%d drop\n", set_match[k], k);
	if (set_match_back[k])
		fprintf(f, "\t\t%s @s%d drop\n", set_match_back[k], k);
}

/*
 * The script that creates the table (owned: with the owner flag), after
 * deleting the one of the same name if replace.
 */
static char *lock_script(const char *table, const NetlockEntry *ne, bool owned, bool replace)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	bool has[SET_MAX];
	int k;

	if (replace)
		fprintf(f, "delete table inet %s\n", table);
	fprintf(f, "table inet %s {\n", table);
	if (owned)
		fputs("\tflags owner\n", f);
	for (k = 0; k < SET_MAX; k++) {
		char *el = NULL;
		size_t ellen = 0;
		FILE *e = open_memstream(&el, &ellen);

		has[k] = set_elements(e, ne, k);
		fclose(e);
		if (has[k])
			fprintf(f, "\tset s%d { type %s; elements = { %s } }\n", k, set_type[k],
				el);
		free(el);
	}
	fputs("\tchain in {\n\t\ttype filter hook input priority raw; policy accept;\n", f);
	fprintf(f, "\t\tmeta mark %#x accept\n", SK_INJECT_MARK); /* see sk.h */
	for (k = 0; k < SET_MAX; k++)
		set_rules(f, k, has[k]);
	fputs("\t}\n\tchain out {\n\t\ttype filter hook output priority raw; policy accept;\n", f);
	fprintf(f, "\t\tmeta mark %#x accept\n", SK_INJECT_MARK);
	/* what the tree's connections send (a listener sends only SYN-ACKs) */
	for (k = SET_C4; k <= SET_C6; k++)
		set_rules(f, k, has[k]);
	fputs("\t}\n}\n", f);
	fclose(f);
	return buf;
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
	char *script = lock_script(l->table, ne, true, false), *err = NULL;
	int ret = nft_run(l, script, &err);

	free(script);
	if (ret) {
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

/* Delete table name; 0, or -1 (with a warning) unless missing_ok and it is gone. */
/* 0 deleted, 1 it was not there (missing_ok), -1 after a warning. */
static int lock_delete(struct netlock *l, const char *name, bool missing_ok)
{
	char *script = xsprintf("delete table inet %s\n", name), *err = NULL;
	int ret = nft_run(l, script, &err);
	bool missing = ret && strstr(err, "No such file or directory");

	free(script);
	if (ret && !(missing_ok && missing)) {
		pr_warn("cannot lift the network lock (nft delete table inet %s): %s\n", name, err);
		free(err);
		return -1;
	}
	free(err);
	return missing ? 1 : 0;
}

static void lock_lift(struct netlock *l)
{
	if (l->held && !lock_delete(l, l->table, false))
		l->held = false;
}

static void lock_free(struct netlock *l)
{
	if (l->nft)
		nft_ctx_free(l->nft); /* an owned table still there goes with its socket */
	l->nft = NULL;
	free(l->table);
	l->table = NULL;
}

/* stasis check: can a lock be installed here?  NULL, or why not. */
const char *netlock_probe(void)
{
	static char why[200];
	struct netlock l = { .netns = -1 };
	char *script, *err = NULL;

	l.table = xsprintf("stasis-probe-%d", (int)getpid());
	script =
	    xsprintf("table inet %s { flags owner; }\ndelete table inet %s\n", l.table, l.table);
	if (nft_run(&l, script, &err)) {
		snprintf(why, sizeof(why), "%s", err);
		free(err);
	}
	free(script);
	lock_free(&l);
	return why[0] ? why : NULL;
}

/* ------------------------------------------------------------- dump */

static int ino_cmp(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/* The socket inodes of every task's fds. */
static void tree_sockets(struct dump_ctx *ctx, struct netlock_dump *st)
{
	size_t i, cap = 0;

	for (i = 0; i < ctx->ntasks; i++) {
		char path[64], link[64];
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/fd", ctx->tasks[i].pid);
		d = opendir(path);
		while (d && (de = readdir(d))) {
			ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);

			if (n < 9 || strncmp(link, "socket:[", 8))
				continue;
			link[n] = '\0';
			if (st->ninos == cap) {
				cap = cap ? cap * 2 : 64;
				st->inos = xrealloc(st->inos, cap * sizeof(*st->inos));
			}
			st->inos[st->ninos++] = strtoul(link + 8, NULL, 10);
		}
		if (d)
			closedir(d);
	}
	if (st->ninos)
		sort_array(st->inos, st->ninos, sizeof(*st->inos), ino_cmp);
}

static void set_bytes(ProtobufCBinaryData *b, const void *p, size_t len)
{
	b->data = xmalloc(len);
	memcpy(b->data, p, len);
	b->len = len;
}

/* One sock_diag answer: a TCP socket; kept if the tree holds it. */
static int diag_cb(const struct nlmsghdr *nlh, void *data)
{
	struct netlock_dump *st = data;
	const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	unsigned long ino = m->idiag_inode;
	size_t alen = m->idiag_family == AF_INET ? 4 : 16;
	NetlockEntry *ne = &st->ne;
	NetlockSock *s;

	if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY || !ino ||
	    !bsearch(&ino, st->inos, st->ninos, sizeof(ino), ino_cmp))
		return MNL_CB_OK;
	s = xmalloc(sizeof(*s));
	netlock_sock__init(s);
	s->family = m->idiag_family;
	set_bytes(&s->src_addr, m->id.idiag_src, alen);
	s->src_port = ntohs(m->id.idiag_sport);
	if (m->idiag_state != 10) { /* not a listener */
		s->has_dst_addr = s->has_dst_port = true;
		set_bytes(&s->dst_addr, m->id.idiag_dst, alen);
		s->dst_port = ntohs(m->id.idiag_dport);
	}
	ne->socks = xrealloc(ne->socks, (ne->n_socks + 1) * sizeof(*ne->socks));
	ne->socks[ne->n_socks++] = s;
	return MNL_CB_OK;
}

static int find_tcp(struct netlock_dump *st, int family)
{
	struct inet_diag_req_v2 req = {
		.sdiag_family = family,
		.sdiag_protocol = IPPROTO_TCP,
		.idiag_states = HELD_STATES,
	};

	return sk_diag_dump(&req, sizeof(req), diag_cb, st);
}

/* The tree is frozen, nothing read yet: hold its TCP sockets' packets. */
static int netlock_dump_check(struct dump_ctx *ctx)
{
	struct netlock_dump *st = res_dump_state(ctx, &netlock_res);
	char who[32];

	if (ctx->opts->network_lock_skip)
		return 0;
	tree_sockets(ctx, st);
	if (!st->ninos)
		return 0;
	netlock_entry__init(&st->ne);
	if (find_tcp(st, AF_INET) || find_tcp(st, AF_INET6))
		return -1;
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
static void netlock_dump_end(struct dump_ctx *ctx, bool kill)
{
	struct netlock_dump *st = res_dump_state(ctx, &netlock_res);
	char *script, *err = NULL;

	if (!st->lock.held)
		return;
	if (!kill) {
		lock_lift(&st->lock);
		pr_info("network lock lifted after %.1f ms\n",
			(realtime_ns() - st->lock.since) / 1e6);
		return;
	}
	script = lock_script(st->lock.table, &st->ne, false, true);
	if (nft_run(&st->lock, script, &err)) {
		pr_warn("the network lock cannot outlive the dump (table inet %s): %s; the peers "
			"of the tree's connections may see them reset\n",
			st->lock.table, err);
		free(err);
	} else {
		st->lock.held = false;
		pr_info("network lock: table inet %s drops the tree's TCP packets until restore "
			"(`nft delete table inet %s` lifts it)\n",
			st->lock.table, st->lock.table);
	}
	free(script);
}

static void netlock_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct netlock_dump *st = state;
	size_t i;

	lock_free(&st->lock);
	for (i = 0; i < st->ne.n_socks; i++)
		netlock_sock__free_unpacked(st->ne.socks[i], NULL);
	free(st->ne.socks);
	free(st->inos);
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
	char *script, *err = NULL;
	int ret;

	if (!ni->inside)
		return 0;
	script = lock_script(ni->lock.table, ni->ne, false, false);
	ret = nft_run(&l, script, &err);
	free(script);
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
