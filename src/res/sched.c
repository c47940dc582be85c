/*
 * Scheduling state of a thread: nice value, policy and priority (with
 * SCHED_RESET_ON_FORK; a SCHED_DEADLINE reservation), CPU affinity, timer
 * slack and I/O priority (ionice).  Read from outside (timer slack with a remote prctl), set back
 * by the thread itself, but for the I/O priority, which stasis sets from
 * outside (ioprio_set takes any thread it may change).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/ioprio.h>

#include "log.h"
#include "res.h"
#include "util.h"

/*
 * The timer slack of any thread, in /proc/TID/timerslack_ns (CAP_SYS_NICE):
 * a read there costs a few microseconds, a remote prctl() a round trip to
 * the thread.  false: not readable here, ask the thread.
 */
static bool timer_slack_proc(pid_t tid, uint64_t *ns)
{
	char *text = read_proc(tid, "timerslack_ns", NULL), *end;
	unsigned long long v;
	bool ok;

	if (!text)
		return false;
	errno = 0;
	v = strtoull(text, &end, 10);
	ok = !errno && end != text && (!*end || *end == '\n');
	free(text);
	if (ok)
		*ns = v;
	return ok;
}

/* struct sched_attr of the kernel's ABI (linux/sched/types.h clashes with glibc's sched.h) */
struct kernel_sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
	uint32_t sched_util_min, sched_util_max;
};
#define KERNEL_SCHED_FLAG_RESET_ON_FORK 0x01

/* A SCHED_DEADLINE thread's reservation (sched_getattr: no other call tells it). */
static int dump_deadline(pid_t tid, SchedEntry *se)
{
	struct kernel_sched_attr a = { .size = sizeof(a) };

	if (syscall(SYS_sched_getattr, tid, &a, sizeof(a), 0)) {
		pr_perror("tid %d: cannot read its SCHED_DEADLINE reservation", tid);
		return -1;
	}
	se->has_dl_runtime = se->has_dl_deadline = se->has_dl_period = se->has_dl_flags = true;
	se->dl_runtime = a.sched_runtime;
	se->dl_deadline = a.sched_deadline;
	se->dl_period = a.sched_period;
	se->dl_flags = a.sched_flags;
	return 0;
}

static int sched_dump_thread(struct dump_ctx *ctx, struct dump_task *dt, struct dump_thread *th)
{
	SchedEntry *se = th->core->sched = xmalloc(sizeof(*se));
	struct sched_param param;
	cpu_set_t *set = xzalloc(sizeof(cpu_set_t));
	long ret;
	int nice, policy;

	sched_entry__init(se);
	errno = 0;
	nice = getpriority(PRIO_PROCESS, th->tid);
	policy = sched_getscheduler(th->tid);
	if ((nice == -1 && errno) || policy < 0 || sched_getparam(th->tid, &param) ||
	    sched_getaffinity(th->tid, sizeof(cpu_set_t), set)) {
		pr_perror("tid %d: cannot read its scheduling state", th->tid);
		free(set);
		return -1;
	}
	se->nice = nice;
	se->policy = policy;
	se->priority = param.sched_priority;
	se->affinity.data = (uint8_t *)set;
	se->affinity.len = sizeof(cpu_set_t);
	ret = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, th->tid);
	if (ret < 0) {
		pr_perror("tid %d: cannot read its I/O priority", th->tid);
		return -1;
	}
	se->has_ioprio = true;
	se->ioprio = ret;
	if ((policy & ~SCHED_RESET_ON_FORK) == SCHED_DEADLINE && dump_deadline(th->tid, se))
		return -1;
	if (timer_slack_proc(th->tid, &se->timer_slack_ns))
		return 0;
	if (remote_syscall(&th->rt, &ret, __NR_prctl, PR_GET_TIMERSLACK, 0, 0, 0, 0, 0) ||
	    ret < 0) {
		pr_err("tid %d: cannot read its timer slack\n", th->tid);
		return -1;
	}
	se->timer_slack_ns = ret;
	return 0;
}

/* The I/O priority a thread had (an older image: as it comes). */
static int ioprio_restore(pid_t tid, const SchedEntry *se)
{
	long now;

	if (!se->has_ioprio)
		return 0;
	now = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid);
	if (now == (long)se->ioprio)
		return 0;
	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, se->ioprio)) {
		pr_perror("tid %d: cannot restore its I/O priority (class %u, level %u)", tid,
			  se->ioprio >> 13, se->ioprio & 0x1fff);
		return -1;
	}
	return 0;
}

