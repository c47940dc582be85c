/*
 * Namespaces.  UTS namespaces (hostname and domain name), time namespaces
 * (the monotonic and boottime offsets) and cgroup namespaces (their root
 * cgroup in every hierarchy) of the tree are saved as IMG_NS records and
 * rebuilt at restore (a cgroup namespace by res/cgroup.c, which moves the
 * task there first); every other kind of namespace the tree does not share
 * with stasis (ipc, net, mnt, user) is still refused before anything is
 * written, naming the task.
 *
 * A PID namespace is saved when the tree's root is its PID 1 (a
 * container's init) and every task lives in it: each task and thread
 * keeps its number inside next to the dumper's (task_entry ns_*), and at
 * restore the root is forked with CLONE_NEWPID and every task and thread
 * with both numbers (clone3 set_tid).  Nested PID namespaces, a subtree of
 * a namespace whose init is not dumped, and a group or session led from
 * outside the namespace are refused.
 *
 * A saved namespace is rebuilt by the one task that enters it first going
 * down the tree, its "creator": the task whose namespace differs from the
 * one its parent gives it at fork (the root's parent gives the restorer's
 * own).  The creator unshares a new namespace in its restore child before
 * it forks its children, who then inherit it as they did.  A namespace
 * entered by two tasks that did not inherit it from each other (setns
 * from a sibling) has two creators and is refused, as is a task that went
 * back into the dumper's own namespace.  For time namespaces a task has
 * two: the one it lives in ("time") and the one its children are born in
 * ("time_for_children"); its creator writes the offsets before any task
 * is in it, as the kernel requires.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"
#include "ns.pb-c.h"

#define PID_MAX_LIMIT (4 * 1024 * 1024) /* the kernel's bound on pid_max */

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Namespaces stasis does not save: a tree in any other than ours is refused. */
static const char *const refused_names[] = {
	"net",
	"mnt",
	"user",
};

/* The saved ones, per task. */
enum { NS_K_UTS, NS_K_TIME, NS_K_TIME_KIDS, NS_K_CGROUP, NS_K_IPC, NS_K_NR };
static const char *const saved_names[NS_K_NR] = { "uts", "time", "time_for_children", "cgroup",
						  "ipc" };
/* the record kind of each: time and time_for_children are one id space */
static const NsKind saved_kinds[NS_K_NR] = { NS_KIND__NS_UTS, NS_KIND__NS_TIME, NS_KIND__NS_TIME,
					     NS_KIND__NS_CGROUP, NS_KIND__NS_IPC };
static const char *const kind_names[] = {
	[NS_KIND__NS_UTS] = "UTS",
	[NS_KIND__NS_TIME] = "time",
	[NS_KIND__NS_CGROUP] = "cgroup",
	[NS_KIND__NS_IPC] = "IPC",
};

/* The IPC limits an IPC namespace has of its own (kernel/ and fs/mqueue/). */
static const char *const ipc_sysctls[] = {
	"kernel/shmmax",
	"kernel/shmall",
	"kernel/shmmni",
	"kernel/shm_rmid_forced",
	"kernel/msgmax",
	"kernel/msgmnb",
	"kernel/msgmni",
	"kernel/sem",
	"fs/mqueue/queues_max",
	"fs/mqueue/msg_max",
	"fs/mqueue/msgsize_max",
	"fs/mqueue/msg_default",
	"fs/mqueue/msgsize_default",
};

/* A task's numbers in the tree's own PID namespace. */
struct ns_pids {
	uint32_t pid, pgid, sid;
};

struct ns_dump {
	uint64_t (*ids)[NS_K_NR]; /* per task of ctx->tasks: 0 = ours */
	NsEntry **ents;
	size_t n;
	bool written;
	bool own_pidns;	      /* the root is PID 1 of a PID namespace of its own */
	struct ns_pids *pids; /* per task, with own_pidns */
};

struct ns_image {
	NsEntry **ents;
	size_t n;
};

/* ------------------------------------------------------------ both sides */

/* The tree as the creator rule sees it: ids per task, parent index or -1. */
struct ns_tree {
	size_t n;
	const pid_t *pid;
	const long *parent;
	uint64_t (*ids)[NS_K_NR];
};

struct creator {
	NsKind kind; /* each kind has its own id space */
	uint64_t id;
	pid_t pid;
};

