/*
 * Helpers of the socket kinds (inet.c, inet_raw.c, netlink.c, packet.c,
 * unix_scan.c): a socket's kind read once for every hook that asks, the
 * comparison of a kind's option table with a fresh socket's (the fresh
 * values read once per table and kind: a process with thousands of
 * sockets costs one getsockopt per option and socket, not two, and no
 * socket of stasis's own each), integer socket options, the network
 * namespace a socket belongs to (its cookie), and the sock_diag dump that
 * lists a family's sockets.  The tree's sockets live in the tree's network
 * namespace, which may not be ours (res/ns_net.c sets it with
 * sk_set_netns): sockets are compared with it and the sock_diag socket is
 * opened in it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/sock_diag.h>
#include <sched.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "sk.h"
#include "util.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static int sk_netns = -1; /* the tree's network namespace; -1: ours */

static uint64_t sk_cookie;  /* SO_NETNS_COOKIE of sk_netns (or ours) */
static int sk_cookie_known; /* 0 not read yet, 1 read, -1 the kernel has none */

void sk_set_netns(int fd)
{
	if (sk_netns >= 0)
		close(sk_netns);
	sk_netns = fd;
	sk_cookie_known = 0;
}

int sk_netns_fd(void)
{
	return sk_netns;
}

/* A socket made in the tree's network namespace (its defaults are that one's). */
static int sk_socket_in_tree(int family, int type, int proto)
{
	int ours, fd;

	if (sk_netns < 0)
		return socket(family, type, proto);
	ours = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ours < 0 || setns(sk_netns, CLONE_NEWNET)) {
		pr_perror("cannot enter the tree's network namespace");
		if (ours >= 0)
			close(ours);
		return -1;
	}
	fd = socket(family, type, proto);
	if (setns(ours, CLONE_NEWNET)) {
		pr_perror("cannot go back to our own network namespace");
		abort();
	}
	close(ours);
	return fd;
}

/* Open a netlink socket of the given bus in the tree's network namespace. */
struct mnl_socket *sk_mnl_open(int bus)
{
	struct mnl_socket *nl;
	int ours;

	if (sk_netns < 0)
		return mnl_socket_open(bus);
	ours = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ours < 0 || setns(sk_netns, CLONE_NEWNET)) {
		pr_perror("cannot enter the tree's network namespace");
		if (ours >= 0)
			close(ours);
		return NULL;
	}
	nl = mnl_socket_open(bus);
	if (setns(ours, CLONE_NEWNET)) {
		pr_perror("cannot go back to our own network namespace");
		abort();
	}
	close(ours);
	return nl;
}

const struct sk_kind *sk_kind(const struct fd_dump *d)
{
	/* per thread: inet.c reads sockets ahead in a second one */
	static __thread struct sk_kind k;
	static __thread dev_t dev;
	static __thread ino_t ino;
	static __thread bool known;

	if (known && d->st.st_dev == dev && d->st.st_ino == ino)
		return &k;
	k.family = sk_get_int(d->lfd, SOL_SOCKET, SO_DOMAIN);
	k.type = sk_get_int(d->lfd, SOL_SOCKET, SO_TYPE);
	k.proto = sk_get_int(d->lfd, SOL_SOCKET, SO_PROTOCOL);
	dev = d->st.st_dev;
	ino = d->st.st_ino;
	known = true;
	return &k;
}

#define SK_OPT_MAX 64 /* bytes of one option value */

/* The options of one table on a fresh socket of one kind. */
struct sk_fresh {
	const struct sk_opt *tab;
	struct sk_kind k;
	bool *got;
	socklen_t *len;
	char (*val)[SK_OPT_MAX];
	struct sk_fresh *next;
};

