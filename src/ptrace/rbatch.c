/*
 * Remote calls in batches, for a task being built at restore: the calls a
 * stage queues run one after the other in the task with a single stop, not
 * one stop (and four ptrace requests) each.
 *
 * The restore trampoline holds, after its `syscall; int3`, the loop below:
 * it takes a table of calls (number, six arguments, result) from the
 * scratch area, issues them in order, stores each result, and stops at its
 * int3 when the table is done or at the first call that fails (a result in
 * -4095..-1), leaving in %r12 how many calls were left.  The controller
 * writes the table, points the thread at the loop, lets it run to the
 * int3's SIGTRAP, and reads the results back.  A call whose arguments
 * point to memory takes it from rbatch_arg(), which packs it after the
 * table.  Table and data sit at the end of the scratch area, so what a
 * stage writes at its start for a plain remote_syscall() is not in their
 * way; and every plain remote_syscall() first runs what is queued, so the
 * calls still happen in the order the stages asked for them.  A task
 * without the loop (the dump side) runs each queued call at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "log.h"
#include "rtask.h"
#include "util.h"

asm(".pushsection .rodata\n"
    ".balign 16\n"
    "stasis_rbatch_start:\n"
    "1:	test %r12, %r12\n"
    "	jz 2f\n"
    "	mov 0(%rbx), %rax\n"
    "	mov 8(%rbx), %rdi\n"
    "	mov 16(%rbx), %rsi\n"
    "	mov 24(%rbx), %rdx\n"
    "	mov 32(%rbx), %r10\n"
    "	mov 40(%rbx), %r8\n"
    "	mov 48(%rbx), %r9\n"
    "	syscall\n"
    "	mov %rax, 56(%rbx)\n"
    "	cmp $-4095, %rax\n"
    "	jae 2f\n" /* failed: stop with this call still counted in %r12 */
    "	add $64, %rbx\n"
    "	dec %r12\n"
    "	jmp 1b\n"
    "2:	int3\n"
    "stasis_rbatch_end:\n"
    ".popsection\n");

extern const unsigned char stasis_rbatch_start[], stasis_rbatch_end[];

const void *rbatch_code(size_t *len)
{
	*len = stasis_rbatch_end - stasis_rbatch_start;
	return stasis_rbatch_start;
}

struct rbatch_call {
	uint64_t nr, a[6], ret;
};

#define RBATCH_CALLS 32
#define RBATCH_DATA  1024

struct rbatch {
	struct rbatch_call call[RBATCH_CALLS];
	const char *what[RBATCH_CALLS];
	size_t n;
	size_t running;			 /* started by rbatch_start, not finished yet */
	unsigned char data[RBATCH_DATA]; /* rbatch_arg's, right after the table */
	size_t data_len;
};

#define RBATCH_AREA (RBATCH_CALLS * sizeof(struct rbatch_call) + RBATCH_DATA)

static bool batching(const struct rtask *t)
{
	return t->batch_ip && t->scratch_len >= 2 * RBATCH_AREA;
}

static struct rbatch *queue_of(struct rtask *t)
{
	if (!t->batch)
		t->batch = xzalloc(sizeof(*t->batch));
	return t->batch;
}

/* Where the call table and its data are: the end of the scratch area. */
static unsigned long table_at(const struct rtask *t)
{
	return (t->scratch + t->scratch_len - RBATCH_AREA) & ~63UL;
}

static unsigned long data_at(const struct rtask *t)
{
	return table_at(t) + RBATCH_CALLS * sizeof(struct rbatch_call);
}

unsigned long rbatch_arg(struct rtask *t, const void *buf, size_t len)
{
	struct rbatch *b;
	unsigned long at;

	if (!batching(t)) {
		/* no batch: the call runs at once, from the start of the scratch area */
		if (len > t->scratch_len || remote_write(t->pid, t->scratch, buf, len))
			return 0;
		return t->scratch;
	}
	b = queue_of(t);
	len = (len + 7) & ~7UL;
	if (b->data_len + len > RBATCH_DATA && rbatch_flush(t))
		return 0;
	at = data_at(t) + b->data_len;
	memcpy(b->data + b->data_len, buf, len);
	b->data_len += len;
	return at;
}

