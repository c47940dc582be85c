/*
 * Unix sockets, the restore: the task that opens a group for its subtree
 * builds all of it with plain syscalls: socketpair() for pairs, bind +
 * listen for listeners, connect + accept for accepted connections, connect
 * for pending ones, then refills every receive queue from the right
 * sender, applies shutdown and options and places each socket at its
 * shared slot.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "res.h"
#include "sk.h"
#include "unix_sk.h"
#include "util.h"

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
	return unix_name_str((const char *)n->data, n->len, buf, size);
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

/* The socket file just bound: owner (first: chown clears set-id bits), mode, times. */
static int sock_file_attrs(const UnixSkEntry *u, const char *path)
{
	struct timespec ts[2];

	if ((u->has_file_uid || u->has_file_gid) &&
	    fchownat(AT_FDCWD, path, u->has_file_uid ? u->file_uid : (uid_t)-1,
		     u->has_file_gid ? u->file_gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW))
		return -1;
	if (u->has_file_mode && fchmodat(AT_FDCWD, path, u->file_mode, 0))
		return -1;
	if (!u->has_file_atime_ns || !u->has_file_mtime_ns)
		return 0;
	ts[0].tv_sec = u->file_atime_ns / 1000000000ULL;
	ts[0].tv_nsec = u->file_atime_ns % 1000000000ULL;
	ts[1].tv_sec = u->file_mtime_ns / 1000000000ULL;
	ts[1].tv_nsec = u->file_mtime_ns % 1000000000ULL;
	return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
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
	if (!ret && do_bind > 0 && name->data[0] && sock_file_attrs(u, sun.sun_path))
		ret = -1;
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
	return sk_set_int(fd, SOL_SOCKET, opt, v); /* the *BUFFORCE ones fall back (sk.c) */
}

static int set_timeo(int fd, int opt, uint64_t us)
{
	struct timeval tv = { us / 1000000, us % 1000000 };

	return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
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
	    (u->has_peek_off && u->peek_off >= 0 && set_int(s->fd, SO_PEEK_OFF, u->peek_off)) ||
	    (u->rcvtimeo_us && set_timeo(s->fd, SO_RCVTIMEO, u->rcvtimeo_us)) ||
	    (u->sndtimeo_us && set_timeo(s->fd, SO_SNDTIMEO, u->sndtimeo_us)))
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

int unix_open(struct rst_ctx *c, const FileEntry *fe)
{
	struct rgroup g = { .c = c };
	FileEntry **files;
	size_t i, n;
	int mine = -1;

	if (fe->unix_sk->ext) {
		char key[64];
		int fd = inherited_fd(c, unix_inherit_key(fe, key, sizeof(key)));

		if (fd >= 0)
			return fd;
	}
	files = image_files(c->img, &n);
	g.sk = xzalloc((n + 1) * sizeof(*g.sk));
	for (i = 0; i < n; i++) {
		const FileEntry *o = files[i];

		if (o->type == FILE_TYPE__FILE_UNIX && o->unix_sk->group == fe->unix_sk->group)
			g.sk[g.n++] = (struct rsk){ o, o->unix_sk, -1, -1, false };
	}
	if (build_group(&g))
		goto out;
	for (i = 0; i < g.n; i++) {
		int fd = g.sk[i].fd;

		g.sk[i].fd = -1;
		if (g.sk[i].fe == fe)
			mine = fd;
		else if (fd_place_shared(c, g.sk[i].fe->id, fd))
			goto out;
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
