/*
 * Control groups: membership, settings and the freezer.
 *
 * Membership.  At dump, each process's /proc/PID/cgroup lines
 * ("ID:CONTROLLERS:PATH", one per hierarchy; v1 and v2 alike) are saved; a
 * thread in another cgroup than its process is refused.  At restore, each
 * restore child, before it forks its children (they inherit its cgroups),
 * moves itself into the saved path of every hierarchy where it is not
 * there yet, creating the cgroup if it is missing.  Hierarchies are
 * matched by their controllers, not by their ids, which differ between
 * hosts.  `restore --cgroup-root [CTRL:]PATH` moves the root task's cgroup
 * to PATH and the tree's other cgroups with it.
 *
 * Settings (`dump --manage-cgroups`).  The limits that shape the tree
 * (memory, cpu, cpuset, pids; the table below, for cgroup v2 and v1) of
 * every cgroup a process of the tree is in are saved as one IMG_CGROUP
 * record per cgroup.  Restore writes them into the cgroups it creates
 * (`--manage-cgroups=full`: into existing ones too), enabling a v2
 * controller in the ancestors' cgroup.subtree_control where needed.  Only
 * the files of the table are ever written, below the hierarchy's mount.
 *
 * Freezer (`dump --freeze-cgroup PATH`).  Before the tree is seized, the
 * cgroup is frozen (v2 cgroup.freeze, or the v1 freezer's freezer.state),
 * so that no task can fork while the tree is walked; frozen tasks still
 * enter the ptrace stop that seizing asks for, and the cgroup is thawed as
 * soon as every task is seized, with the tree held by ptrace from then on.
 * A failed dump, and stasis dying of a catchable signal, thaw it too.
 *
 * A task that creates a cgroup namespace at restore (res/ns.c saves its
 * root cgroup in every hierarchy) is moved into those roots first, then
 * unshares, then goes on into its own cgroups like any task.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.pb-c.h"
#include "ns.h"
#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

/*
 * The settings saved, per hierarchy kind, in the order they are written
 * (a v1 cpu period before its quota, a v1 cpuset's cpus and mems before a
 * task can join it).  A file belongs to the controller its name starts with.
 */
static const char *const v2_props[] = {
	"cpuset.cpus",	    "cpuset.mems",
	"cpu.weight",	    "cpu.max",
	"cpu.idle",	    "memory.min",
	"memory.low",	    "memory.high",
	"memory.max",	    "memory.swap.max",
	"memory.oom.group", "pids.max",
	"cgroup.max.depth", "cgroup.max.descendants",
};

static const char *const v1_props[] = {
	"cpuset.cpus",
	"cpuset.mems",
	"cpu.shares",
	"cpu.cfs_period_us",
	"cpu.cfs_quota_us",
	"memory.limit_in_bytes",
	"memory.memsw.limit_in_bytes",
	"memory.soft_limit_in_bytes",
	"memory.swappiness",
	"pids.max",
};

struct cg_dump {
	int freeze_fd;	/* the freezer's control file, while frozen */
	bool freeze_v2; /* cgroup.freeze (else freezer.state) */
	char **saved;	/* "CONTROLLERS:PATH" of the IMG_CGROUP records written */
	size_t nsaved;
};

struct cg_image {
	CgroupEntry **v;
	size_t n;
};

/* The lines of a cgroup file, each "ID:CONTROLLERS:PATH". */
static size_t split_lines(char *text, char ***lines)
{
	size_t n = 0;
	char *p, *save = NULL;

	*lines = NULL;
	for (p = strtok_r(text, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
		*lines = xrealloc(*lines, (n + 1) * sizeof(**lines));
		(*lines)[n++] = xstrdup(p);
	}
	return n;
}

/* "ID:CONTROLLERS:PATH": the controllers part and the path, or false. */
static bool parse_line(const char *line, char *ctrl, size_t size, const char **path)
{
	const char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;

	if (!b || (size_t)(b - a - 1) >= size)
		return false;
	memcpy(ctrl, a + 1, b - a - 1);
	ctrl[b - a - 1] = '\0';
	*path = b + 1;
	return true;
}

static int cgroup_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	char *text = read_proc(dt->pid, "cgroup", NULL), *other;
	char name[64];
	size_t i;

	if (!text) {
		pr_perror("pid %d: cannot read its cgroups", dt->pid);
		return -1;
	}
	for (i = 1; i < dt->nth; i++) {
		snprintf(name, sizeof(name), "task/%d/cgroup", dt->th[i].tid);
		other = read_proc(dt->pid, name, NULL);
		if (other && strcmp(other, text)) {
			pr_err("pid %d tid %d: in another cgroup than its process; per-thread "
			       "cgroups are not supported\n",
			       dt->pid, dt->th[i].tid);
			free(other);
			free(text);
			return -1;
		}
		free(other);
	}
	dt->te->n_cgroups = split_lines(text, &dt->te->cgroups);
	free(text);
	return 0;
}

