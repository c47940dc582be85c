/*
 * Kernel objects two processes of the tree may share without being
 * threads of one another: the fd table (CLONE_FILES), the cwd, root and
 * umask (CLONE_FS), the signal handlers (CLONE_SIGHAND) and the address
 * space (CLONE_VM, as after vfork).  The processes are sorted by kcmp's
 * order of each object, so finding the sharers costs n log n kcmp calls,
 * not n squared.
 *
 * An fd table is saved shared: the processes that share one (a group)
 * name in their task record the one of them the others were cloned from,
 * directly or through one another (files_leader), and restore clones each
 * of the others with CLONE_FILES from its parent.  A group whose sharers
 * do not descend from one of them through sharers only (a parent that
 * unshared or exec'd since) cannot be cloned that way and is refused.
 * Every other kind of sharing is refused, naming both processes: the
 * other kinds rebuild those objects per process.
 */
#include <errno.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

static const struct {
	int type;
	const char *what;
	bool saved; /* restored shared (the others are refused) */
} shared_kinds[] = {
	{ KCMP_VM, "one address space (CLONE_VM without CLONE_THREAD, or vfork)", false },
	{ KCMP_FILES, "one fd table (CLONE_FILES)", true },
	{ KCMP_FS, "one cwd, root and umask (CLONE_FS)", false },
	{ KCMP_SIGHAND, "one table of signal handlers (CLONE_SIGHAND)", false },
};

/* share_res's state for one dump: which process's fd table each shares */
struct share_dump {
	struct share_pair {
		pid_t pid, leader;
	} * files;
	size_t nfiles;
};

struct sort_ctx {
	int type;
	int err;
};

static int by_object(const void *a, const void *b, void *arg)
{
	pid_t pa = *(const pid_t *)a, pb = *(const pid_t *)b;
	struct sort_ctx *sorting = arg;
	long r;

	if (pa == pb)
		return 0;
	r = syscall(SYS_kcmp, pa, pb, sorting->type, 0, 0);
	if (r < 0) {
		sorting->err = errno;
		return pa < pb ? -1 : 1;
	}
	return r == 0 ? 0 : r == 1 ? -1 : 1;
}

static bool same_object(pid_t a, pid_t b, int type)
{
	return syscall(SYS_kcmp, a, b, type, 0, 0) == 0;
}

/*
 * One group of processes sharing an fd table, pids[0..n): the leader is
 * the one whose parent is not in the group; every other must have its
 * parent in it, so that restore can clone it from its parent's table.
 */
static int share_files_group(struct share_dump *sd, const pid_t *pids, size_t n)
{
	pid_t *ppid = xmalloc(n * sizeof(*ppid)), leader = 0;
	struct proc_stat st;
	size_t i, j;
	int ret = -1;

	for (i = 0; i < n; i++) {
		if (proc_parse_stat(pids[i], &st)) {
			pr_err("pid %d: cannot read its parent\n", pids[i]);
			goto out;
		}
		ppid[i] = st.ppid;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < n && pids[j] != ppid[i]; j++)
			;
		if (j < n)
			continue;
		if (leader) {
			pr_err("pid %d and pid %d: share one fd table (CLONE_FILES) but neither "
			       "was cloned from it by the other's parent; not supported\n",
			       leader, pids[i]);
			goto out;
		}
		leader = pids[i];
	}
	if (!leader) {
		pr_err("pid %d: shares one fd table with a loop of parents; not supported\n",
		       pids[0]);
		goto out;
	}
	sd->files = xrealloc(sd->files, (sd->nfiles + n) * sizeof(*sd->files));
	for (i = 0; i < n; i++)
		sd->files[sd->nfiles++] = (struct share_pair){ pids[i], leader };
	pr_debug("pids %d..: %zu processes share the fd table of pid %d\n", pids[0], n, leader);
	ret = 0;
out:
	free(ppid);
	return ret;
}

/* Sorted by the kind's object: refuse a shared one, or save the groups. */
static int share_kind(struct share_dump *sd, pid_t *pids, size_t n, size_t k)
{
	struct sort_ctx sc = { .type = shared_kinds[k].type };
	size_t i, j;

	qsort_r(pids, n, sizeof(*pids), by_object, &sc);
	if (sc.err) {
		errno = sc.err;
		pr_perror("cannot compare the processes of the tree (kcmp)");
		return -1;
	}
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && same_object(pids[i], pids[j], sc.type); j++)
			;
		if (j == i + 1)
			continue;
		if (!shared_kinds[k].saved) {
			pr_err("pid %d and pid %d: share %s; not supported\n", pids[i], pids[i + 1],
			       shared_kinds[k].what);
			return -1;
		}
		if (share_files_group(sd, pids + i, j - i))
			return -1;
	}
	return 0;
}

static int share_check(struct dump_ctx *ctx)
{
	struct share_dump *sd = res_dump_state(ctx, &share_res);
	pid_t *pids = xzalloc((ctx->ntasks + 1) * sizeof(*pids));
	size_t i, n = 0, k;
	int ret = 0;

	for (i = 0; i < ctx->ntasks; i++)
		if (!ctx->tasks[i].zombie)
			pids[n++] = ctx->tasks[i].pid;
	for (k = 0; k < ARRAY_SIZE(shared_kinds) && !ret && n > 1; k++)
		ret = share_kind(sd, pids, n, k);
	free(pids);
	return ret;
}

/* Its task record names the process whose fd table it shares. */
static int share_dump_local(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct share_dump *sd = res_dump_state(ctx, &share_res);
	size_t i;

	for (i = 0; i < sd->nfiles; i++)
		if (sd->files[i].pid == dt->pid) {
			dt->te->has_files_leader = true;
			dt->te->files_leader = sd->files[i].leader;
		}
	return 0;
}

static void share_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct share_dump *sd = state;

	free(sd->files);
}

/* -------------------------------------------------------------- restore */

/*
 * Every sharer's leader is a live task leading its own group, and every
 * sharer but the leader is the child of a sharer of the same table.
 */
static int share_restore_check(struct image *img, const struct restore_opts *o)
{
	size_t i;

	for (i = 0; i < img->ntasks; i++) {
		const struct rst_task *t = &img->tasks[i], *l;
		const TaskEntry *te = t->te;

		if (!te->has_files_leader)
			continue;
		l = image_task(img, te->files_leader);
		if (te->zombie || !l || l->te->zombie || l->te->files_leader != l->te->pid ||
		    (l != t && (!t->parent || !t->parent->te->has_files_leader ||
				t->parent->te->files_leader != te->files_leader))) {
			pr_err("image %s is corrupt: pid %u shares the fd table of pid %u, which "
			       "it cannot be cloned from\n",
			       img->r.path, te->pid, te->files_leader);
			return -1;
		}
	}
	return 0;
}

/* A sharer is cloned from its parent's fd table; the leader builds it. */
static int share_restore_prepare(struct rst_ctx *c)
{
	const TaskEntry *te = c->t->te;

	if (!te->has_files_leader)
		return 0;
	c->table_leader = rst_ctx_of(c->tree, image_task(c->img, te->files_leader));
	if (c->table_leader != c)
		c->clone_flags |= CLONE_FILES;
	return 0;
}

const struct res_ops share_res = {
	.name = "share",
	.dump_state_size = sizeof(struct share_dump),
	.dump_check = share_check,
	.dump_local = share_dump_local,
	.dump_fini = share_dump_fini,
	.restore_check = share_restore_check,
	.restore_prepare = share_restore_prepare,
};
