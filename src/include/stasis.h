/*
 * Commands and the state that dump and restore carry through their steps.
 */
#ifndef STASIS_H
#define STASIS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.h"
#include "rtask.h"
#include "task.pb-c.h"
#include "core.pb-c.h"
#include "mm.pb-c.h"
#include "fd.pb-c.h"
#include "evobj.pb-c.h"
#include "header.pb-c.h"
#include "tty.pb-c.h"

#define STASIS_VERSION "0.1.0"

struct inherit_fd {
	int fd;		 /* the restorer's fd */
	const char *key; /* e.g. "pipe:[1234]" */
};

struct dump_opts {
	pid_t pid;
	const char *dir;
	bool leave_running;
	bool shell_job;
	bool ext_unix_sk; /* allow unix sockets connected outside the tree */
	bool file_locks;  /* save file locks (else a tree holding one is refused) */
	/* save established TCP connections (repair mode) */
	bool tcp_established;
	bool manage_cgroups;	   /* save the settings of the tree's cgroups */
	const char *freeze_cgroup; /* hold the tree with this cgroup's freezer */
	bool network_lock_skip;	   /* --network-lock skip: no nft table while frozen */
	bool ext_files;		   /* allow pipes and terminals outside the tree at fds above 2 */
	const char **externals;	   /* --external: "net[INO]:KEY" ... */
	int n_externals;
	struct ext_mount *ext_mounts; /* --ext-mount-map MOUNTPOINT:KEY */
	int n_ext_mounts;
};

/* --ext-mount-map A:B; dump: A a mountpoint, B its key; restore: A a key, B our path */
struct ext_mount {
	const char *a, *b;
};

/* restore --cgroup-root [CONTROLLERS:]PATH: where the root task's cgroup goes */
struct cgroup_root {
	const char *ctrl; /* "memory", "cgroup2" ...; NULL: every hierarchy */
	const char *path;
};

enum cg_manage {
	CG_MANAGE_SOFT = 0, /* settings only for the cgroups restore creates */
	CG_MANAGE_FULL,	    /* for existing ones too */
	CG_MANAGE_IGNORE,   /* never */
};

/* --veth-pair IN=OUT: the veth IN of the tree gets its host end named OUT. */
struct veth_pair {
	const char *in;
	const char *out;
};

struct restore_opts {
	const char *dir;
	bool detached;
	bool pidns;
	bool sibling;
	bool shell_job;
	const char *pidfile;
	struct inherit_fd *inherit;
	int n_inherit;
	struct ext_mount *ext_mounts; /* --ext-mount-map KEY:PATH */
	int n_ext_mounts;
	bool skip_file_check;	 /* restore files whose size or identity changed */
	bool skip_audit_session; /* the tree may join another audit session */
	bool tcp_established;	 /* accepted for criu's sake (the image decides) */
	bool tcp_close;		 /* restore established TCP connections closed */
	enum cg_manage manage_cgroups;
	struct cgroup_root *cg_roots;
	int n_cg_roots;
	bool network_lock_skip;	      /* --network-lock skip: no nft table until the tree runs */
	const char *join_net;	      /* --join-ns net:PATH: restore into that network namespace */
	struct veth_pair *veth_pairs; /* --veth-pair IN=OUT: the host end's new name */
	int n_veth_pairs;
	/* the driver's, for an image with inner_pids: as --pidns, but the root keeps its PID */
	bool root_pid_kept;
	/* the driver's, for a restorer without CAP_CHECKPOINT_RESTORE: a user namespace too */
	bool own_userns;
};

int cmd_dump(const struct dump_opts *o);
int cmd_restore(const struct restore_opts *o);
int cmd_show(const char *dir, bool json);
int cmd_check(void);
/*
 * dump/wrapped.c: a copy a normal user's restore made is dumped from inside
 * its namespaces (*handled set, the dump's result returned); what ns.c
 * takes for our mount namespace there, and where the commit is told.
 */
int dump_wrapped(const struct dump_opts *o, bool *handled);
extern uint64_t dump_self_mnt_ino;
extern int dump_commit_fd;
/* restore/root.c: may we choose PIDs in our PID namespace (else a new user one is made)? */
bool can_choose_pids(void);

/* One thread being dumped; th[0] of its process is the leader. */
struct dump_thread {
	pid_t tid;
	struct rtask rt;
	bool frozen;
	bool waiting;	/* seized and interrupted, its stop not waited for yet */
	bool kids_read; /* its children were read once it was stopped */
	ThreadCore *core;
	char *status; /* /proc/PID/task/TID/status, read once per dump */
};

/* One process being dumped. */
struct dump_task {
	pid_t pid;
	bool zombie;
	struct dump_thread *th;
	size_t nth;
	TaskEntry *te;
	void **res_state; /* per resource kind (res.h), by table index */
};

