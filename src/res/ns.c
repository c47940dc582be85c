/*
 * Namespaces: what every kind shares.  Each task and thread of the tree is
 * in some namespace of every kind; the ones it does not share with stasis
 * are saved as IMG_NS records, and task_entry names them by id (the
 * namespace's inode number).  What a kind saves of its namespace and how
 * it is rebuilt is that kind's own (struct ns_kind, src/include/ns.h: UTS
 * in ns_uts.c, time in ns_time.c, cgroup in ns_cgroup.c, IPC in ns_ipc.c,
 * user in ns_user.c, network in ns_net.c, mount in ns_mnt.c); ns_kinds[]
 * below lists them.  Every saved namespace must be owned by its task's
 * user namespace, where its creator rebuilds it.
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
 * own).  The creator builds a new namespace in its restore child before
 * it forks its children, who then inherit it as they did; a kind made
 * "at fork" (a user namespace) is made by the clone of the root instead,
 * and set up from the controller before the root runs.  A namespace
 * entered by two tasks that did not inherit it from each other (setns
 * from a sibling) has two creators and is refused, as is a task that went
 * back into the dumper's own namespace, and a thread in other namespaces
 * than its process.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "res.h"
#include "ns.h"
#include "util.h"
#include "ns.pb-c.h"

#define PID_MAX_LIMIT (4 * 1024 * 1024) /* the kernel's bound on pid_max */

/* The kinds saved, one per slot (enum ns_slot), in the order creators build them. */
static const struct ns_kind *const ns_kinds[NS_K_NR] = {
	[NS_K_USER] = &user_ns_kind,	 [NS_K_UTS] = &uts_ns_kind,
	[NS_K_TIME] = &time_ns_kind,	 [NS_K_TIME_KIDS] = &time_kids_ns_kind,
	[NS_K_CGROUP] = &cgroup_ns_kind, [NS_K_IPC] = &ipc_ns_kind,
	[NS_K_NET] = &net_ns_kind,	 [NS_K_MNT] = &mnt_ns_kind,
};

#define for_each_ns_kind(k) for ((k) = 0; (k) < NS_K_NR; (k)++)

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

/* A task's slot of kind k in its task_entry (0: the restorer's own). */
static uint64_t te_ns(const TaskEntry *te, const struct ns_kind *k)
{
	return *(const protobuf_c_boolean *)((const char *)te + k->te_has)
		   ? *(const uint64_t *)((const char *)te + k->te_id)
		   : 0;
}

static void te_set_ns(TaskEntry *te, const struct ns_kind *k, uint64_t id)
{
	*(protobuf_c_boolean *)((char *)te + k->te_has) = id != 0;
	*(uint64_t *)((char *)te + k->te_id) = id;
}

static NsEntry *ns_find(NsEntry **ents, size_t n, NsKind kind, uint64_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ents[i]->kind == kind && ents[i]->id == id)
			return ents[i];
	return NULL;
}

/* The tree as the creator rule sees it: ids per task, parent index or -1. */
struct ns_tree {
	size_t n;
	const pid_t *pid;
	const long *parent;
	uint64_t (*ids)[NS_K_NR];
};

/* The namespace of slot k task i is born in: its parent's, or its own other slot. */
static uint64_t inherited(const struct ns_tree *t, size_t i, size_t k)
{
	const struct ns_kind *kind = ns_kinds[k];

	if (kind->from_self)
		return t->ids[i][kind->inherits];
	return t->parent[i] >= 0 ? t->ids[t->parent[i]][kind->inherits] : 0;
}

struct creator {
	NsKind kind; /* each kind has its own id space */
	uint64_t id;
	pid_t pid;
};