static int add_creator(struct creator *cr, size_t *ncr, NsKind kind, uint64_t id, pid_t pid)
{
	size_t i;

	if (!id) {
		pr_err("pid %d: went back into stasis's own %s namespace, which cannot be "
		       "rebuilt below its parent's\n",
		       pid, kind_names[kind]);
		return -1;
	}
	for (i = 0; i < *ncr; i++)
		if (cr[i].kind == kind && cr[i].id == id) {
			pr_err("pid %d and pid %d: both entered %s namespace %" PRIu64
			       " without inheriting it from each other (setns); not supported\n",
			       cr[i].pid, pid, kind_names[kind], id);
			return -1;
		}
	cr[(*ncr)++] = (struct creator){ kind, id, pid };
	return 0;
}

/* Every saved namespace has exactly one creator (see the top of the file). */
static int check_creators(const struct ns_tree *t)
{
	struct creator *cr = xzalloc((NS_K_NR * t->n + 1) * sizeof(*cr));
	size_t i, ncr = 0;
	int ret = 0;

	for (i = 0; i < t->n && !ret; i++) {
		const uint64_t *me = t->ids[i];
		uint64_t uts_in = 0, time_in = 0, cg_in = 0, ipc_in = 0;

		if (t->parent[i] >= 0) {
			uts_in = t->ids[t->parent[i]][NS_K_UTS];
			time_in = t->ids[t->parent[i]][NS_K_TIME_KIDS];
			cg_in = t->ids[t->parent[i]][NS_K_CGROUP];
			ipc_in = t->ids[t->parent[i]][NS_K_IPC];
		}
		if (me[NS_K_UTS] != uts_in)
			ret = add_creator(cr, &ncr, NS_KIND__NS_UTS, me[NS_K_UTS], t->pid[i]);
		if (!ret && me[NS_K_TIME] != time_in)
			ret = add_creator(cr, &ncr, NS_KIND__NS_TIME, me[NS_K_TIME], t->pid[i]);
		if (!ret && me[NS_K_TIME_KIDS] != me[NS_K_TIME])
			ret =
			    add_creator(cr, &ncr, NS_KIND__NS_TIME, me[NS_K_TIME_KIDS], t->pid[i]);
		if (!ret && me[NS_K_CGROUP] != cg_in)
			ret = add_creator(cr, &ncr, NS_KIND__NS_CGROUP, me[NS_K_CGROUP], t->pid[i]);
		/* SysV objects are made in one place: the tree's namespace or ours */
		if (!ret && me[NS_K_IPC] != t->ids[0][NS_K_IPC]) {
			pr_err("pid %d and pid %d: in different IPC namespaces; a tree must be in "
			       "one\n",
			       t->pid[0], t->pid[i]);
			ret = -1;
		}
		if (!ret && me[NS_K_IPC] != ipc_in)
			ret = add_creator(cr, &ncr, NS_KIND__NS_IPC, me[NS_K_IPC], t->pid[i]);
	}
	free(cr);
	return ret;
}

/* ------------------------------------------------------------------ dump */

static int ns_ino(pid_t pid, pid_t tid, const char *name, uint64_t *ino)
{
	char path[96];
	struct stat st;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/ns/%s", pid, tid, name);
	else
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	if (stat(path, &st)) {
		if (errno == ENOENT && !tid && pid == getpid())
			return 1; /* this kernel has no such namespace */
		pr_perror("pid %d: cannot read %s", pid, path);
		return -1;
	}
	*ino = st.st_ino;
	return 0;
}

static int check_refused(pid_t pid)
{
	uint64_t self, ino;
	size_t k;
	int r;

	for (k = 0; k < ARRAY_SIZE(refused_names); k++) {
		const char *name = refused_names[k];

		r = ns_ino(getpid(), 0, name, &self);
		if (r > 0)
			continue;
		if (r < 0 || ns_ino(pid, 0, name, &ino))
			return -1;
		if (ino == self)
			continue;
		if (strstr(name, "_for_children"))
			pr_err("pid %d: forks its children into another %.*s namespace (inode "
			       "%" PRIu64 "); %.*s namespaces are not saved yet\n",
			       pid, 3, name, ino, 3, name);
		else
			pr_err("pid %d: lives in another %s namespace (%s:[%" PRIu64 "]); %s "
			       "namespaces are not saved yet\n",
			       pid, name, name, ino, name);
		return -1;
	}
	return 0;
}

/* The ids of the saved kinds of one task, 0 where it shares ours. */
static int read_ids(struct dump_task *dt, const uint64_t *self, uint64_t *ids)
{
	size_t k, j;
	uint64_t ino;

	for (k = 0; k < NS_K_NR; k++) {
		if (!self[k])
			continue; /* no such namespace on this kernel */
		if (ns_ino(dt->pid, 0, saved_names[k], &ino))
			return -1;
		ids[k] = ino == self[k] ? 0 : ino;
	}
	/* a thread may have its own UTS namespace (unshare in a thread) */
	for (j = 1; j < dt->nth && self[NS_K_UTS]; j++) {
		if (ns_ino(dt->pid, dt->th[j].tid, "uts", &ino))
			return -1;
		if ((ino == self[NS_K_UTS] ? 0 : ino) != ids[NS_K_UTS]) {
			pr_err("pid %d: thread %d is in another UTS namespace than its process; "
			       "not supported\n",
			       dt->pid, dt->th[j].tid);
			return -1;
		}
	}
	return 0;
}

