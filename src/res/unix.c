/*
 * Unix sockets (stream, datagram, seqpacket): names, peers, listen queues,
 * unread data, shutdown state and options.
 *
 * Dump: one sock_diag dump (NETLINK_SOCK_DIAG through libmnl) lists every
 * unix socket of the host with its name, peer, pending connections and
 * shutdown state; the sockets the tree holds are tied into groups (a
 * connected pair, a listener with the connections it accepted or still
 * queues), and a socket whose peer is outside the tree is refused unless
 * --ext-unix-sk.  Unread data is copied during that scan (datagrams from
 * a named socket of the tree tie it to the receiver's group too) with
 * MSG_PEEK walking a peek offset (SO_PEEK_OFF, put back afterwards), so
 * nothing is consumed: a failed dump or -R leaves every queue as it was.
 *
 * Restore: the task that opens a group for its subtree builds all of it
 * with plain syscalls: socketpair() for pairs, bind + listen for
 * listeners, connect + accept for accepted connections, connect for
 * pending ones, then refills every receive queue from the right sender,
 * applies shutdown and options and places each socket at its shared slot.
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
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "res.h"
#include "util.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

#define UNIX_ESTABLISHED 1
#define UNIX_CLOSE	 7
#define UNIX_LISTEN	 10
#define PEEK_BUF	 (4U << 20)

/* ------------------------------------------------------------- dump */

struct usk {
	uint32_t ino, peer;
	uint8_t type, state, shutdown;
	bool has_vfs, in_tree;
	uint32_t vfs_ino, vfs_dev;
	char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int namelen;
	uint32_t *icons;
	size_t nicons;
	uint32_t rq, wq, wmem;
	size_t up;	   /* union-find parent */
	size_t pending_in; /* 1 + index of the listener whose queue holds it */
	uint32_t outsider; /* a socket outside the tree connected to it */
	pid_t pid;	   /* in the tree: a task holding it, and the fd */
	int fd;
	UnixSkEntry *pre; /* its receive queue, read during the scan */
};

struct unix_table {
	struct usk *sk;
	size_t n;
	int state; /* 1: scanned, -1: failed */
};

static int ino_cmp(const void *a, const void *b)
{
	const struct usk *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static struct usk *usk_find(struct unix_table *t, uint32_t ino)
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
	struct mnl_socket *nl = mnl_socket_open(NETLINK_SOCK_DIAG);
	size_t bufsz = 32768;
	char *buf = xmalloc(bufsz);
	struct unix_diag_req *req;
	struct nlmsghdr *nlh;
	unsigned int seq = 1, portid;
	int ret = -1, n;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		pr_perror("cannot open a sock_diag netlink socket");
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = AF_UNIX;
	req->udiag_states = -1;
	req->udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS |
			  UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		pr_perror("sock_diag request");
		goto out;
	}
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, bufsz);
		if (n < 0) {
			pr_perror("sock_diag answer");
			goto out;
		}
		n = mnl_cb_run(buf, n, seq, portid, diag_msg, t);
		if (n < 0) {
			pr_perror("sock_diag answer");
			goto out;
		}
		if (n == MNL_CB_STOP)
			break;
	}
	if (t->n)
		sort_array(t->sk, t->n, sizeof(*t->sk), ino_cmp);
	ret = 0;
out:
	if (nl)
		mnl_socket_close(nl);
	free(buf);
	return ret;
}

static size_t uf_find(struct unix_table *t, size_t i)
{
	while (t->sk[i].up != i)
		i = t->sk[i].up = t->sk[t->sk[i].up].up;
	return i;
}

static void uf_join(struct unix_table *t, struct usk *a, struct usk *b)
{
	size_t x = uf_find(t, a - t->sk), y = uf_find(t, b - t->sk);

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
static struct usk *accepted_from(struct unix_table *t, const struct usk *s)
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
static struct usk *pending_at(struct unix_table *t, const struct usk *s)
{
	if (s->state != UNIX_ESTABLISHED || s->peer || !s->pending_in)
		return NULL;
	return &t->sk[s->pending_in - 1];
}

static int peek_queue(const struct fd_dump *d, UnixSkEntry *ue);

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
	ret = peek_queue(d, s->pre);
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
		s = usk_find(t, strtoul(link + 8, NULL, 10));
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
static struct usk *tree_named(struct unix_table *t, const void *name, size_t len)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->sk[i].in_tree && t->sk[i].namelen == (int)len &&
		    !memcmp(t->sk[i].name, name, len))
			return &t->sk[i];
	return NULL;
}

/* Tie the tree's sockets into the groups restore builds together. */
static void make_groups(struct unix_table *t)
{
	size_t i, k;

	for (i = 0; i < t->n; i++) {
		struct usk *s = &t->sk[i], *o;

		s->up = i;
		for (k = 0; s->state == UNIX_LISTEN && k < s->nicons; k++) {
			o = usk_find(t, s->icons[k]);
			if (o)
				o->pending_in = i + 1;
		}
		o = s->in_tree ? NULL : usk_find(t, s->peer);
		if (o && o->in_tree && o->peer != s->ino)
			o->outsider = s->ino;
	}
	for (i = 0; i < t->n; i++) {
		struct usk *s = &t->sk[i], *o;

		if (!s->in_tree)
			continue;
		o = usk_find(t, s->peer);
		if (o && o->in_tree)
			uf_join(t, s, o);
		o = accepted_from(t, s);
		if (o && o->in_tree)
			uf_join(t, s, o);
		for (k = 0; s->state == UNIX_LISTEN && k < s->nicons; k++) {
			o = usk_find(t, s->icons[k]);
			if (o && o->in_tree)
				uf_join(t, s, o);
		}
		/* a datagram from a named socket of the tree is sent again by it */
		for (k = 0; s->pre && k < s->pre->n_queue; k++) {
			const UnixMsg *m = s->pre->queue[k];

			o = m->has_addr && m->addr.len ? tree_named(t, m->addr.data, m->addr.len)
						       : NULL;
			if (o)
				uf_join(t, s, o);
		}
	}
}

