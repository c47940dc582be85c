/*
 * A thread's NUMA memory policy (set_mempolicy; what `numactl --interleave`
 * or `--membind` sets before it starts a program): its mode with the mode
 * flags, and its node mask.  Only the thread itself can read it
 * (get_mempolicy), so the dump asks every thread at once (dump_threads);
 * the restore queues set_mempolicy in each thread after its pages are in
 * place (the policy decides where pages fault in from then on, as it did
 * for the original; the pages already restored were placed by the
 * restorer's).  Policies of single mappings (mbind) are not saved yet: no
 * outside reader short of /proc/PID/numa_maps, which walks every page
 * table, tells them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "log.h"
#include "res.h"
#include "rtask.h"
#include "util.h"

#define MPOL_DEFAULT 0
/* node bits that fit the slot after the mode: 56 bytes */
#define MPOL_NODE_BYTES (THREAD_SCRATCH_SLOT - 8)
#define MPOL_MAXNODE	(MPOL_NODE_BYTES * 8)

static int mempolicy_dump_threads(struct dump_ctx *ctx, struct dump_task *dt)
{
	const unsigned long a[3] = { THREAD_SCRATCH_AT(0), THREAD_SCRATCH_AT(8), MPOL_MAXNODE };
	long *rets = xmalloc(dt->nth * sizeof(*rets));
	unsigned long *at = xmalloc(dt->nth * sizeof(*at));
	unsigned char slot[THREAD_SCRATCH_SLOT];
	size_t i;
	int ret = dump_threads_call(dt, __NR_get_mempolicy, a, rets, at);

	for (i = 0; !ret && i < dt->nth; i++) {
		ThreadCore *core = dt->th[i].core;
		int mode;

		if (rets[i]) {
			pr_err("tid %d: cannot read its memory policy: %s\n", dt->th[i].tid,
			       strerror(-rets[i]));
			ret = -1;
			break;
		}
		if (remote_read(dt->th[i].tid, at[i], slot, sizeof(slot))) {
			ret = -1;
			break;
		}
		memcpy(&mode, slot, sizeof(mode));
		if (mode == MPOL_DEFAULT)
			continue;
		core->has_mempolicy_mode = true;
		core->mempolicy_mode = mode;
		core->has_mempolicy_nodes = true;
		core->mempolicy_nodes.len = MPOL_NODE_BYTES;
		core->mempolicy_nodes.data = xmalloc(MPOL_NODE_BYTES);
		memcpy(core->mempolicy_nodes.data, slot + 8, MPOL_NODE_BYTES);
	}
	free(at);
	free(rets);
	return ret;
}

static bool has_policy(const ThreadCore *core)
{
	return core->has_mempolicy_mode && core->mempolicy_mode != MPOL_DEFAULT;
}

static int mempolicy_restore_thread(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	unsigned long at;

	/* the other threads are cloned by the leader, whose policy they inherit */
	if (!has_policy(core)) {
		if (rt == &c->rt || !has_policy(c->t->cores[0]))
			return 0;
		return remote_queue(rt, "restoring the default memory policy", __NR_set_mempolicy,
				    MPOL_DEFAULT, 0, 0, 0, 0, 0);
	}
	if (!core->has_mempolicy_nodes || core->mempolicy_nodes.len != MPOL_NODE_BYTES) {
		pr_err("tid %u: a memory policy without its node mask in the image\n", core->tid);
		return -1;
	}
	at = rbatch_arg(rt, core->mempolicy_nodes.data, core->mempolicy_nodes.len);
	if (!at || remote_queue(rt, "restoring the memory policy", __NR_set_mempolicy,
				core->mempolicy_mode, at, MPOL_MAXNODE, 0, 0, 0))
		return -1;
	return 0;
}

const struct res_ops mempolicy_res = {
	.name = "mempolicy",
	.dump_threads = mempolicy_dump_threads,
	.thread = mempolicy_restore_thread,
};