static NsEntry *ns_find(NsEntry **ents, size_t n, NsKind kind, uint64_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ents[i]->kind == kind && ents[i]->id == id)
			return ents[i];
	return NULL;
}

static NsEntry *ns_new(struct ns_dump *nd, NsKind kind, uint64_t id)
{
	NsEntry *e = xzalloc(sizeof(*e));

	ns_entry__init(e);
	e->kind = kind;
	e->id = id;
	nd->ents = xrealloc(nd->ents, (nd->n + 1) * sizeof(*nd->ents));
	nd->ents[nd->n++] = e;
	return e;
}

/*
 * Run look(pid, e) with this thread inside pid's namespace 'name' (of type
 * 'nstype'), then come back: a UTS or cgroup namespace changes what a
 * thread reads, not the thread.
 */
static int look_inside(pid_t pid, const char *name, int nstype, NsEntry *e,
		       int (*look)(pid_t, NsEntry *))
{
	char path[64];
	int ours, theirs, ret = -1;

	snprintf(path, sizeof(path), "/proc/thread-self/ns/%s", name);
	ours = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	theirs = open(path, O_RDONLY | O_CLOEXEC);
	if (ours < 0 || theirs < 0) {
		pr_perror("pid %d: cannot open its %s namespace", pid, name);
		goto out;
	}
	if (setns(theirs, nstype)) {
		pr_perror("pid %d: cannot enter its %s namespace", pid, name);
		goto out;
	}
	ret = look(pid, e);
	if (setns(ours, nstype)) {
		/* this thread would see the wrong names from now on: stop */
		pr_perror("cannot go back to our own %s namespace", name);
		abort();
	}
out:
	if (ours >= 0)
		close(ours);
	if (theirs >= 0)
		close(theirs);
	return ret;
}

/* Hostname and domain name, seen from inside. */
static int look_uts(pid_t pid, NsEntry *e)
{
	struct utsname u;

	if (uname(&u)) {
		pr_perror("pid %d: uname", pid);
		return -1;
	}
	e->hostname = xstrdup(u.nodename);
	e->domainname = xstrdup(u.domainname);
	return 0;
}

/* The IPC limits, seen from inside (a sysctl missing here is left out). */
static int look_ipc(pid_t pid, NsEntry *e)
{
	char path[128], *v;
	size_t i, n;

	e->sysctls = xzalloc(ARRAY_SIZE(ipc_sysctls) * sizeof(*e->sysctls));
	for (i = 0; i < ARRAY_SIZE(ipc_sysctls); i++) {
		snprintf(path, sizeof(path), "/proc/sys/%s", ipc_sysctls[i]);
		v = read_file(path, NULL);
		if (!v)
			continue;
		n = strcspn(v, "\n");
		v[n] = '\0';
		e->sysctls[e->n_sysctls] = xzalloc(sizeof(NsSysctl));
		ns_sysctl__init(e->sysctls[e->n_sysctls]);
		e->sysctls[e->n_sysctls]->name = xstrdup(ipc_sysctls[i]);
		e->sysctls[e->n_sysctls++]->value = v;
	}
	return 0;
}

static int read_uts(pid_t pid, NsEntry *e)
{
	return look_inside(pid, "uts", CLONE_NEWUTS, e, look_uts);
}

/* pid's cgroups seen from inside its cgroup namespace: paths from its root. */
static int look_cgroup(pid_t pid, NsEntry *e)
{
	char *text = read_proc(pid, "cgroup", NULL);

	if (!text) {
		pr_perror("pid %d: cannot read its cgroups", pid);
		return -1;
	}
	e->cgroup_roots = (char **)text; /* for read_cgroup_roots, which splits it */
	return 0;
}

