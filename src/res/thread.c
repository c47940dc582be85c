/*
 * Per-thread CPU state and the kernel's per-thread user pointers:
 * general registers (with fs/gs bases), the XSAVE area (FPU, SSE, AVX,
 * AVX-512, PKRU), rseq registration, clear_child_tid and the robust futex
 * list.  Registers go back last, after every remote syscall.
 */
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "res.h"
#include "util.h"

#define XSTATE_MAX (64 * 1024)

/* Both lists name user_regs_struct fields in x86_regs field order. */
/* clang-format off */
#define X86_REGS(X)								\
	X(r15, r15) X(r14, r14) X(r13, r13) X(r12, r12) X(bp, rbp) X(bx, rbx)	\
	X(r11, r11) X(r10, r10) X(r9, r9) X(r8, r8) X(ax, rax) X(cx, rcx)	\
	X(dx, rdx) X(si, rsi) X(di, rdi) X(orig_ax, orig_rax) X(ip, rip)	\
	X(cs, cs) X(flags, eflags) X(sp, rsp) X(ss, ss) X(fs_base, fs_base)	\
	X(gs_base, gs_base) X(ds, ds) X(es, es) X(fs, fs) X(gs, gs)
/* clang-format on */

static void regs_to_entry(const struct user_regs_struct *r, X86Regs *e)
{
#define TO(f, u) e->f = r->u;
	X86_REGS(TO)
#undef TO
}

static void entry_to_regs(const X86Regs *e, struct user_regs_struct *r)
{
#define FROM(f, u) r->u = e->f;
	X86_REGS(FROM)
#undef FROM
}

static int dump_rseq(struct dump_thread *th)
{
	struct stasis_rseq_configuration conf;
	long n;

	n = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, th->tid, sizeof(conf), &conf);
	if (n < 0) {
		pr_perror("tid %d: cannot read rseq configuration", th->tid);
		return -1;
	}
	if (!conf.rseq_abi_pointer)
		return 0;
	th->core->rseq = xmalloc(sizeof(*th->core->rseq));
	rseq_entry__init(th->core->rseq);
	th->core->rseq->addr = conf.rseq_abi_pointer;
	th->core->rseq->len = conf.rseq_abi_size;
	th->core->rseq->sig = conf.signature;
	th->core->rseq->flags = conf.flags;
	return 0;
}

/* clear_child_tid, which only the thread itself can read: in all threads at once. */
static int thread_dump_threads(struct dump_ctx *ctx, struct dump_task *dt)
{
	long *rets = xmalloc(dt->nth * sizeof(*rets));
	thread_slot *slots = xmalloc(dt->nth * sizeof(*slots));
	unsigned long tid_addr;
	size_t i;
	int ret = -1;

	if (dump_threads_call(dt, __NR_prctl,
			      (const unsigned long[3]){ PR_GET_TID_ADDRESS, THREAD_SCRATCH }, rets,
			      slots))
		goto out;
	for (i = 0; i < dt->nth; i++) {
		struct dump_thread *th = &dt->th[i];

		if (rets[i]) {
			pr_err("tid %d: cannot read clear_child_tid: %s\n", th->tid,
			       strerror(-rets[i]));
			goto out;
		}
		memcpy(&tid_addr, slots[i], sizeof(tid_addr));
		th->core->has_clear_tid_addr = true;
		th->core->clear_tid_addr = tid_addr;
	}
	ret = 0;
out:
	free(slots);
	free(rets);
	return ret;
}

static int dump_user_pointers(struct dump_thread *th)
{
	ThreadCore *core = th->core;
	void *head;
	size_t len;

	if (syscall(SYS_get_robust_list, th->tid, &head, &len)) {
		pr_perror("tid %d: cannot read the robust futex list", th->tid);
		return -1;
	}
	core->has_robust_list = core->has_robust_list_len = true;
	core->robust_list = (unsigned long)head;
	core->robust_list_len = len;
	return 0;
}

