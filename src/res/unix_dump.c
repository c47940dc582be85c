/*
 * Unix sockets, the dump of one socket: its type, state, name (and the
 * directory a relative name was bound in), peer, listener and embryos,
 * options, shutdown state and receive queue.  A socket whose peer is
 * outside the tree is refused unless --ext-unix-sk.  Unread data is copied
 * with MSG_PEEK walking a peek offset (SO_PEEK_OFF, put back afterwards),
 * so nothing is consumed: a failed dump or -R leaves every queue as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "res.h"
#include "unix_sk.h"
#include "util.h"

#define PEEK_BUF (4U << 20)

bool unix_match(const struct fd_dump *d)
{
	int domain = 0;
	socklen_t len = sizeof(domain);

	return S_ISSOCK(d->st.st_mode) &&
	       !getsockopt(d->lfd, SOL_SOCKET, SO_DOMAIN, &domain, &len) && domain == AF_UNIX;
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
int unix_peek_queue(const struct fd_dump *d, UnixSkEntry *ue)
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

static int get_timeo(const struct fd_dump *d, int opt, uint64_t *us)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (getsockopt(d->lfd, SOL_SOCKET, opt, &tv, &len)) {
		pr_perror("pid %d fd %d: getsockopt %d", d->pid, d->fd, opt);
		return -1;
	}
	*us = tv.tv_sec * 1000000ULL + tv.tv_usec;
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
	/* timeouts: a socket call re-issued after the freeze reads them (deadline.c) */
	if (get_timeo(d, SO_RCVTIMEO, &ue->rcvtimeo_us) ||
	    get_timeo(d, SO_SNDTIMEO, &ue->sndtimeo_us))
		return -1;
	ue->has_rcvtimeo_us = ue->rcvtimeo_us != 0;
	ue->has_sndtimeo_us = ue->sndtimeo_us != 0;
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
static int find_bind_dir(const struct fd_dump *d, const struct usk *s, char **dir, bool *unlinked,
			 struct stat *file)
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
	if (file && !*unlinked)
		*file = st;
	/* an unlinked relative name: its directory is a guess, the file is removed again */
	if (rel)
		*dir = xstrdup(cwd);
	return 0;
}

/*
 * The name of an unlinked socket is bound again at restore (and removed):
 * something else at the name now (a FIFO, a file) would make that bind
 * fail with EADDRINUSE after the dump.
 */
static bool name_taken(const struct fd_dump *d, const struct usk *s, const char *dir)
{
	char *path;
	struct stat st;
	bool taken;

	if (!s->namelen || !s->name[0])
		return false;
	path = s->name[0] == '/' || !dir ? xstrdup(s->name) : xsprintf("%s/%s", dir, s->name);
	taken = !lstat(path, &st);
	if (taken)
		pr_err("pid %d fd %d: unix socket bound to %s, whose file was replaced by another "
		       "(mode %o); not supported\n",
		       d->pid, d->fd, path, st.st_mode);
	free(path);
	return taken;
}

/* A socket outside the tree connected to s (but not s's own peer). */
static struct usk *outside_sender(struct unix_table *t, const struct usk *s)
{
	return s->outsider ? unix_find(t, s->outsider) : NULL;
}

static int dump_listener(const struct fd_dump *d, struct unix_table *t, const struct usk *s,
			 UnixSkEntry *ue)
{
	size_t k;

	ue->has_backlog = true;
	ue->backlog = s->wq;
	ue->embryos = xzalloc((s->nicons ? s->nicons : 1) * sizeof(*ue->embryos));
	for (k = 0; k < s->nicons; k++) {
		struct usk *c = unix_find(t, s->icons[k]);
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
		       d->pid, d->fd, unix_type_name(s->type), p ? p->ino : s->peer,
		       p ? unix_name_str(p->name, p->namelen, nb, sizeof(nb)) : "(unknown)");
		return -1;
	}
	ue->has_ext = ue->ext = true;
	if (p && (p->state == UNIX_LISTEN || s->type == SOCK_DGRAM))
		to = p;
	else if (p)
		to = unix_accepted_from(t, p);
	if (!to || !to->namelen)
		return 0;
	if (find_bind_dir(d, to, &ue->peer_dir, &unlinked, NULL))
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
	struct usk *p = unix_find(t, s->peer), *o;

	o = unix_pending_at(t, s);
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

		if (!m->has_addr || !m->addr.len || unix_tree_named(t, m->addr.data, m->addr.len))
			continue;
		pr_err("pid %d fd %d: a queued datagram comes from %s, a socket outside the tree; "
		       "not supported\n",
		       d->pid, d->fd,
		       unix_name_str((char *)m->addr.data, m->addr.len, nb, sizeof(nb)));
		return -1;
	}
	return 0;
}

