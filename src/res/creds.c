/*
 * Credentials, per thread as the kernel keeps them: real/effective/saved/
 * fs uids and gids, supplementary groups, the five capability sets,
 * securebits and no_new_privs.
 *
 * They go back last, remotely, from each thread itself: everything before
 * needs the restorer's privileges.  The order matters: bounding set drops
 * and securebits need CAP_SETPCAP, so they come while we still have it;
 * keep-caps carries the permitted set across the uid change; then capset
 * and ambient raises give the target its own sets.
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "ns.h"
#include "proc.h"
#include "res.h"
#include "util.h"

static void parse_ids(const char *v, uint32_t **out, size_t *n, size_t max)
{
	size_t cap = 0;
	char *end;

	*out = NULL;
	*n = 0;
	while (v && *n < max) {
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v < '0' || *v > '9')
			break;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		(*out)[(*n)++] = strtoul(v, &end, 10);
		v = end;
	}
}

static bool parse_hex(const char *status, const char *key, uint64_t *v)
{
	const char *s = status_field(status, key);

	if (!s)
		return false;
	*v = strtoull(s, NULL, 16);
	return true;
}

int creds_parse(pid_t tid, const char *status, CredsEntry *cr)
{
	const char *nnp;

	parse_ids(status_field(status, "Uid"), &cr->uids, &cr->n_uids, 4);
	parse_ids(status_field(status, "Gid"), &cr->gids, &cr->n_gids, 4);
	parse_ids(status_field(status, "Groups"), &cr->groups, &cr->n_groups, 65536);
	if (cr->n_uids != 4 || cr->n_gids != 4) {
		pr_err("pid %d: cannot parse credentials in its status\n", tid);
		return -1;
	}
	cr->has_cap_inh = parse_hex(status, "CapInh", &cr->cap_inh);
	cr->has_cap_prm = parse_hex(status, "CapPrm", &cr->cap_prm);
	cr->has_cap_eff = parse_hex(status, "CapEff", &cr->cap_eff);
	cr->has_cap_bnd = parse_hex(status, "CapBnd", &cr->cap_bnd);
	cr->has_cap_amb = parse_hex(status, "CapAmb", &cr->cap_amb);
	nnp = status_field(status, "NoNewPrivs");
	cr->has_no_new_privs = !!nnp;
	cr->no_new_privs = nnp && *nnp == '1';
	return 0;
}

static int creds_dump_thread(struct dump_ctx *ctx, struct dump_task *dt, struct dump_thread *th)
{
	const char *status = dump_thread_status(dt, th);
	CredsEntry *cr;

	if (!status)
		return -1;
	cr = th->core->creds; /* with its securebits (creds_dump_threads) */
	return creds_parse(th->tid, status, cr);
}

/* Every thread's securebits, which only the thread itself can read: all at once. */
static int creds_dump_threads(struct dump_ctx *ctx, struct dump_task *dt)
{
	long *rets = xmalloc(dt->nth * sizeof(*rets));
	size_t i;
	int ret = dump_threads_call(dt, __NR_prctl, (const unsigned long[3]){ PR_GET_SECUREBITS },
				    rets, NULL);

	for (i = 0; !ret && i < dt->nth; i++) {
		CredsEntry *cr;

		if (rets[i] < 0) {
			pr_err("tid %d: cannot read securebits\n", dt->th[i].tid);
			ret = -1;
			break;
		}
		cr = dt->th[i].core->creds = xmalloc(sizeof(*cr));
		creds_entry__init(cr);
		cr->has_securebits = true;
		cr->securebits = rets[i];
	}
	free(rets);
	return ret;
}

static uint64_t cap_full(void)
{
	char *s = read_file("/proc/sys/kernel/cap_last_cap", NULL);
	int last = s ? atoi(s) : 40;

	free(s);
	return last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1;
}

static CredsEntry *ours; /* our own credentials, read once */

/* Read our own credentials now, before several threads compare with them. */
static void creds_prepare(void)
{
	char *status;

	if (ours)
		return;
	status = read_proc(0, "status", NULL);
	ours = xmalloc(sizeof(*ours));
	creds_entry__init(ours);
	if (!status || creds_parse(0, status, ours)) {
		free(ours);
		ours = NULL;
	}
	free(status);
}

/*
 * Nothing to do if the thread has exactly our credentials (root, usually).
 * In the user namespace a normal user's restore makes (restore/root.c)
 * every task starts with all of that namespace's capabilities: never.
 */