/* One hierarchy: the root is the full path without the inside one. */
static int cgroup_root(pid_t pid, const char *full, const char *inside, char **root)
{
	const char *fp = strrchr(full, ':'), *ip = strrchr(inside, ':');
	size_t fl, il;

	if (!fp || !ip || (size_t)(fp - full) != (size_t)(ip - inside) ||
	    strncmp(full, inside, fp - full))
		goto bad;
	fp++, ip++;
	fl = strlen(fp), il = strlen(ip);
	if (!strncmp(ip, "/..", 3)) {
		pr_err("pid %d: is in cgroup %s, outside the root of its cgroup namespace; not "
		       "supported\n",
		       pid, full);
		return -1;
	}
	if (!strcmp(ip, "/"))
		il = 0;
	if (il > fl || strcmp(fp + fl - il, ip + (il ? 0 : 1)))
		goto bad;
	*root = xzalloc((fp - full) + (fl - il) + 2);
	memcpy(*root, full, fp - full + fl - il);
	if (fl == il)
		strcat(*root, "/");
	return 0;
bad:
	pr_err("pid %d: its cgroups inside its cgroup namespace (%s) do not match ours (%s)\n", pid,
	       inside, full);
	return -1;
}

/* The namespace's root in every hierarchy, as "ID:CONTROLLERS:PATH". */
static int read_cgroup_roots(pid_t pid, NsEntry *e)
{
	char *full = read_proc(pid, "cgroup", NULL), *inside, *fs = NULL, *is = NULL, *f, *i;
	int ret = -1;

	if (!full || look_inside(pid, "cgroup", CLONE_NEWCGROUP, e, look_cgroup)) {
		if (!full)
			pr_perror("pid %d: cannot read its cgroups", pid);
		free(full);
		return -1;
	}
	inside = (char *)e->cgroup_roots;
	e->cgroup_roots = NULL;
	for (f = strtok_r(full, "\n", &fs), i = strtok_r(inside, "\n", &is); f && i;
	     f = strtok_r(NULL, "\n", &fs), i = strtok_r(NULL, "\n", &is)) {
		e->cgroup_roots =
		    xrealloc(e->cgroup_roots, (e->n_cgroup_roots + 1) * sizeof(*e->cgroup_roots));
		if (cgroup_root(pid, f, i, &e->cgroup_roots[e->n_cgroup_roots]))
			goto out;
		e->n_cgroup_roots++;
	}
	ret = f || i ? -1 : 0;
	if (ret)
		pr_err("pid %d: its cgroup lines differ inside its cgroup namespace\n", pid);
out:
	free(full);
	free(inside);
	return ret;
}

/* /proc/PID/timens_offsets shows the offsets of PID's children's namespace. */
static int read_offsets(pid_t pid, NsEntry *e)
{
	char path[64], *text, *line, *save = NULL;
	long long sec;
	unsigned int nsec;
	char clk[32];
	int got = 0;

	snprintf(path, sizeof(path), "/proc/%d/timens_offsets", pid);
	text = read_file(path, NULL);
	if (!text) {
		pr_perror("pid %d: cannot read %s", pid, path);
		return -1;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%31s %lld %u", clk, &sec, &nsec) != 3)
			continue;
		if (!strcmp(clk, "monotonic")) {
			e->has_monotonic_sec = e->has_monotonic_nsec = true;
			e->monotonic_sec = sec;
			e->monotonic_nsec = nsec;
			got |= 1;
		} else if (!strcmp(clk, "boottime")) {
			e->has_boottime_sec = e->has_boottime_nsec = true;
			e->boottime_sec = sec;
			e->boottime_nsec = nsec;
			got |= 2;
		}
	}
	free(text);
	if (got != 3) {
		pr_err("pid %d: %s does not hold both offsets\n", pid, path);
		return -1;
	}
	return 0;
}

/* A time namespace's offsets, from a task of the tree whose children it holds. */
static int describe_time(struct dump_ctx *ctx, struct ns_dump *nd, uint64_t id, pid_t who)
{
	size_t i;

	if (ns_find(nd->ents, nd->n, NS_KIND__NS_TIME, id))
		return 0;
	for (i = 0; i < ctx->ntasks; i++)
		if (!ctx->tasks[i].zombie && nd->ids[i][NS_K_TIME_KIDS] == id)
			return read_offsets(ctx->tasks[i].pid, ns_new(nd, NS_KIND__NS_TIME, id));
	pr_err("pid %d: no task of the tree forks into its time namespace %" PRIu64
	       ", so its offsets cannot be read\n",
	       who, id);
	return -1;
}