int remote_queue(struct rtask *t, const char *what, long nr, unsigned long a1, unsigned long a2,
		 unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6)
{
	struct rbatch *b;
	long ret;

	if (!batching(t)) {
		if (remote_syscall(t, &ret, nr, a1, a2, a3, a4, a5, a6))
			return -1;
		if (ret < 0 && ret > -4096) {
			pr_err("tid %d: %s failed: %s\n", t->pid, what, strerror(-ret));
			return -1;
		}
		return 0;
	}
	b = queue_of(t);
	if (b->n == RBATCH_CALLS && rbatch_flush(t))
		return -1;
	b->call[b->n] = (struct rbatch_call){ nr, { a1, a2, a3, a4, a5, a6 }, 0 };
	b->what[b->n] = what;
	b->n++;
	return 0;
}

/* Wait for the running loop's int3; 0 if it got there. */
static int run_to_trap(struct rtask *t)
{
	int status;

	for (;;) {
		if (tracee_wait_stop(t->pid, &status))
			return -1;
		if ((status >> 16) == 0 && WSTOPSIG(status) == SIGTRAP)
			return 0;
		if ((status >> 16) == 0) {
			pr_err("tid %d: signal %d during its remote calls\n", t->pid,
			       WSTOPSIG(status));
			return -1;
		}
		/* a group stop or an event stop: go on */
		if (ptrace(PTRACE_CONT, t->pid, 0, 0)) {
			pr_perror("tid %d: cannot run its remote calls", t->pid);
			return -1;
		}
	}
}

/*
 * Start the queued calls: table and data into the task, registers on the
 * loop, and let it run; rbatch_finish waits for its int3.  Threads whose
 * scratch areas do not overlap can run their batches at the same time.
 */
int rbatch_start(struct rtask *t)
{
	struct rbatch *b = t->batch;
	struct user_regs_struct regs;

	if (!b || !b->n)
		return 0;
	b->running = b->n;
	b->n = 0;
	if (remote_write(t->pid, table_at(t), b->call, b->running * sizeof(b->call[0])) ||
	    (b->data_len && remote_write(t->pid, data_at(t), b->data, b->data_len)))
		return -1;
	b->data_len = 0;
	regs = t->regs;
	regs.rip = t->batch_ip;
	regs.rbx = table_at(t);
	regs.r12 = b->running;
	regs.orig_rax = -1;
	regs.eflags &= ~0x100UL; /* no stale TF */
	t->regs_dirty = true;
	remote_syscall_count += b->running;
	if (tracee_set_regs(t->pid, &regs) || ptrace(PTRACE_CONT, t->pid, 0, 0)) {
		pr_perror("tid %d: cannot run its remote calls", t->pid);
		return -1;
	}
	return 0;
}

/*
 * Wait until the started calls are done.  rets (may be NULL): every
 * call's result.  failed (may be NULL): set to the index of the call that
 * failed, whose error is then left to the caller (else it is the error
 * line); SIZE_MAX if ptrace itself failed.
 */
int rbatch_finish(struct rtask *t, long *rets, size_t *failed)
{
	struct rbatch *b = t->batch;
	struct user_regs_struct regs;
	size_t n, left, i, code_len;

	if (failed)
		*failed = SIZE_MAX;
	if (!b || !b->running)
		return 0;
	n = b->running;
	b->running = 0;
	if (run_to_trap(t) || tracee_get_regs(t->pid, &regs))
		return -1;
	left = regs.r12;
	rbatch_code(&code_len);
	if (left > n || regs.rip != t->batch_ip + code_len) {
		pr_err("tid %d: its remote calls stopped at %llx, not at their end\n", t->pid,
		       regs.rip);
		return -1;
	}
	i = n - left;
	if (rets || left) {
		if (remote_read(t->pid, table_at(t), b->call, (i + !!left) * sizeof(b->call[0])))
			return -1;
		for (size_t k = 0; rets && k < i + !!left; k++)
			rets[k] = b->call[k].ret;
	}
	if (!left)
		return 0;
	if (failed) {
		*failed = i;
		return -1;
	}
	pr_err("tid %d: %s failed: %s\n", t->pid, b->what[i], strerror(-(long)b->call[i].ret));
	return -1;
}

int rbatch_flush(struct rtask *t)
{
	if (rbatch_start(t))
		return -1;
	return rbatch_finish(t, NULL, NULL);
}

size_t rbatch_window(void)
{
	return 2 * RBATCH_AREA;
}

void rbatch_free(struct rtask *t)
{
	free(t->batch);
	t->batch = NULL;
}