static bool creds_trivial(const struct rst_ctx *c, const CredsEntry *cr)
{
	size_t k;

	creds_prepare();
	if (!ours || c->opts->own_userns)
		return false;
	for (k = 0; k < 4; k++)
		if (cr->uids[k] != ours->uids[k] || cr->gids[k] != ours->gids[k])
			return false;
	if (cr->cap_prm != ours->cap_prm || cr->cap_eff != ours->cap_eff ||
	    cr->cap_bnd != ours->cap_bnd || cr->cap_inh != ours->cap_inh ||
	    cr->cap_amb != ours->cap_amb || cr->securebits || cr->no_new_privs ||
	    cr->n_groups != ours->n_groups)
		return false;
	for (k = 0; k < cr->n_groups; k++)
		if (cr->groups[k] != ours->groups[k])
			return false;
	return true;
}

/*
 * The calls that set credentials run in the thread itself: remotely
 * through rt, or (rt NULL) here, in a zombie's restore child.
 */
static int cr_call(struct rtask *rt, long *ret, long nr, unsigned long a1, unsigned long a2,
		   unsigned long a3)
{
	if (rt)
		return remote_syscall(rt, ret, nr, a1, a2, a3, 0, 0, 0);
	*ret = syscall(nr, a1, a2, a3);
	if (*ret < 0)
		*ret = -errno;
	return 0;
}

/* Data a call reads: at off in rt's scratch, or where it is (0: it failed). */
static unsigned long cr_data(struct rtask *rt, size_t off, const void *p, size_t len)
{
	if (!rt)
		return (unsigned long)p;
	if (off + len > rt->scratch_len || remote_write(rt->pid, rt->scratch + off, p, len))
		return 0;
	return rt->scratch + off;
}

static pid_t cr_tid(struct rtask *rt)
{
	return rt ? rt->pid : getpid();
}

static int rprctl(struct rtask *rt, const char *what, unsigned long a1, unsigned long a2,
		  unsigned long a3)
{
	long ret;

	if (cr_call(rt, &ret, __NR_prctl, a1, a2, a3))
		return -1;
	if (ret < 0) {
		pr_err("tid %d: cannot restore %s: %s\n", cr_tid(rt), what, strerror(-ret));
		return -1;
	}
	return 0;
}

static int set_ids(struct rtask *rt, const CredsEntry *cr, bool set_groups)
{
	unsigned long groups = 0;
	long ret = 0;

	if (set_groups && cr->n_groups)
		groups = cr_data(rt, 0, cr->groups, cr->n_groups * sizeof(uint32_t));
	if (set_groups && cr->n_groups && !groups) {
		pr_err("tid %d: too many supplementary groups\n", cr_tid(rt));
		return -1;
	}
	if (set_groups && (cr_call(rt, &ret, __NR_setgroups, cr->n_groups, groups, 0) || ret))
		goto err;
	if (cr_call(rt, &ret, __NR_setresgid, cr->gids[0], cr->gids[1], cr->gids[2]) || ret ||
	    cr_call(rt, &ret, __NR_setfsgid, cr->gids[3], 0, 0))
		goto err;
	if (cr_call(rt, &ret, __NR_setresuid, cr->uids[0], cr->uids[1], cr->uids[2]) || ret ||
	    cr_call(rt, &ret, __NR_setfsuid, cr->uids[3], 0, 0))
		goto err;
	return 0;
err:
	pr_err("tid %d: cannot restore uids/gids%s%s\n", cr_tid(rt), ret ? ": " : "",
	       ret ? strerror(-ret) : "");
	return -1;
}

static int set_caps(struct rtask *rt, const CredsEntry *cr)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {
		{ (uint32_t)cr->cap_eff, (uint32_t)cr->cap_prm, (uint32_t)cr->cap_inh },
		{ (uint32_t)(cr->cap_eff >> 32), (uint32_t)(cr->cap_prm >> 32),
		  (uint32_t)(cr->cap_inh >> 32) },
	};
	unsigned long h = cr_data(rt, 0, &hdr, sizeof(hdr)),
		      d = cr_data(rt, sizeof(hdr), data, sizeof(data));
	long ret;

	if (!h || !d || cr_call(rt, &ret, __NR_capset, h, d, 0))
		return -1;
	if (ret) {
		pr_err("tid %d: cannot restore capabilities: %s\n", cr_tid(rt), strerror(-ret));
		return -1;
	}
	return 0;
}