static int describe_all(struct dump_ctx *ctx, struct ns_dump *nd)
{
	size_t i, k;

	for (i = 0; i < ctx->ntasks; i++) {
		const uint64_t *ids = nd->ids[i];
		pid_t pid = ctx->tasks[i].pid;

		if (ctx->tasks[i].zombie)
			continue;
		if (ids[NS_K_UTS] && !ns_find(nd->ents, nd->n, NS_KIND__NS_UTS, ids[NS_K_UTS]) &&
		    read_uts(pid, ns_new(nd, NS_KIND__NS_UTS, ids[NS_K_UTS])))
			return -1;
		for (k = NS_K_TIME; k <= NS_K_TIME_KIDS; k++)
			if (ids[k] && describe_time(ctx, nd, ids[k], pid))
				return -1;
		if (ids[NS_K_IPC] && !ns_find(nd->ents, nd->n, NS_KIND__NS_IPC, ids[NS_K_IPC]) &&
		    look_inside(pid, "ipc", CLONE_NEWIPC,
				ns_new(nd, NS_KIND__NS_IPC, ids[NS_K_IPC]), look_ipc))
			return -1;
		if (ids[NS_K_CGROUP] &&
		    !ns_find(nd->ents, nd->n, NS_KIND__NS_CGROUP, ids[NS_K_CGROUP]) &&
		    read_cgroup_roots(pid, ns_new(nd, NS_KIND__NS_CGROUP, ids[NS_K_CGROUP])))
			return -1;
	}
	return 0;
}

static long task_index(struct dump_ctx *ctx, pid_t pid)
{
	size_t i;

	for (i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].pid == pid)
			return i;
	return -1;
}

/* The numbers of an NS* status line ("NSpid:\t412\t7"): how many, and the last. */
static int ns_numbers(const char *status, const char *key, uint32_t *last)
{
	const char *p = status ? status_field(status, key) : NULL;
	int n = 0;
	char *end;

	while (p && *p >= '0' && *p <= '9') {
		*last = strtoul(p, &end, 10);
		n++;
		p = end;
		while (*p == '\t' || *p == ' ')
			p++;
	}
	return n;
}

/* Every task in the root's PID namespace, the root its PID 1, one level. */
static int check_pidns(struct dump_ctx *ctx, struct ns_dump *nd)
{
	uint64_t self, root_ns, ino;
	size_t i;
	char *status;

	if (ns_ino(getpid(), 0, "pid", &self) || ns_ino(ctx->opts->pid, 0, "pid", &root_ns))
		return -1;
	nd->own_pidns = root_ns != self;
	nd->pids = xzalloc(ctx->ntasks * sizeof(*nd->pids));
	for (i = 0; i < ctx->ntasks; i++) {
		struct dump_task *dt = &ctx->tasks[i];
		struct ns_pids *np = &nd->pids[i];
		int levels, ok = 1;

		if (!dt->zombie &&
		    (ns_ino(dt->pid, 0, "pid", &ino) || ino != root_ns ||
		     ns_ino(dt->pid, 0, "pid_for_children", &ino) || ino != root_ns)) {
			pr_err("pid %d: lives in or forks into another PID namespace than the "
			       "tree's root (pid:[%" PRIu64 "]); nested PID namespaces are not "
			       "saved\n",
			       dt->pid, ino);
			return -1;
		}
		if (!nd->own_pidns)
			continue;
		status = read_proc(dt->pid, "status", NULL);
		levels = ns_numbers(status, "NSpid", &np->pid);
		if (levels != 2 || ns_numbers(status, "NSpgid", &np->pgid) != 2 ||
		    ns_numbers(status, "NSsid", &np->sid) != 2)
			ok = 0;
		free(status);
		if (dt->pid == ctx->opts->pid && ok && np->pid != 1) {
			pr_err("pid %d: is pid %u of its PID namespace, whose init is not in the "
			       "tree; dump the namespace from its pid 1\n",
			       dt->pid, np->pid);
			return -1;
		}
		if (!ok) {
			pr_err("pid %d: its PID namespace is nested %d deep; only one level is "
			       "saved\n",
			       dt->pid, levels - 1);
			return -1;
		}
		if (!np->pgid || !np->sid) {
			pr_err("pid %d: its process %s is led from outside its PID namespace; not "
			       "supported\n",
			       dt->pid, np->sid ? "group" : "session");
			return -1;
		}
	}
	return 0;
}

static void set_pids(struct dump_task *dt, const struct ns_pids *np)
{
	TaskEntry *te = dt->te;
	size_t j;

	te->has_ns_pid = te->has_ns_pgid = te->has_ns_sid = true;
	te->ns_pid = np->pid;
	te->ns_pgid = np->pgid;
	te->ns_sid = np->sid;
	if (dt->zombie)
		return;
	te->n_ns_threads = dt->nth;
	te->ns_threads = xzalloc(dt->nth * sizeof(*te->ns_threads));
	for (j = 0; j < dt->nth; j++)
		if (ns_numbers(dump_thread_status(dt, &dt->th[j]), "NSpid", &te->ns_threads[j]) !=
		    2)
			te->ns_threads[j] = 0;
}

