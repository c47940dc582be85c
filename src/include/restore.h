/*
 * Restore-side context shared by the restore driver and the per-resource
 * restore functions in src/res/.
 */
#ifndef STASIS_RESTORE_H
#define STASIS_RESTORE_H

#include "stasis.h"

/*
 * Service fds: the restore child keeps what it needs during the transplant
 * at fd numbers above every fd of the target.  The controller knows them.
 */
enum {
	SVC_IMAGE = 0, /* the image file, for remote preadv of pages */
	SVC_LOG,       /* our log */
	SVC_STDIN,     /* the restorer's 0, 1, 2 for external fds */
	SVC_STDOUT,
	SVC_STDERR,
	SVC_EXE,   /* the executable, for PR_SET_MM_MAP */
	SVC_FILES, /* mapped files, by index in mm->files */
};

struct rst_tree;

/* The restore trampoline's first page: `syscall; int3`, then the batch loop (rbatch.c). */
#define TRAMP_BATCH_OFF 16

struct rst_ctx {
	const struct restore_opts *opts;
	struct rst_tree *tree; /* the whole tree being restored */
	struct image *img;
	struct rst_task *t;
	int svc_base;	    /* first service fd */
	int svc_files;	    /* service fds the kinds asked for, from SVC_FILES on */
	int svc_end;	    /* first fd above them */
	int shared_base;    /* open files of the whole tree: shared_base + file id */
	int shared_slots;   /* and how many such slots there are (files.c) */
	int go_fd;	    /* root only: wait for the controller on this pipe */
	bool parked;	    /* stopped itself, ready for the transplant */
	bool exited;	    /* zombies: has exited as planned */
	bool attached;	    /* traced by us */
	bool second;	    /* rebuilt and released by the second driver */
	pid_t host_pid;	    /* its pid as we see it (differs with --pidns) */
	pid_t group_helper; /* leads a group whose leader is gone: recreate it */
	/*
	 * the root: namespaces its clone makes (restore_prepare), set up by
	 * root_forked; another task: CLONE_FILES, cloned from its parent's table
	 */
	uint64_t clone_flags;
	/* the process of its fd table that builds it (itself), NULL: not shared */
	struct rst_ctx *table_leader;
	int park_fd;	     /* cloned sharing its parent's table: tell it here we parked (0: no) */
	bool in_child;	     /* mm calls run as plain syscalls in the restore child */
	uint8_t *premapped;  /* per VMA: who builds it (MM_PREMAP_*, mm.h) */
	uint8_t *filled;     /* per VMA: shared memory another task filled already */
	unsigned long tramp; /* our trampoline + scratch area in the child */
	size_t tramp_len;
	struct rtask rt;  /* the child under transplant (its leader thread) */
	struct rtask *th; /* th[i] drives t->cores[i]; th[0] is unused */
};

/* The tree being restored: one rst_ctx per task, in image order. */
struct rst_tree {
	const struct restore_opts *opts;
	struct image *img;
	struct rst_ctx *ctx;
	size_t n;
	size_t root;	/* index of the root */
	pid_t our_pgid; /* the restorer's group: outside groups map to it */
	pid_t ns_init;	/* --pidns: our init of the new namespace */
};

/* The context of image task t. */
static inline struct rst_ctx *rst_ctx_of(struct rst_tree *tree, const struct rst_task *t)
{
	return &tree->ctx[t - tree->img->tasks];
}

static inline int svc_fd(const struct rst_ctx *c, int which)
{
	return c->svc_base + which;
}

#endif
