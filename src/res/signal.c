/*
 * Signal state: dispositions (handler, flags, restorer, mask) of every
 * signal, the blocked mask, signals pending for the process and for the
 * thread, and the alternate signal stack.
 *
 * Dispositions and sigaltstack are read with remote syscalls (the kernel
 * exposes no other way to see handler addresses) and set by the restore
 * child with plain syscalls: they only store values.  Pending signals are
 * peeked without dequeuing them and queued again by the restored task
 * itself, which is the one case where the kernel lets any si_code through.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

#define NSIG_KERNEL 64

struct ksigaction {
	unsigned long handler;
	unsigned long flags;
	unsigned long restorer;
	uint64_t mask;
};

struct kstack {
	unsigned long sp;
	int flags;
	size_t size;
};

static int peek_pending(pid_t tid, bool shared, SiginfoEntry ***out, size_t *n)
{
	struct __ptrace_peeksiginfo_args args = { .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0 };
	siginfo_t si[32];

	*out = NULL;
	*n = 0;
	for (;;) {
		long i, got;

		args.off = *n;
		args.nr = ARRAY_SIZE(si);
		got = ptrace(PTRACE_PEEKSIGINFO, tid, &args, si);
		if (got < 0) {
			pr_perror("cannot peek pending signals of %d", tid);
			return -1;
		}
		if (got == 0)
			break;
		*out = xrealloc(*out, (*n + got) * sizeof(**out));
		for (i = 0; i < got; i++) {
			SiginfoEntry *e = xmalloc(sizeof(*e));

			siginfo_entry__init(e);
			e->raw.len = sizeof(siginfo_t);
			e->raw.data = xmalloc(sizeof(siginfo_t));
			memcpy(e->raw.data, &si[i], sizeof(siginfo_t));
			(*out)[(*n)++] = e;
		}
	}
	return 0;
}

/* Signals whose action is not the default, from /proc: caught or ignored. */
static uint64_t nondefault_signals(struct dump_task *dt)
{
	const char *status = dump_thread_status(dt, &dt->th[0]), *v;
	uint64_t set = 0;

	if (!status)
		return ~0ULL; /* ask about every signal then */
	v = status_field(status, "SigCgt");
	set |= v ? strtoull(v, NULL, 16) : ~0ULL;
	v = status_field(status, "SigIgn");
	set |= v ? strtoull(v, NULL, 16) : ~0ULL;
	return set;
}

/*
 * Only signals with a handler or SIG_IGN have an action worth saving; of
 * the default ones only SIGCHLD's flags (SA_NOCLDSTOP, SA_NOCLDWAIT) change
 * behaviour.  One remote rt_sigaction per signal that matters.
 */
static int dump_sigactions(struct dump_task *dt)
{
	struct rtask *rt = dt_rt(dt);
	uint64_t want = nondefault_signals(dt) | 1ULL << (SIGCHLD - 1);
	TaskEntry *te = dt->te;
	int sig;

	te->sigactions = xzalloc(NSIG_KERNEL * sizeof(*te->sigactions));
	for (sig = 1; sig <= NSIG_KERNEL; sig++) {
		struct ksigaction ka;
		SigactionEntry *e;
		long ret;

		if (sig == SIGKILL || sig == SIGSTOP || !(want >> (sig - 1) & 1))
			continue;
		if (remote_syscall(rt, &ret, __NR_rt_sigaction, sig, 0, rt->scratch, 8, 0, 0))
			return -1;
		if (ret) {
			pr_err("pid %d: cannot read the action of signal %d: %s\n", dt->pid, sig,
			       strerror(-ret));
			return -1;
		}
		if (remote_read(dt->pid, rt->scratch, &ka, sizeof(ka)))
			return -1;
		if (ka.handler == (unsigned long)SIG_DFL && !ka.flags && !ka.mask)
			continue;
		if (sig == SIGTRAP && ka.handler == (unsigned long)SIG_IGN) {
			/* each trap of a remote call at restore would reset it to SIG_DFL */
			pr_err("pid %d: SIGTRAP is ignored (SIG_IGN); restore cannot keep it "
			       "ignored, not supported\n",
			       dt->pid);
			return -1;
		}
		e = xmalloc(sizeof(*e));
		sigaction_entry__init(e);
		e->sig = sig;
		e->handler = ka.handler;
		e->flags = ka.flags;
		e->restorer = ka.restorer;
		e->mask = ka.mask;
		te->sigactions[te->n_sigactions++] = e;
	}
	return 0;
}