static struct unix_table *unix_scan(struct dump_ctx *ctx)
{
	struct unix_table *t = ctx->unix_tab;
	size_t i;

	if (t)
		return t->state > 0 ? t : NULL;
	t = ctx->unix_tab = xzalloc(sizeof(*t));
	t->state = -1;
	if (diag_dump(t))
		return NULL;
	for (i = 0; i < ctx->ntasks; i++)
		if (!ctx->tasks[i].zombie && mark_task(ctx, t, ctx->tasks[i].pid))
			return NULL;
	make_groups(t);
	t->state = 1;
	return t;
}

void unix_table_free(struct dump_ctx *ctx)
{
	struct unix_table *t = ctx->unix_tab;
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->sk[i].icons);
		if (t->sk[i].pre)
			unix_sk_entry__free_unpacked(t->sk[i].pre, NULL);
	}
	free(t->sk);
	free(t);
	ctx->unix_tab = NULL;
}

static bool unix_match(const struct fd_dump *d)
{
	int domain = 0;
	socklen_t len = sizeof(domain);

	return S_ISSOCK(d->st.st_mode) &&
	       !getsockopt(d->lfd, SOL_SOCKET, SO_DOMAIN, &domain, &len) && domain == AF_UNIX;
}

static const char *sk_type_name(int type)
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
static const char *name_str(const char *name, int len, char *buf, size_t size)
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

static void add_msg(UnixSkEntry *ue, const void *data, size_t len, const struct sockaddr_un *from,
		    socklen_t fromlen)
{
	UnixMsg *m = xmalloc(sizeof(*m));

	unix_msg__init(m);
	m->data.data = xmalloc(len ? len : 1);
	memcpy(m->data.data, data, len);
	m->data.len = len;
	if (fromlen > offsetof(struct sockaddr_un, sun_path)) {
		m->has_addr = true;
		m->addr.len = fromlen - offsetof(struct sockaddr_un, sun_path);
		m->addr.data = xmalloc(m->addr.len);
		memcpy(m->addr.data, from->sun_path, m->addr.len);
	}
	ue->queue = xrealloc(ue->queue, (ue->n_queue + 1) * sizeof(*ue->queue));
	ue->queue[ue->n_queue++] = m;
}

/* Refuse file descriptors in flight; close the copies the peek gave us. */
static int check_cmsgs(const struct fd_dump *d, struct msghdr *mh)
{
	struct cmsghdr *cm;
	int bad = 0;

	if (mh->msg_flags & MSG_CTRUNC)
		bad = 1;
	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int *fds = (int *)CMSG_DATA(cm);
			size_t i, n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (i = 0; i < n; i++)
				close(fds[i]);
			bad = 1;
		}
	}
	if (bad)
		pr_err("pid %d fd %d: unix socket has file descriptors in flight (SCM_RIGHTS); "
		       "not supported\n",
		       d->pid, d->fd);
	return bad ? -1 : 0;
}

/* Copy the receive queue without consuming it: MSG_PEEK along SO_PEEK_OFF. */
static int peek_queue(const struct fd_dump *d, UnixSkEntry *ue)
{
	int off0 = -1, zero = 0, ret = -1, guard;
	socklen_t len = sizeof(off0);
	char *buf = xmalloc(PEEK_BUF), *stream = NULL;
	size_t slen = 0;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 253)];
	} ctl;

	if (getsockopt(d->lfd, SOL_SOCKET, SO_PEEK_OFF, &off0, &len) ||
	    setsockopt(d->lfd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero))) {
		pr_perror("pid %d fd %d: cannot peek into a unix socket", d->pid, d->fd);
		free(buf);
		return -1;
	}
	ue->has_peek_off = true;
	ue->peek_off = off0;
	if (ue->type == SOCK_STREAM &&
	    recv(d->lfd, buf, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) >= 0) {
		pr_err("pid %d fd %d: unix stream socket has out-of-band data (MSG_OOB) "
		       "pending; not supported\n",
		       d->pid, d->fd);
		goto out;
	}
	for (guard = 0; guard < 1 << 20; guard++) {
		struct sockaddr_un from;
		struct iovec iov = { buf, PEEK_BUF };
		struct msghdr mh = {
			.msg_name = &from,
			.msg_namelen = sizeof(from),
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = &ctl,
			.msg_controllen = sizeof(ctl),
		};
		ssize_t n = recvmsg(d->lfd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			pr_perror("pid %d fd %d: cannot read a unix socket's queue", d->pid, d->fd);
			goto out;
		}
		if (check_cmsgs(d, &mh))
			goto out;
		if (mh.msg_flags & MSG_TRUNC) {
			pr_err("pid %d fd %d: a queued message is larger than %u bytes\n", d->pid,
			       d->fd, PEEK_BUF);
			goto out;
		}
		if (ue->type == SOCK_STREAM) {
			if (!n)
				break; /* end of stream (peer shut down) */
			stream = xrealloc(stream, slen + n);
			memcpy(stream + slen, buf, n);
			slen += n;
		} else {
			add_msg(ue, buf, n, &from, ue->type == SOCK_DGRAM ? mh.msg_namelen : 0);
		}
	}
	if (slen)
		add_msg(ue, stream, slen, NULL, 0);
	ret = 0;