/* Every set, in the order the kernel allows (see the top of the file). */
static int creds_apply(struct rtask *rt, const CredsEntry *cr, bool set_groups)
{
	uint64_t full = cap_full();
	int cap;

	for (cap = 0; cap < 64; cap++)
		if ((full >> cap & 1) && !(cr->cap_bnd >> cap & 1) &&
		    rprctl(rt, "the capability bounding set", PR_CAPBSET_DROP, cap, 0))
			return -1;
	if (cr->securebits && rprctl(rt, "securebits", PR_SET_SECUREBITS, cr->securebits, 0))
		return -1;
	if (!(cr->securebits & SECBIT_KEEP_CAPS_LOCKED) &&
	    rprctl(rt, "keep-caps", PR_SET_KEEPCAPS, 1, 0))
		return -1;
	if (set_ids(rt, cr, set_groups) || set_caps(rt, cr))
		return -1;
	for (cap = 0; cap < 64; cap++)
		if ((cr->cap_amb >> cap & 1) &&
		    rprctl(rt, "ambient capabilities", PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap))
			return -1;
	if (!(cr->securebits & SECBIT_KEEP_CAPS_LOCKED) &&
	    rprctl(rt, "keep-caps", PR_SET_KEEPCAPS, !!(cr->securebits & SECBIT_KEEP_CAPS), 0))
		return -1;
	if (cr->no_new_privs && rprctl(rt, "no_new_privs", PR_SET_NO_NEW_PRIVS, 1, 0))
		return -1;
	return 0;
}

/* ids as the task's user namespace numbers them; see creds_inside */
static int map_ids(struct rst_ctx *c, pid_t tid, bool gid, const uint32_t *host, uint32_t *out,
		   size_t n, const uint32_t *same)
{
	size_t k;

	for (k = 0; k < n; k++) {
		if (!userns_id_inside(c, gid, host[k], &out[k]))
			continue;
		if (same && host[k] == same[k]) {
			out[k] = (uint32_t)-1; /* the restore child has it: left as it is */
			continue;
		}
		pr_err("tid %d: %s %u is not mapped in its user namespace; cannot restore it\n",
		       tid, gid ? "gid" : "uid", host[k]);
		return -1;
	}
	return 0;
}

/*
 * A task in a user namespace of its own: the image holds its ids as the
 * dumper saw them, the calls take them as the namespace numbers them.  An
 * id the namespace does not map can only be the one the restore child
 * has already (ours), and is left as it is; supplementary groups that
 * are ours already are not set again (setgroups may be denied in there).
 * in points into buf, which the caller frees.
 */
static int creds_inside(struct rst_ctx *c, pid_t tid, const CredsEntry *cr, CredsEntry *in,
			uint32_t **buf, bool *set_groups)
{
	size_t k;

	*in = *cr;
	*buf = xzalloc((8 + cr->n_groups + 1) * sizeof(uint32_t));
	in->uids = *buf;
	in->gids = *buf + 4;
	in->groups = *buf + 8;
	*set_groups = !ours || cr->n_groups != ours->n_groups;
	for (k = 0; !*set_groups && k < cr->n_groups; k++)
		*set_groups = cr->groups[k] != ours->groups[k];
	return map_ids(c, tid, false, cr->uids, in->uids, 4, ours ? ours->uids : NULL) ||
		       map_ids(c, tid, true, cr->gids, in->gids, 4, ours ? ours->gids : NULL) ||
		       (*set_groups &&
			map_ids(c, tid, true, cr->groups, in->groups, cr->n_groups, NULL))
		   ? -1
		   : 0;
}

/* The ids of the image, or as the task's own user namespace numbers them. */
static int creds_apply_in(struct rst_ctx *c, struct rtask *rt, const CredsEntry *cr)
{
	CredsEntry in;
	uint32_t *buf;
	bool groups;
	int ret;

	/* setgroups is denied in our own user namespace: the groups are ours (checked) */
	if (!ns_of(c, NS_K_USER))
		return creds_apply(rt, cr, !c->opts->own_userns);
	ret = creds_inside(c, cr_tid(rt), cr, &in, &buf, &groups) || creds_apply(rt, &in, groups)
		  ? -1
		  : 0;
	free(buf);
	return ret;
}

/* Remote, from the thread itself: the last state it gets. */
static int creds_restore_remote(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	TaskEntry *te = c->t->te;
	const CredsEntry *cr = core->creds ? core->creds : te->creds;
	bool trivial = creds_trivial(c, cr);

	if (!trivial && creds_apply_in(c, rt, cr))
		return -1;
	/* the leader carries our SIGKILL pdeath signal; new threads start with none */
	if ((rt == &c->rt || te->pdeath_sig) &&
	    rprctl(rt, "the parent-death signal", PR_SET_PDEATHSIG, te->pdeath_sig, 0))
		return -1;
	/* dumpable belongs to the mm: once, from the leader, if not the default */
	if (rt == &c->rt && te->has_dumpable && (te->dumpable != 1 || !trivial) &&
	    te->dumpable <= 1 && rprctl(rt, "the dumpable flag", PR_SET_DUMPABLE, te->dumpable, 0))
		return -1;
	return 0;
}

