/*
 * What the socket kinds share (src/res/sk.c): integer socket options both
 * ways, and whether a socket belongs to stasis's network namespace (where
 * restore recreates it).
 */
#ifndef STASIS_SK_H
#define STASIS_SK_H

#include <libmnl/libmnl.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * SO_MARK of the segments stasis itself sends to a restored socket (the
 * peer's FIN of a half-closed connection): the network lock lets them by.
 */
#define SK_INJECT_MARK 0x57a51500

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
