/*
 * NUMA memory policies: a thread's (set_mempolicy; what `numactl
 * --interleave` or `--membind` sets before it starts a program) and a
 * mapping's own (mbind), each its mode with the mode flags and its node
 * mask.  Only the thread itself can read its policy (get_mempolicy), so
 * the dump asks every thread at once (dump_threads); the restore queues
 * set_mempolicy in each thread after its pages are in place (the policy
 * decides where pages fault in from then on, as it did for the original;
 * the pages already restored were placed by the restorer's).  A mapping's
 * policy is read from /proc/PID/numa_maps, which shows the process's
 * policy for a mapping without one of its own: a mapping whose line shows
 * another gets its policy saved (mm.c calls in here for both directions),
 * and mbind gives it back when the mapping is finished.  (numa_maps walks
 * the page tables, as smaps does: about 10 ms a GiB on this machine.)  A
 * process with a policy of its own has the leader asked for each mapping's
 * instead (get_mempolicy with MPOL_F_ADDR, a remote call a mapping): only
 * that tells a mapping without a policy from one with the process's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "log.h"
#include "mm.h"
#include "proc.h"
#include "res.h"
#include "rtask.h"
#include "util.h"

#define MPOL_DEFAULT 0
#define MPOL_F_ADDR  (1 << 1)
/* node bits that fit the slot after the mode: 56 bytes */
#define MPOL_NODE_BYTES (THREAD_SCRATCH_SLOT - 8)
#define MPOL_MAXNODE	(MPOL_NODE_BYTES * 8)

/*
 * Under a process policy other than the default, numa_maps cannot tell a
 * mapping without a policy from one with the same policy of its own, and
 * get_mempolicy(MPOL_F_ADDR) can: the leader asks for every mapping while
 * remote calls may run (stage 1), and stage 2 takes the answers.
 */
struct vma_policy {
	unsigned long start;
	int mode;
	unsigned char nodes[MPOL_NODE_BYTES];
};

struct mempolicy_task {
	bool asked; /* the mappings' policies were asked, not read from numa_maps */
	struct vma_policy *vmas;
	size_t n;
};

static int ask_vma_policies(struct dump_task *dt, struct mempolicy_task *mt)
{
	struct rtask *lead = &dt->th[0].rt;
	unsigned char slot[THREAD_SCRATCH_SLOT];
	struct proc_vmas maps;
	size_t i;
	int ret = 0;

	if (proc_parse_maps(dt->pid, &maps))
		return -1;
	mt->asked = true;
	mt->vmas = xzalloc(maps.n * sizeof(*mt->vmas));
	for (i = 0; i < maps.n && !ret; i++) {
		const struct proc_vma *v = &maps.v[i];
		long r;

		if ((v->start >= lead->scratch && v->start < lead->scratch + lead->scratch_len) ||
		    !strcmp(v->path, "[vsyscall]"))
			continue; /* our own area; not a mapping of the process's */
		ret = remote_syscall(lead, &r, __NR_get_mempolicy, lead->scratch, lead->scratch + 8,
				     MPOL_MAXNODE, v->start, MPOL_F_ADDR, 0);
		if (!ret && r) {
			pr_err("pid %d mapping %lx: cannot read its memory policy: %s\n", dt->pid,
			       v->start, strerror(-r));
			ret = -1;
		}
		if (ret || remote_read(dt->pid, lead->scratch, slot, sizeof(slot))) {
			ret = -1;
			break;
		}
		mt->vmas[mt->n].start = v->start;
		memcpy(&mt->vmas[mt->n].mode, slot, sizeof(int));
		memcpy(mt->vmas[mt->n].nodes, slot + 8, MPOL_NODE_BYTES);
		mt->n++;
	}
	proc_vmas_free(&maps);
	return ret;
}

static void mempolicy_task_fini(struct dump_task *dt, void *state)
{
	free(((struct mempolicy_task *)state)->vmas);
}

static int mempolicy_dump_threads(struct dump_ctx *ctx, struct dump_task *dt)
{
	const unsigned long a[3] = { THREAD_SCRATCH_AT(0), THREAD_SCRATCH_AT(8), MPOL_MAXNODE };
	long *rets = xmalloc(dt->nth * sizeof(*rets));
	thread_slot *slots = xmalloc(dt->nth * sizeof(*slots));
	size_t i;
	int ret = dump_threads_call(dt, __NR_get_mempolicy, a, rets, slots);

	for (i = 0; !ret && i < dt->nth; i++) {
		ThreadCore *core = dt->th[i].core;
		const unsigned char *slot = slots[i];
		int mode;

		if (rets[i]) {
			pr_err("tid %d: cannot read its memory policy: %s\n", dt->th[i].tid,
			       strerror(-rets[i]));
			ret = -1;
			break;
		}
		memcpy(&mode, slot, sizeof(mode));
		if (mode == MPOL_DEFAULT)
			continue;
		core->has_mempolicy_mode = true;
		core->mempolicy_mode = mode;
		core->has_mempolicy_nodes = true;
		core->mempolicy_nodes.len = MPOL_NODE_BYTES;
		core->mempolicy_nodes.data = xmalloc(MPOL_NODE_BYTES);
		memcpy(core->mempolicy_nodes.data, slot + 8, MPOL_NODE_BYTES);
	}
	free(slots);
	free(rets);
	if (!ret && dt->th[0].core->has_mempolicy_mode)
		ret = ask_vma_policies(dt, res_dump_task_state(dt, &mempolicy_res));
	return ret;
}