/* The thread's status file, read on first use (NULL if unreadable). */
const char *dump_thread_status(struct dump_task *dt, struct dump_thread *th);

static inline struct rtask *dt_rt(struct dump_task *dt)
{
	return &dt->th[0].rt;
}

struct dump_ctx {
	const struct dump_opts *opts;
	struct img_writer w;
	struct dump_task *tasks;
	size_t ntasks;
	uint32_t next_file_id; /* ids of open file descriptions (file_entry.id) */
	void **res_state;      /* per resource kind (res.h), by table index */
	/*
	 * tasks[0, remote_done) are past their remote calls (stage 1), which
	 * then end until the release (SIZE_MAX: stage 1 stopped); read with
	 * __atomic_load_n by stage 2
	 */
	size_t remote_done;
};

/*
 * Stage 1 (a dump_threads hook): the call nr(a[0..2]) in every thread of
 * dt at once.  An argument THREAD_SCRATCH_AT(OFF) is OFF bytes into a
 * 64-byte slot of the scratch area for that thread alone; slots[i] (if
 * slots is not NULL) holds thread i's slot after the call, all read at
 * once.  rets[i]: thread i's result.  -1 only if ptrace failed.
 */
#define THREAD_SCRATCH_SLOT    64
#define THREAD_SCRATCH_AT(off) (~0UL - THREAD_SCRATCH_SLOT + 1 + (off))
#define THREAD_SCRATCH	       THREAD_SCRATCH_AT(0)
typedef unsigned char thread_slot[THREAD_SCRATCH_SLOT];
int dump_threads_call(struct dump_task *dt, long nr, const unsigned long a[3], long *rets,
		      thread_slot *slots);

/* Is pid a process of the tree being dumped? */
bool dump_tree_has(const struct dump_ctx *ctx, pid_t pid);

/* A loaded image, as restore and show use it. */
struct rst_task {
	TaskEntry *te;
	ThreadCore **cores; /* cores[0] is the leader's */
	size_t ncores;
	MmEntry *mm;
	PagemapEntry *pm;
	uint64_t pages_off; /* file offset of this task's page data */
	uint64_t pages_len;
	uint64_t pages_hash;
	/*
	 * With per-piece checksums (pm->chunk_hashes): which pieces a checker
	 * has taken (the verifier thread, or the copier that fills them)
	 */
	_Atomic unsigned char *piece_taken;
	FdEntry **fds;
	size_t nfds;
	PosixTimersEntry *ptimers;
	/* the tree, as restore rebuilds it */
	struct rst_task *parent;
	struct rst_task **kids;
	size_t nkids;
	size_t depth;
	uint32_t *open_ids; /* file ids this task opens for its subtree */
	size_t n_open;
};

struct image {
	struct img_reader r;
	ImageHeader *hdr;
	struct rst_task *tasks;
	size_t ntasks;
	struct rst_task **by_pid; /* the tasks sorted by pid, for image_task() */
	/* loading: the last pages record, until the pagemap after it names it */
	struct {
		bool have;
		uint64_t off, len;
	} pages_pending;
	void **res_state; /* per resource kind (res.h), by table index */
	/* a kind's image_loaded: tasks get their numbers in the tree's PID namespace only */
	bool inner_pids;
};

int image_load(const char *dir, struct image *img);
/* Link parents and children; check that sessions can be rebuilt. */
int tree_build(struct image *img);
int tree_check_sessions(TaskEntry **tes, size_t n, uint32_t root);
void image_free(struct image *img);
struct rst_task *image_task(struct image *img, uint32_t pid);
/*
 * The numbers the tree's own tasks use: the image holds the dumper's view
 * of every pid; a tree whose root was PID 1 of its own PID namespace also
 * has the numbers inside (task_entry ns_*), which remote and in-child
 * calls of the restored tasks must use.  Without one both views agree.
 */
static inline pid_t te_pid_inside(const TaskEntry *te)
{
	return te->has_ns_pid ? (pid_t)te->ns_pid : (pid_t)te->pid;
}
static inline pid_t te_pgid_inside(const TaskEntry *te)
{
	return te->has_ns_pid ? (pid_t)te->ns_pgid : (pid_t)te->pgid;
}
pid_t te_tid_inside(const TaskEntry *te, uint32_t tid);
pid_t image_own_pid(struct image *img, uint32_t pid);
/* An open file description by id (res/files.c), and its index among them, or -1. */
FileEntry *image_file(struct image *img, uint32_t id);
long image_file_index(struct image *img, uint32_t id);
/* Re-read page data and check it against its hash, with the caller's buffers. */
int image_verify_pages(struct image *img, void *buf, size_t bufsz, XXH3_state_t *st);
/* Say that t's pages fail their checksum; -1. */
int image_pages_corrupt(const struct image *img, const struct rst_task *t);

#endif