out:
	if (setsockopt(d->lfd, SOL_SOCKET, SO_PEEK_OFF, &off0, sizeof(off0))) {
		pr_perror("pid %d fd %d: cannot put back the peek offset", d->pid, d->fd);
		ret = -1;
	}
	free(stream);
	free(buf);
	return ret;
}

static int get_opt(const struct fd_dump *d, int opt, int *val)
{
	socklen_t len = sizeof(*val);

	if (getsockopt(d->lfd, SOL_SOCKET, opt, val, &len)) {
		pr_perror("pid %d fd %d: getsockopt %d", d->pid, d->fd, opt);
		return -1;
	}
	return 0;
}

static int dump_opts(const struct fd_dump *d, UnixSkEntry *ue)
{
	int v;

	if (get_opt(d, SO_SNDBUF, &v))
		return -1;
	ue->has_sndbuf = true;
	ue->sndbuf = v;
	if (get_opt(d, SO_RCVBUF, &v))
		return -1;
	ue->has_rcvbuf = true;
	ue->rcvbuf = v;
	if (get_opt(d, SO_PASSCRED, &v))
		return -1;
	ue->has_passcred = true;
	ue->passcred = v;
	if (get_opt(d, SO_PASSSEC, &v))
		return -1;
	ue->has_passsec = true;
	ue->passsec = v;
	/* newer options: a kernel without them has them off (passrights: on) */
	if (!getsockopt(d->lfd, SOL_SOCKET, SO_PASSPIDFD, &v, &(socklen_t){ sizeof(v) }) && v)
		ue->has_passpidfd = ue->passpidfd = true;
	if (!getsockopt(d->lfd, SOL_SOCKET, SO_PASSRIGHTS, &v, &(socklen_t){ sizeof(v) }) && !v) {
		ue->has_passrights = true;
		ue->passrights = false;
	}
	return 0;
}

/*
 * A name bound relative to the cwd: the directory it resolves in, found
 * from the task's cwd (the socket file there must be this socket's).
 */
static int find_bind_dir(const struct fd_dump *d, const struct usk *s, char **dir, bool *unlinked)
{
	char cwd[PATH_MAX], *path;
	struct stat st;
	bool rel;

	*dir = NULL;
	*unlinked = false;
	if (!s->namelen || !s->name[0])
		return 0;
	rel = s->name[0] != '/';
	if (rel && readlink_proc(d->pid, "cwd", cwd, sizeof(cwd)) < 0) {
		pr_perror("pid %d: cannot read its cwd", d->pid);
		return -1;
	}
	path = rel ? xsprintf("%s/%s", cwd, s->name) : xstrdup(s->name);
	*unlinked =
	    stat(path, &st) || !S_ISSOCK(st.st_mode) || !s->has_vfs || st.st_ino != s->vfs_ino;
	free(path);
	/* an unlinked relative name: its directory is a guess, the file is removed again */
	if (rel)
		*dir = xstrdup(cwd);
	return 0;
}

/* A socket outside the tree connected to s (but not s's own peer). */
static struct usk *outside_sender(struct unix_table *t, const struct usk *s)
{
	return s->outsider ? usk_find(t, s->outsider) : NULL;
}

static int dump_listener(const struct fd_dump *d, struct unix_table *t, const struct usk *s,
			 UnixSkEntry *ue)
{
	size_t k;

	ue->has_backlog = true;
	ue->backlog = s->wq;
	ue->embryos = xzalloc((s->nicons ? s->nicons : 1) * sizeof(*ue->embryos));
	for (k = 0; k < s->nicons; k++) {
		struct usk *c = usk_find(t, s->icons[k]);
		UnixEmbryo *e = xmalloc(sizeof(*e));

		unix_embryo__init(e);
		ue->embryos[ue->n_embryos++] = e;
		e->ino = s->icons[k];
		if (!c) {
			pr_err("pid %d fd %d: a connection waiting in the accept queue comes from "
			       "a socket that is closed; whether it left data cannot be told\n",
			       d->pid, d->fd);
			return -1;
		}
		if (!c->in_tree) {
			pr_err("pid %d fd %d: a connection waiting in the accept queue comes from "
			       "socket:[%u] outside the tree\n",
			       d->pid, d->fd, c->ino);
			return -1;
		}
		if (c->wmem) {
			pr_err("pid %d fd %d: a connection waiting in the accept queue holds data "
			       "not accepted yet; not supported\n",
			       d->pid, d->fd);
			return -1;
		}
		e->has_client = true;
		e->client = c->ino;
	}
	return 0;
}

/*
 * s is connected outside the tree: to p, or (pending) to the listener p.
 * Restore can connect again to a listener's name: the pending one's, or
 * the one p was accepted from; a datagram socket to p's own name.
 */
