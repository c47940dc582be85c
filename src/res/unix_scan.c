/*
 * Unix sockets, the listing and the grouping: one sock_diag dump
 * (NETLINK_SOCK_DIAG through libmnl) lists every unix socket of the host
 * with its name, peer, pending connections and shutdown state, once per
 * dump; the sockets the tree holds are marked (their receive queues read
 * at once, since a datagram from a named socket of the tree ties the
 * sender to the receiver's group), then tied into groups with a
 * union-find: a connected pair, a listener with the connections it
 * accepted or still queues, a datagram receiver with its named senders.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sk.h"
#include "res.h"
#include "unix_sk.h"
#include "util.h"

static int ino_cmp(const void *a, const void *b)
{
	const struct usk *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

struct usk *unix_find(struct unix_table *t, uint32_t ino)
{
	struct usk key = { .ino = ino };

	return ino && t->n ? bsearch(&key, t->sk, t->n, sizeof(*t->sk), ino_cmp) : NULL;
}

static int diag_attr(const struct nlattr *a, void *data)
{
	struct usk *s = data;
	const void *p = mnl_attr_get_payload(a);
	uint16_t len = mnl_attr_get_payload_len(a);

	switch (mnl_attr_get_type(a)) {
	case UNIX_DIAG_NAME:
		s->namelen = len < sizeof(s->name) ? len : sizeof(s->name);
		memcpy(s->name, p, s->namelen);
		break;
	case UNIX_DIAG_VFS:
		if (len >= sizeof(struct unix_diag_vfs)) {
			const struct unix_diag_vfs *v = p;

			s->has_vfs = true;
			s->vfs_ino = v->udiag_vfs_ino;
			s->vfs_dev = v->udiag_vfs_dev;
		}
		break;
	case UNIX_DIAG_PEER:
		if (len >= 4)
			s->peer = mnl_attr_get_u32(a);
		break;
	case UNIX_DIAG_ICONS:
		s->nicons = len / 4;
		s->icons = xmalloc((s->nicons ? s->nicons : 1) * 4);
		memcpy(s->icons, p, s->nicons * 4);
		break;
	case UNIX_DIAG_RQLEN:
		if (len >= sizeof(struct unix_diag_rqlen)) {
			const struct unix_diag_rqlen *r = p;

			s->rq = r->udiag_rqueue;
			s->wq = r->udiag_wqueue;
		}
		break;
	case UNIX_DIAG_MEMINFO:
		if (len >= (SK_MEMINFO_WMEM_ALLOC + 1) * 4)
			s->wmem = ((const uint32_t *)p)[SK_MEMINFO_WMEM_ALLOC];
		break;
	case UNIX_DIAG_SHUTDOWN:
		if (len >= 1)
			s->shutdown = *(const uint8_t *)p;
		break;
	}
	return MNL_CB_OK;
}

static int diag_msg(const struct nlmsghdr *nlh, void *data)
{
	struct unix_table *t = data;
	const struct unix_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	struct usk *s;

	t->sk = xrealloc(t->sk, (t->n + 1) * sizeof(*t->sk));
	s = &t->sk[t->n++];
	memset(s, 0, sizeof(*s));
	s->ino = m->udiag_ino;
	s->type = m->udiag_type;
	s->state = m->udiag_state;
	mnl_attr_parse(nlh, sizeof(*m), diag_attr, s);
	return MNL_CB_OK;
}

/* Every unix socket of our network namespace, sorted by inode. */
static int diag_dump(struct unix_table *t)
{
	struct unix_diag_req req = {
		.sdiag_family = AF_UNIX,
		.udiag_states = -1,
		.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER |
			      UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO,
	};

	if (sk_diag_dump(&req, sizeof(req), diag_msg, t))
		return -1;
	if (t->n)
		sort_array(t->sk, t->n, sizeof(*t->sk), ino_cmp);
	return 0;
}

size_t unix_root(struct unix_table *t, size_t i)
{
	while (t->sk[i].up != i)
		i = t->sk[i].up = t->sk[t->sk[i].up].up;
	return i;
}

static void uf_join(struct unix_table *t, struct usk *a, struct usk *b)
{
	size_t x = unix_root(t, a - t->sk), y = unix_root(t, b - t->sk);

	if (x != y)
		t->sk[x].up = y;
}

static bool same_name(const struct usk *a, const struct usk *b)
{
	if (!a->namelen || a->namelen != b->namelen || memcmp(a->name, b->name, a->namelen))
		return false;
	return a->has_vfs == b->has_vfs &&
	       (!a->has_vfs || (a->vfs_ino == b->vfs_ino && a->vfs_dev == b->vfs_dev));
}

/* The listener in the tree that accepted s, if s is an accepted connection. */
struct usk *unix_accepted_from(struct unix_table *t, const struct usk *s)
{
	size_t i;

	if (s->state != UNIX_ESTABLISHED || !s->namelen || s->type == SOCK_DGRAM)
		return NULL;
	for (i = 0; i < t->n; i++)
		if (&t->sk[i] != s && t->sk[i].state == UNIX_LISTEN && same_name(&t->sk[i], s))
			return &t->sk[i];
	return NULL;
}

/*
 * The listener whose accept queue holds a connection from s.  sock_diag
 * names a pending connection by its client's inode (the embryo socket the
 * kernel made for the server side has none, so the client's peer reads 0).
 */
struct usk *unix_pending_at(struct unix_table *t, const struct usk *s)
{
	if (s->state != UNIX_ESTABLISHED || s->peer || !s->pending_in)
		return NULL;
	return &t->sk[s->pending_in - 1];
}