/* The reservation, after the affinity (a deadline task may not narrow its own). */
static int restore_deadline(struct rtask *rt, uint32_t tid, const SchedEntry *se)
{
	struct kernel_sched_attr a = {
		.size = sizeof(a),
		.sched_policy = SCHED_DEADLINE,
		.sched_flags =
		    se->dl_flags |
		    (se->policy & SCHED_RESET_ON_FORK ? KERNEL_SCHED_FLAG_RESET_ON_FORK : 0),
		.sched_runtime = se->dl_runtime,
		.sched_deadline = se->dl_deadline,
		.sched_period = se->dl_period,
	};
	long ret;

	if (!se->has_dl_runtime) {
		pr_err("tid %u: SCHED_DEADLINE without its reservation in the image\n", tid);
		return -1;
	}
	if (remote_write(rt->pid, rt->scratch, &a, sizeof(a)) ||
	    remote_syscall(rt, &ret, __NR_sched_setattr, 0, rt->scratch, 0, 0, 0, 0) || ret) {
		pr_err("tid %u: cannot restore its SCHED_DEADLINE reservation (runtime %llu, "
		       "deadline %llu, period %llu ns): %s\n",
		       tid, (unsigned long long)se->dl_runtime, (unsigned long long)se->dl_deadline,
		       (unsigned long long)se->dl_period, ret ? strerror(-ret) : "ptrace failed");
		return -1;
	}
	return 0;
}

/* Restored tasks start with the mask stasis had when it forked them. */
static bool affinity_is_ours(const SchedEntry *se)
{
	cpu_set_t ours;

	/* our own thread may be pinned right now: compare with the saved mask */
	return affinity_saved(&ours, sizeof(ours)) && se->affinity.len >= sizeof(ours) &&
	       !memcmp(se->affinity.data, &ours, sizeof(ours));
}

static int sched_restore_remote(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	SchedEntry *se = core->sched;
	struct sched_param param;
	long ret = 0;

	if (!se)
		return 0;
	/* a fresh task has nice 0, SCHED_OTHER, every CPU and 50 us slack: skip those */
	if (se->nice &&
	    (remote_syscall(rt, &ret, __NR_setpriority, PRIO_PROCESS, 0, se->nice, 0, 0, 0) ||
	     ret)) {
		pr_err("tid %u: cannot restore nice %d\n", core->tid, se->nice);
		return -1;
	}
	param.sched_priority = se->priority;
	if ((se->policy & ~SCHED_RESET_ON_FORK) != SCHED_DEADLINE &&
	    (se->policy != SCHED_OTHER || se->priority) &&
	    (remote_write(rt->pid, rt->scratch, &param, sizeof(param)) ||
	     remote_syscall(rt, &ret, __NR_sched_setscheduler, 0, se->policy, rt->scratch, 0, 0,
			    0) ||
	     ret)) {
		pr_err("tid %u: cannot restore scheduling policy %u\n", core->tid, se->policy);
		return -1;
	}
	if (!affinity_is_ours(se) &&
	    (remote_write(rt->pid, rt->scratch, se->affinity.data, se->affinity.len) ||
	     remote_syscall(rt, &ret, __NR_sched_setaffinity, 0, se->affinity.len, rt->scratch, 0,
			    0, 0)))
		return -1;
	if (ret)
		pr_warn("tid %u: CPU affinity not restored (%s): CPUs differ on this machine\n",
			core->tid, strerror(-ret));
	if (se->timer_slack_ns != 50000 && (remote_syscall(rt, &ret, __NR_prctl, PR_SET_TIMERSLACK,
							   se->timer_slack_ns, 0, 0, 0, 0) ||
					    ret)) {
		pr_err("tid %u: cannot restore timer slack\n", core->tid);
		return -1;
	}
	if ((se->policy & ~SCHED_RESET_ON_FORK) == SCHED_DEADLINE &&
	    restore_deadline(rt, core->tid, se))
		return -1;
	return ioprio_restore(rt->pid, se);
}

const struct res_ops sched_res = {
	.name = "sched",
	.dump_thread = sched_dump_thread,
	.thread = sched_restore_remote,
};