static bool has_word(const char *list, const char *word, size_t len)
{
	const char *p = list;

	while (p && *p) {
		size_t n = strcspn(p, ", "); /* v1 lists commas, v2 spaces */

		if (n == len && !strncmp(p, word, len))
			return true;
		p = p[n] ? p + n + 1 : NULL;
	}
	return false;
}

/* Every controller of "a,b" is among the comma-separated options. */
static bool opts_have_all(const char *opts, const char *ctrl)
{
	const char *p = ctrl;

	while (*p) {
		size_t n = strcspn(p, ",");

		if (!has_word(opts, p, n))
			return false;
		p += n + (p[n] == ',');
	}
	return true;
}

/*
 * Is a mount's root the root of its hierarchy: "/", or seen from inside a
 * cgroup namespace (a restore child that made one) "/.." once per level
 * the namespace's root is below it.
 */
static bool hierarchy_root(const char *root)
{
	if (!strcmp(root, "/"))
		return true;
	while (!strncmp(root, "/..", 3))
		root += 3;
	return !*root || !strcmp(root, "/");
}

/* The mount point of the hierarchy with these controllers ("" for cgroup2). */
static int hierarchy_mount(const char *ctrl, char *buf, size_t size)
{
	char *info = read_file("/proc/self/mountinfo", NULL), *line, *save = NULL;
	int ret = -1;

	for (line = info ? strtok_r(info, "\n", &save) : NULL; line && ret;
	     line = strtok_r(NULL, "\n", &save)) {
		char root[PATH_MAX], mnt[PATH_MAX], type[32], opts[512];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
		    sscanf(sep, " - %31s %*s %511s", type, opts) != 2 || !hierarchy_root(root))
			continue;
		if (*ctrl ? !strcmp(type, "cgroup") && opts_have_all(opts, ctrl)
			  : !strcmp(type, "cgroup2")) {
			snprintf(buf, size, "%s", mnt);
			ret = 0;
		}
	}
	free(info);
	return ret;
}

/* ------------------------------------------------------------ settings */

static bool is_v2(const char *ctrl)
{
	return !*ctrl;
}

/* Does the hierarchy of ctrl hold the controller prop belongs to? */
static bool prop_applies(const char *ctrl, const char *prop)
{
	size_t n = strcspn(prop, ".");

	if (is_v2(ctrl))
		return true; /* only enabled controllers have their files */
	return has_word(ctrl, prop, n);
}

static void prop_table(const char *ctrl, const char *const **tab, size_t *n)
{
	*tab = is_v2(ctrl) ? v2_props : v1_props;
	*n = is_v2(ctrl) ? ARRAY_SIZE(v2_props) : ARRAY_SIZE(v1_props);
}

static bool prop_known(const char *ctrl, const char *name)
{
	const char *const *tab;
	size_t n, i;

	prop_table(ctrl, &tab, &n);
	for (i = 0; i < n; i++)
		if (!strcmp(tab[i], name))
			return prop_applies(ctrl, name);
	return false;
}

/* A file of a cgroup directory, its trailing newline dropped; NULL if absent. */
static char *read_prop(const char *dir, const char *name)
{
	char path[PATH_MAX + 64], *v;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	v = read_file(path, &len);
	if (v && len && v[len - 1] == '\n')
		v[len - 1] = '\0';
	return v;
}

static int write_prop(const char *dir, const char *name, const char *value)
{
	char path[PATH_MAX + 64];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		ret = -1;
	if (fd >= 0)
		close(fd);
	return ret;
}

static bool seen(struct cg_dump *cd, const char *key)
{
	size_t i;

	for (i = 0; i < cd->nsaved; i++)
		if (!strcmp(cd->saved[i], key))
			return true;
	cd->saved = xrealloc(cd->saved, (cd->nsaved + 1) * sizeof(*cd->saved));
	cd->saved[cd->nsaved++] = xstrdup(key);
	return false;
}

