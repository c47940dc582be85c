/*
 * Building the address space at restore: the mm calls (plain syscalls in
 * the restore child, remote ones from the controller), stasis's own
 * mappings taken away, the vDSO moved to its place, each mapping created
 * at its address (shared anonymous memory mapped from the task that
 * created it), its protections, hints and name, and the mm fields.  The
 * order of these steps is src/res/mm.c's.
 */
#include <fcntl.h>
#include <linux/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "mm.h"
#include "proc.h"
#include "res.h"
#include "util.h"

/*
 * One mm syscall for the task being built: a plain syscall while the
 * restore child builds what it can itself, a remote one afterwards.
 */
int mm_rcall(struct rst_ctx *c, const char *what, long nr, unsigned long a1, unsigned long a2,
	     unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6, long *out)
{
	long ret;

	if (c->in_child) {
		ret = syscall(nr, a1, a2, a3, a4, a5, a6);
		if (ret == -1)
			ret = -errno;
	} else if (remote_syscall(&c->rt, &ret, nr, a1, a2, a3, a4, a5, a6)) {
		return -1;
	}
	if (ret < 0 && ret > -4096) {
		pr_err("pid %u: %s failed: %s\n", c->t->te->pid, what, strerror(-ret));
		return -1;
	}
	if (out)
		*out = ret;
	return 0;
}

/* Pass a small buffer as a syscall argument: in place, or via the scratch page. */
unsigned long mm_rarg(struct rst_ctx *c, const void *buf, size_t len)
{
	if (c->in_child)
		return (unsigned long)buf;
	if (len > c->rt.scratch_len || remote_write(c->rt.pid, c->rt.scratch, buf, len))
		return 0;
	return c->rt.scratch;
}

static bool kept_between(struct rst_ctx *c, unsigned long a, unsigned long b)
{
	MmEntry *mm = c->t->mm;
	size_t i;

	if (c->tramp < b && a < c->tramp + c->tramp_len)
		return true;
	for (i = 0; i < mm->n_vmas; i++)
		if (c->premapped[i] && mm->vmas[i]->start < b && a < mm->vmas[i]->end)
			return true;
	return false;
}

/*
 * Unmap what is left of stasis in the child: every mapping but the
 * trampoline and the target's mappings the child built itself, in as few
 * ranges as the layout allows.
 */
int mm_unmap_own(struct rst_ctx *c)
{
	struct proc_vmas now;
	unsigned long s = 0, e = 0;
	size_t i;
	int ret = 0;

	if (proc_parse_maps(c->rt.pid, &now))
		return -1;
	for (i = 0; i <= now.n && !ret; i++) {
		const struct proc_vma *v = i < now.n ? &now.v[i] : NULL;

		if (v && (v->start >= TASK_SIZE_4L || kept_between(c, v->start, v->end)))
			continue;
		if (v && e && !kept_between(c, e, v->start)) {
			e = v->end; /* extend over the gap: nothing of ours to keep there */
			continue;
		}
		if (e)
			ret = mm_rcall(c, "munmap", __NR_munmap, s, e - s, 0, 0, 0, 0, NULL);
		if (v) {
			s = v->start;
			e = v->end;
		}
	}
	proc_vmas_free(&now);
	return ret;
}

/* Recreate [vvar]/[vvar_vclock]/[vdso] at the image's address as one unit. */
int mm_map_vdso(struct rst_ctx *c)
{
	MmEntry *mm = c->t->mm;
	unsigned long start = 0;
	long ret;
	size_t i;

	for (i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND__VMA_SPECIAL) {
			start = mm->vmas[i]->start;
			break;
		}
	if (!start)
		return 0;
	if (mm_rcall(c, "arch_prctl(ARCH_MAP_VDSO_64)", __NR_arch_prctl, ARCH_MAP_VDSO_64, start, 0,
		     0, 0, 0, &ret))
		return -1;
	return 0;
}

/* After the transplant: the special mappings must sit where the image says. */
int mm_check_special_layout(struct rst_ctx *c)
{
	MmEntry *mm = c->t->mm;
	struct proc_vmas now;
	size_t i, j;
	int ret = 0;

	if (proc_parse_maps(c->rt.pid, &now))
		return -1;
	for (i = 0; i < mm->n_vmas && !ret; i++) {
		const VmaEntry *e = mm->vmas[i];
		bool found = false;

		if (e->kind != VMA_KIND__VMA_SPECIAL)
			continue;
		for (j = 0; j < now.n; j++)
			if (now.v[j].start == e->start && now.v[j].end == e->end &&
			    !strcmp(now.v[j].path, e->name))
				found = true;
		if (!found) {
			pr_err(
			    "pid %u: this kernel lays out %s differently than the dumping kernel; "
			    "not supported yet\n",
			    c->t->te->pid, e->name);
			ret = -1;
		}
	}
	proc_vmas_free(&now);
	return ret;
}

