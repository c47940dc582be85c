/*
 * The transplant: one parked restore child becomes the image's task.  The
 * controller drives it through the trampoline with remote syscalls and
 * runs the remote stages of the resource table in their order: the
 * process-wide state before its threads exist, each thread's own state
 * (threads are created here with clone3 at their TIDs), what needs every
 * thread, then credentials, and registers after the trampoline is gone.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "restore_int.h"
#include "util.h"

/* Is SIGCHLD pending for the process (one /proc read, no remote call)? */
static bool sigchld_pending(pid_t pid)
{
	char *status = read_proc(pid, "status", NULL);
	const char *s = status ? status_field(status, "ShdPnd") : NULL;
	bool pending = !s || (strtoull(s, NULL, 16) & (1ULL << (SIGCHLD - 1)));

	free(status);
	return pending;
}

/*
 * Remote: drop the SIGCHLD the restore itself caused (its zombie children
 * and group stand-ins exited while it was parked); the image's own pending
 * signals are queued later.  Nothing else is dropped: every other signal
 * sent to the new task since its fork stays pending (the restore child
 * blocks them all) and is delivered once the task runs.
 */
static int flush_restore_sigchld(struct rst_ctx *c)
{
	struct timespec zero = { 0, 0 };
	uint64_t chld = 1ULL << (SIGCHLD - 1);
	long ret;

	if (!sigchld_pending(c->rt.pid))
		return 0;
	if (remote_write(c->rt.pid, c->rt.scratch, &chld, sizeof(chld)) ||
	    remote_write(c->rt.pid, c->rt.scratch + 8, &zero, sizeof(zero)))
		return -1;
	return remote_syscall(&c->rt, &ret, __NR_rt_sigtimedwait, c->rt.scratch, 0,
			      c->rt.scratch + 8, 8, 0, 0);
}

/*
 * CLONE_PTRACE: the new thread is traced by us like its leader and stops
 * before its first instruction, without the leader stopping for a clone
 * event, so the leader creates a whole batch of threads with one stop.
 */
#define THREAD_CLONE_FLAGS                                                                  \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | \
	 CLONE_PTRACE)
#define THREAD_BATCH 32 /* clone3 calls per batch of the leader */

struct thread_clone {
	struct stasis_clone_args args;
	pid_t set_tid[2]; /* in the tree's own PID namespace, and ours */
};

static void clone_thread_failed(struct rst_ctx *c, const ThreadCore *core, long ret)
{
	char comm[64];

	if (ret == -EEXIST) {
		proc_comm(core->tid, comm, sizeof(comm));
		pr_err("tid %d is taken by another process ('%s'); restore needs it free\n",
		       core->tid, comm);
	} else {
		pr_err("pid %u: cannot create thread %d: %s\n", core->pid, core->tid,
		       ret < 0 ? strerror(-ret) : "wrong tid");
	}
}

/*
 * Remote, from the leader: create threads first..first+n-1 with their
 * TIDs, with one batch.  Each one's clear_child_tid is set by clone3
 * itself (CLONE_CHILD_CLEARTID only stores the address).
 */
