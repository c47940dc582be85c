/*
 * What the parts of the restore driver share: the restore as a whole
 * (tree, image, second driver) and the entry points of each part.
 *   restore.c     cmd_restore: load, check, prepare, fork, rebuild, release
 *   child.c       the restore child: stasis code in each new task until it parks
 *   root.c        forking the root, directly or under a new PID namespace's init
 *   controller.c  following the tree as it forks, groups, release and kill
 *   transplant.c  rebuilding one parked task through the resource table
 *   second.c      the second driver, rebuilding some tasks on another CPU
 */
#ifndef STASIS_RESTORE_INT_H
#define STASIS_RESTORE_INT_H

#include "res.h"

struct second_driver;

struct restore {
	struct rst_tree tree; /* opts, image, one rst_ctx per task */
	struct image img;
	struct second_driver *second; /* rebuilds some tasks in parallel, or NULL */
};

/* child.c */
pid_t fork_at_pid_flags(pid_t pid, pid_t pid_inside, uint64_t flags);
void fork_traced(void); /* in the tree: its forks are traced (CLONE_PTRACE) */
pid_t fork_at_pid(pid_t pid);
pid_t fork_at(const struct rst_ctx *c, pid_t pid, pid_t pid_inside, uint64_t flags);
void __attribute__((noreturn)) child_main(struct rst_ctx *c);

/* root.c */
int fork_root(struct restore *r, pid_t *first);
void restore_pick_ns(const struct image *img, const struct restore_opts **o,
		     struct restore_opts *eff);
int release_ns_init(pid_t pid);

/* controller.c */
int plan_group_helpers(struct rst_tree *tree);
int wait_tree_parked(struct rst_tree *tree);
int restore_groups(struct rst_tree *tree);
int release_task(struct rst_ctx *c);
int release_tree(struct restore *r);
void kill_tree(struct restore *r, pid_t root);

/* transplant.c */
int transplant_begin(struct rst_ctx *c);
int transplant(struct rst_ctx *c);

/* second.c */
int second_driver_start(struct restore *r);
int second_driver_wait_rebuilt(struct restore *r);
int second_driver_finish(struct restore *r, bool release);

#endif