static int add_creator(struct creator *cr, size_t *ncr, const struct ns_kind *k, uint64_t id,
		       pid_t pid)
{
	size_t i;

	if (!id) {
		pr_err("pid %d: went back into stasis's own %s namespace, which cannot be "
		       "rebuilt below its parent's\n",
		       pid, k->label);
		return -1;
	}
	for (i = 0; i < *ncr; i++)
		if (cr[i].kind == k->kind && cr[i].id == id) {
			pr_err("pid %d and pid %d: both entered %s namespace %" PRIu64
			       " without inheriting it from each other (setns); not supported\n",
			       cr[i].pid, pid, k->label, id);
			return -1;
		}
	cr[(*ncr)++] = (struct creator){ k->kind, id, pid };
	return 0;
}

/* Every saved namespace has exactly one creator (see the top of the file). */
static int check_creators(const struct ns_tree *t)
{
	struct creator *cr = xzalloc((NS_K_NR * t->n + 1) * sizeof(*cr));
	size_t i, k, ncr = 0;
	int ret = 0;

	for (i = 0; i < t->n && !ret; i++)
		for_each_ns_kind(k)
		{
			uint64_t id = t->ids[i][k];

			if (ns_kinds[k]->one_per_tree && id != t->ids[0][k]) {
				/* its objects are made in one place */
				pr_err("pid %d and pid %d: in different %s namespaces; a tree must "
				       "be in one\n",
				       t->pid[0], t->pid[i], ns_kinds[k]->label);
				ret = -1;
			}
			if (!ret && id != inherited(t, i, k))
				ret = add_creator(cr, &ncr, ns_kinds[k], id, t->pid[i]);
			if (ret)
				break;
		}
	free(cr);
	return ret;
}

/* ------------------------------------------------------------------ dump */

/*
 * The inode of namespace link path (relative to dir), from the link's
 * text, "net:[4026531840]": half the cost of a stat, which finds or makes
 * the namespace's dentry.  -errno if it cannot be read.
 */
static int ns_link_ino(int dir, const char *path, uint64_t *ino)
{
	char link[64], *open_at;
	ssize_t n = readlinkat(dir, path, link, sizeof(link) - 1);

	if (n < 0)
		return -errno;
	link[n] = '\0';
	open_at = strchr(link, '[');
	if (!open_at)
		return -EINVAL;
	*ino = strtoull(open_at + 1, NULL, 10);
	return 0;
}

static int ns_ino(pid_t pid, pid_t tid, const char *name, uint64_t *ino)
{
	char path[96];
	int err;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/ns/%s", pid, tid, name);
	else
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	err = ns_link_ino(AT_FDCWD, path, ino);
	if (err == -ENOENT && !tid && pid == getpid())
		return 1; /* this kernel has no such namespace */
	if (err) {
		pr_err("pid %d: cannot read %s: %s\n", pid, path, strerror(-err));
		return -1;
	}
	return 0;
}

/*
 * A thread's namespaces, looked up relative to its ns directory: one walk
 * of /proc/PID/task/TID instead of one per kind.
 */
static int thread_ns_dir(pid_t pid, pid_t tid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/ns", pid, tid);
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("pid %d: cannot open %s", pid, path);
	return fd;
}

static int ns_ino_at(int dir, pid_t pid, pid_t tid, const char *name, uint64_t *ino)
{
	int err = ns_link_ino(dir, name, ino);

	if (err)
		pr_err("pid %d: cannot read /proc/%d/task/%d/ns/%s: %s\n", pid, pid, tid, name,
		       strerror(-err));
	return err ? -1 : 0;
}

/* The user namespace that owns pid's namespace of kind k. */
static int ns_owner(pid_t pid, const struct ns_kind *k, uint64_t *ino)
{
	char path[96];
	struct stat st;
	int fd, owner;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, k->name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	owner = fd < 0 ? -1 : ioctl(fd, NS_GET_USERNS);
	if (fd >= 0)
		close(fd);
	if (owner < 0 || fstat(owner, &st)) {
		pr_perror("pid %d: cannot find the owner of its %s namespace", pid, k->label);
		if (owner >= 0)
			close(owner);
		return -1;
	}
	close(owner);
	*ino = st.st_ino;
	return 0;
}