bool vma_has_pages(const PagemapEntry *pm, const VmaEntry *e)
{
	size_t lo = 0, hi = pm ? pm->n_runs : 0;

	/* runs are sorted by address: binary search for the first run ending past start */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const PageRun *r = pm->runs[mid];

		if (r->vaddr + r->nr_pages * PAGE_SIZE <= e->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < (pm ? pm->n_runs : 0) && pm->runs[lo]->vaddr < e->end;
}

/*
 * How far a shared anonymous object extends over following VMAs that map
 * it on from where the previous one ends (one mmap builds them all).
 */
static size_t shmem_group_end(const MmEntry *mm, size_t i)
{
	const VmaEntry *e = mm->vmas[i];
	size_t j = i;

	while (j + 1 < mm->n_vmas) {
		const VmaEntry *p = mm->vmas[j], *n = mm->vmas[j + 1];

		if (n->kind != VMA_KIND__VMA_ANON_SHARED || n->file_id != e->file_id ||
		    n->start != p->end || n->pgoff != p->pgoff + (p->end - p->start))
			break;
		j++;
	}
	return j;
}

/* The size of a shared anonymous object: the furthest any task maps it. */
static uint64_t shmem_size(struct image *img, uint64_t ino)
{
	uint64_t size = 0;
	size_t t, i;

	for (t = 0; t < img->ntasks; t++) {
		const MmEntry *mm = img->tasks[t].mm;

		for (i = 0; mm && i < mm->n_vmas; i++) {
			const VmaEntry *e = mm->vmas[i];

			if (e->kind == VMA_KIND__VMA_ANON_SHARED && e->file_id == ino)
				size = max(size, e->pgoff + (e->end - e->start));
		}
	}
	return size;
}

/* Is [off, off + len) of the object filled by a mapping built before? */
static bool shmem_covered(const struct shmem_built *b, uint64_t off, uint64_t len)
{
	uint64_t at = off;
	size_t k;
	bool moved = true;

	while (at < off + len && moved) {
		moved = false;
		for (k = 0; k < b->n_filled; k++)
			if (b->filled[k].off <= at && at < b->filled[k].off + b->filled[k].len) {
				at = b->filled[k].off + b->filled[k].len;
				moved = true;
			}
	}
	return at >= off + len;
}

static void shmem_fills(struct shmem_built *b, uint64_t off, uint64_t len)
{
	b->filled = xrealloc(b->filled, (b->n_filled + 1) * sizeof(*b->filled));
	b->filled[b->n_filled++] = (struct shmem_range){ off, len };
}

static struct shmem_built *shmem_find(struct image *img, uint64_t ino)
{
	size_t i;

	for (i = 0; i < mm_image(img)->n; i++)
		if (mm_image(img)->built[i].ino == ino)
			return &mm_image(img)->built[i];
	return NULL;
}

/*
 * Create a shared anonymous object of 'size' bytes and map [pgoff, pgoff +
 * len) of it at e->start.  When that is the whole object one mmap does;
 * else the object is made at a free place first and mapped from there
 * through map_files (its pieces were cut by munmap, moved by mremap, or
 * come after another mapping of it).
 */
static int shmem_create(struct rst_ctx *c, const VmaEntry *e, unsigned long len, unsigned int prot,
			unsigned long flags, uint64_t size)
{
	char path[96];
	unsigned long at;
	long tmp, fd, ret;

	if (!e->pgoff && len >= size)
		return mm_rcall(c, "mmap", __NR_mmap, e->start, len, prot, flags, -1, 0, NULL);
	if (mm_rcall(c, "mmap of a shared object", __NR_mmap, 0, size, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0, &tmp))
		return -1;
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)tmp,
		 (unsigned long)(tmp + size));
	at = mm_rarg(c, path, strlen(path) + 1);
	if (!at || mm_rcall(c, "open shared memory", __NR_open, at, O_RDWR, 0, 0, 0, 0, &fd))
		return -1;
	ret = mm_rcall(c, "munmap", __NR_munmap, tmp, size, 0, 0, 0, 0, NULL);
	if (!ret)
		ret = mm_rcall(c, "mmap of shared memory", __NR_mmap, e->start, len, prot,
			       (flags & ~MAP_ANONYMOUS) | MAP_SHARED, fd, e->pgoff, NULL);
	mm_rcall(c, "close", __NR_close, fd, 0, 0, 0, 0, 0, NULL);
	return ret;
}