static const struct sk_fresh *sk_fresh(const struct sk_kind *k, const struct sk_opt *tab, size_t n)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct sk_fresh *list;
	struct sk_fresh *f;
	size_t i;
	int fd;

	pthread_mutex_lock(&lock); /* inet.c reads sockets ahead in a second thread */
	for (f = list; f; f = f->next)
		if (f->tab == tab && f->k.family == k->family && f->k.type == k->type &&
		    f->k.proto == k->proto)
			goto out;
	fd = sk_socket_in_tree(k->family, k->type | SOCK_CLOEXEC, k->proto);
	if (fd < 0)
		goto out;
	f = xmalloc(sizeof(*f));
	f->tab = tab;
	f->k = *k;
	f->got = xmalloc(n * sizeof(*f->got));
	f->len = xmalloc(n * sizeof(*f->len));
	f->val = xmalloc(n * sizeof(*f->val));
	memset(f->val, 0, n * sizeof(*f->val));
	for (i = 0; i < n; i++) {
		f->len[i] = SK_OPT_MAX;
		f->got[i] = !getsockopt(fd, tab[i].level, tab[i].name, f->val[i], &f->len[i]);
	}
	close(fd);
	f->next = list;
	list = f;
out:
	pthread_mutex_unlock(&lock);
	return f;
}

int sk_diff_opts(int fd, const struct sk_kind *k, const struct sk_opt *tab, size_t n,
		 bool (*applies)(const struct sk_opt *o, const void *arg),
		 void (*add)(void *arg, const struct sk_opt_diff *diff), void *arg,
		 const struct sk_opt **refused)
{
	const struct sk_fresh *f = sk_fresh(k, tab, n);
	size_t i;

	if (!f)
		return -1;
	for (i = 0; i < n; i++) {
		char v[SK_OPT_MAX];
		socklen_t vl = sizeof(v);

		if (!applies(&tab[i], arg))
			continue;
		memset(v, 0, sizeof(v));
		if (getsockopt(fd, tab[i].level, tab[i].name, v, &vl))
			continue; /* not for this kind of socket */
		if (f->got[i] && f->len[i] == vl && !memcmp(v, f->val[i], vl))
			continue;
		if (tab[i].flags & SK_OPT_REFUSE) {
			*refused = &tab[i];
			return 1;
		}
		add(arg, &(struct sk_opt_diff){ &tab[i], v, vl });
	}
	return 0;
}

int sk_get_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	return getsockopt(fd, level, name, &v, &len) ? -1 : v;
}

/*
 * SO_SNDBUFFORCE/SO_RCVBUFFORCE need CAP_NET_ADMIN.  Without it (a normal
 * user's restore) the plain option gives the same size as long as the
 * value is within net.core.wmem_max/rmem_max; above, the size cannot be
 * given back and the caller's error says which socket (EPERM).
 */
static int sk_set_buf_plain(int fd, int name, int val)
{
	const char *max =
	    name == SO_SNDBUFFORCE ? "/proc/sys/net/core/wmem_max" : "/proc/sys/net/core/rmem_max";
	char *s = read_file(max, NULL);
	long lim = s ? atol(s) : 0;

	free(s);
	if (val < 0 || val > lim) {
		pr_err("a socket buffer of %d bytes is above %s (%ld): it needs CAP_NET_ADMIN\n",
		       val, max + strlen("/proc/sys/"), lim);
		errno = EPERM;
		return -1;
	}
	name = name == SO_SNDBUFFORCE ? SO_SNDBUF : SO_RCVBUF;
	return setsockopt(fd, SOL_SOCKET, name, &val, sizeof(val));
}

int sk_set_int(int fd, int level, int name, int val)
{
	int ret = setsockopt(fd, level, name, &val, sizeof(val));

	if (ret && errno == EPERM && level == SOL_SOCKET &&
	    (name == SO_SNDBUFFORCE || name == SO_RCVBUFFORCE))
		ret = sk_set_buf_plain(fd, name, val);
	return ret;
}

