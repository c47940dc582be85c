/*
 * membarrier(2) registrations of a process (private expedited, its
 * SYNC_CORE and RSEQ flavours, global expedited).  A process that
 * registered and then issues the expedited command gets EPERM if the
 * registration is lost, so they are read at dump with
 * MEMBARRIER_CMD_GET_REGISTRATIONS (a remote call) and made again at
 * restore, remotely, once the address space is in place.
 */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>

#include "log.h"
#include "res.h"

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

/* The MEMBARRIER_CMD_REGISTER_* commands that GET_REGISTRATIONS reports. */
#define MEMBARRIER_REGISTER_MASK                                              \
	((1 << 2) /* GLOBAL_EXPEDITED */ | (1 << 4) /* PRIVATE_EXPEDITED */ | \
	 (1 << 6) /* PRIVATE_EXPEDITED_SYNC_CORE */ | (1 << 8) /* PRIVATE_EXPEDITED_RSEQ */)

static int membarrier_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	long ret;

	if (remote_syscall(dt_rt(dt), &ret, __NR_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0,
			   0, 0, 0))
		return -1;
	if (ret == -EINVAL)
		return 0; /* a kernel before 6.3 cannot tell: nothing to say */
	if (ret < 0) {
		pr_err("pid %d: cannot read its membarrier registrations: %s\n", dt->pid,
		       strerror(-ret));
		return -1;
	}
	if (ret & ~MEMBARRIER_REGISTER_MASK) {
		pr_err("pid %d: unknown membarrier registrations %#lx\n", dt->pid, ret);
		return -1;
	}
	if (ret) {
		dt->te->has_membarrier = true;
		dt->te->membarrier = ret;
	}
	return 0;
}

static int membarrier_restore(struct rst_ctx *c)
{
	unsigned int regs = c->t->te->membarrier;
	int bit;
	long ret;

	for (bit = 0; regs >> bit; bit++) {
		if (!(regs >> bit & 1))
			continue;
		/* each bit is the register command itself: issue it again */
		if (remote_syscall(&c->rt, &ret, __NR_membarrier, 1UL << bit, 0, 0, 0, 0, 0))
			return -1;
		if (ret) {
			pr_err("pid %u: cannot register membarrier command %#x again: %s\n",
			       c->t->te->pid, 1U << bit, strerror(-ret));
			return -1;
		}
	}
	return 0;
}

const struct res_ops membarrier_res = {
	.name = "membarrier",
	.dump_remote = membarrier_dump,
	.remote = membarrier_restore,
};