/* Read the receive queue of a socket of the tree (senders tie groups too). */
static int prepeek(struct dump_ctx *ctx, struct usk *s, int pidfd)
{
	struct fd_dump *d = xzalloc(sizeof(*d));
	int ret = -1;

	d->ctx = ctx;
	d->pid = s->pid;
	d->fd = s->fd;
	d->lfd = syscall(__NR_pidfd_getfd, pidfd, s->fd, 0);
	if (d->lfd < 0) {
		pr_perror("pid %d fd %d: pidfd_getfd", s->pid, s->fd);
		goto out;
	}
	s->pre = xmalloc(sizeof(*s->pre));
	unix_sk_entry__init(s->pre);
	s->pre->type = s->type;
	ret = unix_peek_queue(d, s->pre);
	close(d->lfd);
out:
	free(d);
	return ret;
}

static int mark_task(struct dump_ctx *ctx, struct unix_table *t, pid_t pid)
{
	int pidfd = syscall(__NR_pidfd_open, pid, 0), ret = -1;
	char path[64], link[64], name[32];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = pidfd < 0 ? NULL : opendir(path);
	if (!d) {
		pr_perror("cannot list the fds of %d", pid);
		goto out;
	}
	while ((de = readdir(d))) {
		struct usk *s;

		snprintf(name, sizeof(name), "fd/%d", atoi(de->d_name));
		if (de->d_name[0] == '.' || readlink_proc(pid, name, link, sizeof(link)) < 0 ||
		    strncmp(link, "socket:[", 8))
			continue;
		s = unix_find(t, strtoul(link + 8, NULL, 10));
		if (!s || s->in_tree)
			continue;
		s->in_tree = true;
		s->pid = pid;
		s->fd = atoi(de->d_name);
		if (s->state != UNIX_LISTEN && prepeek(ctx, s, pidfd))
			goto out;
	}
	ret = 0;
out:
	if (d)
		closedir(d);
	if (pidfd >= 0)
		close(pidfd);
	return ret;
}

/* The socket of the tree bound to name (a datagram's sender). */
struct usk *unix_tree_named(struct unix_table *t, const void *name, size_t len)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->sk[i].in_tree && t->sk[i].namelen == (int)len &&
		    !memcmp(t->sk[i].name, name, len))
			return &t->sk[i];
	return NULL;
}

/* Tie the tree's sockets into the groups restore builds together. */
/* The group of s once the groups are made: the inode of its group's root. */
uint64_t unix_group_of(struct unix_table *t, const struct usk *s)
{
	return t->sk[unix_root(t, s - t->sk)].ino;
}

void unix_make_groups(struct unix_table *t)
{
	size_t i, k;

	for (i = 0; i < t->n; i++) {
		struct usk *s = &t->sk[i], *o;

		s->up = i;
		for (k = 0; s->state == UNIX_LISTEN && k < s->nicons; k++) {
			o = unix_find(t, s->icons[k]);
			if (o)
				o->pending_in = i + 1;
		}
		o = s->in_tree ? NULL : unix_find(t, s->peer);
		if (o && o->in_tree && o->peer != s->ino)
			o->outsider = s->ino;
	}
	for (i = 0; i < t->n; i++) {
		struct usk *s = &t->sk[i], *o;

		if (!s->in_tree)
			continue;
		o = unix_find(t, s->peer);
		if (o && o->in_tree)
			uf_join(t, s, o);
		o = unix_accepted_from(t, s);
		if (o && o->in_tree)
			uf_join(t, s, o);
		for (k = 0; s->state == UNIX_LISTEN && k < s->nicons; k++) {
			o = unix_find(t, s->icons[k]);
			if (o && o->in_tree)
				uf_join(t, s, o);
		}
		/* a datagram from a named socket of the tree is sent again by it */
		for (k = 0; s->pre && k < s->pre->n_queue; k++) {
			const UnixMsg *m = s->pre->queue[k];

			o = m->has_addr && m->addr.len
				? unix_tree_named(t, m->addr.data, m->addr.len)
				: NULL;
			if (o)
				uf_join(t, s, o);
		}
	}
}

/* The host's sockets, marked and grouped: listed once per dump, NULL if that failed. */
struct unix_table *unix_scan(struct dump_ctx *ctx)
{
	struct unix_table *t = res_dump_state(ctx, &unix_res);
	size_t i;

	if (t->state)
		return t->state > 0 ? t : NULL;
	t->state = -1;
	if (diag_dump(t))
		return NULL;
	for (i = 0; i < ctx->ntasks; i++)
		if (!ctx->tasks[i].zombie && mark_task(ctx, t, ctx->tasks[i].pid))
			return NULL;
	unix_make_groups(t);
	t->state = 1;
	return t;
}

void unix_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct unix_table *t = state;
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->sk[i].icons);
		if (t->sk[i].pre)
			unix_sk_entry__free_unpacked(t->sk[i].pre, NULL);
	}
	free(t->sk);
}

const char *unix_type_name(int type)
{
	switch (type) {
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "datagram";
	case SOCK_SEQPACKET:
		return "seqpacket";
	}
	return "unknown";
}

/* A printable form of a socket name: a path, or @name for abstract ones. */
const char *unix_name_str(const char *name, int len, char *buf, size_t size)
{
	int i, n = 0;

	if (!len)
		return "(unnamed)";
	for (i = 0; i < len && n < (int)size - 1; i++) {
		char ch = name[i];

		if (!ch && (i == len - 1))
			break;
		buf[n++] = !ch ? '@' : (ch < 32 || ch > 126) ? '?' : ch;
	}
	buf[n] = '\0';
	return buf;
}