static int ns_dump_check(struct dump_ctx *ctx)
{
	struct ns_dump *nd = res_dump_state(ctx, &ns_res);
	uint64_t self[NS_K_NR] = { 0 };
	struct ns_tree t = { .n = ctx->ntasks };
	pid_t *pids = xzalloc(ctx->ntasks * sizeof(*pids));
	long *parent = xzalloc(ctx->ntasks * sizeof(*parent));
	size_t i, k;
	int ret = -1;

	nd->ids = xzalloc(ctx->ntasks * sizeof(*nd->ids));
	for (k = 0; k < NS_K_NR; k++)
		if (ns_ino(getpid(), 0, saved_names[k], &self[k]) < 0)
			goto out;
	for (i = 0; i < ctx->ntasks; i++) {
		struct dump_task *dt = &ctx->tasks[i];
		struct proc_stat st;

		pids[i] = dt->pid;
		parent[i] = -1;
		if (proc_parse_stat(dt->pid, &st) == 0)
			parent[i] = task_index(ctx, st.ppid);
		if (dt->zombie)
			continue;
		if (check_refused(dt->pid) || read_ids(dt, self, nd->ids[i]))
			goto out;
	}
	/* a zombie has no namespaces left: it is rebuilt in its parent's */
	for (i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].zombie && parent[i] >= 0)
			memcpy(nd->ids[i], nd->ids[parent[i]], sizeof(nd->ids[i]));
	t.pid = pids;
	t.parent = parent;
	t.ids = nd->ids;
	ret = check_pidns(ctx, nd) || check_creators(&t) || describe_all(ctx, nd) ? -1 : 0;
out:
	free(pids);
	free(parent);
	return ret;
}

static void set_ids(TaskEntry *te, const uint64_t *ids)
{
	te->has_uts_ns = ids[NS_K_UTS] != 0;
	te->uts_ns = ids[NS_K_UTS];
	te->has_time_ns = ids[NS_K_TIME] != 0;
	te->time_ns = ids[NS_K_TIME];
	te->has_time_ns_children = ids[NS_K_TIME_KIDS] != 0;
	te->time_ns_children = ids[NS_K_TIME_KIDS];
	te->has_cgroup_ns = ids[NS_K_CGROUP] != 0;
	te->cgroup_ns = ids[NS_K_CGROUP];
	te->has_ipc_ns = ids[NS_K_IPC] != 0;
	te->ipc_ns = ids[NS_K_IPC];
}

/* Before the first task's own records: the tree's task entries name these. */
static int ns_dump_local(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct ns_dump *nd = res_dump_state(ctx, &ns_res);
	size_t i;

	set_ids(dt->te, nd->ids[dt - ctx->tasks]);
	if (nd->own_pidns)
		set_pids(dt, &nd->pids[dt - ctx->tasks]);
	if (nd->written)
		return 0;
	nd->written = true;
	for (i = 0; i < nd->n; i++)
		if (img_write_msg(&ctx->w, IMG_NS, &nd->ents[i]->base))
			return -1;
	return 0;
}

static int ns_dump_zombie(struct dump_ctx *ctx, struct dump_task *dt)
{
	return ns_dump_local(ctx, dt);
}

static void ns_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct ns_dump *nd = state;
	size_t i;

	for (i = 0; i < nd->n; i++)
		ns_entry__free_unpacked(nd->ents[i], NULL);
	free(nd->ents);
	free(nd->ids);
	free(nd->pids);
}

/* --------------------------------------------------------------- restore */

/* "ID:CONTROLLERS:/PATH" lines, the path absolute without "." or "..". */
static bool cgroup_roots_ok(const NsEntry *e)
{
	size_t i;

	if (!e->n_cgroup_roots)
		return false;
	for (i = 0; i < e->n_cgroup_roots; i++) {
		const char *l = e->cgroup_roots[i], *a = strchr(l, ':'),
			   *b = a ? strchr(a + 1, ':') : NULL;

		if (!b || b[1] != '/' || strstr(b, "/./") || strstr(b, "/../") ||
		    (strlen(b) >= 3 &&
		     (!strcmp(b + strlen(b) - 2, "/.") || !strcmp(b + strlen(b) - 3, "/.."))))
			return false;
	}
	return true;
}

/* Only names of our own list, values on one line. */
static bool ipc_sysctls_ok(const NsEntry *e)
{
	size_t i, k;

	for (i = 0; i < e->n_sysctls; i++) {
		for (k = 0; k < ARRAY_SIZE(ipc_sysctls); k++)
			if (!strcmp(e->sysctls[i]->name, ipc_sysctls[k]))
				break;
		if (k == ARRAY_SIZE(ipc_sysctls) || strchr(e->sysctls[i]->value, '\n') ||
		    strlen(e->sysctls[i]->value) > 64)
			return false;
	}
	return true;
}

