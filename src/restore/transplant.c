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

#define THREAD_CLONE_FLAGS \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM)

/*
 * Remote, from the leader: create the thread with its TID.  The leader
 * traces clones, so the new thread is ours and stopped before it runs a
 * single instruction; its registers are set later like the leader's.
 */
static int thread_create(struct rst_ctx *c, ThreadCore *core, struct rtask *rt)
{
	struct stasis_clone_args args = { .flags = THREAD_CLONE_FLAGS };
	unsigned long args_at = c->rt.scratch, tid_at = c->rt.scratch + sizeof(args);
	pid_t tid = core->tid, own = task_own_tid(c->t->te, core->tid);
	pid_t both[2] = { own, tid }; /* in the tree's own PID namespace, and ours */
	int status;
	long ret;

	args.set_tid = tid_at;
	/* both numbers, or with --pidns the one inside only */
	args.set_tid_size = c->t->te->has_ns_pid && !c->opts->pidns ? 2 : 1;
	if (remote_write(c->rt.pid, args_at, &args, sizeof(args)) ||
	    remote_write(c->rt.pid, tid_at, args.set_tid_size == 2 ? both : &own,
			 args.set_tid_size * sizeof(pid_t)))
		return -1;
	if (fault_at(FAULT_RST_THREAD) ||
	    remote_syscall(&c->rt, &ret, __NR_clone3, args_at, sizeof(args), 0, 0, 0, 0))
		return -1;
	if (ret != own) {
		char comm[64];

		if (ret == -EEXIST) {
			proc_comm(tid, comm, sizeof(comm));
			pr_err("tid %d is taken by another process ('%s'); restore needs it free\n",
			       tid, comm);
		} else {
			pr_err("pid %u: cannot create thread %d: %s\n", core->pid, tid,
			       ret < 0 ? strerror(-ret) : "wrong tid");
		}
		return -1;
	}
	/* with --pidns our view of the thread has another number */
	if (c->opts->pidns)
		tid = host_tid(c->rt.pid, own);
	if (tid < 0 || thread_wait_stop(tid, &status))
		return -1;
	memset(rt, 0, sizeof(*rt));
	rt->pid = tid;
	if (thread_get_regs(tid, &rt->regs))
		return -1;
	rt->syscall_ip = c->rt.syscall_ip;
	rt->batch_ip = c->rt.batch_ip;
	rt->scratch = c->rt.scratch;
	rt->scratch_len = c->rt.scratch_len;
	return 0;
}

/* Remote, from the leader: the other threads, each with its own state. */
static int restore_threads(struct rst_ctx *c)
{
	size_t i;

	if (c->t->ncores < 2)
		return 0;
	if (ptrace(PTRACE_SETOPTIONS, c->rt.pid, 0, PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE)) {
		pr_perror("pid %d: cannot trace thread creation", c->rt.pid);
		return -1;
	}
	c->th = xzalloc(c->t->ncores * sizeof(*c->th));
	for (i = 1; i < c->t->ncores; i++) {
		ThreadCore *core = c->t->cores[i];

		if (thread_create(c, core, &c->th[i]) || res_stage(thread, c, &c->th[i], core) ||
		    rbatch_flush(&c->th[i]))
			return -1;
		rbatch_free(&c->th[i]);
	}
	return 0;
}

int transplant_begin(struct rst_ctx *c)
{
	memset(&c->rt, 0, sizeof(c->rt));
	c->rt.pid = c->host_pid;
	if (thread_get_regs(c->rt.pid, &c->rt.regs))
		return -1;
	c->rt.syscall_ip = c->tramp;
	c->rt.batch_ip = c->tramp + TRAMP_BATCH_OFF;
	c->rt.scratch = c->tramp + PAGE_SIZE;
	c->rt.scratch_len = c->tramp_len - PAGE_SIZE;
	return 0;
}

/* Controller: rebuild one parked task from the image. */
int transplant(struct rst_ctx *c)
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