/* One thread's sigaltstack, from what sigaltstack(NULL, at) wrote (ret: its result). */
static int dump_sigaltstack(struct dump_thread *th, long ret, const thread_slot slot)
{
	struct kstack ss;

	if (ret) {
		pr_err("tid %d: cannot read sigaltstack: %s\n", th->tid, strerror(-ret));
		return -1;
	}
	memcpy(&ss, slot, sizeof(ss));
	if (ss.flags & SS_DISABLE)
		return 0;
	th->core->sigaltstack = xmalloc(sizeof(*th->core->sigaltstack));
	sigaltstack_entry__init(th->core->sigaltstack);
	th->core->sigaltstack->sp = ss.sp;
	th->core->sigaltstack->size = ss.size;
	/* SS_ONSTACK is a state, not a setting: only SS_AUTODISARM is kept */
	th->core->sigaltstack->flags = ss.flags & ~SS_ONSTACK;
	return 0;
}

/* Process-wide: dispositions and process-directed pending signals. */
static int sig_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	size_t n;

	if (peek_pending(dt->pid, true, &dt->te->shared_pending, &n))
		return -1;
	dt->te->n_shared_pending = n;
	return dump_sigactions(dt);
}

/* Per thread: blocked mask, thread-directed pending signals, sigaltstack. */
static int sig_dump_thread(struct dump_ctx *ctx, struct dump_task *dt, struct dump_thread *th)
{
	size_t n;

	/* the mask as the thread had it, before we blocked everything */
	th->core->sigmask = th->rt.sigmask;
	if (peek_pending(th->tid, false, &th->core->pending, &n))
		return -1;
	th->core->n_pending = n;
	return 0;
}

/* Every thread's sigaltstack, which only the thread itself can read: all at once. */
static int sig_dump_threads(struct dump_ctx *ctx, struct dump_task *dt)
{
	long *rets = xmalloc(dt->nth * sizeof(*rets));
	thread_slot *slots = xmalloc(dt->nth * sizeof(*slots));
	size_t i;
	int ret = dump_threads_call(dt, __NR_sigaltstack,
				    (const unsigned long[3]){ 0, THREAD_SCRATCH }, rets, slots);

	for (i = 0; !ret && i < dt->nth; i++)
		ret = dump_sigaltstack(&dt->th[i], rets[i], slots[i]);
	free(slots);
	free(rets);
	return ret;
}

/*
 * The remote calls that build a task stop at an int3 or a single step,
 * whose SIGTRAP the kernel forces: were SIGTRAP blocked then, the kernel
 * would reset its action to SIG_DFL.  A task with a SIGTRAP handler keeps
 * SIGTRAP unblocked until its own mask comes back (thread_finish); the
 * trap then only stops it for the controller, which drops it.
 */
static int sig_unblock_trap(const TaskEntry *te)
{
	sigset_t trap;
	size_t i;

	for (i = 0; i < te->n_sigactions; i++)
		if (te->sigactions[i]->sig == SIGTRAP &&
		    te->sigactions[i]->handler != (unsigned long)SIG_DFL)
			break;
	if (i == te->n_sigactions)
		return 0;
	sigemptyset(&trap);
	sigaddset(&trap, SIGTRAP);
	if (sigprocmask(SIG_UNBLOCK, &trap, NULL)) {
		pr_perror("pid %u: cannot unblock SIGTRAP", te->pid);
		return -1;
	}
	return 0;
}

/* In the restore child: every signal is blocked already. */
static int sig_restore_child(struct rst_ctx *c)
{
	struct ksigaction dfl = { (unsigned long)SIG_DFL, 0, 0, 0 };
	TaskEntry *te = c->t->te;
	size_t i;
	int sig;

	/* nothing of stasis's own (glibc's thread signals) may stay behind */
	for (sig = 1; sig <= NSIG_KERNEL; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);

	for (i = 0; i < te->n_sigactions; i++) {
		SigactionEntry *e = te->sigactions[i];
		struct ksigaction ka = { e->handler, e->flags, e->restorer, e->mask };

		if (syscall(SYS_rt_sigaction, e->sig, &ka, NULL, 8)) {
			pr_perror("pid %u: cannot restore the action of signal %u", te->pid,
				  e->sig);
			return -1;
		}
	}
	return sig_unblock_trap(te);
}

