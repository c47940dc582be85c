/*
 * Per-thread CPU state and the kernel's per-thread user pointers:
 * general registers (with fs/gs bases), the XSAVE area (FPU, SSE, AVX,
 * AVX-512, PKRU), rseq registration, clear_child_tid and the robust futex
 * list.  Registers go back last, after every remote syscall.
 */
#include <stdio.h>
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
#define X86_REGS(X)                                                                          \
	X(r15, r15) X(r14, r14) X(r13, r13) X(r12, r12) X(bp, rbp) X(bx, rbx) X(r11, r11)        \
	X(r10, r10) X(r9, r9) X(r8, r8) X(ax, rax) X(cx, rcx) X(dx, rdx) X(si, rsi) X(di, rdi)   \
	X(orig_ax, orig_rax) X(ip, rip) X(cs, cs) X(flags, eflags) X(sp, rsp) X(ss, ss)          \
	X(fs_base, fs_base) X(gs_base, gs_base) X(ds, ds) X(es, es) X(fs, fs) X(gs, gs)

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

static int dump_rseq(struct dump_task *dt)
{
	struct stasis_rseq_configuration conf;
	long n;

	n = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, dt->pid, sizeof(conf), &conf);
	if (n < 0) {
		pr_perror("pid %d: cannot read rseq configuration", dt->pid);
		return -1;
	}
	if (!conf.rseq_abi_pointer)
		return 0;
	dt->core->rseq = xmalloc(sizeof(*dt->core->rseq));
	rseq_entry__init(dt->core->rseq);
	dt->core->rseq->addr = conf.rseq_abi_pointer;
	dt->core->rseq->len = conf.rseq_abi_size;
	dt->core->rseq->sig = conf.signature;
	dt->core->rseq->flags = conf.flags;
	return 0;
}

static int dump_user_pointers(struct dump_task *dt)
{
	ThreadCore *core = dt->core;
	unsigned long tid_addr;
	void *head;
	size_t len;
	long ret;

	if (remote_syscall(&dt->rt, &ret, __NR_prctl, PR_GET_TID_ADDRESS, dt->rt.scratch, 0, 0, 0,
			   0))
		return -1;
	if (ret) {
		pr_err("pid %d: cannot read clear_child_tid: %s\n", dt->pid, strerror(-ret));
		return -1;
	}
	if (remote_read(dt->pid, dt->rt.scratch, &tid_addr, sizeof(tid_addr)))
		return -1;
	core->has_clear_tid_addr = true;
	core->clear_tid_addr = tid_addr;
	if (syscall(SYS_get_robust_list, dt->pid, &head, &len)) {
		pr_perror("pid %d: cannot read the robust futex list", dt->pid);
		return -1;
	}
	core->has_robust_list = core->has_robust_list_len = true;
	core->robust_list = (unsigned long)head;
	core->robust_list_len = len;
	return 0;
}

int thread_dump(struct dump_task *dt)
{
	ThreadCore *core = dt->core;
	size_t len = XSTATE_MAX;
	void *xs = xmalloc(len);
	char name[64];

	core->pid = dt->pid;
	core->tid = dt->pid;
	core->regs = xmalloc(sizeof(*core->regs));
	x86_regs__init(core->regs);
	regs_to_entry(&dt->rt.regs, core->regs);
	if (thread_get_xstate(dt->pid, xs, &len)) {
		free(xs);
		return -1;
	}
	core->xstate.data = xs;
	core->xstate.len = len;
	snprintf(name, sizeof(name), "task/%d/comm", dt->pid);
	{
		char *s = read_proc(dt->pid, name, NULL);

		if (s) {
			s[strcspn(s, "\n")] = '\0';
			core->name = s;
		}
	}
	if (dump_rseq(dt) || dump_user_pointers(dt))
		return -1;
	return 0;
}

/* Remote: per-thread kernel pointers, while the trampoline still exists. */
int thread_restore_remote(struct rst_ctx *c)
{
	ThreadCore *core = c->t->core;
	long ret;

	if (core->has_clear_tid_addr &&
	    (remote_syscall(&c->rt, &ret, __NR_set_tid_address, core->clear_tid_addr, 0, 0, 0, 0,
			    0)))
		return -1;
	if (core->has_robust_list && core->robust_list) {
		if (remote_syscall(&c->rt, &ret, __NR_set_robust_list, core->robust_list,
				   core->robust_list_len, 0, 0, 0, 0))
			return -1;
		if (ret) {
			pr_err("pid %d: cannot restore the robust futex list: %s\n", core->tid,
			       strerror(-ret));
			return -1;
		}
	}
	if (core->rseq) {
		if (remote_syscall(&c->rt, &ret, __NR_rseq, core->rseq->addr, core->rseq->len, 0,
				   core->rseq->sig, 0, 0))
			return -1;
		if (ret) {
			pr_err("pid %d: cannot register rseq at %llx: %s\n", core->tid,
			       (unsigned long long)core->rseq->addr, strerror(-ret));
			return -1;
		}
	}
	return 0;
}

/* After the last remote syscall: FPU state, mask and registers. */
int thread_restore_regs(struct rst_ctx *c)
{
	ThreadCore *core = c->t->core;
	struct user_regs_struct regs;

	if (thread_set_xstate(core->tid, core->xstate.data, core->xstate.len))
		return -1;
	memset(&regs, 0, sizeof(regs));
	entry_to_regs(core->regs, &regs);
	regs_restart_syscall(&regs, true);
	if (thread_set_regs(core->tid, &regs))
		return -1;
	if (ptrace(PTRACE_SETSIGMASK, core->tid, sizeof(uint64_t), &core->sigmask)) {
		pr_perror("pid %d: cannot restore the blocked signal mask", core->tid);
		return -1;
	}
	return 0;
}