static int save_settings(struct dump_ctx *ctx, pid_t pid, const char *line)
{
	CgroupEntry ce = CGROUP_ENTRY__INIT;
	char ctrl[256], mnt[PATH_MAX], dir[2 * PATH_MAX], key[PATH_MAX + 300];
	CgroupProp *props = NULL, **pp = NULL;
	const char *const *tab;
	const char *path;
	size_t n, i;
	int ret = 0;

	if (!parse_line(line, ctrl, sizeof(ctrl), &path) || !strcmp(path, "/") ||
	    (!is_v2(ctrl) && !strncmp(ctrl, "name=", 5)))
		return 0; /* the root's settings are the host's; named v1 hierarchies have none */
	snprintf(key, sizeof(key), "%s:%s", ctrl, path);
	if (seen(res_dump_state(ctx, &cgroup_res), key))
		return 0;
	if (hierarchy_mount(ctrl, mnt, sizeof(mnt)))
		return 0; /* not mounted here: nothing to read, restore says so */
	snprintf(dir, sizeof(dir), "%s%s", mnt, path);
	prop_table(ctrl, &tab, &n);
	props = xzalloc(n * sizeof(*props));
	pp = xzalloc(n * sizeof(*pp));
	for (i = 0; i < n; i++) {
		char *v;

		if (!prop_applies(ctrl, tab[i]) || !(v = read_prop(dir, tab[i])))
			continue;
		cgroup_prop__init(&props[ce.n_props]);
		props[ce.n_props].name = (char *)tab[i];
		props[ce.n_props].value = v;
		pp[ce.n_props] = &props[ce.n_props];
		ce.n_props++;
	}
	ce.controllers = ctrl;
	ce.path = (char *)path;
	ce.props = pp;
	pr_debug("pid %d: cgroup %s: %zu settings\n", pid, key, ce.n_props);
	ret = img_write_msg(&ctx->w, IMG_CGROUP, &ce.base);
	for (i = 0; i < ce.n_props; i++)
		free(props[i].value);
	free(props);
	free(pp);
	return ret;
}

/* Stage 2: the settings of the task's cgroups not written yet (--manage-cgroups). */
static int cgroup_dump_write(struct dump_ctx *ctx, struct dump_task *dt)
{
	size_t i;

	if (!ctx->opts->manage_cgroups)
		return 0;
	for (i = 0; i < dt->te->n_cgroups; i++)
		if (save_settings(ctx, dt->pid, dt->te->cgroups[i]))
			return -1;
	return 0;
}

static void cgroup_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct cg_dump *cd = state;
	size_t i;

	for (i = 0; i < cd->nsaved; i++)
		free(cd->saved[i]);
	free(cd->saved);
}

/* A path restore may write below a mount: absolute, no "." or ".." component. */
static bool path_ok(const char *path)
{
	const char *p = path;

	if (*p != '/')
		return false;
	while (*p) {
		size_t n;

		p += strspn(p, "/");
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
	}
	return true;
}

int cgroup_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct cg_image *ci = res_image_state(img, &cgroup_res);
	CgroupEntry *ce = msg;
	size_t i;

	if (!path_ok(ce->path) || strchr(ce->controllers, '/')) {
		pr_err("image %s is corrupt: cgroup '%s:%s' is not a cgroup path\n", img->r.path,
		       ce->controllers, ce->path);
		goto bad;
	}
	for (i = 0; i < ce->n_props; i++)
		if (!prop_known(ce->controllers, ce->props[i]->name)) {
			pr_err("image %s is corrupt: cgroup %s: '%s' is not a setting stasis "
			       "restores\n",
			       img->r.path, ce->path, ce->props[i]->name);
			goto bad;
		}
	ci->v = xrealloc(ci->v, (ci->n + 1) * sizeof(*ci->v));
	ci->v[ci->n++] = ce;
	return 0;
bad:
	cgroup_entry__free_unpacked(ce, NULL);
	return -1;
}

static void cgroup_image_fini(struct image *img, void *state)
{
	struct cg_image *ci = state;
	size_t i;

	for (i = 0; i < ci->n; i++)
		cgroup_entry__free_unpacked(ci->v[i], NULL);
	free(ci->v);
}

