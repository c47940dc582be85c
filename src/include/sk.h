/*
 * What the socket kinds share (src/res/sk.c): a socket's kind read once,
 * the comparison of an option table with a fresh socket's, integer socket
 * options both ways, whether a socket belongs to stasis's network
 * namespace (where restore recreates it), and sock_diag dumps.
 */
#ifndef STASIS_SK_H
#define STASIS_SK_H

#include <libmnl/libmnl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * SO_MARK of the segments stasis itself sends to a restored socket (the
 * peer's FIN of a half-closed connection): the network lock lets them by.
 */
#define SK_INJECT_MARK 0x57a51500

struct fd_dump;

/* A socket's kind: SO_DOMAIN, SO_TYPE, SO_PROTOCOL (-1 each if unreadable). */
struct sk_kind {
	int family, type, proto;
};

/*
 * The kind of the socket d is (d->st a socket's), read once for all the
 * match and dump hooks that ask about the same socket in a row.
 */
const struct sk_kind *sk_kind(const struct fd_dump *d);

struct dump_ctx;

/* A socket fd of the tree: its inode, which task (index in ctx->tasks), which fd. */
struct tree_sk {
	unsigned long ino;
	size_t task;
	int fd;
};
/* Every socket fd of the tree, task by task and fd by fd as /proc lists them. */
struct tree_sk *sk_tree_fds(struct dump_ctx *ctx, size_t *np);

/*
 * A socket option of a kind's table (inet.c, inet_raw.c): saved when it
 * differs from a fresh socket's.  flags: the kind's own bits, and
 * SK_OPT_REFUSE (set: the socket is refused).
 */
struct sk_opt {
	int level, name;
	unsigned int flags;
	const char *label;
};
#define SK_OPT_REFUSE 0x80000000u

/* One option that differs (val: its bytes as getsockopt gave them). */
struct sk_opt_diff {
	const struct sk_opt *o;
	const void *val;
	socklen_t len;
};

/*
 * Compare the options of tab (n entries; those applies(o, arg) accepts)
 * of socket fd with a fresh socket of kind k (made and read once per
 * table and kind) and call add(arg, diff) for each that differs.
 * Returns 0; -1 if no fresh socket could be made (errno set); 1 if an
 * SK_OPT_REFUSE option differs (*refused: it).
 */
int sk_diff_opts(int fd, const struct sk_kind *k, const struct sk_opt *tab, size_t n,
		 bool (*applies)(const struct sk_opt *o, const void *arg),
		 void (*add)(void *arg, const struct sk_opt_diff *diff), void *arg,
		 const struct sk_opt **refused);

/* getsockopt of an int: the value, or -1 */
int sk_get_int(int fd, int level, int name);
/* setsockopt of an int: 0 or -1 (errno) */
int sk_set_int(int fd, int level, int name, int val);
/*
 * The tree's network namespace (an fd, sk.c keeps it; -1: ours), set by
 * res/ns_net.c at dump when the tree lives in another one.
 */
void sk_set_netns(int fd);
int sk_netns_fd(void);
/* A netlink socket of bus opened in the tree's network namespace. */
struct mnl_socket *sk_mnl_open(int bus);
/* Is the socket fd of the tree's network namespace?  (false if it cannot tell) */
bool sk_in_our_netns(int fd);
/*
 * One sock_diag dump (NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY): send the
 * family's request (req, len bytes after the netlink header) and run cb on
 * every answer; 0, or -1 with the error line printed.
 */
int sk_diag_dump(const void *req, size_t len, mnl_cb_t cb, void *data);

#endif