/*
 * Every saved namespace of a task is owned by the task's user namespace:
 * its creator rebuilds it from there.  (One made before the task entered
 * a user namespace of its own, or entered from outside, would come back
 * owned by another.)
 */
static int check_owners(struct dump_task *dt, const uint64_t *self, const uint64_t *ids)
{
	uint64_t user = ids[NS_K_USER] ? ids[NS_K_USER] : self[NS_K_USER], owner;
	size_t k;

	for_each_ns_kind(k)
	{
		if (k == NS_K_USER || !ids[k])
			continue;
		if (ns_owner(dt->pid, ns_kinds[k], &owner))
			return -1;
		if (owner != user) {
			pr_err("pid %d: its %s namespace (%s:[%" PRIu64
			       "]) is owned by another user "
			       "namespace (user:[%" PRIu64 "]) than the task's (user:[%" PRIu64
			       "]); not supported\n",
			       dt->pid, ns_kinds[k]->label, ns_kinds[k]->name, ids[k], owner, user);
			return -1;
		}
	}
	return 0;
}

/* The ids of the saved kinds of one task, 0 where it shares ours. */
static int read_ids(struct dump_task *dt, const uint64_t *self, uint64_t *ids)
{
	uint64_t ino;
	size_t k, j;

	for_each_ns_kind(k)
	{
		if (!self[k])
			continue; /* no such namespace on this kernel */
		if (ns_ino(dt->pid, 0, ns_kinds[k]->name, &ino))
			return -1;
		ids[k] = ino == self[k] ? 0 : ino;
	}
	/* a thread may unshare on its own: the restore would not */
	for (j = 1; j < dt->nth; j++) {
		int dir = thread_ns_dir(dt->pid, dt->th[j].tid);

		if (dir < 0)
			return -1;
		for_each_ns_kind(k)
		{
			if (!self[k] || ns_kinds[k]->same_in_threads)
				continue;
			if (ns_ino_at(dir, dt->pid, dt->th[j].tid, ns_kinds[k]->name, &ino)) {
				close(dir);
				return -1;
			}
			if ((ino == self[k] ? 0 : ino) != ids[k]) {
				pr_err("pid %d: thread %d is in another %s namespace than its "
				       "process; not supported\n",
				       dt->pid, dt->th[j].tid, ns_kinds[k]->label);
				close(dir);
				return -1;
			}
		}
		close(dir);
	}
	return self[NS_K_USER] ? check_owners(dt, self, ids) : 0;
}

int ns_look_inside(pid_t pid, const struct ns_kind *k, NsEntry *e, int (*look)(pid_t, NsEntry *))
{
	char path[96];
	int ours, theirs, ret = -1;

	snprintf(path, sizeof(path), "/proc/thread-self/ns/%s", k->name);
	ours = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, k->name);
	theirs = open(path, O_RDONLY | O_CLOEXEC);
	if (ours < 0 || theirs < 0) {
		pr_perror("pid %d: cannot open its %s namespace", pid, k->label);
		goto out;
	}
	if (setns(theirs, k->nstype)) {
		pr_perror("pid %d: cannot enter its %s namespace", pid, k->label);
		goto out;
	}
	ret = look(pid, e);
	if (setns(ours, k->nstype)) {
		/* this thread would see the wrong names from now on: stop */
		pr_perror("cannot go back to our own %s namespace", k->label);
		abort();
	}
out:
	if (ours >= 0)
		close(ours);
	if (theirs >= 0)
		close(theirs);
	return ret;
}

size_t ns_view_ntasks(const struct ns_view *v)
{
	return v->ctx->ntasks;
}

pid_t ns_view_pid(const struct ns_view *v, size_t task)
{
	return v->ctx->tasks[task].zombie ? -1 : v->ctx->tasks[task].pid;
}