static int threads_create(struct rst_ctx *c, size_t first, size_t n)
{
	struct thread_clone tc[THREAD_BATCH];
	unsigned long at = c->rt.scratch;
	long rets[THREAD_BATCH];
	size_t i, failed;

	memset(tc, 0, sizeof(tc));
	for (i = 0; i < n; i++) {
		const ThreadCore *core = c->t->cores[first + i];
		struct stasis_clone_args *a = &tc[i].args;

		a->flags = THREAD_CLONE_FLAGS;
		if (core->has_clear_tid_addr && core->clear_tid_addr) {
			a->flags |= CLONE_CHILD_CLEARTID;
			a->child_tid = core->clear_tid_addr;
		}
		tc[i].set_tid[0] = te_tid_inside(c->t->te, core->tid);
		tc[i].set_tid[1] = core->tid;
		a->set_tid = at + i * sizeof(tc[0]) + offsetof(struct thread_clone, set_tid);
		/* both numbers, or with --pidns the one inside only */
		a->set_tid_size = c->t->te->has_ns_pid && !c->opts->pidns ? 2 : 1;
	}
	if (remote_write(c->rt.pid, at, tc, n * sizeof(tc[0])))
		return -1;
	for (i = 0; i < n; i++)
		if (fault_at(FAULT_RST_THREAD) ||
		    remote_queue(&c->rt, "creating a thread", __NR_clone3, at + i * sizeof(tc[0]),
				 sizeof(tc[0].args), 0, 0, 0, 0))
			return -1;
	if (rbatch_start(&c->rt) || rbatch_finish(&c->rt, rets, &failed)) {
		if (failed != SIZE_MAX)
			clone_thread_failed(c, c->t->cores[first + failed], rets[failed]);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (rets[i] != tc[i].set_tid[0]) {
			clone_thread_failed(c, c->t->cores[first + i], rets[i]);
			return -1;
		}
	return 0;
}

/*
 * A new thread, stopped before its first instruction: ours to drive, with
 * the part of the scratch area at window (its registers are set later
 * like the leader's).
 */
static int adopt_new_thread(struct rst_ctx *c, ThreadCore *core, struct rtask *rt, size_t window)
{
	pid_t tid = core->tid;
	int status;

	/* with --pidns our view of the thread has another number */
	if (c->opts->pidns)
		tid = host_tid(c->rt.pid, te_tid_inside(c->t->te, core->tid));
	if (tid < 0 || tracee_wait_stop(tid, &status))
		return -1;
	memset(rt, 0, sizeof(*rt));
	rt->pid = tid;
	if (tracee_get_regs(tid, &rt->regs))
		return -1;
	rt->syscall_ip = c->rt.syscall_ip;
	rt->batch_ip = c->rt.batch_ip;
	rt->scratch = c->rt.scratch + window * rbatch_window();
	rt->scratch_len = rbatch_window();
	return 0;
}

/*
 * Remote, from the leader: the other threads, each with its own state.
 * The leader creates them in batches; then each runs its own calls, as
 * many at once as the scratch area has room for their tables.
 */
static int restore_threads(struct rst_ctx *c)
{
	size_t n = c->t->ncores, nwin = c->rt.scratch_len / rbatch_window(), i, j, end;

	if (n < 2)
		return 0;
	c->th = xzalloc(n * sizeof(*c->th));
	for (i = 1; i < n; i += THREAD_BATCH)
		if (threads_create(c, i, min(n - i, (size_t)THREAD_BATCH)))
			return -1;
	for (i = 1; i < n; i = end) {
		end = min(n, i + nwin);
		for (j = i; j < end; j++)
			if (adopt_new_thread(c, c->t->cores[j], &c->th[j], j - i) ||
			    res_stage(thread, c, &c->th[j], c->t->cores[j]) ||
			    rbatch_start(&c->th[j]))
				return -1;
		for (j = i; j < end; j++) {
			if (rbatch_finish(&c->th[j], NULL, NULL))
				return -1;
			rbatch_free(&c->th[j]);
			/* the later stages run one thread at a time: the whole area */
			c->th[j].scratch = c->rt.scratch;
			c->th[j].scratch_len = c->rt.scratch_len;
		}
	}
	return 0;
}

int transplant_begin(struct rst_ctx *c)
{
	memset(&c->rt, 0, sizeof(c->rt));
	c->rt.pid = c->host_pid;
	if (tracee_get_regs(c->rt.pid, &c->rt.regs))
		return -1;
	c->rt.syscall_ip = c->tramp;
	c->rt.batch_ip = c->tramp + TRAMP_BATCH_OFF;
	c->rt.scratch = c->tramp + PAGE_SIZE;
	c->rt.scratch_len = c->tramp_len - PAGE_SIZE;
	return 0;
}

static int transplant_steps(struct rst_ctx *c)
{
	pid_t pid = c->host_pid;
	size_t i;
	long ret;

	if (fault_at(FAULT_RST_TRANSPLANT) || flush_restore_sigchld(c) || res_stage(remote, c) ||
	    res_stage(thread, c, &c->rt, c->t->cores[0]) || rbatch_flush(&c->rt) ||
	    restore_threads(c) || res_stage(remote_late, c))
		return -1;
	/* in a table shared with other processes, only its own: theirs are above */
	if (remote_syscall(&c->rt, &ret, __NR_close_range, c->svc_base,
			   c->table_leader ? (unsigned int)c->svc_end - 1 : ~0U, 0, 0, 0, 0) ||
	    ret) {
		pr_err("pid %d: cannot close service fds\n", pid);
		return -1;
	}
	/* the other threads, then the leader: the leader drives the others */
	for (i = c->t->ncores; i-- > 0;) {
		struct rtask *rt = i ? &c->th[i] : &c->rt;

		if (res_stage(thread_last, c, rt, c->t->cores[i]))
			return -1;
	}
	/* last remote call: the trampoline removes itself */
	if (remote_syscall(&c->rt, &ret, __NR_munmap, c->tramp, c->tramp_len, 0, 0, 0, 0) || ret) {
		pr_err("pid %d: cannot remove the restore trampoline\n", pid);
		return -1;
	}
	for (i = 1; i < c->t->ncores; i++)
		if (res_stage(thread_finish, c, &c->th[i], c->t->cores[i]))
			return -1;
	return res_stage(thread_finish, c, &c->rt, c->t->cores[0]);
}

/* Controller: rebuild one parked task from the image. */
int transplant(struct rst_ctx *c)
{
	int ret = transplant_steps(c);

	rbatch_free(&c->rt); /* the leader's queue, empty since its last call */
	return ret;
}