/*
 * Shared anonymous memory.  The first task that maps an object creates it
 * (as large as the furthest any task maps it); every other mapping of the
 * same object, in this task or another, maps that very object through the
 * first one's /proc/PID/map_files entry, so that a write by one is seen by
 * the others.  A mapping's pages are filled unless a mapping built before
 * covered the same part of the object.
 */
static int map_shmem(struct rst_ctx *c, size_t first, size_t last, unsigned long len,
		     unsigned int prot, unsigned long flags)
{
	MmEntry *mm = c->t->mm;
	const VmaEntry *e = mm->vmas[first];
	struct shmem_built *b = shmem_find(c->img, e->file_id);
	struct proc_vmas vm;
	char path[96];
	unsigned long at;
	long fd, ret;
	size_t k;

	if (!b) {
		if (shmem_create(c, e, len, prot, flags, shmem_size(c->img, e->file_id)))
			return -1;
		mm_image(c->img)->built =
		    xrealloc(mm_image(c->img)->built,
			     (mm_image(c->img)->n + 1) * sizeof(*mm_image(c->img)->built));
		b = &mm_image(c->img)->built[mm_image(c->img)->n++];
		*b = (struct shmem_built){ e->file_id, c->rt.pid, e->start, e->end };
		shmem_fills(b, e->pgoff, len);
		return 0;
	}
	/* the creator's mapping as the kernel has it now (pieces may have merged) */
	if (proc_parse_maps(b->host_pid, &vm))
		return -1;
	for (k = 0; k < vm.n; k++)
		if (vm.v[k].start <= b->start && b->start < vm.v[k].end) {
			b->start = vm.v[k].start;
			b->end = vm.v[k].end;
		}
	proc_vmas_free(&vm);
	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", b->host_pid, b->start, b->end);
	at = mm_rarg(c, path, strlen(path) + 1);
	if (!at || mm_rcall(c, "open shared memory", __NR_open, at, O_RDWR, 0, 0, 0, 0, &fd))
		return -1;
	ret = mm_rcall(c, "mmap of shared memory", __NR_mmap, e->start, len, prot,
		       (flags & ~MAP_ANONYMOUS) | MAP_SHARED, fd, e->pgoff, NULL);
	mm_rcall(c, "close", __NR_close, fd, 0, 0, 0, 0, 0, NULL);
	if (shmem_covered(b, e->pgoff, len)) {
		for (k = first; k <= last; k++)
			c->filled[k] = 1; /* its pages are there already */
	} else {
		shmem_fills(b, e->pgoff, len);
	}
	return ret;
}

int mm_map_one(struct rst_ctx *c, size_t i, size_t *last)
{
	MmEntry *mm = c->t->mm;
	const VmaEntry *e = mm->vmas[i];
	unsigned long len = e->end - e->start, flags = MAP_FIXED;
	unsigned int prot = e->prot;
	long fd = -1, off = 0;

	*last = i;
	if (vma_has_pages(c->t->pm, e))
		prot |= PROT_WRITE;
	switch (e->kind) {
	case VMA_KIND__VMA_ANON_PRIVATE:
		/* MAP_DROPPABLE is a mapping type of its own, instead of MAP_PRIVATE */
		flags |= (e->madv & VMF_DROPPABLE ? MAP_DROPPABLE : MAP_PRIVATE) | MAP_ANONYMOUS;
		break;
	case VMA_KIND__VMA_ANON_SHARED:
		flags |= MAP_SHARED | MAP_ANONYMOUS;
		*last = shmem_group_end(mm, i);
		len = mm->vmas[*last]->end - e->start;
		prot |= PROT_WRITE; /* pieces get their own protection afterwards */
		if (!c->in_child)
			return map_shmem(c, i, *last, len, prot, flags);
		break;
	case VMA_KIND__VMA_FILE_PRIVATE:
	case VMA_KIND__VMA_FILE_SHARED:
		flags |= e->kind == VMA_KIND__VMA_FILE_SHARED ? MAP_SHARED : MAP_PRIVATE;
		fd = svc_fd(c, SVC_FILES) + e->file_id - 1;
		off = e->pgoff;
		break;
	case VMA_KIND__VMA_SYSV_SHM:
		return c->in_child ? 1 : sysvipc_vma_map(c, e);
	default:
		return 0;
	}
	if (e->growsdown)
		flags |= MAP_GROWSDOWN;
	if (e->noreserve)
		flags |= MAP_NORESERVE;
	if (c->in_child) {
		/* never on top of our own mappings: those are left for the controller */
		void *p = mmap((void *)e->start, len, prot,
			       (flags & ~MAP_FIXED) | MAP_FIXED_NOREPLACE, fd, off);

		if (p == MAP_FAILED)
			return 1;
		if (p != (void *)e->start) {
			munmap(p, len);
			return 1;
		}
		return 0;
	}
	return mm_rcall(c, "mmap", __NR_mmap, e->start, len, prot, flags, fd, off, NULL);
}