int ns_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct ns_image *ni = res_image_state(img, &ns_res);
	NsEntry *e = msg;

	if ((e->kind == NS_KIND__NS_UTS &&
	     (!e->hostname || !e->domainname || strlen(e->hostname) >= HOST_NAME_MAX + 1 ||
	      strlen(e->domainname) >= HOST_NAME_MAX + 1)) ||
	    (e->kind == NS_KIND__NS_TIME &&
	     (!e->has_monotonic_sec || !e->has_boottime_sec || e->monotonic_nsec >= 1000000000 ||
	      e->boottime_nsec >= 1000000000)) ||
	    (e->kind == NS_KIND__NS_CGROUP && !cgroup_roots_ok(e)) ||
	    (e->kind == NS_KIND__NS_IPC && !ipc_sysctls_ok(e)) || !e->id ||
	    ns_find(ni->ents, ni->n, e->kind, e->id)) {
		pr_err("image %s is corrupt: namespace record %" PRIu64
		       " is malformed or repeated\n",
		       img->r.path, e->id);
		ns_entry__free_unpacked(e, NULL);
		return -1;
	}
	ni->ents = xrealloc(ni->ents, (ni->n + 1) * sizeof(*ni->ents));
	ni->ents[ni->n++] = e;
	return 0;
}

static void ns_image_fini(struct image *img, void *state)
{
	struct ns_image *ni = state;
	size_t i;

	for (i = 0; i < ni->n; i++)
		ns_entry__free_unpacked(ni->ents[i], NULL);
	free(ni->ents);
}

static void get_ids(const TaskEntry *te, uint64_t *ids)
{
	ids[NS_K_UTS] = te->has_uts_ns ? te->uts_ns : 0;
	ids[NS_K_TIME] = te->has_time_ns ? te->time_ns : 0;
	ids[NS_K_TIME_KIDS] = te->has_time_ns_children ? te->time_ns_children : 0;
	ids[NS_K_CGROUP] = te->has_cgroup_ns ? te->cgroup_ns : 0;
	ids[NS_K_IPC] = te->has_ipc_ns ? te->ipc_ns : 0;
}

/* The numbers inside a saved PID namespace: all tasks or none, the root 1. */
static int check_image_pids(struct image *img)
{
	size_t i, j, with = 0;

	for (i = 0; i < img->ntasks; i++) {
		const TaskEntry *te = img->tasks[i].te;
		bool bad = false;

		if (!te->has_ns_pid)
			continue;
		with++;
		bad = !te->ns_pid || !te->ns_pgid || !te->ns_sid || te->ns_pid > PID_MAX_LIMIT ||
		      (te->pid == img->hdr->root_pid) != (te->ns_pid == 1) ||
		      (!te->zombie && te->n_ns_threads != te->n_threads);
		for (j = 0; !bad && j < te->n_ns_threads; j++)
			bad = !te->ns_threads[j] || te->ns_threads[j] > PID_MAX_LIMIT ||
			      (j == 0 && te->ns_threads[0] != te->ns_pid);
		if (bad) {
			pr_err("image %s is corrupt: pid %u has bad numbers in its PID namespace\n",
			       img->r.path, te->pid);
			return -1;
		}
	}
	if (with && with != img->ntasks) {
		pr_err("image %s is corrupt: only some tasks have numbers in the tree's PID "
		       "namespace\n",
		       img->r.path);
		return -1;
	}
	return 0;
}

/* Every id a task names has its record, and every namespace one creator. */
static int ns_image_loaded(struct image *img)
{
	struct ns_image *ni = res_image_state(img, &ns_res);
	struct ns_tree t = { .n = img->ntasks };
	pid_t *pids = xzalloc((img->ntasks + 1) * sizeof(*pids));
	long *parent = xzalloc((img->ntasks + 1) * sizeof(*parent));
	size_t i, k;
	int ret = -1;

	t.ids = xzalloc((img->ntasks + 1) * sizeof(*t.ids));
	for (i = 0; i < img->ntasks; i++) {
		const TaskEntry *te = img->tasks[i].te;
		struct rst_task *p = image_task(img, te->ppid);

		pids[i] = te->pid;
		parent[i] = p && p != &img->tasks[i] ? p - img->tasks : -1;
		get_ids(te, t.ids[i]);
		for (k = 0; k < NS_K_NR; k++)
			if (t.ids[i][k] && !ns_find(ni->ents, ni->n, saved_kinds[k], t.ids[i][k])) {
				pr_err("image %s is corrupt: pid %d names %s namespace %" PRIu64
				       " that it does not hold\n",
				       img->r.path, te->pid, saved_names[k], t.ids[i][k]);
				goto out;
			}
	}
	t.pid = pids;
	t.parent = parent;
	ret = check_image_pids(img) || check_creators(&t) ? -1 : 0;
out:
	free(t.ids);
	free(pids);
	free(parent);
	return ret;
}

