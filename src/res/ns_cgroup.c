/*
 * Cgroup namespaces: a namespace is saved as its root cgroup in every
 * hierarchy, found by comparing a task's cgroups seen from inside the
 * namespace with the same seen from ours.  It is built by res/cgroup.c,
 * which moves its creator into those roots, unshares, and only then moves
 * it into its own cgroups (ns_created_by()).
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ns.h"
#include "proc.h"
#include "util.h"

/* pid's cgroups seen from inside its cgroup namespace: paths from its root. */
static int look_cgroup(pid_t pid, NsEntry *e)
{
	char *text = read_proc(pid, "cgroup", NULL);

	if (!text) {
		pr_perror("pid %d: cannot read its cgroups", pid);
		return -1;
	}
	e->cgroup_roots = (char **)text; /* for cgroup_describe, which splits it */
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
static int cgroup_describe(const struct ns_view *v, size_t task, NsEntry *e)
{
	pid_t pid = ns_view_pid(v, task);
	char *full = read_proc(pid, "cgroup", NULL), *inside, *fs = NULL, *is = NULL, *f, *i;
	int ret = -1;

	if (!full || ns_look_inside(pid, &cgroup_ns_kind, e, look_cgroup)) {
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

/* "ID:CONTROLLERS:/PATH" lines, the path absolute without "." or "..". */
static bool cgroup_valid(const NsEntry *e)
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

const struct ns_kind cgroup_ns_kind = {
	.name = "cgroup",
	.label = "cgroup",
	.nstype = CLONE_NEWCGROUP,
	.kind = NS_KIND__NS_CGROUP,
	NS_TE_FIELD(cgroup_ns),
	.inherits = NS_K_CGROUP,
	.describe = cgroup_describe,
	.valid = cgroup_valid,
	/* no create: res/cgroup.c builds it while it places the task */
};