static int dump_ext(const struct fd_dump *d, struct unix_table *t, const struct usk *s,
		    const struct usk *p, UnixSkEntry *ue)
{
	const struct usk *to = NULL;
	bool unlinked;
	char nb[128];

	if (!d->ctx->opts->ext_unix_sk) {
		pr_err("pid %d fd %d: unix %s socket connected to socket:[%u] %s outside the tree "
		       "(use --ext-unix-sk)\n",
		       d->pid, d->fd, sk_type_name(s->type), p ? p->ino : s->peer,
		       p ? name_str(p->name, p->namelen, nb, sizeof(nb)) : "(unknown)");
		return -1;
	}
	ue->has_ext = ue->ext = true;
	if (p && (p->state == UNIX_LISTEN || s->type == SOCK_DGRAM))
		to = p;
	else if (p)
		to = accepted_from(t, p);
	if (!to || !to->namelen)
		return 0;
	if (find_bind_dir(d, to, &ue->peer_dir, &unlinked))
		return -1;
	if (unlinked) { /* nothing to connect to by that name any more */
		free(ue->peer_dir);
		ue->peer_dir = NULL;
		return 0;
	}
	ue->has_peer_name = true;
	ue->peer_name.len = to->namelen;
	ue->peer_name.data = xmalloc(to->namelen);
	memcpy(ue->peer_name.data, to->name, to->namelen);
	return 0;
}

static int dump_peer(const struct fd_dump *d, struct unix_table *t, const struct usk *s,
		     UnixSkEntry *ue)
{
	struct usk *p = usk_find(t, s->peer), *o;

	o = pending_at(t, s);
	if (o && !o->in_tree)
		return dump_ext(d, t, s, o, ue); /* waits in the queue of an outside listener */
	if (s->state == UNIX_ESTABLISHED && s->peer && (!p || !p->in_tree))
		return dump_ext(d, t, s, p, ue);
	if (s->peer) {
		ue->has_peer = true;
		ue->peer = s->peer;
	} else if (s->state == UNIX_ESTABLISHED && !o) {
		struct sockaddr_un sun;
		socklen_t len = sizeof(sun);

		/*
		 * Connected without a peer: the peer was closed -- or, for a
		 * datagram socket, another socket connected to this one (which
		 * marks it connected too); getpeername() tells them apart.
		 */
		if (s->type != SOCK_DGRAM || !getpeername(d->lfd, (struct sockaddr *)&sun, &len))
			ue->has_peer_closed = ue->peer_closed = true;
	}
	o = outside_sender(t, s);
	if (o && !d->ctx->opts->ext_unix_sk) {
		pr_err("pid %d fd %d: socket:[%u] outside the tree is connected to this unix "
		       "socket (use --ext-unix-sk)\n",
		       d->pid, d->fd, o->ino);
		return -1;
	}
	return 0;
}

/* Every queued datagram must come from a sender restore can recreate. */
static int check_senders(const struct fd_dump *d, struct unix_table *t, const UnixSkEntry *ue)
{
	char nb[128];
	size_t i;

	for (i = 0; i < ue->n_queue; i++) {
		const UnixMsg *m = ue->queue[i];

		if (!m->has_addr || !m->addr.len || tree_named(t, m->addr.data, m->addr.len))
			continue;
		pr_err("pid %d fd %d: a queued datagram comes from %s, a socket outside the tree; "
		       "not supported\n",
		       d->pid, d->fd, name_str((char *)m->addr.data, m->addr.len, nb, sizeof(nb)));
		return -1;
	}
	return 0;
}

static int unix_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct unix_table *t = unix_scan(d->ctx);
	UnixSkEntry *ue;
	struct usk *s;
	bool unlinked;
	char nb[128];

	if (!t) {
		pr_err("pid %d fd %d: cannot list the host's unix sockets\n", d->pid, d->fd);
		return -1;
	}
	s = usk_find(t, d->st.st_ino);
	if (!s) {
		pr_err("pid %d fd %d: unix socket not found by sock_diag (another network "
		       "namespace?); not supported\n",
		       d->pid, d->fd);
		return -1;
	}
	if (s->type != SOCK_STREAM && s->type != SOCK_DGRAM && s->type != SOCK_SEQPACKET) {
		pr_err("pid %d fd %d: unix socket of type %d not supported\n", d->pid, d->fd,
		       s->type);
		return -1;
	}
	ue = fe->unix_sk = xmalloc(sizeof(*ue));
	unix_sk_entry__init(ue);
	ue->ino = s->ino;
	ue->type = s->type;
	ue->state = s->state;
	ue->group = t->sk[uf_find(t, s - t->sk)].ino;
	if (s->namelen) {
		ue->has_name = true;
		ue->name.len = s->namelen;
		ue->name.data = xmalloc(s->namelen);
		memcpy(ue->name.data, s->name, s->namelen);
	}
	ue->has_shutdown = true;
	ue->shutdown = s->shutdown;
	fe->has_dev = false;
	if (dump_opts(d, ue) || find_bind_dir(d, s, &ue->bind_dir, &unlinked))
		return -1;
	ue->has_unlinked = ue->unlinked = unlinked;
	if (s->has_vfs) {
		ue->has_vfs_ino = true;
		ue->vfs_ino = s->vfs_ino;
	}
	if (s->state == UNIX_LISTEN)
		return dump_listener(d, t, s, ue);
	if (s->state != UNIX_ESTABLISHED && s->state != UNIX_CLOSE) {
		pr_err("pid %d fd %d: unix socket in state %d not supported\n", d->pid, d->fd,
		       s->state);
		return -1;
	}
	if (dump_peer(d, t, s, ue))
		return -1;
	{
		struct usk *l = ue->ext ? NULL : accepted_from(t, s);

		if (l && !l->in_tree) {
			pr_err("pid %d fd %d: unix connection accepted from %s, whose listening "
			       "socket is outside the tree; not supported\n",
			       d->pid, d->fd, name_str(s->name, s->namelen, nb, sizeof(nb)));
			return -1;
		}
		if (l) {
			ue->has_listener = true;
			ue->listener = l->ino;
		}
	}
	if (s->pre) { /* read during the scan */
		ue->has_peek_off = s->pre->has_peek_off;
		ue->peek_off = s->pre->peek_off;
		ue->queue = s->pre->queue;
		ue->n_queue = s->pre->n_queue;
		s->pre->queue = NULL;
		s->pre->n_queue = 0;
	}
	if (ue->n_queue && (ue->passcred || ue->passpidfd)) {
		pr_err("pid %d fd %d: unix socket with %s has data queued; the senders' "
		       "credentials cannot be restored\n",
		       d->pid, d->fd, ue->passcred ? "SO_PASSCRED" : "SO_PASSPIDFD");
		return -1;
	}
	if (ue->n_queue && ue->ext) {
		pr_err("pid %d fd %d: unix socket connected outside the tree has unread data; "
		       "it cannot be sent again\n",
		       d->pid, d->fd);
		return -1;
	}
	if (ue->ext)
		fe->ext_key = xsprintf("socket:[%u]", s->ino);
	return check_senders(d, t, ue);
}