static const CgroupEntry *find_settings(struct image *img, const char *ctrl, const char *path)
{
	struct cg_image *ci = res_image_state(img, &cgroup_res);
	size_t i;

	for (i = 0; i < ci->n; i++)
		if (!strcmp(ci->v[i]->controllers, ctrl) && !strcmp(ci->v[i]->path, path))
			return ci->v[i];
	return NULL;
}

/* cgroup v2: enable prop's controller from the mount down to dir's parent. */
static int enable_v2_controller(const char *mnt, const char *dir, const char *prop)
{
	char ctl[64], buf[2 * PATH_MAX];
	size_t n = strcspn(prop, "."), at = strlen(mnt);

	if (n + 2 > sizeof(ctl) || !strncmp(prop, "cgroup.", 7))
		return 0;
	ctl[0] = '+';
	memcpy(ctl + 1, prop, n);
	ctl[n + 1] = '\0';
	snprintf(buf, sizeof(buf), "%s", dir);
	for (;;) {
		char *slash = strchr(buf + at + 1, '/'), *sub;

		if (!slash)
			return 0; /* buf is dir itself: its parents are done */
		*slash = '\0';
		sub = read_prop(buf, "cgroup.subtree_control");
		if (!sub || !has_word(sub, ctl + 1, n))
			write_prop(buf, "cgroup.subtree_control", ctl);
		free(sub);
		*slash = '/';
		at = slash - buf;
	}
}

/* Write the saved settings that differ from what the cgroup has. */
static int apply_settings(pid_t pid, const CgroupEntry *ce, const char *mnt, const char *dir)
{
	size_t i;

	for (i = 0; i < ce->n_props; i++) {
		const CgroupProp *p = ce->props[i];
		char *now;

		if (is_v2(ce->controllers))
			enable_v2_controller(mnt, dir, p->name);
		now = read_prop(dir, p->name);
		if (now && !strcmp(now, p->value)) {
			free(now);
			continue;
		}
		free(now);
		if (write_prop(dir, p->name, p->value)) {
			pr_perror("pid %d: cannot set %s of cgroup %s to '%s'", pid, p->name, dir,
				  p->value);
			return -1;
		}
	}
	return 0;
}

/* A new v1 cpuset takes no task until it has cpus and mems: its parent's. */
static void cpuset_inherit(const char *ctrl, const char *dir)
{
	static const char *const names[] = { "cpuset.cpus", "cpuset.mems" };
	char parent[2 * PATH_MAX], *slash, *v;
	size_t i;

	if (is_v2(ctrl) || !has_word(ctrl, "cpuset", 6))
		return;
	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (!slash)
		return;
	*slash = '\0';
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		char *mine = read_prop(dir, names[i]);

		if (mine && !*mine && (v = read_prop(parent, names[i])))
			write_prop(dir, names[i], v), free(v);
		free(mine);
	}
}

/* ---------------------------------------------------------- membership */

/* mkdir -p; *created: the last component did not exist. */
static int mkdir_p(const char *path, bool *created)
{
	char buf[2 * PATH_MAX];
	char *p;

	*created = false;
	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	if (mkdir(buf, 0755) == 0)
		*created = true;
	else if (errno != EEXIST)
		return -1;
	return 0;
}

/* The --cgroup-root that applies to hierarchy ctrl, or NULL. */
static const char *new_root(const struct restore_opts *o, const char *ctrl)
{
	const char *all = NULL;
	int i;

	for (i = 0; i < o->n_cg_roots; i++) {
		const char *want = o->cg_roots[i].ctrl;

		if (!want)
			all = o->cg_roots[i].path;
		else if (is_v2(ctrl) ? !strcmp(want, "cgroup2") : !strcmp(want, ctrl))
			return o->cg_roots[i].path;
	}
	return all;
}

/*
 * Where the image's cgroup path of hierarchy ctrl goes: the same path, or
 * with --cgroup-root, the root task's cgroup replaced by the new root.
 */