/* The listener a connected socket was accepted from, and its receive queue. */
static int dump_connected(const struct fd_dump *d, struct unix_table *t, struct usk *s,
			  UnixSkEntry *ue)
{
	struct usk *l = ue->ext ? NULL : unix_accepted_from(t, s);
	char nb[128];

	if (l && !l->in_tree) {
		pr_err("pid %d fd %d: unix connection accepted from %s, whose listening "
		       "socket is outside the tree; not supported\n",
		       d->pid, d->fd, unix_name_str(s->name, s->namelen, nb, sizeof(nb)));
		return -1;
	}
	if (l) {
		ue->has_listener = true;
		ue->listener = l->ino;
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
	return check_senders(d, t, ue);
}

/* The socket of d as the scan found it, if stasis can save its kind. */
static struct usk *scanned_socket(const struct fd_dump *d, struct unix_table **tp)
{
	struct unix_table *t = *tp = unix_scan(d->ctx);
	struct usk *s;

	if (!t) {
		pr_err("pid %d fd %d: cannot list the host's unix sockets\n", d->pid, d->fd);
		return NULL;
	}
	s = unix_find(t, d->st.st_ino);
	if (!s) {
		pr_err("pid %d fd %d: unix socket not found by sock_diag (another network "
		       "namespace?); not supported\n",
		       d->pid, d->fd);
		return NULL;
	}
	if (s->type != SOCK_STREAM && s->type != SOCK_DGRAM && s->type != SOCK_SEQPACKET) {
		pr_err("pid %d fd %d: unix socket of type %d not supported\n", d->pid, d->fd,
		       s->type);
		return NULL;
	}
	return s;
}

/* The socket file of a bound name: its mode, owner and times come back. */
static void dump_sock_file(UnixSkEntry *ue, const struct stat *st)
{
	ue->has_file_mode = ue->has_file_uid = ue->has_file_gid = true;
	ue->file_mode = st->st_mode & 07777;
	ue->file_uid = st->st_uid;
	ue->file_gid = st->st_gid;
	ue->has_file_atime_ns = ue->has_file_mtime_ns = true;
	ue->file_atime_ns = (uint64_t)st->st_atim.tv_sec * 1000000000ULL + st->st_atim.tv_nsec;
	ue->file_mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000ULL + st->st_mtim.tv_nsec;
}

int unix_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct unix_table *t;
	UnixSkEntry *ue;
	struct usk *s = scanned_socket(d, &t);
	struct stat file;
	bool unlinked;

	if (!s)
		return -1;
	ue = fe->unix_sk = xmalloc(sizeof(*ue));
	unix_sk_entry__init(ue);
	ue->ino = s->ino;
	ue->type = s->type;
	ue->state = s->state;
	ue->group = unix_group_of(t, s);
	if (s->namelen) {
		ue->has_name = true;
		ue->name.len = s->namelen;
		ue->name.data = xmalloc(s->namelen);
		memcpy(ue->name.data, s->name, s->namelen);
	}
	ue->has_shutdown = true;
	ue->shutdown = s->shutdown;
	file.st_mode = 0;
	if (dump_opts(d, ue) || find_bind_dir(d, s, &ue->bind_dir, &unlinked, &file))
		return -1;
	ue->has_unlinked = ue->unlinked = unlinked;
	if (unlinked && name_taken(d, s, ue->bind_dir))
		return -1;
	if (file.st_mode)
		dump_sock_file(ue, &file);
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
	return dump_peer(d, t, s, ue) || dump_connected(d, t, s, ue) ? -1 : 0;
}

/* A socket connected outside the tree: socket:[INO], as /proc shows it. */
const char *unix_inherit_key(const FileEntry *fe, char *buf, size_t size)
{
	if (!fe->unix_sk->ext)
		return NULL;
	snprintf(buf, size, "socket:[%llu]", (unsigned long long)fe->unix_sk->ino);
	return buf;
}

uint64_t unix_group(const FileEntry *fe)
{
	return fe->unix_sk->group;
}
