/*
 * The resource table: every kind of per-task kernel state (memory,
 * threads, signals, credentials, open files, terminals, timers ...) is one
 * `struct res_ops` in the file of src/res/ that holds both its dump and its
 * restore.  The drivers (src/dump, src/restore) never call a resource by
 * name: at each stage they walk res_table[] in order and call the hook of
 * that stage of every entry that has one.  The order of the table is the
 * order of every stage; src/res/table.c says why each entry stands where
 * it stands.  A kind that needs private state declares its size here and
 * finds it again with res_dump_state() and friends.
 */
#ifndef STASIS_RES_H
#define STASIS_RES_H

#include "fault.h"
#include "restore.h"
#include "stasis.h"

struct res_ops {
	const char *name;

	/* --- private state, allocated zeroed by the drivers and the loader */
	size_t dump_state_size;	     /* one per dump: res_dump_state() */
	size_t dump_task_state_size; /* one per dumped process: res_dump_task_state() */
	size_t image_state_size;     /* one per loaded image: res_image_state() */

	/* --- dump, in the order they run */
	/* before the tree is seized: hold it still, so that no task forks away */
	int (*dump_hold)(struct dump_ctx *ctx);
	/* every task seized: let the hold go (dump_end and dump_rescue also must) */
	int (*dump_unhold)(struct dump_ctx *ctx);
	/* the tree is frozen, nothing written yet: refuse what cannot be saved */
	int (*dump_check)(struct dump_ctx *ctx);
	/* stage 1, tracer thread, scratch mapping in place: remote syscalls */
	int (*dump_remote)(struct dump_ctx *ctx, struct dump_task *dt);
	/*
	 * stage 1, all threads of the task at once, before dump_thread: the
	 * remote calls every thread needs, made in all of them together
	 * (dump_threads_call); each thread's core record exists
	 */
	int (*dump_threads)(struct dump_ctx *ctx, struct dump_task *dt);
	/* stage 1, once per thread (leader first) */
	int (*dump_thread)(struct dump_ctx *ctx, struct dump_task *dt, struct dump_thread *th);
	/* stage 2, for a zombie instead of the stages below: its task record only */
	int (*dump_zombie)(struct dump_ctx *ctx, struct dump_task *dt);
	/* stage 2, second thread: fill dt->te from /proc, before it is written */
	int (*dump_local)(struct dump_ctx *ctx, struct dump_task *dt);
	/* stage 2, after the task's IMG_TASK and IMG_THREAD_CORE records: own records */
	int (*dump_write)(struct dump_ctx *ctx, struct dump_task *dt);
	/* stage 2, last: bulk data (pages), after every kind's records of the task */
	int (*dump_data)(struct dump_ctx *ctx, struct dump_task *dt);
	/*
	 * the dump is over, the tree still frozen: it is killed next (kill:
	 * the image is committed, no -R) or let go (-R, or the dump failed);
	 * undo here what must not outlast the freeze in a tree that runs on
	 */
	void (*dump_end)(struct dump_ctx *ctx, bool kill);
	/*
	 * stasis dies during the dump (a signal handler, see dump.c): the same
	 * as dump_end(ctx, false) before the tree is let go, but async-signal-
	 * safe (no allocation, no stdio) and best effort
	 */
	void (*dump_rescue)(struct dump_ctx *ctx);
	/* free what dump_task_state holds (the block itself is the driver's) */
	void (*dump_task_fini)(struct dump_task *dt, void *state);
	/* the dump is over, committed or not: free what dump_state holds */
	void (*dump_fini)(struct dump_ctx *ctx, void *state);

	/* --- loading an image (restore and show) */
	/* every record is read: sort, check what the kind's records say together */
	int (*image_loaded)(struct image *img);

	/* --- restore, in the order they run */
	/* the image is loaded, nothing forked: refuse or plan over the whole image */
	int (*restore_check)(struct image *img, const struct restore_opts *o);
	/* per task, nothing forked: service fds, trampoline placement */
	int (*restore_prepare)(struct rst_ctx *c);
	/* controller, right before the root is forked: what its restore child inherits */
	int (*root_fork)(struct rst_ctx *c);
	/* controller, the root forked (c->clone_flags) and traced, before it runs */
	int (*root_forked)(struct rst_ctx *c, pid_t pid);
	/* in the restore child, before it forks its children (they inherit it) */
	int (*child_early)(struct rst_ctx *c);
	/* in the restore child that leads a session, right after setsid() */
	int (*child_session)(struct rst_ctx *c);
	/* in the restore child, after its children are forked */
	int (*child)(struct rst_ctx *c);
	/* in the restore child, last: what is left of it after this is ours */
	int (*child_late)(struct rst_ctx *c);
	/* in the restore child of a zombie instead of the above, before it dies */
	int (*child_zombie)(struct rst_ctx *c);
	/* controller, every task parked and in its group: objects naming other tasks */
	int (*tree)(struct rst_tree *tree);
	/* controller, per task, before its threads exist */
	int (*remote)(struct rst_ctx *c);
	/* per thread, the leader first, each other thread right after it is created */
	int (*thread)(struct rst_ctx *c, struct rtask *rt, ThreadCore *core);
	/* per task, every thread exists */
	int (*remote_late)(struct rst_ctx *c);
	/* per thread, the last thread first and the leader last: credentials */
	int (*thread_last)(struct rst_ctx *c, struct rtask *rt, ThreadCore *core);
	/* per thread, after the trampoline is gone: nothing may run remotely after */
	int (*thread_finish)(struct rst_ctx *c, struct rtask *rt, ThreadCore *core);
	/* per task, right before it is let go */
	int (*release)(struct rst_ctx *c);
	/* the restore is over: the tree runs (ok) or nothing of it is left */
	void (*restore_end)(struct image *img, const struct restore_opts *o, bool ok);
	/* the task's rebuild reaches another task: rebuild it on the main driver */
	bool (*reaches_other_tasks)(const struct rst_ctx *c);
	/* free what image_state holds */
	void (*image_fini)(struct image *img, void *state);
};

