/*
 * Private pages a child shares copy-on-write with its parent, at restore.
 *
 * The dump marks a child's private anonymous mapping that its parent has
 * at the same place with the same flags (vma_entry.cow_parent, mm.c) and
 * saves only the pages the two do not share (pages.c); the pages only the
 * parent has are listed in pagemap_entry.zap_runs.  Here the parent's
 * restore child builds and fills every mapping some child inherits before
 * it forks its children (the child_early stage), so the children get it
 * through fork, one physical page for all of them as before the dump.  A
 * child keeps such a mapping, drops the parent's pages it did not have
 * (MADV_DONTNEED) and writes its own pages over it (a write breaks the
 * sharing of that page only), again before it forks its own children.
 *
 * A parent's mapping that collides with stasis's own layout cannot be
 * built before the fork: the child then builds its mapping like any
 * other, filled from the parent's saved pages first (less the zapped
 * ones), then its own: a copy, as before, said with a -v line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "mm.h"
#include "proc.h"
#include "res.h"
#include "util.h"

/* The index of the VMA of mm starting at start, or -1. */
static ssize_t vma_at(const MmEntry *mm, uint64_t start, uint64_t end)
{
	size_t i;

	for (i = 0; mm && i < mm->n_vmas; i++)
		if (mm->vmas[i]->start == start && mm->vmas[i]->end == end)
			return i;
	return -1;
}

/* Does a child of this task inherit its VMA e? */
static bool kid_inherits(const struct rst_task *t, const VmaEntry *e)
{
	size_t k;
	ssize_t i;

	for (k = 0; k < t->nkids; k++) {
		const struct rst_task *kid = t->kids[k];

		if (kid->te->zombie)
			continue;
		i = vma_at(kid->mm, e->start, e->end);
		if (i >= 0 && kid->mm->vmas[i]->cow_parent)
			return true;
	}
	return false;
}

/* Was the parent's mapping at e built before it forked us? */
bool mm_cow_inherited(struct rst_ctx *c, const VmaEntry *e)
{
	const struct rst_task *p = c->t->parent;
	struct rst_ctx *pc;
	ssize_t j;

	if (!e->cow_parent || !p)
		return false;
	pc = rst_ctx_of(c->tree, p);
	j = vma_at(p->mm, e->start, e->end);
	return j >= 0 && pc->premapped &&
	       (pc->premapped[j] == MM_PREMAP_FORK || pc->premapped[j] == MM_PREMAP_KEPT);
}

/* Drop the parent's pages this task did not have, in [s, e). */
static int cow_zap(struct rst_ctx *c, unsigned long s, unsigned long e)
{
	const PagemapEntry *pm = c->t->pm;
	size_t r;

	for (r = 0; pm && r < pm->n_zap_runs; r++) {
		unsigned long a = pm->zap_runs[r]->vaddr;
		unsigned long len = pm->zap_runs[r]->nr_pages * PAGE_SIZE;

		if (a >= e || a + len <= s)
			continue;
		if (madvise((void *)a, len, MADV_DONTNEED)) {
			pr_perror("pid %u: cannot drop its parent's pages at %lx", c->t->te->pid,
				  a);
			return -1;
		}
	}
	return 0;
}

/*
 * Keep a mapping inherited from the parent: open it for writing where
 * the task has pages of its own (mm_finish_vma closes it again), and drop
 * what only the parent had.
 */
static int cow_keep(struct rst_ctx *c, size_t i)
{
	const VmaEntry *e = c->t->mm->vmas[i];

	if (vma_has_pages(c->t->pm, e) && !(e->prot & PROT_WRITE) &&
	    mprotect((void *)e->start, e->end - e->start, e->prot | PROT_WRITE)) {
		pr_perror("pid %u: cannot open its inherited mapping %lx-%lx", c->t->te->pid,
			  (unsigned long)e->start, (unsigned long)e->end);
		return -1;
	}
	return cow_zap(c, e->start, e->end);
}

/*
 * The parent's mappings built for another child that this task does not
 * inherit: gone before anything else is placed (the trampoline, our own
 * mappings of the image).
 */
static int cow_drop_others(struct rst_ctx *c)
{
	const struct rst_task *p = c->t->parent;
	struct rst_ctx *pc;
	size_t j;

	if (!p || !p->mm)
		return 0;
	pc = rst_ctx_of(c->tree, p);
	for (j = 0; pc->premapped && j < p->mm->n_vmas; j++) {
		const VmaEntry *pe = p->mm->vmas[j];
		ssize_t i = vma_at(c->t->mm, pe->start, pe->end);

		if ((pc->premapped[j] != MM_PREMAP_FORK && pc->premapped[j] != MM_PREMAP_KEPT) ||
		    (i >= 0 && mm_cow_inherited(c, c->t->mm->vmas[i])))
			continue;
		if (munmap((void *)pe->start, pe->end - pe->start)) {
			pr_perror("pid %u: cannot unmap its parent's %lx-%lx", c->t->te->pid,
				  (unsigned long)pe->start, (unsigned long)pe->end);
			return -1;
		}
	}
	return 0;
}

static bool overlaps_own(const struct proc_vmas *own, const struct rst_ctx *c, const VmaEntry *e)
{
	size_t k;

	if (e->start < c->tramp + c->tramp_len && c->tramp < e->end)
		return true;
	for (k = 0; k < own->n; k++)
		if (own->v[k].start < e->end && e->start < own->v[k].end)
			return true;
	return false;
}

/*
 * In the restore child, before it forks its children: keep what it
 * inherits, build what its children inherit, fill both (the plain path:
 * a userfaultfd cannot fill pages that are there) and finish them.
 */
int mm_cow_child_early(struct rst_ctx *c)
{
	MmEntry *mm = c->t->mm;
	struct proc_vmas own = { 0 };
	size_t i, last, n = 0;
	int ret = -1;

	if (!mm || cow_drop_others(c))
		return -1;
	c->in_child = true;
	for (i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];

		if (mm_cow_inherited(c, e)) {
			if (cow_keep(c, i))
				goto out;
			c->premapped[i] = MM_PREMAP_KEPT;
			n++;
			continue;
		}
		if (e->cow_parent && c->t->parent)
			pr_info(
			    "pid %u: mapping %lx-%lx was not built before the fork (it collides "
			    "with stasis's own): copied from its parent's pages\n",
			    c->t->te->pid, (unsigned long)e->start, (unsigned long)e->end);
		if (e->kind != VMA_KIND__VMA_ANON_PRIVATE || !kid_inherits(c->t, e) ||
		    getenv("STASIS_TEST_COW_NO_PREFORK"))
			continue;
		if (!own.v && proc_parse_maps(0, &own))
			goto out;
		if (overlaps_own(&own, c, e) || mm_map_one(c, i, &last))
			continue; /* the children copy it (mm_pages_fill) */
		c->premapped[i] = MM_PREMAP_FORK;
		n++;
	}
	if (n && mm_pages_fill(c, MM_FILL_FORK, -1))
		goto out;
	for (i = 0; i < mm->n_vmas; i++) {
		if (c->premapped[i] != MM_PREMAP_FORK && c->premapped[i] != MM_PREMAP_KEPT)
			continue;
		if (mm_finish_vma(c, mm->vmas[i]))
			goto out;
		c->filled[i] = 1; /* its pages are there: no later pass fills it */
	}
	ret = 0;
out:
	c->in_child = false;
	if (own.v)
		proc_vmas_free(&own);
	return ret;
}
