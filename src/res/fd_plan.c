/*
 * Which task opens each open file description at restore.  A description
 * used by several tasks must be opened once, by a task above all of them,
 * before it forks them: they inherit it and share it again.  So the opener
 * of a description is the lowest common ancestor of every task that uses
 * it: the tasks with an fd on it, the others its kind names (fd_ops.plan:
 * the mappings of a memfd, the session leader of a pty) and, for kinds
 * whose descriptions are built together (fd_ops.group: both ends of a
 * pipe, a connected pair of unix sockets), the users of the whole group.
 * The result is each task's open_ids, read by files_open_shared().
 */
#include <stdlib.h>

#include "files.h"
#include "util.h"

struct fd_plan {
	struct image *img;
	FileEntry **files; /* image_files(), sorted by id */
	size_t nfiles;
	struct rst_task **opener; /* per file index: lowest common ancestor of its users */
};

static struct rst_task *lca(struct rst_task *a, struct rst_task *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	while (a->depth > b->depth)
		a = a->parent;
	while (b->depth > a->depth)
		b = b->parent;
	while (a != b) {
		a = a->parent;
		b = b->parent;
	}
	return a;
}

struct image *fd_plan_image(struct fd_plan *p)
{
	return p->img;
}

void fd_plan_use(struct fd_plan *p, uint32_t id, struct rst_task *t)
{
	long f = image_file_index(p->img, id);

	if (f >= 0)
		p->opener[f] = lca(p->opener[f], t);
}

void fd_plan_join(struct fd_plan *p, uint32_t to, uint32_t from)
{
	long f = image_file_index(p->img, from);

	if (f >= 0 && p->opener[f])
		fd_plan_use(p, to, p->opener[f]);
}

struct plan_group {
	FileType type;
	uint64_t group;
	size_t file;
};

static int plan_group_cmp(const void *a, const void *b)
{
	const struct plan_group *x = a, *y = b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return x->group < y->group ? -1 : x->group > y->group;
}

/*
 * Descriptions opened together: every one of a group gets the lowest
 * common ancestor of the group's users.  Sorted by group, so O(n log n).
 */
static void plan_groups(struct fd_plan *p)
{
	struct plan_group *g = xmalloc(p->nfiles * sizeof(*g) + 1);
	size_t i, j, k, n = 0;

	for (i = 0; i < p->nfiles; i++) {
		const FileEntry *fe = p->files[i];
		const struct fd_ops *ops = fd_kind(fe->type);
		uint64_t id = ops && ops->group ? ops->group(fe) : 0;

		if (id)
			g[n++] = (struct plan_group){ fe->type, id, i };
	}
	sort_array(g, n, sizeof(*g), plan_group_cmp);
	for (i = 0; i < n; i = j) {
		struct rst_task *opener = NULL;

		for (j = i; j < n && !plan_group_cmp(&g[i], &g[j]); j++)
			opener = lca(opener, p->opener[g[j].file]);
		for (k = i; k < j; k++)
			p->opener[g[k].file] = opener;
	}
	free(g);
}

static void add_open(struct rst_task *t, uint32_t id)
{
	t->open_ids = xrealloc(t->open_ids, (t->n_open + 1) * sizeof(*t->open_ids));
	t->open_ids[t->n_open++] = id;
}

/*
 * Decide which task opens each description: one pass over every fd, the
 * kinds' own users, then the groups.
 */
int files_plan(struct image *img, const struct restore_opts *o)
{
	struct fd_plan p = { .img = img };
	size_t i, j;

	p.files = image_files(img, &p.nfiles);
	p.opener = xzalloc(p.nfiles * sizeof(*p.opener) + 1);
	for (i = 0; i < img->ntasks; i++)
		for (j = 0; j < img->tasks[i].nfds; j++)
			fd_plan_use(&p, img->tasks[i].fds[j]->file_id, &img->tasks[i]);
	for (i = 0; i < p.nfiles; i++) {
		const struct fd_ops *ops = fd_kind(p.files[i]->type);

		if (ops && ops->plan)
			ops->plan(&p, p.files[i]);
	}
	plan_groups(&p);
	for (i = 0; i < p.nfiles; i++)
		if (p.opener[i])
			add_open(p.opener[i], p.files[i]->id);
	free(p.opener);
	return 0;
}
