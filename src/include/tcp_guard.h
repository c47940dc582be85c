/*
 * The guardian and the hold of a dump's TCP connections (res/tcp_guard.c):
 * what keeps the tree whole should stasis die while a socket of it is in
 * repair mode.
 */
#ifndef STASIS_TCP_GUARD_H
#define STASIS_TCP_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define GUARD_MAX 1024 /* messages (sockets, processes) a guardian takes */

struct dump_ctx;
struct guard_page;
struct tree_sk;

struct tcp_guard {
	int sk;			 /* our end of the guardian's socketpair (if pid) */
	pid_t pid;		 /* the guardian, 0 until the first connection */
	struct guard_page *page; /* shared with it */
	size_t nmsg;		 /* messages handed to it */
	struct tree_sk *holders; /* the tree's socket fds (sk.h), sorted by inode */
	size_t nholders;
	bool scanned;
	signed char *held; /* per task: 1 held by us, -1 not to be held, 0 not yet seen */
	int *pidfds;	   /* of the held processes, in the order they were held */
	size_t *order;	   /* their task indexes */
	size_t nheld;
};

/* Hand a socket (and its SO_REUSEADDR) to the guardian, forked at the first. */
int tcp_guard_socket(struct tcp_guard *g, int fd, int reuse);
/* Hold every process of the tree that holds socket inode ino (SIGSTOP pending). */
int tcp_guard_hold(struct tcp_guard *g, struct dump_ctx *ctx, unsigned long ino);
/* Tracer thread, the tree still frozen: take every hold back, unseen. */
void tcp_guard_unhold(struct tcp_guard *g, struct dump_ctx *ctx);
/* From the rescue handler: let the held processes go on (SIGCONT). */
void tcp_guard_rescue(struct tcp_guard *g);
/* Forget the holds (the tree is killed). */
void tcp_guard_drop_holds(struct tcp_guard *g);
/* Tell the guardian how it ends ('O': all put back, 'K': the tree is killed), reap it. */
void tcp_guard_stop(struct tcp_guard *g, char how);
void tcp_guard_fini(struct tcp_guard *g);

#endif