NsEntry *ns_dump_find(const struct ns_view *v, NsKind kind, uint64_t id)
{
	return ns_find(v->nd->ents, v->nd->n, kind, id);
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

/* Each namespace of the tree described once, by its kind, from a task in it. */
static int describe_all(struct dump_ctx *ctx, struct ns_dump *nd)
{
	struct ns_view v = { .ctx = ctx, .ids = (const uint64_t(*)[NS_K_NR])nd->ids, .nd = nd };
	size_t i, k;

	for (i = 0; i < ctx->ntasks; i++) {
		if (ctx->tasks[i].zombie)
			continue;
		for_each_ns_kind(k)
		{
			const struct ns_kind *kind = ns_kinds[k];
			uint64_t id = nd->ids[i][k];

			if (!id || ns_find(nd->ents, nd->n, kind->kind, id))
				continue;
			if (kind->describe(&v, i, ns_new(nd, kind->kind, id)))
				return -1;
		}
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
	for_each_ns_kind(k) if (ns_ino(getpid(), 0, ns_kinds[k]->name, &self[k]) < 0) goto out;
	/* dumping a user's copy from inside its namespaces (dump/wrapped.c) */
	if (dump_self_mnt_ino)
		self[NS_K_MNT] = dump_self_mnt_ino;
	for (i = 0; i < ctx->ntasks; i++) {
		struct dump_task *dt = &ctx->tasks[i];
		struct proc_stat st;

		pids[i] = dt->pid;
		parent[i] = -1;
		if (proc_parse_stat(dt->pid, &st) == 0)
			parent[i] = task_index(ctx, st.ppid);
		if (dt->zombie)
			continue;
		if (read_ids(dt, self, nd->ids[i]))
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

/* Before the first task's own records: the tree's task entries name these. */
static int ns_dump_local(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct ns_dump *nd = res_dump_state(ctx, &ns_res);
	size_t i, k;

	for_each_ns_kind(k) te_set_ns(dt->te, ns_kinds[k], nd->ids[dt - ctx->tasks][k]);
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

/* The kind of a record (its first slot), or NULL. */
static const struct ns_kind *record_kind(NsKind kind)
{
	size_t k;

	for_each_ns_kind(k) if (ns_kinds[k]->kind == kind) return ns_kinds[k];
	return NULL;
}

int ns_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct ns_image *ni = res_image_state(img, &ns_res);
	const struct ns_kind *k;
	NsEntry *e = msg;

	k = record_kind(e->kind);
	if (!k || !k->valid(e) || !e->id || ns_find(ni->ents, ni->n, e->kind, e->id)) {
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
	size_t k;

	for_each_ns_kind(k) ids[k] = te_ns(te, ns_kinds[k]);
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

/*
 * A tree in a user namespace of its own has a PID namespace of its own
 * too (its tasks cannot choose PIDs in ours from inside it), and its
 * tasks below the root are given their numbers in there only.
 */
static int check_image_at_fork(struct image *img, const struct ns_tree *t)
{
	const struct rst_task *rt = image_task(img, img->hdr->root_pid);
	size_t i, k;

	if (!rt)
		return 0; /* tree_build says so */

	for (i = 0; i < t->n; i++)
		for_each_ns_kind(k)
		{
			if (!ns_kinds[k]->at_fork || !t->ids[i][k])
				continue;
			if (!rt->te->has_ns_pid) {
				pr_err(
				    "image %s is corrupt: its tree is in a %s namespace of its own "
				    "but not in a PID namespace of its own\n",
				    img->r.path, ns_kinds[k]->label);
				return -1;
			}
			img->inner_pids = true;
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
		for_each_ns_kind(k) if (t.ids[i][k] &&
					!ns_find(ni->ents, ni->n, ns_kinds[k]->kind, t.ids[i][k]))
		{
			pr_err("image %s is corrupt: pid %d names %s namespace %" PRIu64
			       " that it does not hold\n",
			       img->r.path, te->pid, ns_kinds[k]->name, t.ids[i][k]);
			goto out;
		}
	}
	t.pid = pids;
	t.parent = parent;
	ret = check_image_pids(img) || check_creators(&t) || check_image_at_fork(img, &t) ? -1 : 0;
out:
	free(t.ids);
	free(pids);
	free(parent);
	return ret;
}

const NsEntry *ns_image_find(struct image *img, NsKind kind, uint64_t id)
{
	struct ns_image *ni = res_image_state(img, &ns_res);

	return ns_find(ni->ents, ni->n, kind, id);
}

size_t ns_image_all(struct image *img, NsEntry *const **ents)
{
	struct ns_image *ni = res_image_state(img, &ns_res);

	*ents = ni->ents;
	return ni->n;
}

/* Slot k of c's task if the task is its creator, else NULL. */
const NsEntry *ns_created_by(struct rst_ctx *c, enum ns_slot k)
{
	struct ns_image *ni = res_image_state(c->img, &ns_res);
	const struct ns_kind *kind = ns_kinds[k];
	uint64_t me = te_ns(c->t->te, kind), in;

	if (kind->from_self)
		in = te_ns(c->t->te, ns_kinds[kind->inherits]);
	else
		in = c->t->parent ? te_ns(c->t->parent->te, ns_kinds[kind->inherits]) : 0;
	if (me == in)
		return NULL;
	return ns_find(ni->ents, ni->n, kind->kind, me);
}

bool ns_task_in(const TaskEntry *te, enum ns_slot k)
{
	return te_ns(te, ns_kinds[k]) != 0;
}

const NsEntry *ns_of(struct rst_ctx *c, enum ns_slot k)
{
	struct ns_image *ni = res_image_state(c->img, &ns_res);
	uint64_t id = te_ns(c->t->te, ns_kinds[k]);

	return id ? ns_find(ni->ents, ni->n, ns_kinds[k]->kind, id) : NULL;
}

/* Is kind k made by the clone of c (the root), not from inside by its child? */
static bool made_at_fork(struct rst_ctx *c, size_t k)
{
	return ns_kinds[k]->at_fork ||
	       (ns_kinds[k]->at_fork_with_user && !c->t->parent && ns_created_by(c, NS_K_USER));
}

/* The kinds made by the root's own clone: only the root can create them. */
static int ns_restore_prepare(struct rst_ctx *c)
{
	size_t k;

	for_each_ns_kind(k)
	{
		if (!made_at_fork(c, k) || !ns_created_by(c, k))
			continue;
		if (c->t->parent) {
			pr_err("image %s: pid %u creates a %s namespace below the tree's root; not "
			       "supported\n",
			       c->img->r.path, c->t->te->pid, ns_kinds[k]->label);
			return -1;
		}
		c->clone_flags |= ns_kinds[k]->nstype;
	}
	return 0;
}

/* Controller: the root is forked into the at_fork kinds, not yet run. */
static int ns_root_forked(struct rst_ctx *c, pid_t pid)
{
	const NsEntry *e;
	size_t k;

	for_each_ns_kind(k) if (made_at_fork(c, k) && (e = ns_created_by(c, k)) &&
				ns_kinds[k]->set_up(c, e, pid)) return -1;
	return 0;
}

/* In the restore child, before it forks: build what it is the creator of. */
static int ns_child_early(struct rst_ctx *c)
{
	const NsEntry *e;
	size_t k;

	for_each_ns_kind(k) if (ns_kinds[k]->create && !made_at_fork(c, k) &&
				(e = ns_created_by(c, k)) && ns_kinds[k]->create(c, e)) return -1;
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
	.restore_prepare = ns_restore_prepare,
	.root_forked = ns_root_forked,
	.child_early = ns_child_early,
};