static int queue_one(struct rst_ctx *c, struct rtask *rt, const SiginfoEntry *e, pid_t tid)
{
	const siginfo_t *si = (const siginfo_t *)e->raw.data;
	pid_t pid = c->t->te->pid;
	long ret;

	if (e->raw.len != sizeof(siginfo_t)) {
		pr_err("pid %d: bad pending signal record\n", pid);
		return -1;
	}
	if (remote_write(rt->pid, rt->scratch, si, sizeof(*si)))
		return -1;
	if (!tid) {
		if (remote_syscall(rt, &ret, __NR_rt_sigqueueinfo, te_pid_inside(c->t->te),
				   si->si_signo, rt->scratch, 0, 0, 0))
			return -1;
	} else if (remote_syscall(rt, &ret, __NR_rt_tgsigqueueinfo, te_pid_inside(c->t->te),
				  te_tid_inside(c->t->te, tid), si->si_signo, rt->scratch, 0, 0)) {
		return -1;
	}
	if (ret) {
		pr_err("pid %d: cannot queue pending signal %d: %s\n", pid, si->si_signo,
		       strerror(-ret));
		return -1;
	}
	return 0;
}

static bool is_trap(const SiginfoEntry *e)
{
	return e->raw.len == sizeof(siginfo_t) &&
	       ((const siginfo_t *)e->raw.data)->si_signo == SIGTRAP;
}

/* Remote, with every signal still blocked: process-directed pending signals. */
static int sig_restore_remote(struct rst_ctx *c)
{
	size_t i;

	for (i = 0; i < c->t->te->n_shared_pending; i++)
		if (!is_trap(c->t->te->shared_pending[i]) &&
		    queue_one(c, &c->rt, c->t->te->shared_pending[i], 0))
			return -1;
	return 0;
}

static int set_mask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(mask), &mask)) {
		pr_perror("tid %d: cannot set its signal mask", tid);
		return -1;
	}
	return 0;
}

/*
 * Queue a pending SIGTRAP with its own siginfo, after the last remote
 * call: each of those stops at a trap of ours, which would take a queued
 * SIGTRAP's place (a second SIGTRAP is not queued while one is pending)
 * or have it delivered to us.  The thread rests in the signal-delivery
 * stop of its last trap.  We send it a SIGTRAP (kill or tgkill: one for
 * the process or for the thread), let it take that one with only SIGTRAP
 * unblocked, and tell ours from a trap by its si_code and sender; then
 * we give it the saved siginfo and resume it with SIGTRAP and every signal
 * blocked: the kernel queues a signal a tracer resumes with that is
 * blocked again, where it came from, with the tracer's siginfo.  An
 * interrupt made beforehand stops it again before it returns to its code.
 */
static int requeue_trap(struct rst_ctx *c, pid_t tid, const SiginfoEntry *e, bool shared,
			uint64_t own)
{
	uint64_t only_trap = ~(1ULL << (SIGTRAP - 1));
	siginfo_t si;
	int status;

	if (set_mask(tid, only_trap) || (shared ? kill(c->host_pid, SIGTRAP)
						: syscall(SYS_tgkill, c->host_pid, tid, SIGTRAP))) {
		pr_perror("tid %d: cannot send it its pending SIGTRAP", tid);
		return -1;
	}
	if (ptrace(PTRACE_CONT, tid, 0, 0) || tracee_wait_stop(tid, &status)) {
		pr_perror("tid %d: cannot resume it to take its SIGTRAP", tid);
		return -1;
	}
	if ((status >> 16) || WSTOPSIG(status) != SIGTRAP ||
	    ptrace(PTRACE_GETSIGINFO, tid, 0, &si) || si.si_code > 0 ||
	    (si.si_pid != getpid() && si.si_pid != 0 /* we are outside its PID namespace */)) {
		pr_err("tid %d: stopped (status %#x, si_code %d from %d) other than for the "
		       "SIGTRAP we sent\n",
		       tid, status, si.si_code, si.si_pid);
		return -1;
	}
	if (ptrace(PTRACE_SETSIGINFO, tid, 0, e->raw.data) || set_mask(tid, ~0ULL) ||
	    ptrace(PTRACE_INTERRUPT, tid, 0, 0) || ptrace(PTRACE_CONT, tid, 0, SIGTRAP) ||
	    tracee_wait_stop(tid, &status)) {
		pr_perror("tid %d: cannot queue its pending SIGTRAP", tid);
		return -1;
	}
	if ((status >> 16) != PTRACE_EVENT_STOP) {
		pr_err("tid %d: stopped (status %#x) other than by our interrupt\n", tid, status);
		return -1;
	}
	return set_mask(tid, own);
}

