/*
 * seccomp: the mode and, in filter mode, every filter of a thread in the
 * order it was installed, with its flags.  Filters are read with
 * PTRACE_SECCOMP_GET_FILTER and installed again by the thread itself with
 * a remote seccomp(SECCOMP_SET_MODE_FILTER).
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "res.h"
#include "util.h"

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
#ifndef PTRACE_SECCOMP_GET_METADATA
#define PTRACE_SECCOMP_GET_METADATA 0x420d
#endif

struct stasis_seccomp_metadata {
	uint64_t filter_off;
	uint64_t flags;
};

static int seccomp_mode(struct dump_task *dt, struct dump_thread *th)
{
	const char *status = dump_thread_status(dt, th), *v;

	if (!status)
		return -1;
	v = status_field(status, "Seccomp");
	return v ? atoi(v) : 0;
}

/*
 * Before any remote call: one in a thread in strict mode (anything but
 * read, write, exit and sigreturn) would have the kernel kill the whole
 * process, so such a tree is refused while nothing has touched it.
 */
static int seccomp_dump_check(struct dump_ctx *ctx)
{
	size_t i, j;

	for (i = 0; i < ctx->ntasks; i++) {
		struct dump_task *dt = &ctx->tasks[i];

		for (j = 0; !dt->zombie && j < dt->nth; j++)
			if (seccomp_mode(dt, &dt->th[j]) == SECCOMP_MODE_STRICT) {
				pr_err("tid %d: seccomp strict mode is not supported yet\n",
				       dt->th[j].tid);
				return -1;
			}
	}
	return 0;
}

static int seccomp_dump_thread(struct dump_ctx *ctx, struct dump_task *dt, struct dump_thread *th)
{
	SeccompEntry *se;
	int mode = seccomp_mode(dt, th);
	long i, n;

	if (mode <= 0)
		return mode;
	if (mode == SECCOMP_MODE_STRICT) {
		pr_err("tid %d: seccomp strict mode is not supported yet\n", th->tid);
		return -1;
	}
	se = th->core->seccomp = xmalloc(sizeof(*se));
	seccomp_entry__init(se);
	se->mode = mode;
	/* index 0 is the newest filter; count them first */
	for (n = 0; ptrace(PTRACE_SECCOMP_GET_FILTER, th->tid, n, NULL) > 0; n++)
		;
	if (n == 0) {
		pr_perror("tid %d: cannot read its seccomp filters", th->tid);
		return -1;
	}
	se->filters = xzalloc(n * sizeof(*se->filters));
	for (i = n - 1; i >= 0; i--) {
		struct stasis_seccomp_metadata md = { .filter_off = i };
		SeccompFilter *f = xmalloc(sizeof(*f));
		long len = ptrace(PTRACE_SECCOMP_GET_FILTER, th->tid, i, NULL);

		seccomp_filter__init(f);
		se->filters[se->n_filters++] = f;
		f->insns.len = len * sizeof(struct sock_filter);
		f->insns.data = xmalloc(f->insns.len);
		if (len <= 0 ||
		    ptrace(PTRACE_SECCOMP_GET_FILTER, th->tid, i, f->insns.data) != len) {
			pr_perror("tid %d: cannot read seccomp filter %ld", th->tid, i);
			return -1;
		}
		if (ptrace(PTRACE_SECCOMP_GET_METADATA, th->tid, sizeof(md), &md) == sizeof(md)) {
			f->has_flags = true;
			f->flags = md.flags;
		}
	}
	return 0;
}

/* Remote, from the thread: oldest filter first. */
static int seccomp_restore_remote(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	SeccompEntry *se = core->seccomp;
	size_t i;

	if (!se)
		return 0;
	for (i = 0; i < se->n_filters; i++) {
		SeccompFilter *f = se->filters[i];
		struct sock_fprog prog = {
			.len = f->insns.len / sizeof(struct sock_filter),
			.filter = (struct sock_filter *)(rt->scratch + sizeof(struct sock_fprog)),
		};
		long ret;

		if (sizeof(prog) + f->insns.len > rt->scratch_len) {
			pr_err("tid %u: seccomp filter too large\n", core->tid);
			return -1;
		}
		if (remote_write(rt->pid, rt->scratch + sizeof(prog), f->insns.data,
				 f->insns.len) ||
		    remote_write(rt->pid, rt->scratch, &prog, sizeof(prog)) ||
		    remote_syscall(rt, &ret, __NR_seccomp, SECCOMP_SET_MODE_FILTER,
				   f->flags & ~SECCOMP_FILTER_FLAG_TSYNC, rt->scratch, 0, 0, 0))
			return -1;
		if (ret) {
			pr_err("tid %u: cannot install seccomp filter %zu: %s\n", core->tid, i,
			       strerror(-ret));
			return -1;
		}
	}
	return 0;
}

static bool thread_no_new_privs(struct rst_ctx *c, ThreadCore *core)
{
	const CredsEntry *cr = core->creds ? core->creds : c->t->te->creds;

	return cr->no_new_privs;
}

/* Without no_new_privs a filter needs CAP_SYS_ADMIN: before the credentials drop. */
static int seccomp_restore_privileged(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	return thread_no_new_privs(c, core) ? 0 : seccomp_restore_remote(c, rt, core);
}

/* With no_new_privs, after the credentials: nothing of ours is filtered. */
static int seccomp_restore_nnp(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	return thread_no_new_privs(c, core) ? seccomp_restore_remote(c, rt, core) : 0;
}

const struct res_ops seccomp_res = {
	.name = "seccomp",
	.dump_check = seccomp_dump_check,
	.dump_thread = seccomp_dump_thread,
	.thread_last = seccomp_restore_privileged,
};

/* The same filters, restored on the other side of the credentials. */
const struct res_ops seccomp_nnp_res = {
	.name = "seccomp-nnp",
	.thread_last = seccomp_restore_nnp,
};