static bool has_policy(const ThreadCore *core)
{
	return core->has_mempolicy_mode && core->mempolicy_mode != MPOL_DEFAULT;
}

static int mempolicy_restore_thread(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	unsigned long at;

	/* the other threads are cloned by the leader, whose policy they inherit */
	if (!has_policy(core)) {
		if (rt == &c->rt || !has_policy(c->t->cores[0]))
			return 0;
		return remote_queue(rt, "restoring the default memory policy", __NR_set_mempolicy,
				    MPOL_DEFAULT, 0, 0, 0, 0, 0);
	}
	if (!core->has_mempolicy_nodes || core->mempolicy_nodes.len != MPOL_NODE_BYTES) {
		pr_err("tid %u: a memory policy without its node mask in the image\n", core->tid);
		return -1;
	}
	at = rbatch_arg(rt, core->mempolicy_nodes.data, core->mempolicy_nodes.len);
	if (!at || remote_queue(rt, "restoring the memory policy", __NR_set_mempolicy,
				core->mempolicy_mode, at, MPOL_MAXNODE, 0, 0, 0))
		return -1;
	return 0;
}

/* ------------------------------------------------ policies of mappings */

/* The modes as numa_maps names them (the kernel's mpol_to_str). */
static const struct {
	const char *name;
	int mode;
} mode_names[] = {
	{ "default", MPOL_DEFAULT },
	{ "prefer (many)", 5 }, /* MPOL_PREFERRED_MANY: before "prefer" */
	{ "prefer", 1 },
	{ "bind", 2 },
	{ "interleave", 3 },
	{ "local", 4 },
	{ "weighted interleave", 6 },
};

static const struct {
	const char *name;
	int flag;
} flag_names[] = {
	{ "static", 1 << 15 },	  /* MPOL_F_STATIC_NODES */
	{ "relative", 1 << 14 },  /* MPOL_F_RELATIVE_NODES */
	{ "balancing", 1 << 13 }, /* MPOL_F_NUMA_BALANCING */
};

/* "1-3,5" into the mask; the end of the list in *end. */
static int parse_nodes(const char *p, const char **end, unsigned char *nodes)
{
	for (;;) {
		char *e;
		unsigned long from = strtoul(p, &e, 10), to = from;

		if (e == p)
			return -1;
		if (*e == '-') {
			p = e + 1;
			to = strtoul(p, &e, 10);
			if (e == p)
				return -1;
		}
		if (to < from || to >= MPOL_MAXNODE)
			return -1;
		for (; from <= to; from++)
			nodes[from / 8] |= 1 << (from % 8);
		if (*e != ',') {
			*end = e;
			return 0;
		}
		p = e + 1;
	}
}

/* A policy as numa_maps shows it ("interleave=static:0-1"): mode with flags, nodes. */
static int parse_policy(const char *p, int *mode, unsigned char *nodes)
{
	size_t k, n;

	memset(nodes, 0, MPOL_NODE_BYTES);
	for (k = 0; k < ARRAY_SIZE(mode_names); k++) {
		n = strlen(mode_names[k].name);
		if (!strncmp(p, mode_names[k].name, n) && strchr("=: \n", p[n] ? p[n] : '\n'))
			break;
	}
	if (k == ARRAY_SIZE(mode_names))
		return -1;
	*mode = mode_names[k].mode;
	p += n;
	if (*p == '=') {
		do {
			p++;
			for (k = 0; k < ARRAY_SIZE(flag_names); k++) {
				n = strlen(flag_names[k].name);
				if (!strncmp(p, flag_names[k].name, n))
					break;
			}
			if (k == ARRAY_SIZE(flag_names))
				return -1;
			*mode |= flag_names[k].flag;
			p += n;
		} while (*p == '|');
	}
	if (*p == ':' && parse_nodes(p + 1, &p, nodes))
		return -1;
	return *p == ' ' || *p == '\n' || !*p ? 0 : -1;
}