extern const struct res_ops *const res_table[];
extern const size_t res_table_len;

#define for_each_res(i, ops) for ((i) = 0; (i) < res_table_len && ((ops) = res_table[i], 1); (i)++)

/*
 * Run one stage: the hook 'stage' of every kind that has one, in table
 * order, with the given arguments; stops at the first that fails (-1).
 * Each hook that ran is a fault point (fault.h: "dump:mm:data"), which
 * fails as if the hook had, after it did its work.
 */
#define res_stage(stage, ...)                                                                  \
	({                                                                                     \
		int res_ret_ = 0;                                                              \
		size_t res_i_;                                                                 \
		for (res_i_ = 0; res_i_ < res_table_len && !res_ret_; res_i_++)                \
			if (res_table[res_i_]->stage)                                          \
				res_ret_ =                                                     \
				    res_table[res_i_]->stage(__VA_ARGS__) ||                   \
					    (fault_armed() &&                                  \
					     fault_res_stage(res_table[res_i_]->name, #stage)) \
					? -1                                                   \
					: 0;                                                   \
		res_ret_;                                                                      \
	})

/* Private state of one resource kind (NULL if the kind declared none). */
void *res_dump_state(struct dump_ctx *ctx, const struct res_ops *ops);
void *res_dump_task_state(struct dump_task *dt, const struct res_ops *ops);
void *res_image_state(struct image *img, const struct res_ops *ops);

/* Allocate and free the private blocks of every kind (drivers, loader). */
void res_dump_states_init(struct dump_ctx *ctx);
void res_dump_states_fini(struct dump_ctx *ctx);
void res_dump_task_states_init(struct dump_task *dt);
void res_dump_task_states_fini(struct dump_task *dt);
void res_image_states_init(struct image *img);
void res_image_states_fini(struct image *img);

/* The entries of res_table[], defined in their own files. */
extern const struct res_ops ns_res, netns_res, cgroup_res, procattr_res, membarrier_res,
    sysvipc_res, files_res, pipe_res, unix_res, tcp_res, inet_res, fsobj_res, tty_res, pidfd_res,
    mm_res, task_res, flock_res, thread_res, sched_res, signal_res, itimer_res, ptimer_res,
    seccomp_res, creds_res, seccomp_nnp_res, mqueue_res, netlock_res, fown_res, share_res, mnt_res,
    mempolicy_res;

/*
 * Record loaders of the kinds (the loader calls them with the decoded
 * message, which they own from then on: kept, or freed on error; raw
 * records get msg NULL and read or skip their payload themselves).
 */
int files_load(struct image *img, const struct img_rec_hdr *h, void *msg);	/* IMG_FILE */
int pipe_load(struct image *img, const struct img_rec_hdr *h, void *msg);	/* IMG_PIPE */
int tty_load(struct image *img, const struct img_rec_hdr *h, void *msg);	/* IMG_TTY */
int flock_load(struct image *img, const struct img_rec_hdr *h, void *msg);	/* IMG_FLOCK */
int fsobj_data_load(struct image *img, const struct img_rec_hdr *h, void *msg); /* IMG_FSOBJ_DATA */
int cgroup_load(struct image *img, const struct img_rec_hdr *h, void *msg);	/* IMG_CGROUP */
int ns_load(struct image *img, const struct img_rec_hdr *h, void *msg);		/* IMG_NS */
/* IMG_SYSV_SHM, IMG_SYSV_SHM_DATA, IMG_SYSV_SEM, IMG_SYSV_MSG (res/sysvipc.c) */
int sysvipc_shm_load(struct image *img, const struct img_rec_hdr *h, void *msg);
int sysvipc_shm_data_load(struct image *img, const struct img_rec_hdr *h, void *msg);
int sysvipc_sem_load(struct image *img, const struct img_rec_hdr *h, void *msg);
int sysvipc_msg_load(struct image *img, const struct img_rec_hdr *h, void *msg);
int mnt_load(struct image *img, const struct img_rec_hdr *h, void *msg);      /* IMG_MNT */
int mnt_file_load(struct image *img, const struct img_rec_hdr *h, void *msg); /* IMG_MNT_FILE */
int netlock_load(struct image *img, const struct img_rec_hdr *h, void *msg);  /* IMG_NETLOCK */
int mqueue_load(struct image *img, const struct img_rec_hdr *h, void *msg);   /* IMG_MQUEUE */

/* res/creds.c: also used by the driver for zombies and by res/task.c */
int creds_parse(pid_t tid, const char *status, CredsEntry *cr);

/* res/netlock.c: can the network be locked here (stasis check); NULL or why not */
const char *netlock_probe(void);
/* res/netlock.c: in the root's restore child, in the network namespace it made */
int netlock_hold_here(struct image *img);

/* res/files.c: the highest fd of a task in the image */
int files_max_fd(struct rst_task *t);
/* res/mm.c: does the dumped task map the file dev:ino (res/flock.c) */
bool mm_maps_file(struct dump_task *dt, dev_t dev, ino_t ino);

#endif