static void unix_release(FileEntry *fe)
{
	if (fe->unix_sk)
		unix_sk_entry__free_unpacked(fe->unix_sk, NULL);
	fe->unix_sk = NULL;
}

static uint64_t unix_group(const FileEntry *fe)
{
	return fe->unix_sk ? fe->unix_sk->group : 0;
}

/* ---------------------------------------------------------- restore */

struct rsk {
	const FileEntry *fe;
	const UnixSkEntry *u;
	int fd;
	int partner; /* the peer was closed: a stand-in, closed at the end */
	bool filled;
};

struct rgroup {
	struct rst_ctx *c;
	struct rsk *sk;
	size_t n;
};

static struct rsk *rsk_find(struct rgroup *g, uint64_t ino)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (g->sk[i].u->ino == ino)
			return &g->sk[i];
	return NULL;
}

static socklen_t make_addr(struct sockaddr_un *sun, const uint8_t *name, size_t len)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (len > sizeof(sun->sun_path))
		len = sizeof(sun->sun_path);
	memcpy(sun->sun_path, name, len);
	return offsetof(struct sockaddr_un, sun_path) + len;
}

static const char *rname(const ProtobufCBinaryData *n, char *buf, size_t size)
{
	return name_str((const char *)n->data, n->len, buf, size);
}

/* Run bind or connect from the directory a relative name was bound in. */
/* A socket file already at the path: may restore take the path over? */
static int path_taken_over(const UnixSkEntry *u, const char *path)
{
	struct sockaddr_un sun;
	struct stat st;
	int probe, stale;

	if (u->unlinked || lstat(path, &st) || !S_ISSOCK(st.st_mode))
		return -1;
	/* the original's own file (stale, or the original still runs) */
	if (u->has_vfs_ino && st.st_ino == u->vfs_ino)
		return unlink(path);
	/* somebody else's: only if nobody listens there any more */
	probe = socket(AF_UNIX, u->type | SOCK_CLOEXEC, 0);
	stale = probe >= 0 &&
		connect(probe, (struct sockaddr *)&sun,
			make_addr(&sun, (const uint8_t *)path, strlen(path) + 1)) &&
		errno == ECONNREFUSED;
	if (probe >= 0)
		close(probe);
	if (!stale) {
		errno = EADDRINUSE;
		return -1;
	}
	return unlink(path);
}

/*
 * Bind or connect to a name, from the directory a relative name was bound
 * in.  A bind to a path that is taken by the original's socket file (or a
 * stale one) takes the path over.  do_bind -1: remove the socket file of
 * a name whose file had been removed (once the group is built).
 */
static int addr_op_at(const UnixSkEntry *u, const ProtobufCBinaryData *name, const char *dir,
		      int fd, int do_bind)
{
	struct sockaddr_un sun;
	socklen_t len = make_addr(&sun, name->data, name->len);
	int here = -1, ret, err;

	if (dir) {
		here = open(".", O_PATH | O_CLOEXEC);
		if (here < 0 || chdir(dir)) {
			if (here >= 0)
				close(here);
			return -1;
		}
	}
	if (do_bind < 0) /* only remove the socket file again */
		ret = 0;
	else
		ret = do_bind ? bind(fd, (struct sockaddr *)&sun, len)
			      : connect(fd, (struct sockaddr *)&sun, len);
	if (ret && do_bind > 0 && errno == EADDRINUSE && name->data[0] &&
	    !path_taken_over(u, sun.sun_path))
		ret = bind(fd, (struct sockaddr *)&sun, len);
	if (!ret && do_bind < 0 && unlink(sun.sun_path))
		ret = -1;
	err = errno;
	if (here >= 0) {
		if (fchdir(here))
			ret = -1;
		close(here);
	}
	errno = err;
	return ret;
}

