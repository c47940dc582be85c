/*
 * The kinds of namespace stasis saves, as src/res/ns.c walks them.  ns.c
 * owns what every kind shares: which namespace each task and thread is in
 * (task_entry ids), the rule that each saved namespace has exactly one
 * creator, and the IMG_NS records.  A kind adds what is its own through one
 * `struct ns_kind`: how to describe a namespace of the tree at dump into
 * its ns_entry, how to check a loaded record, and how its creator builds it
 * at restore.  A kind whose state is large (a mount table, a network's
 * devices) may also be a resource of its own in res_table[] after ns_res,
 * whose child_early then runs inside the namespace ns.c created.
 *
 * Adding a kind: a slot below, a file with its `struct ns_kind`, a line in
 * ns_kinds[] (ns.c, in the order creators build them), a task_entry field.
 */
#ifndef STASIS_NS_H
#define STASIS_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

#include "ns.pb-c.h"
#include "task.pb-c.h"

struct dump_ctx;
struct rst_ctx;
struct image;

/* One slot per namespace a task has (/proc/PID/ns/NAME), in ns_kinds[] order. */
enum ns_slot {
	NS_K_USER, /* first: it owns the namespaces created after it */
	NS_K_UTS,
	NS_K_TIME,
	NS_K_TIME_KIDS, /* time_for_children */
	NS_K_CGROUP,
	NS_K_IPC,
	NS_K_NET,
	NS_K_MNT,
	NS_K_NR
};

/* What a kind sees of the tree at dump, for describe(). */
struct ns_view {
	struct dump_ctx *ctx;
	const uint64_t (*ids)[NS_K_NR]; /* per task of ctx->tasks: 0 = the dumper's */
	struct ns_dump *nd;		/* ns.c's own */
};

struct ns_kind {
	const char *name;  /* under /proc/PID/ns/ */
	const char *label; /* in messages: "UTS namespace" */
	int nstype;	   /* CLONE_NEW* */
	NsKind kind;	   /* of its records; two slots may share one id space */
	/* task_entry's has_X and X for the slot (offsetof) */
	size_t te_has, te_id;
	/* a task is born in this slot of its parent (or of itself: from_self) */
	enum ns_slot inherits;
	bool from_self;
	/* every task of the tree must be in the same one */
	bool one_per_tree;
	/*
	 * the kernel keeps it the same in every thread of a process (setns
	 * and unshare refuse a process with more than one thread)
	 */
	bool same_in_threads;
	/*
	 * made by the clone that forks its creator (nstype added to the
	 * flags), which must be the root; set_up then prepares it from
	 * outside before the root runs, instead of create from inside
	 */
	bool at_fork;
	/*
	 * at_fork too when the root creates a user namespace: the kind's
	 * set_up needs rights over our namespaces that a creator inside a
	 * new user namespace lacks (a veth's host end)
	 */
	bool at_fork_with_user;

	/* dump: fill e (kind and id set) from task 'task' of v->ctx, which is in it */
	int (*describe)(const struct ns_view *v, size_t task, NsEntry *e);
	/* load: the record holds what this kind needs, nothing out of bounds */
	bool (*valid)(const NsEntry *e);
	/* restore, in the creator's restore child before it forks: build it */
	int (*create)(struct rst_ctx *c, const NsEntry *e);
	/* restore, controller, at_fork: the root 'pid' is forked into it, not yet run */
	int (*set_up)(struct rst_ctx *c, const NsEntry *e, pid_t pid);
};

#define NS_TE_FIELD(f) .te_has = offsetof(TaskEntry, has_##f), .te_id = offsetof(TaskEntry, f)

extern const struct ns_kind user_ns_kind, uts_ns_kind, time_ns_kind, time_kids_ns_kind,
    cgroup_ns_kind, ipc_ns_kind, net_ns_kind, mnt_ns_kind;

/* Run look(pid, e) with this thread in pid's namespace of kind k, then back. */
int ns_look_inside(pid_t pid, const struct ns_kind *k, NsEntry *e, int (*look)(pid_t, NsEntry *));
/* The tree at dump: how many tasks, and task i's pid (-1: a zombie). */
size_t ns_view_ntasks(const struct ns_view *v);
pid_t ns_view_pid(const struct ns_view *v, size_t task);
/* A saved namespace among those described so far, or NULL. */
NsEntry *ns_dump_find(const struct ns_view *v, NsKind kind, uint64_t id);

/* A loaded record, or NULL. */
const NsEntry *ns_image_find(struct image *img, NsKind kind, uint64_t id);
/* Every loaded namespace record: *ents and their number. */
size_t ns_image_all(struct image *img, NsEntry *const **ents);
/* Restore: the tree goes into an existing network namespace (res/ns_net.c). */
bool net_ns_joined(void);

/* Restore: the namespace of slot k c's task is the creator of, or NULL. */
const NsEntry *ns_created_by(struct rst_ctx *c, enum ns_slot k);
/* Is the task in a saved namespace of slot k (not the restorer's)? */
bool ns_task_in(const TaskEntry *te, enum ns_slot k);
/* Restore: the saved namespace of slot k c's task is in, or NULL (the restorer's). */
const NsEntry *ns_of(struct rst_ctx *c, enum ns_slot k);

/*
 * res/ns_user.c, for res/creds.c: the id that the dumper saw as 'host'
 * (uid or gid), as the task's user namespace numbers it.  0 and *inside
 * set; 1: not mapped there; the task is in no saved user namespace: itself.
 */
int userns_id_inside(struct rst_ctx *c, bool gid, uint32_t host, uint32_t *inside);

/*
 * ns_mnt.c, during a dump of a tree with a mount namespace of its own: a
 * path as the tree names it (/proc/PID/maps, fd links) made reachable
 * from ours (buf), and whether files on device dev come back on a new
 * file system (a tmpfs, proc ... that the restore mounts afresh), whose
 * device and inode numbers are not the dump's.  Outside such a dump:
 * path itself, false.
 */
const char *mnt_dump_path(const char *path, char *buf, size_t size);
bool mnt_dump_dev_rebuilt(dev_t dev);
/* In a restore child: is dev a file system the tree's restore made anew? */
bool mnt_restore_dev_rebuilt(dev_t dev);

#endif