static int new_uts(const NsEntry *e)
{
	if (unshare(CLONE_NEWUTS)) {
		pr_perror("cannot create a UTS namespace");
		return -1;
	}
	if (sethostname(e->hostname, strlen(e->hostname)) ||
	    setdomainname(e->domainname, strlen(e->domainname))) {
		pr_perror("cannot set the hostname '%s'", e->hostname);
		return -1;
	}
	return 0;
}

/* A new time namespace for our children, with its offsets; enter it too? */
static int new_time(const NsEntry *e, bool enter)
{
	char buf[128];
	int fd, len;

	if (unshare(CLONE_NEWTIME)) {
		pr_perror("cannot create a time namespace");
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "monotonic %lld %u\nboottime %lld %u\n",
		       (long long)e->monotonic_sec, e->monotonic_nsec, (long long)e->boottime_sec,
		       e->boottime_nsec);
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != len) {
		pr_perror("cannot set the offsets of a time namespace");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (!enter)
		return 0;
	fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWTIME)) {
		pr_perror("cannot enter the new time namespace");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * The cgroup namespace c's task creates, or NULL: res/cgroup.c moves the
 * task into its root cgroups, unshares, and only then into its own.
 */
const NsEntry *ns_cgroup_created_by(struct rst_ctx *c)
{
	struct ns_image *ni = res_image_state(c->img, &ns_res);
	uint64_t me[NS_K_NR], up[NS_K_NR] = { 0 };

	get_ids(c->t->te, me);
	if (c->t->parent)
		get_ids(c->t->parent->te, up);
	if (me[NS_K_CGROUP] == up[NS_K_CGROUP])
		return NULL;
	return ns_find(ni->ents, ni->n, NS_KIND__NS_CGROUP, me[NS_K_CGROUP]);
}

/* A new IPC namespace with the limits it had (res/sysvipc.c fills it). */
static int new_ipc(const NsEntry *e)
{
	char path[128];
	size_t i;
	int fd;

	if (unshare(CLONE_NEWIPC)) {
		pr_perror("cannot create an IPC namespace");
		return -1;
	}
	for (i = 0; i < e->n_sysctls; i++) {
		const char *v = e->sysctls[i]->value;

		snprintf(path, sizeof(path), "/proc/sys/%s", e->sysctls[i]->name);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, v, strlen(v)) != (ssize_t)strlen(v)) {
			pr_perror("cannot set %s to %s in the new IPC namespace", path, v);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* In the restore child, before it forks: create what it is the creator of. */
static int ns_child_early(struct rst_ctx *c)
{
	struct ns_image *ni = res_image_state(c->img, &ns_res);
	uint64_t me[NS_K_NR], up[NS_K_NR] = { 0 };

	get_ids(c->t->te, me);
	if (c->t->parent)
		get_ids(c->t->parent->te, up);
	if (me[NS_K_UTS] != up[NS_K_UTS] &&
	    new_uts(ns_find(ni->ents, ni->n, NS_KIND__NS_UTS, me[NS_K_UTS])))
		return -1;
	if (me[NS_K_TIME] != up[NS_K_TIME_KIDS] &&
	    new_time(ns_find(ni->ents, ni->n, NS_KIND__NS_TIME, me[NS_K_TIME]), true))
		return -1;
	if (me[NS_K_TIME_KIDS] != me[NS_K_TIME] &&
	    new_time(ns_find(ni->ents, ni->n, NS_KIND__NS_TIME, me[NS_K_TIME_KIDS]), false))
		return -1;
	if (me[NS_K_IPC] != up[NS_K_IPC] &&
	    new_ipc(ns_find(ni->ents, ni->n, NS_KIND__NS_IPC, me[NS_K_IPC])))
		return -1;
	return 0;
}

const struct res_ops ns_res = {
	.name = "ns",
	.dump_state_size = sizeof(struct ns_dump),
	.image_state_size = sizeof(struct ns_image),
	.dump_check = ns_dump_check,
	.dump_zombie = ns_dump_zombie,
	.dump_local = ns_dump_local,
	.dump_fini = ns_dump_fini,
	.image_loaded = ns_image_loaded,
	.image_fini = ns_image_fini,
	.child_early = ns_child_early,
};