static int addr_op(const UnixSkEntry *owner, int fd, bool do_bind)
{
	return addr_op_at(owner, &owner->name, owner->bind_dir, fd, do_bind);
}

static int sk_bind(struct rgroup *g, struct rsk *s)
{
	char nb[128];

	if (!s->u->has_name || !s->u->name.len || s->u->has_listener)
		return 0;
	if (addr_op(s->u, s->fd, true)) {
		pr_perror("pid %u: cannot bind a unix socket to %s", g->c->t->te->pid,
			  rname(&s->u->name, nb, sizeof(nb)));
		return -1;
	}
	return 0;
}

static int sk_connect_to(struct rgroup *g, int fd, const UnixSkEntry *to)
{
	char nb[128];

	if (!to->has_name || !to->name.len) {
		pr_err("pid %u: cannot reach an unnamed unix socket\n", g->c->t->te->pid);
		return -1;
	}
	if (addr_op(to, fd, false)) {
		pr_perror("pid %u: cannot connect a unix socket to %s", g->c->t->te->pid,
			  rname(&to->name, nb, sizeof(nb)));
		return -1;
	}
	return 0;
}

static void force_sndbuf(int fd, size_t len)
{
	int v = len > (1 << 28) ? 1 << 28 : (int)len + (1 << 20);

	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v));
}

/* Queue one message into s's receive queue by sending it from fd. */
static int send_one(struct rgroup *g, int fd, const struct rsk *to, const UnixMsg *m,
		    bool addressed)
{
	struct sockaddr_un sun;
	socklen_t len = 0;
	ssize_t n;
	size_t done = 0;

	force_sndbuf(fd, m->data.len);
	if (addressed)
		len = make_addr(&sun, to->u->name.data, to->u->name.len);
	do {
		n = sendto(fd, (char *)m->data.data + done, m->data.len - done,
			   MSG_DONTWAIT | MSG_NOSIGNAL, addressed ? (struct sockaddr *)&sun : NULL,
			   len);
		if (n < 0) {
			pr_perror("pid %u: cannot queue %zu bytes into a unix socket",
				  g->c->t->te->pid, m->data.len);
			return -1;
		}
		done += n;
	} while (done < m->data.len && to->u->type == SOCK_STREAM);
	return 0;
}

/* The socket of the group bound to the name a datagram came from. */
static struct rsk *sender_named(struct rgroup *g, const UnixMsg *m)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (g->sk[i].u->has_name && g->sk[i].u->name.len == m->addr.len &&
		    !memcmp(g->sk[i].u->name.data, m->addr.data, m->addr.len))
			return &g->sk[i];
	return NULL;
}

/*
 * Refill s's receive queue.  A connected receiver takes its data from its
 * peer (an unnamed sender, or the stream); a datagram with a sender name
 * comes from the socket of that name; others from a fresh unnamed socket.
 */
static struct rsk *pair_peer(struct rgroup *g, struct rsk *s);

static int fill_queue(struct rgroup *g, struct rsk *s, int peer_fd)
{
	size_t i;
	int tmp = -1, ret = -1;

	for (i = 0; i < s->u->n_queue; i++) {
		const UnixMsg *m = s->u->queue[i];
		struct rsk *from = m->has_addr && m->addr.len ? sender_named(g, m) : NULL;

		if (from) {
			if (send_one(g, from->fd, s, m, pair_peer(g, from) != s))
				goto out;
		} else if (peer_fd >= 0) {
			if (send_one(g, peer_fd, s, m, false))
				goto out;
		} else {
			if (tmp < 0)
				tmp = socket(AF_UNIX, s->u->type | SOCK_CLOEXEC, 0);
			if (tmp < 0 || send_one(g, tmp, s, m, true))
				goto out;
		}
	}
	s->filled = true;
	ret = 0;
out:
	if (tmp >= 0)
		close(tmp);
	return ret;
}

static bool unnamed_sender_queue(const UnixSkEntry *u)
{
	size_t i;

	for (i = 0; i < u->n_queue; i++)
		if (u->queue[i]->has_addr && u->queue[i]->addr.len)
			return false;
	return true;
}

/* Both sockets connected to each other, neither accepted: a socketpair. */
static struct rsk *pair_peer(struct rgroup *g, struct rsk *s)
{
	struct rsk *p;

	if (s->u->state != UNIX_ESTABLISHED || s->u->has_listener || !s->u->has_peer)
		return NULL;
	p = rsk_find(g, s->u->peer);
	if (!p || p->u->peer != s->u->ino || p->u->has_listener)
		return NULL;
	/* two named datagram sockets connect to each other by name, once filled */
	if (s->u->type == SOCK_DGRAM && s->u->name.len && p->u->name.len)
		return NULL;
	return p;
}

static bool pending_client(struct rgroup *g, const struct rsk *s)
{
	size_t i, k;

	for (i = 0; i < g->n; i++)
		for (k = 0; k < g->sk[i].u->n_embryos; k++)
			if (g->sk[i].u->embryos[k]->client == s->u->ino)
				return true;
	return false;
}

/* Connected, but the peer is closed: pair it with a socket closed at the end. */
static bool orphan(struct rgroup *g, const struct rsk *s)
{
	return s->u->peer_closed && !s->u->ext && !s->u->has_listener && !pending_client(g, s);
}

