/*
 * Kernel objects two processes of the tree may share without being
 * threads of one another: the fd table (CLONE_FILES), the cwd, root and
 * umask (CLONE_FS), the signal handlers (CLONE_SIGHAND) and the address
 * space (CLONE_VM, as after vfork).  stasis rebuilds each per process, so
 * a restored tree would have them split: such a tree is refused before
 * anything is written, naming both processes and what they share.  The
 * processes are sorted by kcmp's order of each object, so finding a pair
 * costs n log n kcmp calls, not n squared.
 */
#include <errno.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "res.h"
#include "util.h"

static const struct {
	int type;
	const char *what;
} shared_kinds[] = {
	{ KCMP_VM, "one address space (CLONE_VM without CLONE_THREAD, or vfork)" },
	{ KCMP_FILES, "one fd table (CLONE_FILES)" },
	{ KCMP_FS, "one cwd, root and umask (CLONE_FS)" },
	{ KCMP_SIGHAND, "one table of signal handlers (CLONE_SIGHAND)" },
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

static int share_check(struct dump_ctx *ctx)
{
	pid_t *pids = xzalloc((ctx->ntasks + 1) * sizeof(*pids));
	struct sort_ctx sc;
	size_t i, n = 0, k;
	int ret = 0;

	for (i = 0; i < ctx->ntasks; i++)
		if (!ctx->tasks[i].zombie)
			pids[n++] = ctx->tasks[i].pid;
	for (k = 0; k < ARRAY_SIZE(shared_kinds) && !ret && n > 1; k++) {
		sc = (struct sort_ctx){ .type = shared_kinds[k].type };
		qsort_r(pids, n, sizeof(*pids), by_object, &sc);
		if (sc.err) {
			errno = sc.err;
			pr_perror("cannot compare the processes of the tree (kcmp)");
			ret = -1;
			break;
		}
		for (i = 1; i < n && !ret; i++)
			if (syscall(SYS_kcmp, pids[i - 1], pids[i], shared_kinds[k].type, 0, 0) ==
			    0) {
				pr_err("pid %d and pid %d: share %s; not supported\n", pids[i - 1],
				       pids[i], shared_kinds[k].what);
				ret = -1;
			}
	}
	free(pids);
	return ret;
}

const struct res_ops share_res = {
	.name = "share",
	.dump_check = share_check,
};