/* Per thread, nothing runs remotely any more: its pending SIGTRAPs. */
static int sig_restore_traps(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	const TaskEntry *te = c->t->te;
	size_t i;

	/*
	 * the leader goes last: the process's, once no thread traps any more,
	 * and before its own (a thread takes its own signals first)
	 */
	for (i = 0; rt == &c->rt && i < te->n_shared_pending; i++)
		if (is_trap(te->shared_pending[i]) &&
		    requeue_trap(c, rt->pid, te->shared_pending[i], true, core->sigmask))
			return -1;
	for (i = 0; i < core->n_pending; i++)
		if (is_trap(core->pending[i]) &&
		    requeue_trap(c, rt->pid, core->pending[i], false, core->sigmask))
			return -1;
	return 0;
}

/* Remote, from the thread itself: its sigaltstack and its pending signals. */
static int sig_restore_thread(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	size_t i;

	if (core->sigaltstack) {
		SigaltstackEntry *s = core->sigaltstack;
		struct kstack ss = { s->sp, (int)s->flags, s->size };
		unsigned long at = rbatch_arg(rt, &ss, sizeof(ss));

		if (!at ||
		    remote_queue(rt, "restoring sigaltstack", __NR_sigaltstack, at, 0, 0, 0, 0, 0))
			return -1;
	}
	for (i = 0; i < core->n_pending; i++)
		if (!is_trap(core->pending[i]) && queue_one(c, rt, core->pending[i], core->tid))
			return -1;
	return 0;
}

/* ------------------------------------------------------------- zombies */

static bool status_hex(const char *status, const char *key, uint64_t *v)
{
	const char *s = status_field(status, key);

	if (!s)
		return false;
	*v = strtoull(s, NULL, 16);
	return true;
}

/* What is left of a zombie's signals: the sets its status shows. */
static int sig_dump_zombie(struct dump_ctx *ctx, struct dump_task *dt)
{
	char *status = read_proc(dt->pid, "status", NULL);
	TaskEntry *te = dt->te;
	bool ok;

	ok = status && status_hex(status, "SigIgn", &te->zombie_sig_ignored) &&
	     status_hex(status, "SigCgt", &te->zombie_sig_caught) &&
	     status_hex(status, "SigBlk", &te->zombie_sig_blocked) &&
	     status_hex(status, "ShdPnd", &te->zombie_sig_shared_pending) &&
	     status_hex(status, "SigPnd", &te->zombie_sig_pending);
	free(status);
	if (!ok) {
		pr_err("pid %d: cannot read the signal state of the zombie\n", dt->pid);
		return -1;
	}
	te->has_zombie_sig_ignored = te->has_zombie_sig_caught = te->has_zombie_sig_blocked =
	    te->has_zombie_sig_shared_pending = te->has_zombie_sig_pending = true;
	return 0;
}

static void zombie_handler(int sig)
{
}

/*
 * In a zombie's restore child: the same sets, before it dies.  The handler
 * never runs (only its being there shows); a pending signal is only left
 * pending where it is blocked, as it was.
 */
static int sig_restore_zombie(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;
	uint64_t blocked_bits = te->zombie_sig_blocked;
	int sig;

	for (sig = 1; sig <= NSIG_KERNEL; sig++) {
		uint64_t bit = 1ULL << (sig - 1);
		struct ksigaction ka = { (unsigned long)SIG_DFL, 0, 0, 0 };

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (te->zombie_sig_ignored & bit)
			ka.handler = (unsigned long)SIG_IGN;
		else if (te->zombie_sig_caught & bit)
			ka.handler = (unsigned long)zombie_handler;
		if (syscall(SYS_rt_sigaction, sig, &ka, NULL, 8)) {
			pr_perror("pid %u: cannot set the action of signal %d", te->pid, sig);
			return -1;
		}
	}
	/* glibc's sigprocmask keeps its own two signals out: the raw call */
	if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &blocked_bits, NULL, 8)) {
		pr_perror("pid %u: cannot block the zombie's signals", te->pid);
		return -1;
	}
	for (sig = 1; sig <= NSIG_KERNEL; sig++) {
		uint64_t bit = 1ULL << (sig - 1);

		if (!(blocked_bits & bit))
			continue;
		if (((te->zombie_sig_shared_pending & bit) && kill(getpid(), sig)) ||
		    ((te->zombie_sig_pending & bit) &&
		     syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig))) {
			pr_perror("pid %u: cannot leave signal %d pending in the zombie", te->pid,
				  sig);
			return -1;
		}
	}
	return 0;
}

const struct res_ops signal_res = {
	.name = "signal",
	.dump_zombie = sig_dump_zombie,
	.child_zombie = sig_restore_zombie,
	.dump_remote = sig_dump,
	.dump_threads = sig_dump_threads,
	.dump_thread = sig_dump_thread,
	.child = sig_restore_child,
	.thread = sig_restore_thread,
	.remote_late = sig_restore_remote,
	.thread_finish = sig_restore_traps,
};