/* A datagram socket whose peer is closed: connect it to a stand-in. */
static int dgram_orphan(struct rgroup *g, struct rsk *s)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len = sizeof(sa_family_t);

	s->partner = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->partner < 0 || bind(s->partner, (struct sockaddr *)&sun, len) ||
	    (len = sizeof(sun), getsockname(s->partner, (struct sockaddr *)&sun, &len)) ||
	    connect(s->fd, (struct sockaddr *)&sun, len)) {
		pr_perror("pid %u: cannot recreate a datagram socket whose peer is closed",
			  g->c->t->te->pid);
		return -1;
	}
	return 0;
}

static int create_all(struct rgroup *g)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		struct rsk *s = &g->sk[i], *p = pair_peer(g, s);
		int sv[2];

		if (s->fd >= 0 || s->u->has_listener)
			continue;
		if (p || (orphan(g, s) && s->u->type != SOCK_DGRAM)) {
			if (socketpair(AF_UNIX, s->u->type | SOCK_CLOEXEC, 0, sv)) {
				pr_perror("pid %u: socketpair", g->c->t->te->pid);
				return -1;
			}
			s->fd = sv[0];
			if (p)
				p->fd = sv[1];
			else
				s->partner = sv[1];
			continue;
		}
		s->fd = socket(AF_UNIX, s->u->type | SOCK_CLOEXEC, 0);
		if (s->fd < 0) {
			pr_perror("pid %u: cannot create a unix socket", g->c->t->te->pid);
			return -1;
		}
		if (orphan(g, s) && dgram_orphan(g, s))
			return -1;
	}
	return 0;
}

/* Filled when its connection is built: clients of accepted or pending ones. */
static bool filled_later(struct rgroup *g, const struct rsk *s)
{
	struct rsk *p;

	if (s->u->has_listener || s->u->ext || pending_client(g, s))
		return true;
	if (s->u->state != UNIX_ESTABLISHED || !s->u->has_peer)
		return false;
	p = rsk_find(g, s->u->peer);
	return p && p->u->has_listener;
}

/* Accepted connections: connect the client, accept at once, fill both ways. */
static int build_accepted(struct rgroup *g)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		struct rsk *a = &g->sk[i], *l, *cl;
		int tmp = -1;

		if (!a->u->has_listener)
			continue;
		l = rsk_find(g, a->u->listener);
		cl = a->u->has_peer ? rsk_find(g, a->u->peer) : NULL;
		if (!l) {
			pr_err("pid %u: image lacks the listener of an accepted unix socket\n",
			       g->c->t->te->pid);
			return -1;
		}
		if (!cl) {
			tmp = socket(AF_UNIX, a->u->type | SOCK_CLOEXEC, 0);
			if (tmp < 0)
				return -1;
		}
		if (sk_connect_to(g, cl ? cl->fd : tmp, l->u))
			goto err;
		a->fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (a->fd < 0) {
			pr_perror("pid %u: cannot accept a unix connection", g->c->t->te->pid);
			goto err;
		}
		if (fill_queue(g, a, cl ? cl->fd : tmp) || (cl && fill_queue(g, cl, a->fd)))
			goto err;
		if (tmp >= 0)
			close(tmp);
		continue;
	err:
		if (tmp >= 0)
			close(tmp);
		return -1;
	}
	return 0;
}

static int build_embryos(struct rgroup *g)
{
	size_t i, k;

	for (i = 0; i < g->n; i++) {
		struct rsk *l = &g->sk[i];

		for (k = 0; k < l->u->n_embryos; k++) {
			struct rsk *cl = rsk_find(g, l->u->embryos[k]->client);

			if (!cl) {
				pr_err("pid %u: image lacks the client of a pending connection\n",
				       g->c->t->te->pid);
				return -1;
			}
			if (sk_connect_to(g, cl->fd, l->u))
				return -1;
		}
	}
	return 0;
}

/* Datagram sockets connected one way (to a peer not connected back). */
static int connect_oneway(struct rgroup *g)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		struct rsk *s = &g->sk[i], *p;

		if (s->u->type != SOCK_DGRAM || !s->u->has_peer || pair_peer(g, s))
			continue;
		p = rsk_find(g, s->u->peer);
		if (!p) {
			pr_err("pid %u: image lacks the peer of a datagram socket\n",
			       g->c->t->te->pid);
			return -1;
		}
		if (sk_connect_to(g, s->fd, p->u))
			return -1;
	}
	return 0;
}

static int connect_ext(struct rgroup *g, struct rsk *s)
{
	char nb[128];

	if (!s->u->has_peer_name || !s->u->peer_name.len) {
		pr_err("pid %u: unix socket socket:[%llu] was connected to an unnamed socket "
		       "outside the tree; pass --inherit-fd fd[N]:socket:[%llu]\n",
		       g->c->t->te->pid, (unsigned long long)s->u->ino,
		       (unsigned long long)s->u->ino);
		return -1;
	}
	if (addr_op_at(s->u, &s->u->peer_name, s->u->peer_dir, s->fd, false)) {
		pr_perror("pid %u: cannot reconnect a unix socket to %s outside the tree",
			  g->c->t->te->pid, rname(&s->u->peer_name, nb, sizeof(nb)));
		return -1;
	}
	return 0;
}

