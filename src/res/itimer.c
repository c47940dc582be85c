/*
 * Interval timers (setitimer): ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF,
 * process-wide, with the time left and the interval.  Read and set with
 * remote syscalls; set as late as possible so restore time is not counted
 * against them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "res.h"
#include "util.h"

static uint64_t tv_usec(const struct timeval *tv)
{
	return tv->tv_sec * 1000000ULL + tv->tv_usec;
}

static struct timeval usec_tv(uint64_t us)
{
	struct timeval tv = { us / 1000000, us % 1000000 };

	return tv;
}

static int itimer_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct rtask *rt = dt_rt(dt);
	TaskEntry *te = dt->te;
	int which;

	te->itimers = xzalloc(3 * sizeof(*te->itimers));
	for (which = 0; which < 3; which++) {
		struct itimerval it;
		ItimerEntry *e;
		long ret;

		if (remote_syscall(rt, &ret, __NR_getitimer, which, rt->scratch, 0, 0, 0, 0) ||
		    ret || remote_read(dt->pid, rt->scratch, &it, sizeof(it))) {
			pr_err("pid %d: cannot read interval timer %d\n", dt->pid, which);
			return -1;
		}
		if (!timerisset(&it.it_value) && !timerisset(&it.it_interval))
			continue;
		e = xmalloc(sizeof(*e));
		itimer_entry__init(e);
		e->which = which;
		e->interval_usec = tv_usec(&it.it_interval);
		e->value_usec = tv_usec(&it.it_value);
		te->itimers[te->n_itimers++] = e;
	}
	return 0;
}

static int itimer_restore_remote(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;
	size_t i;

	for (i = 0; i < te->n_itimers; i++) {
		ItimerEntry *e = te->itimers[i];
		struct itimerval it = { usec_tv(e->interval_usec), usec_tv(e->value_usec) };
		long ret;

		if (remote_write(c->rt.pid, c->rt.scratch, &it, sizeof(it)) ||
		    remote_syscall(&c->rt, &ret, __NR_setitimer, e->which, c->rt.scratch, 0, 0, 0,
				   0) ||
		    ret) {
			pr_err("pid %u: cannot restore interval timer %u\n", te->pid, e->which);
			return -1;
		}
	}
	return 0;
}

const struct res_ops itimer_res = {
	.name = "itimer",
	.dump_remote = itimer_dump,
	.remote_late = itimer_restore_remote,
};