/* A zombie's credentials, as its status shows them (no securebits there). */
static int creds_dump_zombie(struct dump_ctx *ctx, struct dump_task *dt)
{
	char *status = read_proc(dt->pid, "status", NULL);
	int ret;

	if (!status) {
		pr_perror("pid %d: cannot read the zombie's status", dt->pid);
		return -1;
	}
	ret = creds_parse(dt->pid, status, dt->te->creds);
	free(status);
	return ret;
}

/* In a zombie's restore child, last before it dies: here, not remotely. */
static int creds_restore_zombie(struct rst_ctx *c)
{
	const CredsEntry *cr = c->t->te->creds;

	if (cr->n_uids != 4 || cr->n_gids != 4 || creds_trivial(c, cr))
		return 0; /* an image of before zombies had credentials: ours */
	return creds_apply_in(c, NULL, cr);
}

static bool has_cap(const CredsEntry *cr, int cap)
{
	return cr->cap_eff >> cap & 1;
}

static bool id_ours(uint32_t id, const uint32_t *ids, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++)
		if (ids[k] == id)
			return true;
	return false;
}

static bool groups_ours(const CredsEntry *cr)
{
	size_t k;

	if (cr->n_groups != ours->n_groups)
		return false;
	for (k = 0; k < cr->n_groups; k++)
		if (cr->groups[k] != ours->groups[k])
			return false;
	return true;
}

/*
 * What the image asks of one thread is within what we may give: ids we do
 * not have need CAP_SETUID/CAP_SETGID, and no capability can be added to
 * the permitted set.  (The kernel would refuse too, but late, in the
 * middle of the restore.)
 */
static int creds_within_ours(const struct image *img, pid_t pid, const CredsEntry *cr, bool userns,
			     bool own_userns)
{
	uint64_t caps = cr->cap_prm | cr->cap_eff | cr->cap_inh | cr->cap_amb;
	size_t k;

	if (cr->n_uids != 4 || cr->n_gids != 4)
		return 0; /* checked by the loader; zombies of older images have none */
	/* no setgroups without CAP_SETGID, nor in a user namespace of our own */
	if (!userns && (own_userns || !has_cap(ours, CAP_SETGID)) && !groups_ours(cr)) {
		pr_err("image %s: pid %d has other supplementary groups than this restorer, "
		       "which it cannot set without CAP_SETGID\n",
		       img->r.path, pid);
		return -1;
	}
	for (k = 0; k < 4 && !has_cap(ours, CAP_SETUID); k++)
		if (!id_ours(cr->uids[k], ours->uids, 3)) {
			pr_err("image %s: pid %d has uid %u, which this restorer (uid %u, without "
			       "CAP_SETUID) cannot give\n",
			       img->r.path, pid, cr->uids[k], ours->uids[1]);
			return -1;
		}
	for (k = 0; k < 4 && !has_cap(ours, CAP_SETGID); k++)
		if (!id_ours(cr->gids[k], ours->gids, 3)) {
			pr_err("image %s: pid %d has gid %u, which this restorer (without "
			       "CAP_SETGID) cannot give\n",
			       img->r.path, pid, cr->gids[k]);
			return -1;
		}
	/* in a user namespace of its own they are the new namespace's, all ours to give */
	if (caps & ~ours->cap_prm && !userns) {
		pr_err("image %s: pid %d has capabilities %#llx that this restorer does not have "
		       "(its permitted set is %#llx)\n",
		       img->r.path, pid, (unsigned long long)caps,
		       (unsigned long long)ours->cap_prm);
		return -1;
	}
	return 0;
}

/*
 * Before anything is forked: our own credentials, read once for every
 * thread, and no thread of the image may get more than we have.
 */
static int creds_restore_check(struct image *img, const struct restore_opts *o)
{
	size_t i, j;

	creds_prepare();
	if (!ours) {
		pr_err("cannot read the restorer's own credentials\n");
		return -1;
	}
	for (i = 0; i < img->ntasks; i++) {
		const struct rst_task *t = &img->tasks[i];
		bool userns = ns_task_in(t->te, NS_K_USER);

		if (creds_within_ours(img, t->te->pid, t->te->creds, userns, o->own_userns))
			return -1;
		for (j = 0; j < t->ncores; j++)
			if (t->cores[j]->creds &&
			    creds_within_ours(img, t->te->pid, t->cores[j]->creds, userns,
					      o->own_userns))
				return -1;
	}
	return 0;
}

const struct res_ops creds_res = {
	.name = "creds",
	.dump_threads = creds_dump_threads,
	.dump_thread = creds_dump_thread,
	.restore_check = creds_restore_check,
	.thread_last = creds_restore_remote,
	.dump_zombie = creds_dump_zombie,
	.child_zombie = creds_restore_zombie,
};