static int set_int(int fd, int opt, int v)
{
	return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

/* Last: shutdown state, buffer sizes, options, file status flags. */
static int finish(struct rgroup *g, struct rsk *s)
{
	const UnixSkEntry *u = s->u;
	int how = -1;

	if ((u->shutdown & 3) == 3)
		how = SHUT_RDWR;
	else if (u->shutdown & 1)
		how = SHUT_RD;
	else if (u->shutdown & 2)
		how = SHUT_WR;
	if (how >= 0 && u->state != UNIX_LISTEN && shutdown(s->fd, how) && errno != ENOTCONN)
		goto err;
	if ((u->has_sndbuf && set_int(s->fd, SO_SNDBUFFORCE, u->sndbuf / 2)) ||
	    (u->has_rcvbuf && set_int(s->fd, SO_RCVBUFFORCE, u->rcvbuf / 2)) ||
	    (u->passcred && set_int(s->fd, SO_PASSCRED, 1)) ||
	    (u->passsec && set_int(s->fd, SO_PASSSEC, 1)) ||
	    (u->passpidfd && set_int(s->fd, SO_PASSPIDFD, 1)) ||
	    (u->has_passrights && !u->passrights && set_int(s->fd, SO_PASSRIGHTS, 0)) ||
	    (u->has_peek_off && u->peek_off >= 0 && set_int(s->fd, SO_PEEK_OFF, u->peek_off)))
		goto err;
	if (fcntl(s->fd, F_SETFL, s->fe->flags & (O_NONBLOCK | O_ASYNC)))
		goto err;
	return 0;
err:
	pr_perror("pid %u: cannot set the state of a unix socket", g->c->t->te->pid);
	return -1;
}

static int build_group(struct rgroup *g)
{
	size_t i;

	if (create_all(g))
		return -1;
	/* before names exist: data from unnamed peers of socketpairs */
	for (i = 0; i < g->n; i++) {
		struct rsk *s = &g->sk[i], *p = pair_peer(g, s);
		int from = p ? p->fd : s->partner;

		if (from >= 0 && (p || s->u->type != SOCK_DGRAM) && unnamed_sender_queue(s->u) &&
		    fill_queue(g, s, from))
			return -1;
	}
	for (i = 0; i < g->n; i++)
		if (g->sk[i].fd >= 0 && sk_bind(g, &g->sk[i]))
			return -1;
	for (i = 0; i < g->n; i++)
		if (g->sk[i].u->state == UNIX_LISTEN &&
		    listen(g->sk[i].fd, g->sk[i].u->has_backlog ? (int)g->sk[i].u->backlog : 0)) {
			pr_perror("pid %u: listen", g->c->t->te->pid);
			return -1;
		}
	for (i = 0; i < g->n; i++) {
		struct rsk *s = &g->sk[i], *p = pair_peer(g, s);

		if (!s->filled && s->u->state != UNIX_LISTEN && !filled_later(g, s) &&
		    fill_queue(g, s, p ? p->fd : -1))
			return -1;
	}
	if (connect_oneway(g) || build_accepted(g) || build_embryos(g))
		return -1;
	for (i = 0; i < g->n; i++) {
		struct rsk *s = &g->sk[i];

		if (s->u->ext && s->u->state == UNIX_ESTABLISHED && connect_ext(g, s))
			return -1;
	}
	for (i = 0; i < g->n; i++) {
		const UnixSkEntry *u = g->sk[i].u;

		if (u->unlinked && u->has_name && u->name.len && u->name.data[0] &&
		    !u->has_listener && addr_op_at(u, &u->name, u->bind_dir, -1, -1)) {
			pr_perror("pid %u: cannot remove a socket file again", g->c->t->te->pid);
			return -1;
		}
	}
	for (i = 0; i < g->n; i++)
		if (finish(g, &g->sk[i]))
			return -1;
	return 0;
}

static int unix_open(struct rst_ctx *c, const FileEntry *fe)
{
	struct rgroup g = { .c = c };
	struct image *img = c->img;
	size_t i;
	int mine = -1;

	if (!fe->unix_sk) {
		pr_err("pid %u: unix socket entry %u lacks its state\n", c->t->te->pid, fe->id);
		return -1;
	}
	if (fe->unix_sk->ext) {
		int fd = inherited_fd(c, fe->ext_key ? fe->ext_key : "");

		if (fd >= 0)
			return fd;
	}
	g.sk = xzalloc(img->nfiles * sizeof(*g.sk));
	for (i = 0; i < img->nfiles; i++) {
		const FileEntry *o = img->files[i];

		if (o->type == FILE_TYPE__FILE_UNIX && o->unix_sk &&
		    o->unix_sk->group == fe->unix_sk->group)
			g.sk[g.n++] = (struct rsk){ o, o->unix_sk, -1, -1, false };
	}
	if (build_group(&g))
		goto out;
	for (i = 0; i < g.n; i++) {
		if (g.sk[i].fe == fe) {
			mine = g.sk[i].fd;
			g.sk[i].fd = -1;
		} else if (move_fd(g.sk[i].fd, c->shared_base + g.sk[i].fe->id) < 0) {
			pr_perror("cannot place unix socket %u", g.sk[i].fe->id);
			goto out;
		} else {
			g.sk[i].fd = -1;
		}
	}
out:
	for (i = 0; i < g.n; i++) {
		if (g.sk[i].fd >= 0)
			close(g.sk[i].fd);
		if (g.sk[i].partner >= 0)
			close(g.sk[i].partner);
	}
	free(g.sk);
	return mine;
}

const struct fd_ops unix_fd_ops = {
	FILE_TYPE__FILE_UNIX, "unix socket", unix_match, unix_dump, unix_open,
	unix_group,	      unix_release,
};