static int map_path(struct rst_ctx *c, const char *ctrl, const char *path, char *out, size_t size)
{
	const TaskEntry *root = c->tree->ctx[c->tree->root].t->te;
	const char *to = new_root(c->opts, ctrl), *from = NULL, *rest;
	char rctrl[256];
	size_t i, n;

	snprintf(out, size, "%s", path);
	if (!to)
		return 0;
	for (i = 0; i < root->n_cgroups && !from; i++)
		if (!parse_line(root->cgroups[i], rctrl, sizeof(rctrl), &from) ||
		    strcmp(rctrl, ctrl))
			from = NULL;
	if (!from)
		return 0;
	n = strcmp(from, "/") ? strlen(from) : 0;
	if (strncmp(path, from, n) || (path[n] && path[n] != '/')) {
		pr_err("pid %u: its cgroup %s is not below the root task's %s; --cgroup-root "
		       "cannot place it\n",
		       c->t->te->pid, path, from);
		return -1;
	}
	rest = path + n;
	snprintf(out, size, "%s%s", strcmp(to, "/") || !*rest ? to : "", rest);
	return 0;
}

/* The image's settings of the cgroup, into dir as --manage-cgroups says. */
static int restore_settings(struct rst_ctx *c, const char *ctrl, const char *img_path,
			    const char *mnt, const char *dir, bool created)
{
	const CgroupEntry *ce = find_settings(c->img, ctrl, img_path);
	enum cg_manage mode = c->opts->manage_cgroups;
	size_t i, differ = 0;

	if (!ce || mode == CG_MANAGE_IGNORE) {
		if (created)
			cpuset_inherit(ctrl, dir);
		return 0;
	}
	if (created || mode == CG_MANAGE_FULL)
		return apply_settings(c->t->te->pid, ce, mnt, dir);
	for (i = 0; i < ce->n_props; i++) {
		char *now = read_prop(dir, ce->props[i]->name);

		differ += !now || strcmp(now, ce->props[i]->value);
		free(now);
	}
	if (differ)
		pr_warn("pid %u: cgroup %s exists with %zu setting(s) other than saved; left as "
			"they are (--manage-cgroups=full writes them)\n",
			c->t->te->pid, dir, differ);
	return 0;
}

/* Is the calling task (its /proc/self/cgroup lines: ours) in ctrl's path? */
static bool in_cgroup(char **ours, size_t n, const char *ctrl, const char *path)
{
	char other[256];
	const char *opath;
	size_t i;

	for (i = 0; i < n; i++)
		if (parse_line(ours[i], other, sizeof(other), &opath) && !strcmp(ctrl, other))
			return !strcmp(path, opath);
	return false;
}

/*
 * Move the calling task into ctrl's cgroup for the image's img_path (where
 * --cgroup-root puts it), creating it if missing, with its settings.
 */
