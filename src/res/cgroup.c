/*
 * Control group membership.  At dump, each process's /proc/PID/cgroup
 * lines ("ID:CONTROLLERS:PATH", one per hierarchy; v1 and v2 alike) are
 * saved; a thread in another cgroup than its process is refused.  At
 * restore, each restore child, before it forks its children (they inherit
 * its cgroups), moves itself into the saved path of every hierarchy where
 * it is not there yet, creating the cgroup if it is missing.  Hierarchies
 * are matched by their controllers, not by their ids, which differ between
 * hosts.  Controller settings are not saved (they belong to the cgroup,
 * not to the task).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

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
		size_t n = strcspn(p, ",");

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
		    sscanf(sep, " - %31s %*s %511s", type, opts) != 2 || strcmp(root, "/"))
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

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* Move the calling task into ctrl's cgroup 'path', creating it if missing. */
static int join_cgroup(pid_t pid, const char *ctrl, const char *path)
{
	char mnt[PATH_MAX], dir[PATH_MAX], procs[PATH_MAX + 16];
	int fd;

	if (hierarchy_mount(ctrl, mnt, sizeof(mnt))) {
		pr_err("pid %d: its cgroup hierarchy '%s' is not mounted here\n", pid,
		       *ctrl ? ctrl : "cgroup2");
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s%s", mnt, path);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	if (mkdir_p(dir)) {
		pr_perror("pid %d: cannot create cgroup %s", pid, dir);
		return -1;
	}
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

/* Is line (of the image) in lines (what we have)? */
static bool line_in(const char *line, char **lines, size_t n)
{
	char ctrl[256], other[256];
	const char *path, *opath;
	size_t i;

	if (!parse_line(line, ctrl, sizeof(ctrl), &path))
		return true;
	for (i = 0; i < n; i++)
		if (parse_line(lines[i], other, sizeof(other), &opath) && !strcmp(ctrl, other))
			return !strcmp(path, opath);
	return false;
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
static int cgroup_restore_child(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;
	char **ours = NULL, *text, ctrl[256];
	const char *path;
	size_t n = 0, i;
	int ret = 0;

	if (!te->n_cgroups || (c->t->parent && same_cgroups(te, c->t->parent->te)))
		return 0; /* inherited from its restored parent */
	text = read_file("/proc/self/cgroup", NULL);
	if (text)
		n = split_lines(text, &ours);
	free(text);
	for (i = 0; i < te->n_cgroups && !ret; i++)
		if (!line_in(te->cgroups[i], ours, n) &&
		    parse_line(te->cgroups[i], ctrl, sizeof(ctrl), &path))
			ret = join_cgroup(te->pid, ctrl, path);
	for (i = 0; i < n; i++)
		free(ours[i]);
	free(ours);
	return ret;
}

const struct res_ops cgroup_res = {
	.name = "cgroup",
	.dump_local = cgroup_dump,
	.child_early = cgroup_restore_child,
};