static void vma_policy_save(VmaEntry *e, int mode, const unsigned char *nodes)
{
	e->has_mempolicy_mode = true;
	e->mempolicy_mode = mode;
	e->has_mempolicy_nodes = true;
	e->mempolicy_nodes.len = MPOL_NODE_BYTES;
	e->mempolicy_nodes.data = xmalloc(MPOL_NODE_BYTES);
	memcpy(e->mempolicy_nodes.data, nodes, MPOL_NODE_BYTES);
}

/* The answers of ask_vma_policies, on the mappings that start where they were asked. */
static void vma_policies_take(const struct mempolicy_task *mt, MmEntry *mm)
{
	size_t i, j = 0;

	for (i = 0; i < mt->n; i++) {
		while (j < mm->n_vmas && mm->vmas[j]->start < mt->vmas[i].start)
			j++;
		if (j < mm->n_vmas && mm->vmas[j]->start == mt->vmas[i].start &&
		    mt->vmas[i].mode != MPOL_DEFAULT && mm->vmas[j]->kind != VMA_KIND__VMA_SPECIAL)
			vma_policy_save(mm->vmas[j], mt->vmas[i].mode, mt->vmas[i].nodes);
	}
}

int mempolicy_vmas_dump(struct dump_task *dt, MmEntry *mm)
{
	const struct mempolicy_task *mt = res_dump_task_state(dt, &mempolicy_res);
	const ThreadCore *leader = dt->th[0].core;
	pid_t pid = dt->pid;
	unsigned char task_nodes[MPOL_NODE_BYTES] = { 0 }, nodes[MPOL_NODE_BYTES];
	int task_mode = leader->has_mempolicy_mode ? (int)leader->mempolicy_mode : MPOL_DEFAULT;
	char *text = read_proc(pid, "numa_maps", NULL), *line, *next;
	size_t j = 0;
	int ret = 0;

	if (mt->asked) {
		free(text);
		vma_policies_take(mt, mm);
		return 0;
	}
	if (!text && errno == ENOENT)
		return 0; /* a kernel without NUMA */
	if (!text) {
		pr_perror("cannot read /proc/%d/numa_maps", pid);
		return -1;
	}
	if (leader->has_mempolicy_nodes && leader->mempolicy_nodes.len == MPOL_NODE_BYTES)
		memcpy(task_nodes, leader->mempolicy_nodes.data, MPOL_NODE_BYTES);
	for (line = text; *line && !ret; line = next) {
		unsigned long start = strtoul(line, &next, 16);
		VmaEntry *e;
		int mode = MPOL_DEFAULT;

		if (*next != ' ')
			break;
		if (parse_policy(next + 1, &mode, nodes)) {
			pr_err("pid %d mapping %lx: memory policy \"%.*s\" not understood\n", pid,
			       start, (int)strcspn(next + 1, " \n"), next + 1);
			ret = -1;
		}
		next += strcspn(next, "\n");
		next += *next == '\n';
		while (j < mm->n_vmas && mm->vmas[j]->start < start)
			j++;
		if (ret || j == mm->n_vmas || mm->vmas[j]->start != start)
			continue; /* [vsyscall], our scratch area */
		e = mm->vmas[j];
		if (e->kind == VMA_KIND__VMA_SPECIAL ||
		    (mode == task_mode && !memcmp(nodes, task_nodes, sizeof(nodes))))
			continue; /* none of its own, or one the same as the task's */
		if (mode == MPOL_DEFAULT) {
			pr_err("pid %d mapping %lx-%lx: the default memory policy under a task "
			       "policy of %#x; not supported\n",
			       pid, (unsigned long)e->start, (unsigned long)e->end, task_mode);
			ret = -1;
			break;
		}
		vma_policy_save(e, mode, nodes);
	}
	free(text);
	return ret;
}

int mempolicy_vma_restore(struct rst_ctx *c, const VmaEntry *e)
{
	unsigned long at;

	if (!e->has_mempolicy_mode)
		return 0;
	if (!e->has_mempolicy_nodes || e->mempolicy_nodes.len != MPOL_NODE_BYTES) {
		pr_err("mapping %lx-%lx: a memory policy without its node mask in the image\n",
		       (unsigned long)e->start, (unsigned long)e->end);
		return -1;
	}
	at = mm_rarg(c, e->mempolicy_nodes.data, MPOL_NODE_BYTES);
	return !at || mm_rcall(c, "restoring a mapping's memory policy (mbind)", __NR_mbind,
			       e->start, e->end - e->start, e->mempolicy_mode, at, MPOL_MAXNODE, 0,
			       NULL)
		   ? -1
		   : 0;
}

const struct res_ops mempolicy_res = {
	.name = "mempolicy",
	.dump_task_state_size = sizeof(struct mempolicy_task),
	.dump_task_fini = mempolicy_task_fini,
	.dump_threads = mempolicy_dump_threads,
	.thread = mempolicy_restore_thread,
};
