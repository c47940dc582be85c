/*
 * The process tree of an image: parent and child links, and the rules
 * that decide whether its sessions and process groups can be rebuilt.
 *
 * A session id can only be had by calling setsid() (becoming its leader)
 * or by inheriting it at fork.  So a task's session must be its own, its
 * parent's, or the one its parent had before it called setsid() (the
 * parent then forks that child first).  The root's session, if it does not
 * lead one, is outside the tree: the restored tree joins the restorer's
 * session, like a shell job.  Groups are joined later with setpgid(); a
 * group whose leader is gone is recreated by a short-lived helper.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stasis.h"
#include "util.h"

/* tes sorted by pid (tree_check_sessions sorts its copy) */
static TaskEntry *find_te(TaskEntry **tes, size_t n, uint32_t pid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tes[mid]->pid == pid)
			return tes[mid];
		if (tes[mid]->pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int cmp_te_pid(const void *a, const void *b)
{
	uint32_t x = (*(TaskEntry *const *)a)->pid, y = (*(TaskEntry *const *)b)->pid;

	return x < y ? -1 : x > y;
}

/* The session a task had when its parent forked it (0: outside the tree). */
static uint32_t inherited_sid(TaskEntry **tes, size_t n, TaskEntry *t, uint32_t root)
{
	TaskEntry *p;

	if (t->pid == root)
		return t->sid == t->pid ? 0 : t->sid;
	p = find_te(tes, n, t->ppid);
	return p ? p->sid : 0;
}

static int check_sessions(TaskEntry **tes, size_t n, uint32_t root)
{
	size_t i;

	for (i = 0; i < n; i++) {
		TaskEntry *t = tes[i], *p;
		uint32_t before;

		if (t->pid == root)
			continue;
		p = find_te(tes, n, t->ppid);
		if (!p) {
			pr_err(
			    "pid %u: its parent %u is not in the tree (orphans are not supported "
			    "yet)\n",
			    t->pid, t->ppid);
			return -1;
		}
		if (t->sid == t->pid || t->sid == p->sid)
			continue;
		before = inherited_sid(tes, n, p, root);
		if (p->sid == p->pid && (t->sid == before || (!before && !find_te(tes, n, t->sid))))
			continue; /* forked before its parent called setsid() */
		pr_err("pid %u: its session %u cannot be recreated (its leader is gone and it is "
		       "not its parent's); not supported\n",
		       t->pid, t->sid);
		return -1;
	}
	return 0;
}

int tree_check_sessions(TaskEntry **tes, size_t n, uint32_t root)
{
	TaskEntry **sorted = xmalloc((n + 1) * sizeof(*sorted));
	int ret;

	memcpy(sorted, tes, n * sizeof(*sorted));
	sort_array(sorted, n, sizeof(*sorted), cmp_te_pid);
	ret = check_sessions(sorted, n, root);
	free(sorted);
	return ret;
}

int tree_build(struct image *img)
{
	TaskEntry **tes = xzalloc(img->ntasks * sizeof(*tes));
	size_t i;
	int ret = -1;

	for (i = 0; i < img->ntasks; i++)
		tes[i] = img->tasks[i].te;
	if (!image_task(img, img->hdr->root_pid)) {
		pr_err("image %s is corrupt: its root pid %u has no task record\n", img->r.path,
		       img->hdr->root_pid);
		goto out;
	}
	for (i = 0; i < img->ntasks; i++) {
		struct rst_task *t = &img->tasks[i], *p;

		if (t->te->pid == img->hdr->root_pid)
			continue;
		p = image_task(img, t->te->ppid);
		/* parents come before children in an image: no cycles */
		if (!p || p >= t) {
			pr_err("image %s is corrupt: pid %u has no parent before it in the tree\n",
			       img->r.path, t->te->pid);
			goto out;
		}
		t->parent = p;
		t->depth = p->depth + 1; /* for common ancestors */
		p->kids = xrealloc(p->kids, (p->nkids + 1) * sizeof(*p->kids));
		p->kids[p->nkids++] = t;
	}
	ret = tree_check_sessions(tes, img->ntasks, img->hdr->root_pid);
out:
	free(tes);
	return ret;
}
