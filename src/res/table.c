/*
 * The resource table: the order in which the drivers visit the kinds of
 * per-task state at every stage of dump and restore (see res.h), and the
 * private state each kind asked for.  The order is data: each entry says
 * why it stands where it stands.  Adding a kind is one line here.
 */
#include <stdlib.h>

#include "res.h"
#include "util.h"

const struct res_ops *const res_table[] = {
	/*
	 * namespaces first: the restore child creates the ones it leads
	 * before anything else it builds lives in them; refuses the others
	 */
	&ns_res,
	/* where the tree's sockets live (dump), the namespace it joins (restore) */
	&netns_res,
	/* refuses processes sharing what stasis rebuilds per process (fd table ...) */
	&share_res,
	/*
	 * SysV IPC objects of the host namespace: refused or found before
	 * anything is written; created with their ids before anything is
	 * forked (the tasks attach segments in mm's remote build)
	 */
	&sysvipc_res,
	/* POSIX message queues: made before anything is forked, as above */
	&mqueue_res,
	/* cgroups first in the child: what it forks next is born in them */
	&cgroup_res,
	/* oom_score_adj before the fork too: children inherit it */
	&procattr_res,
	/*
	 * the tree's mount table: built by its namespace's creator once the
	 * child is in its cgroups (cgroup writes through our /sys) and before
	 * anything opens a file by the tree's names (mappings, fds)
	 */
	&mnt_res,
	/*
	 * The address space.  In the child its files are opened (some from
	 * the shared slots the files kind opened for memfds and deleted files)
	 * before a chroot (task) can hide them; remotely it is built first,
	 * since everything after writes into the target's own memory.
	 */
	&mm_res,
	/*
	 * Open files plan who opens which description before anything is
	 * forked, open the shared ones before a task forks its children (they
	 * inherit them), and install the fd table in the child.  What the
	 * child holds besides its fds (the shared slots the mappings of
	 * memfds were opened from) goes in child_late, before the POSIX locks.
	 */
	&files_res,
	/*
	 * fd kinds with state of their own across a dump or an image (the
	 * pipes and unix sockets the tree holds, memfds saved so far, their
	 * records): no stage of their own, so anywhere after files.
	 */
	&pipe_res,
	&unix_res,
	/* TCP sockets a dump put in repair mode: kept or switched back at its end */
	&tcp_res,
	&inet_res,
	/*
	 * the network lock: after tcp, whose dump_end takes the sockets out
	 * of repair mode before the lock is lifted
	 */
	&netlock_res,
	&fsobj_res,
	/* terminals: the controlling terminal is taken right after setsid() */
	&tty_res,
	/* pidfds name other tasks: placed once every task exists */
	&pidfd_res,
	/* POSIX locks after the last fd the child closes (the premap may) */
	&flock_res,
	/* identity, cwd/root (chroot), limits, prctl flags */
	&task_res,
	/* membarrier registrations: remote, once the address space is in place */
	&membarrier_res,
	/* registers, rseq, robust list; per thread */
	&thread_res,
	&sched_res,
	/* where pages fault in from: after mm has filled the address space */
	&mempolicy_res,
	/* signal masks go in late: no handler may run while we drive a thread */
	&signal_res,
	/* timers start late, after the threads that timers may target */
	&itimer_res,
	&ptimer_res,
	/* SIGIO owners of open files name threads: once every thread exists */
	&fown_res,
	/*
	 * Credentials last (the other threads, then the leader): once they
	 * drop, we may lose the right to do the rest.  Seccomp filters go in
	 * before them when they need CAP_SYS_ADMIN (no no_new_privs), after
	 * them when no_new_privs is set.
	 */
	&seccomp_res,
	&creds_res,
	&seccomp_nnp_res,
};

const size_t res_table_len = ARRAY_SIZE(res_table);

static size_t res_index(const struct res_ops *ops)
{
	size_t i;

	for (i = 0; i < res_table_len; i++)
		if (res_table[i] == ops)
			return i;
	abort(); /* a kind that is not in the table */
}

void *res_dump_state(struct dump_ctx *ctx, const struct res_ops *ops)
{
	return ctx->res_state[res_index(ops)];
}

void *res_dump_task_state(struct dump_task *dt, const struct res_ops *ops)
{
	return dt->res_state[res_index(ops)];
}

void *res_image_state(struct image *img, const struct res_ops *ops)
{
	return img->res_state[res_index(ops)];
}

static void **states_alloc(size_t (*size_of)(const struct res_ops *))
{
	void **v = xzalloc(res_table_len * sizeof(*v));
	size_t i;

	for (i = 0; i < res_table_len; i++)
		if (size_of(res_table[i]))
			v[i] = xzalloc(size_of(res_table[i]));
	return v;
}

static size_t dump_size(const struct res_ops *o)
{
	return o->dump_state_size;
}

static size_t dump_task_size(const struct res_ops *o)
{
	return o->dump_task_state_size;
}

static size_t image_size(const struct res_ops *o)
{
	return o->image_state_size;
}

void res_dump_states_init(struct dump_ctx *ctx)
{
	ctx->res_state = states_alloc(dump_size);
}

void res_dump_task_states_init(struct dump_task *dt)
{
	dt->res_state = states_alloc(dump_task_size);
}

void res_image_states_init(struct image *img)
{
	img->res_state = states_alloc(image_size);
}

void res_dump_states_fini(struct dump_ctx *ctx)
{
	size_t i;

	for (i = 0; ctx->res_state && i < res_table_len; i++) {
		if (res_table[i]->dump_fini)
			res_table[i]->dump_fini(ctx, ctx->res_state[i]);
		free(ctx->res_state[i]);
	}
	free(ctx->res_state);
	ctx->res_state = NULL;
}

void res_dump_task_states_fini(struct dump_task *dt)
{
	size_t i;

	for (i = 0; dt->res_state && i < res_table_len; i++) {
		if (res_table[i]->dump_task_fini)
			res_table[i]->dump_task_fini(dt, dt->res_state[i]);
		free(dt->res_state[i]);
	}
	free(dt->res_state);
	dt->res_state = NULL;
}

void res_image_states_fini(struct image *img)
{
	size_t i;

	for (i = 0; img->res_state && i < res_table_len; i++) {
		if (res_table[i]->image_fini)
			res_table[i]->image_fini(img, img->res_state[i]);
		free(img->res_state[i]);
	}
	free(img->res_state);
	img->res_state = NULL;
}
