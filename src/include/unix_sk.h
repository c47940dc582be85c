/*
 * Inside the unix socket kind (src/res/unix*.c): the host's unix sockets as
 * sock_diag lists them, marked with the ones the tree holds and tied into
 * the groups restore builds together.  unix_scan.c lists and groups them,
 * unix_dump.c saves one socket, unix_restore.c rebuilds a group.
 */
#ifndef STASIS_UNIX_SK_H
#define STASIS_UNIX_SK_H

#include <sys/socket.h>
#include <sys/un.h>

#include "files.h"

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

/* One unix socket of the host, as sock_diag lists it. */
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
	int state; /* 0: not yet, 1: scanned, -1: failed */
};

/* unix_scan.c: the listing (the unix kind's dump state) and the grouping */
struct unix_table *unix_scan(struct dump_ctx *ctx);
void unix_dump_fini(struct dump_ctx *ctx, void *state);
struct usk *unix_find(struct unix_table *t, uint32_t ino);
size_t unix_root(struct unix_table *t, size_t i);
/* Tie the tree's sockets into groups (t sorted by inode, in_tree and pre set). */
void unix_make_groups(struct unix_table *t);
uint64_t unix_group_of(struct unix_table *t, const struct usk *s);
/* The listener in the tree that accepted s / whose accept queue holds s. */
struct usk *unix_accepted_from(struct unix_table *t, const struct usk *s);
struct usk *unix_pending_at(struct unix_table *t, const struct usk *s);
/* The socket of the tree bound to name (a datagram's sender). */
struct usk *unix_tree_named(struct unix_table *t, const void *name, size_t len);
const char *unix_type_name(int type);
/* A printable form of a socket name: a path, or @name for abstract ones. */
const char *unix_name_str(const char *name, int len, char *buf, size_t size);

/* unix_dump.c */
bool unix_match(const struct fd_dump *d);
int unix_dump(const struct fd_dump *d, FileEntry *fe);
/* Copy the receive queue without consuming it (MSG_PEEK along SO_PEEK_OFF). */
int unix_peek_queue(const struct fd_dump *d, UnixSkEntry *ue);
uint64_t unix_group(const FileEntry *fe);
const char *unix_inherit_key(const FileEntry *fe, char *buf, size_t size);

/* unix_restore.c */
int unix_open(struct rst_ctx *c, const FileEntry *fe);

#endif