static int join_cgroup(struct rst_ctx *c, const char *ctrl, const char *img_path, char **ours,
		       size_t nours)
{
	char mnt[PATH_MAX], path[PATH_MAX], dir[2 * PATH_MAX], procs[2 * PATH_MAX + 16];
	pid_t pid = c->t->te->pid;
	bool created, there;
	int fd;

	if (map_path(c, ctrl, img_path, path, sizeof(path)))
		return -1;
	there = in_cgroup(ours, nours, ctrl, path);
	if (there && c->opts->manage_cgroups != CG_MANAGE_FULL)
		return 0;
	if (hierarchy_mount(ctrl, mnt, sizeof(mnt))) {
		pr_err("pid %d: its cgroup hierarchy '%s' is not mounted here\n", pid,
		       *ctrl ? ctrl : "cgroup2");
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s%s", mnt, path);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	if (mkdir_p(dir, &created)) {
		pr_perror("pid %d: cannot create cgroup %s", pid, dir);
		return -1;
	}
	if (restore_settings(c, ctrl, img_path, mnt, dir, created))
		return -1;
	if (there)
		return 0;
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1) {
		pr_perror("pid %d: cannot join cgroup %s", pid, dir);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Is line (of the image) in lines (another task's)? */
static bool line_in(const char *line, char **lines, size_t n)
{
	char ctrl[256];
	const char *path;

	return !parse_line(line, ctrl, sizeof(ctrl), &path) || in_cgroup(lines, n, ctrl, path);
}

static bool same_cgroups(const TaskEntry *a, const TaskEntry *b)
{
	size_t i;

	if (a->n_cgroups != b->n_cgroups)
		return false;
	for (i = 0; i < a->n_cgroups; i++)
		if (!line_in(a->cgroups[i], b->cgroups, b->n_cgroups))
			return false;
	return true;
}

/* In the restore child, before its children are forked. */
static void free_lines(char **lines, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

static size_t read_own_cgroups(char ***ours)
{
	char *text = read_file("/proc/self/cgroup", NULL);
	size_t n = 0;

	*ours = NULL;
	if (text)
		n = split_lines(text, ours);
	free(text);
	return n;
}

/* cgroup.procs of the nearest cgroup2 ancestor of path and of ours */
static void common_procs(char **ours, size_t nours, const char *mnt, const char *path, char *buf,
			 size_t size)
{
	char ctrl[256];
	const char *op = NULL;
	size_t i, n = 0, last = 0;

	for (i = 0; i < nours && !op; i++)
		if (!parse_line(ours[i], ctrl, sizeof(ctrl), &op) || *ctrl)
			op = NULL;
	if (!op)
		return;
	while (path[n] && path[n] == op[n]) {
		if (path[n] == '/')
			last = n;
		n++;
	}
	if ((!path[n] && (!op[n] || op[n] == '/')) || (!op[n] && path[n] == '/'))
		last = n; /* one is the other's ancestor */
	snprintf(buf, size, "%s%.*s/cgroup.procs", mnt, (int)last, path);
}

/*
 * A restore joins each task's cgroup by writing its cgroup.procs.  A normal
 * user's dump (that user restores it) refuses a task in a cgroup the user
 * may not join, such as another cgroup than its own that root owns: the
 * restore would fail after the original is gone.
 */
static int cgroup_dump_check(struct dump_ctx *ctx)
{
	char **ours, **lines, ctrl[256], mnt[PATH_MAX], procs[2 * PATH_MAX + 16];
	size_t nours, n, i, k;
	const char *path;
	char *text;
	int ret = 0;

	if (geteuid() == 0)
		return 0;
	nours = read_own_cgroups(&ours);
	for (i = 0; i < ctx->ntasks && !ret; i++) {
		if (ctx->tasks[i].zombie)
			continue;
		text = read_proc(ctx->tasks[i].pid, "cgroup", NULL);
		n = text ? split_lines(text, &lines) : 0;
		free(text);
		for (k = 0; k < n && !ret; k++) {
			if (!parse_line(lines[k], ctrl, sizeof(ctrl), &path) ||
			    in_cgroup(ours, nours, ctrl, path) ||
			    hierarchy_mount(ctrl, mnt, sizeof(mnt)))
				continue;
			snprintf(procs, sizeof(procs), "%s%s/cgroup.procs", mnt, path);
			/* cgroup2 also wants the common ancestor's, where the move starts from ours
			 */
			if (!*ctrl && !access(procs, W_OK))
				common_procs(ours, nours, mnt, path, procs, sizeof(procs));
			if (access(procs, W_OK)) {
				pr_err("pid %d: its cgroup %s (%s) is not this user's to join at "
				       "restore: %s is not writable for uid %u\n",
				       ctx->tasks[i].pid, path, *ctrl ? ctrl : "cgroup2", procs,
				       (unsigned int)geteuid());
				ret = -1;
			}
		}
		if (n)
			free_lines(lines, n);
	}
	free_lines(ours, nours);
	return ret;
}

/*
 * The task creates a cgroup namespace (res/ns.c): into its root cgroups
 * first, where unshare takes the root from; *ours is read again, still
 * with the paths as we see them.
 */
static int make_cgroup_ns(struct rst_ctx *c, const NsEntry *ns, char ***ours, size_t *n)
{
	char ctrl[256];
	const char *path;
	size_t i;

	for (i = 0; i < ns->n_cgroup_roots; i++)
		if (parse_line(ns->cgroup_roots[i], ctrl, sizeof(ctrl), &path) &&
		    join_cgroup(c, ctrl, path, *ours, *n))
			return -1;
	free_lines(*ours, *n);
	*n = read_own_cgroups(ours);
	if (unshare(CLONE_NEWCGROUP)) {
		pr_perror("pid %d: cannot create its cgroup namespace", c->t->te->pid);
		return -1;
	}
	return 0;
}

static int cgroup_restore_child(struct rst_ctx *c)
{
	const NsEntry *ns = ns_created_by(c, NS_K_CGROUP);
	TaskEntry *te = c->t->te;
	char **ours = NULL, ctrl[256];
	const char *path;
	size_t n = 0, i;
	int ret = 0;

	if (!ns && (!te->n_cgroups || (c->t->parent && same_cgroups(te, c->t->parent->te))))
		return 0; /* inherited from its restored parent */
	n = read_own_cgroups(&ours);
	if (ns)
		ret = make_cgroup_ns(c, ns, &ours, &n);
	for (i = 0; i < te->n_cgroups && !ret; i++)
		if (parse_line(te->cgroups[i], ctrl, sizeof(ctrl), &path))
			ret = join_cgroup(c, ctrl, path, ours, n);
	free_lines(ours, n);
	return ret;
}

/* ------------------------------------------------------------- freezer */

static int freezer_write(int fd, bool v2, bool freeze)
{
	const char *v = v2 ? (freeze ? "1" : "0") : (freeze ? "FROZEN" : "THAWED");

	return pwrite(fd, v, strlen(v), 0) < 0 ? -1 : 0;
}

/* Has the freeze taken hold of every task of the cgroup? */
static bool freezer_done(const char *dir, bool v2)
{
	char *v = read_prop(dir, v2 ? "cgroup.events" : "freezer.state");
	bool done = v && (v2 ? strstr(v, "frozen 1") != NULL : !strcmp(v, "FROZEN"));

	free(v);
	return done;
}

#define FREEZE_WAIT_MS 5000

/* Before the tree is seized: freeze --freeze-cgroup, and wait until it is. */
static int cgroup_dump_hold(struct dump_ctx *ctx)
{
	struct cg_dump *cd = res_dump_state(ctx, &cgroup_res);
	const char *dir = ctx->opts->freeze_cgroup;
	char path[PATH_MAX + 32];
	uint64_t t0 = now_ns();
	int fd;

	cd->freeze_fd = -1;
	if (!dir)
		return 0;
	snprintf(path, sizeof(path), "%s/cgroup.freeze", dir);
	cd->freeze_v2 = true;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/freezer.state", dir);
		cd->freeze_v2 = false;
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		pr_err("--freeze-cgroup %s: neither a cgroup v2 directory (cgroup.freeze) nor a v1 "
		       "freezer cgroup (freezer.state)\n",
		       dir);
		return -1;
	}
	if (freezer_write(fd, cd->freeze_v2, true)) {
		pr_perror("--freeze-cgroup %s: cannot freeze it", dir);
		close(fd);
		return -1;
	}
	cd->freeze_fd = fd;
	while (!freezer_done(dir, cd->freeze_v2)) {
		if (now_ns() - t0 > FREEZE_WAIT_MS * 1000000ULL) {
			pr_err("--freeze-cgroup %s: not frozen after %d ms\n", dir, FREEZE_WAIT_MS);
			return -1; /* dump_end thaws it */
		}
		usleep(100);
	}
	pr_info("froze cgroup %s in %.2f ms\n", dir, (now_ns() - t0) / 1e6);
	return 0;
}

static int thaw(struct cg_dump *cd, const char *dir)
{
	int ret;

	if (cd->freeze_fd < 0)
		return 0;
	ret = freezer_write(cd->freeze_fd, cd->freeze_v2, false);
	if (ret)
		pr_perror("--freeze-cgroup %s: cannot thaw it", dir);
	close(cd->freeze_fd);
	cd->freeze_fd = -1;
	return ret;
}

/* Every task is seized: ptrace holds them from now on. */
static int cgroup_dump_unhold(struct dump_ctx *ctx)
{
	return thaw(res_dump_state(ctx, &cgroup_res), ctx->opts->freeze_cgroup);
}

static void cgroup_dump_end(struct dump_ctx *ctx, bool kill)
{
	thaw(res_dump_state(ctx, &cgroup_res), ctx->opts->freeze_cgroup);
}

/* Async-signal-safe: one write to the file opened before. */
static void cgroup_dump_rescue(struct dump_ctx *ctx)
{
	struct cg_dump *cd = res_dump_state(ctx, &cgroup_res);

	if (cd->freeze_fd >= 0)
		freezer_write(cd->freeze_fd, cd->freeze_v2, false);
}

const struct res_ops cgroup_res = {
	.name = "cgroup",
	.dump_state_size = sizeof(struct cg_dump),
	.image_state_size = sizeof(struct cg_image),
	.dump_hold = cgroup_dump_hold,
	.dump_unhold = cgroup_dump_unhold,
	.dump_check = cgroup_dump_check,
	.dump_local = cgroup_dump,
	.dump_write = cgroup_dump_write,
	.dump_end = cgroup_dump_end,
	.dump_rescue = cgroup_dump_rescue,
	.dump_fini = cgroup_dump_fini,
	.image_fini = cgroup_image_fini,
	.child_early = cgroup_restore_child,
};