/*
 * Without CAP_NET_ADMIN SIOCGSKNS is refused; the namespace's cookie
 * (SO_NETNS_COOKIE) is not, and tells ours from another one as well.
 */
static bool sk_cookie_ours(int fd)
{
	static uint64_t ours;
	static bool known;
	socklen_t len = sizeof(uint64_t);
	uint64_t c;

	if (!known) {
		int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		known = s >= 0 && !getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &ours, &len);
		if (s >= 0)
			close(s);
		if (!known)
			return false;
	}
	len = sizeof(c);
	return !getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &c, &len) && c == ours;
}

/*
 * The namespace's cookie (SO_NETNS_COOKIE, Linux 5.14): one getsockopt
 * per socket, where SIOCGSKNS opens a file of the namespace, to be
 * stat'ed and closed.  The tree's is read once from a socket made there.
 */
static int sk_cookie_cmp(int fd)
{
	socklen_t len = sizeof(uint64_t);
	uint64_t c;

	if (!sk_cookie_known) {
		int s = sk_socket_in_tree(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		sk_cookie_known =
		    s >= 0 && !getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &sk_cookie, &len) ? 1
											    : -1;
		if (s >= 0)
			close(s);
	}
	if (sk_cookie_known < 0)
		return -1;
	len = sizeof(c);
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &c, &len))
		return -1;
	return c == sk_cookie;
}

/* stasis's own network namespace (it dumps from there) is looked up once */
bool sk_in_our_netns(int fd)
{
	static struct stat ours;
	static bool known;
	struct stat a, b;
	int ns, same = sk_cookie_cmp(fd);
	bool ok;

	if (same >= 0)
		return same;
	ns = ioctl(fd, SIOCGSKNS);
	if (ns < 0)
		return errno == EPERM && sk_netns < 0 && sk_cookie_ours(fd);
	if (sk_netns >= 0) {
		ok = !fstat(ns, &a) && !fstat(sk_netns, &b) && a.st_ino == b.st_ino &&
		     a.st_dev == b.st_dev;
	} else {
		if (!known && !stat("/proc/self/ns/net", &ours))
			known = true;
		ok = known && !fstat(ns, &a) && a.st_ino == ours.st_ino && a.st_dev == ours.st_dev;
	}
	close(ns);
	return ok;
}

int sk_diag_dump(const void *req, size_t len, mnl_cb_t cb, void *data)
{
	struct mnl_socket *nl = sk_mnl_open(NETLINK_SOCK_DIAG);
	size_t bufsz = 32768;
	char *buf = xmalloc(bufsz);
	unsigned int seq = 1, portid;
	struct nlmsghdr *nlh;
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
	memcpy(mnl_nlmsg_put_extra_header(nlh, len), req, len);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		pr_perror("sock_diag request");
		goto out;
	}
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, bufsz);
		if (n > 0)
			n = mnl_cb_run(buf, n, seq, portid, cb, data);
		if (n < 0) {
			pr_perror("sock_diag answer");
			goto out;
		}
		if (n == MNL_CB_STOP)
			break;
	}
	ret = 0;
out:
	if (nl)
		mnl_socket_close(nl);
	free(buf);
	return ret;
}

struct tree_sk *sk_tree_fds(struct dump_ctx *ctx, size_t *np)
{
	struct tree_sk *v = NULL;
	size_t i, n = 0, cap = 0;

	for (i = 0; i < ctx->ntasks; i++) {
		char path[64], link[64];
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "/proc/%d/fd", ctx->tasks[i].pid);
		d = opendir(path);
		while (d && (de = readdir(d))) {
			ssize_t len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);

			if (len < 9 || strncmp(link, "socket:[", 8))
				continue;
			link[len] = '\0';
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[n++] =
			    (struct tree_sk){ strtoul(link + 8, NULL, 10), i, atoi(de->d_name) };
		}
		if (d)
			closedir(d);
	}
	*np = n;
	return v;
}