static const struct {
	unsigned int flag;
	int advice;
} madv_table[] = {
	{ VMF_DONTCOPY, MADV_DONTFORK },   { VMF_WIPEONFORK, MADV_WIPEONFORK },
	{ VMF_HUGEPAGE, MADV_HUGEPAGE },   { VMF_NOHUGEPAGE, MADV_NOHUGEPAGE },
	{ VMF_DONTDUMP, MADV_DONTDUMP },   { VMF_MERGEABLE, MADV_MERGEABLE },
	{ VMF_SEQ_READ, MADV_SEQUENTIAL }, { VMF_RAND_READ, MADV_RANDOM },
};

int mm_finish_vma(struct rst_ctx *c, const VmaEntry *e)
{
	unsigned long len = e->end - e->start;
	size_t k;

	if (e->kind == VMA_KIND__VMA_SPECIAL)
		return 0;
	/* only mappings opened up for filling need their protection back */
	if ((vma_has_pages(c->t->pm, e) || e->kind == VMA_KIND__VMA_ANON_SHARED) &&
	    !(e->prot & PROT_WRITE) &&
	    mm_rcall(c, "mprotect", __NR_mprotect, e->start, len, e->prot, 0, 0, 0, NULL))
		return -1;
	for (k = 0; k < ARRAY_SIZE(madv_table); k++)
		if ((e->madv & madv_table[k].flag) &&
		    mm_rcall(c, "madvise", __NR_madvise, e->start, len, madv_table[k].advice, 0, 0,
			     0, NULL))
			return -1;
	if (e->name && (!strncmp(e->name, "[anon:", 6) || !strncmp(e->name, "[anon_shmem:", 12))) {
		const char *n = strchr(e->name, ':') + 1;
		size_t nl = strlen(n);
		char name[256];

		if (nl == 0 || nl >= sizeof(name))
			return 0;
		unsigned long at;

		memcpy(name, n, nl - 1); /* drop the closing ']' */
		name[nl - 1] = '\0';
		at = mm_rarg(c, name, nl);
		if (!at || mm_rcall(c, "naming an anonymous mapping", __NR_prctl, PR_SET_VMA,
				    PR_SET_VMA_ANON_NAME, e->start, len, at, 0, NULL))
			return -1;
	}
	if (e->locked && mm_rcall(c, "mlock", __NR_mlock, e->start, len, 0, 0, 0, 0, NULL))
		return -1;
	return mempolicy_vma_restore(c, e);
}

int mm_restore_mm_fields(struct rst_ctx *c)
{
	MmEntry *mm = c->t->mm;
	struct prctl_mm_map map = {
		.start_code = mm->start_code,
		.end_code = mm->end_code,
		.start_data = mm->start_data,
		.end_data = mm->end_data,
		.start_brk = mm->start_brk,
		.brk = mm->brk,
		.start_stack = mm->start_stack,
		.arg_start = mm->arg_start,
		.arg_end = mm->arg_end,
		.env_start = mm->env_start,
		.env_end = mm->env_end,
		.auxv_size = mm->n_auxv * sizeof(uint64_t),
		.exe_fd = mm->has_exe_file_id
			      ? (uint32_t)(svc_fd(c, SVC_FILES) + mm->exe_file_id - 1)
			      : (uint32_t)-1,
	};
	unsigned long auxv_at = c->rt.scratch + sizeof(map);

	if (sizeof(map) + map.auxv_size > c->rt.scratch_len) {
		pr_err("pid %u: auxv too large\n", c->t->te->pid);
		return -1;
	}
	map.auxv = (__u64 *)auxv_at;
	if (remote_write(c->rt.pid, auxv_at, mm->auxv, map.auxv_size) ||
	    remote_write(c->rt.pid, c->rt.scratch, &map, sizeof(map)))
		return -1;
	return mm_rcall(c, "prctl(PR_SET_MM_MAP)", __NR_prctl, PR_SET_MM, PR_SET_MM_MAP,
			c->rt.scratch, sizeof(map), 0, 0, NULL);
}
