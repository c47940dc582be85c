/*
 * Per-resource dump and restore entry points.  Each kind of kernel object
 * lives in one file of src/res/ that holds both directions.
 */
#ifndef STASIS_RES_H
#define STASIS_RES_H

#include "restore.h"
#include "stasis.h"

/* res/task.c: identity, cwd/root, umask, personality, rlimits, prctl flags */
int task_dump_remote(struct dump_task *dt);
int task_dump(struct dump_task *dt);
int task_restore_child(struct rst_ctx *c); /* in the child, before the stop */
int task_restore_remote(struct rst_ctx *c);

/* res/creds.c: uids, gids, groups, capabilities, securebits, no_new_privs */
void creds_prepare(void);
int creds_parse(pid_t tid, const char *status, CredsEntry *cr);
int creds_dump_thread(struct dump_task *dt, struct dump_thread *th);
int creds_restore_remote(struct rst_ctx *c, struct rtask *rt, ThreadCore *core);

/* res/seccomp.c: seccomp mode and filters, per thread */
int seccomp_dump_thread(struct dump_task *dt, struct dump_thread *th);
int seccomp_restore_remote(struct rst_ctx *c, struct rtask *rt, ThreadCore *core);

/* res/sched.c: nice, scheduling policy, CPU affinity, timer slack, per thread */
int sched_dump_thread(struct dump_task *dt, struct dump_thread *th);
int sched_restore_remote(struct rst_ctx *c, struct rtask *rt, ThreadCore *core);

/* res/itimer.c: interval timers (process-wide) */
int itimer_dump(struct dump_task *dt);
int itimer_restore_remote(struct rst_ctx *c);

/* res/ptimer.c: POSIX timers (process-wide), kept with their ids */
int ptimers_dump(struct dump_task *dt);
int ptimers_write(struct dump_ctx *ctx, struct dump_task *dt);
int ptimers_restore_remote(struct rst_ctx *c);

/* res/pidfd.c: pidfds are opened by the controller once every task exists */
int pidfd_restore_tree(struct rst_ctx *ctx, size_t n);

/* res/sysvipc.c: refuse a tree that uses SysV IPC objects, naming them */
int sysvipc_check(struct dump_ctx *ctx);

/* res/signal.c: dispositions, masks, pending signals, sigaltstack */
int sig_dump(struct dump_task *dt);
int sig_dump_thread(struct dump_task *dt, struct dump_thread *th);
int sig_restore_child(struct rst_ctx *c);
int sig_restore_remote(struct rst_ctx *c);
int sig_restore_thread(struct rst_ctx *c, struct rtask *rt, ThreadCore *core);

/* res/thread.c: registers, xstate, rseq, tid address, robust list */
int thread_dump(struct dump_task *dt, struct dump_thread *th);
int thread_create(struct rst_ctx *c, ThreadCore *core, struct rtask *rt);
int thread_restore_child(struct rst_ctx *c);
int thread_restore_remote(struct rst_ctx *c, struct rtask *rt, ThreadCore *core);
int thread_restore_regs(struct rst_ctx *c, struct rtask *rt, ThreadCore *core);

/* res/mm.c: mappings, mm fields, page contents */
int mm_dump_remote(struct dump_task *dt);
int mm_dump(struct dump_ctx *ctx, struct dump_task *dt);
int mm_dump_pages(struct dump_ctx *ctx, struct dump_task *dt);
int mm_restore_child(struct rst_ctx *c);  /* open mapped files as service fds */
int mm_premap_child(struct rst_ctx *c);	  /* in the child: what does not collide */
int mm_restore_remote(struct rst_ctx *c); /* build the rest of the address space */
int mm_vdso_check(struct image *img);
int mm_pick_trampoline(struct rst_ctx *c);

/* res/files.c: open files behind the fd ops table */
int files_dump(struct dump_ctx *ctx, struct dump_task *dt);
void files_dump_fini(struct dump_ctx *ctx);
int files_plan(struct image *img);
int files_open_shared(struct rst_ctx *c);
int files_restore_child(struct rst_ctx *c, int svc_end);
int files_max_fd(struct rst_task *t);
int epoll_restore_watches(struct rst_ctx *c); /* res/epoll.c, in the child */
void unix_table_free(struct dump_ctx *ctx);   /* res/unix.c */

/* res/tty.c: terminals, sessions' controlling terminals, job-control stops */
int tty_dump_task(struct dump_ctx *ctx, struct dump_task *dt);
int tty_check_shell_job(struct image *img, const struct restore_opts *o);
int tty_child_session(struct rst_ctx *c);			/* after setsid() */
int tty_restore_fg(struct rst_ctx *ctx, size_t n, size_t root); /* groups exist */
int tty_stop_job(struct rst_ctx *c);				/* before release */

#endif