static int thread_dump(struct dump_ctx *ctx, struct dump_task *dt, struct dump_thread *th)
{
	ThreadCore *core = th->core;
	size_t len = XSTATE_MAX;
	void *xs = xmalloc(len);
	char name[64], *s;

	core->pid = dt->pid;
	core->tid = th->tid;
	core->regs = xmalloc(sizeof(*core->regs));
	x86_regs__init(core->regs);
	regs_to_entry(&th->rt.regs, core->regs);
	if (tracee_get_xstate(th->tid, xs, &len)) {
		free(xs);
		return -1;
	}
	core->xstate.data = xs;
	core->xstate.len = len;
	snprintf(name, sizeof(name), "task/%d/comm", th->tid);
	s = read_proc(dt->pid, name, NULL);
	if (s) {
		s[strcspn(s, "\n")] = '\0';
		core->name = s;
	}
	if (th->rt.deadline_real) {
		core->has_call_deadline = true;
		core->call_deadline = th->rt.deadline_real;
	}
	if (dump_rseq(th) || dump_user_pointers(th))
		return -1;
	return 0;
}

/*
 * In the restore child, last thing before it stops: the leader's
 * clear_child_tid and robust list.  The kernel only stores the addresses
 * (they are used at exit), so they can be set before the memory they
 * point to exists, with two plain syscalls instead of two remote ones.
 */
static int thread_restore_child(struct rst_ctx *c)
{
	ThreadCore *core = c->t->cores[0];

	if (core->has_clear_tid_addr)
		syscall(__NR_set_tid_address, core->clear_tid_addr);
	if (core->has_robust_list && core->robust_list &&
	    syscall(__NR_set_robust_list, core->robust_list, core->robust_list_len)) {
		pr_perror("tid %u: cannot restore the robust futex list", core->tid);
		return -1;
	}
	return 0;
}

/*
 * Remote, from the thread itself, while the trampoline still exists.  The
 * calls are queued: the driver runs a thread's queue with one stop.
 */
static int thread_restore_remote(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	bool leader = rt == &c->rt; /* its tid address and robust list: above */

	/* another thread's clear_child_tid: set by its clone3 (transplant.c) */
	if (!leader && core->has_robust_list && core->robust_list &&
	    remote_queue(rt, "restoring the robust futex list", __NR_set_robust_list,
			 core->robust_list, core->robust_list_len, 0, 0, 0, 0))
		return -1;
	if (core->rseq && remote_queue(rt, "registering rseq", __NR_rseq, core->rseq->addr,
				       core->rseq->len, 0, core->rseq->sig, 0, 0))
		return -1;
	/* the leader's name is its comm, set already by the restore child */
	if (core->name && (rt != &c->rt || strcmp(core->name, c->t->te->comm))) {
		char name[16] = { 0 };
		unsigned long at;

		strncpy(name, core->name, sizeof(name) - 1);
		at = rbatch_arg(rt, name, sizeof(name));
		if (!at ||
		    remote_queue(rt, "naming the thread", __NR_prctl, PR_SET_NAME, at, 0, 0, 0, 0))
			return -1;
	}
	return 0;
}

/* After the last remote syscall: FPU state, mask and registers. */
static int thread_restore_regs(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	struct user_regs_struct regs;

	if (tracee_set_xstate(rt->pid, core->xstate.data, core->xstate.len))
		return -1;
	memset(&regs, 0, sizeof(regs));
	entry_to_regs(core->regs, &regs);
	regs_for_release(&regs, true);
	if (tracee_set_regs(rt->pid, &regs))
		return -1;
	if (ptrace(PTRACE_SETSIGMASK, rt->pid, sizeof(uint64_t), &core->sigmask)) {
		pr_perror("tid %u: cannot restore the blocked signal mask", core->tid);
		return -1;
	}
	return 0;
}

const struct res_ops thread_res = {
	.name = "thread",
	.dump_threads = thread_dump_threads,
	.dump_thread = thread_dump,
	.child = thread_restore_child,
	.thread = thread_restore_remote,
	.thread_finish = thread_restore_regs,
};
