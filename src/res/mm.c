/*
 * The address space: every mapping of /proc/PID/smaps, the mm fields
 * (code/data/brk/stack/arg/env bounds, auxv, exe file), and the contents
 * of the pages that only the process's memory holds.
 *
 * Mappings of memfds and deleted files name the file_entry that saves
 * their inode (fsobj.c); the restore child maps the inode its subtree's
 * opener recreated, so a mapping shared between tasks stays shared.
 *
 * Dump: PAGEMAP_SCAN finds present or swapped pages that are neither the
 * shared zero page nor page cache, so never-touched and untouched-file
 * pages never reach the image.  Shared anonymous memory is read through
 * its map_files entry with SEEK_DATA.  Pages stream from the target with
 * process_vm_readv into one fixed buffer, so stasis's memory does not grow
 * with the target's.
 *
 * Restore: the restore child is stripped of every mapping but a small
 * trampoline; then each mapping is created at its address with remote
 * mmap, pages are filled by remote preadv straight from the image file
 * (one copy, kernel to kernel), and PR_SET_MM_MAP puts the mm fields back.
 */
#include <fcntl.h>
#include <linux/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "compat.h"
#include "files.h"
#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

#define TASK_SIZE_4L 0x7ffffffff000UL
#define PAGES_BUF    IMG_PAGES_BUF
#define IOV_BATCH    1024
#define VMA_MADV_MASK                                                                   \
	(VMF_DONTCOPY | VMF_WIPEONFORK | VMF_HUGEPAGE | VMF_NOHUGEPAGE | VMF_DONTDUMP | \
	 VMF_MERGEABLE)

/* Dump: what stage 1 reads remotely and stage 2 saves, per task. */
struct mm_task {
	MmEntry *mm;
	unsigned long brk;
};

/* Restore: shared anonymous objects built so far, by their dump-time inode. */
struct mm_image {
	struct shmem_built {
		uint64_t ino;
		pid_t host_pid;		  /* the task that created it */
		unsigned long start, end; /* one of its mappings there */
	} * built;
	size_t n;
};

static struct mm_task *mm_task(struct dump_task *dt)
{
	return res_dump_task_state(dt, &mm_res);
}

static struct mm_image *mm_image(struct image *img)
{
	return res_image_state(img, &mm_res);
}

/* ---------------------------------------------------------------- dump */

static bool vma_is_special_name(const char *path)
{
	return path[0] == '[' && strncmp(path, "[anon:", 6) && strncmp(path, "[anon_shmem:", 12) &&
	       strcmp(path, "[heap]") && strcmp(path, "[stack]");
}

/* Kernel-provided mappings stasis knows how to recreate. */
static bool special_supported(const char *path)
{
	return !strcmp(path, "[vdso]") || !strcmp(path, "[vvar]") || !strcmp(path, "[vvar_vclock]");
}

static uint32_t mm_file_id(MmEntry *mm, const char *path, const struct stat *st, bool writable)
{
	size_t i;
	MappedFile *f;

	for (i = 0; i < mm->n_files; i++) {
		f = mm->files[i];
		if (f->dev == st->st_dev && f->ino == st->st_ino) {
			f->writable |= writable;
			return f->id;
		}
	}
	f = xmalloc(sizeof(*f));
	mapped_file__init(f);
	f->id = mm->n_files + 1;
	f->path = xstrdup(path);
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->writable = writable;
	mm->files = xrealloc(mm->files, (mm->n_files + 1) * sizeof(*mm->files));
	mm->files[mm->n_files++] = f;
	return f->id;
}

/*
 * Files checked already in this dump, by the device and inode /proc/PID/maps
 * shows: a tree maps the same libraries over and over.
 */
static struct checked_file {
	unsigned int major, minor;
	unsigned long ino;
	char *path;
	struct stat st;
} * checked;
static size_t nchecked;

static bool known_file(const struct proc_vma *v, struct stat *st)
{
	size_t i;

	for (i = 0; i < nchecked; i++)
		if (checked[i].ino == v->ino && checked[i].major == v->dev_major &&
		    checked[i].minor == v->dev_minor && !strcmp(checked[i].path, v->path)) {
			*st = checked[i].st;
			return true;
		}
	return false;
}

static void remember_file(const struct proc_vma *v, const struct stat *st)
{
	checked = xrealloc(checked, (nchecked + 1) * sizeof(*checked));
	checked[nchecked++] =
	    (struct checked_file){ v->dev_major, v->dev_minor, v->ino, xstrdup(v->path), *st };
}

/*
 * A memfd or deleted file (mapped, or the executable): its inode is saved
 * once, as a file_entry; the mapped_file names it.
 */
static uint32_t mm_fsobj_file(struct dump_ctx *ctx, struct dump_task *dt, const char *what,
			      const char *src, const char *link, bool writable)
{
	MappedFile *f = NULL;
	struct stat st;
	uint32_t id;
	size_t i;

	if (fsobj_get(ctx, dt->pid, what, src, link, &id, &st))
		return 0;
	for (i = 0; i < mm_task(dt)->mm->n_files; i++)
		if (mm_task(dt)->mm->files[i]->has_fsobj_file &&
		    mm_task(dt)->mm->files[i]->fsobj_file == id)
			f = mm_task(dt)->mm->files[i];
	if (!f) {
		uint32_t n = mm_file_id(mm_task(dt)->mm, link, &st, false);

		f = mm_task(dt)->mm->files[n - 1]; /* after the call: it may move the array */
		f->has_fsobj_file = true;
		f->fsobj_file = id;
	}
	f->writable |= writable;
	return f->id;
}

static int vma_fsobj(struct dump_ctx *ctx, struct dump_task *dt, const struct proc_vma *v,
		     VmaEntry *e)
{
	char mf[96], what[64];

	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%lx-%lx", dt->pid, v->start, v->end);
	snprintf(what, sizeof(what), "mapping %lx-%lx", v->start, v->end);
	if (v->shared && (v->prot & PROT_WRITE) &&
	    fsobj_check_shared_write(dt->pid, what, mf, v->path))
		return -1;
	e->file_id =
	    mm_fsobj_file(ctx, dt, what, mf, v->path, v->shared && (v->vmflags & VMF_MAYWRITE));
	if (!e->file_id)
		return -1;
	e->has_file_id = true;
	e->has_pgoff = true;
	e->pgoff = v->pgoff;
	e->kind = v->shared ? VMA_KIND__VMA_FILE_SHARED : VMA_KIND__VMA_FILE_PRIVATE;
	return 0;
}

static int vma_file(struct dump_task *dt, const struct proc_vma *v, VmaEntry *e)
{
	char mf[96];
	struct stat st, pst;

	if (v->vmflags & (VMF_IO | VMF_PFNMAP)) {
		pr_err("pid %d mapping %lx-%lx: device mapping of %s is not supported\n", dt->pid,
		       v->start, v->end, v->path);
		return -1;
	}
	if (!known_file(v, &st)) {
		snprintf(mf, sizeof(mf), "/proc/%d/map_files/%lx-%lx", dt->pid, v->start, v->end);
		if (stat(mf, &st)) {
			pr_perror("pid %d: cannot stat the file behind mapping %lx-%lx", dt->pid,
				  v->start, v->end);
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			pr_err("pid %d mapping %lx-%lx: %s is not a regular file; not supported\n",
			       dt->pid, v->start, v->end, v->path);
			return -1;
		}
		if (stat(v->path, &pst) || pst.st_dev != st.st_dev || pst.st_ino != st.st_ino) {
			pr_err("pid %d mapping %lx-%lx: %s no longer names the mapped file\n",
			       dt->pid, v->start, v->end, v->path);
			return -1;
		}
		remember_file(v, &st);
	}
	e->has_file_id = true;
	e->file_id =
	    mm_file_id(mm_task(dt)->mm, v->path, &st, v->shared && (v->vmflags & VMF_MAYWRITE));
	e->has_pgoff = true;
	e->pgoff = v->pgoff;
	e->kind = v->shared ? VMA_KIND__VMA_FILE_SHARED : VMA_KIND__VMA_FILE_PRIVATE;
	return 0;
}

static int vma_classify(struct dump_ctx *ctx, struct dump_task *dt, const struct proc_vma *v,
			VmaEntry *e)
{
	const char *p = v->path;

	if (p[0] == '[' && vma_is_special_name(p)) {
		if (!special_supported(p)) {
			pr_err("pid %d mapping %lx-%lx: special mapping %s is not supported\n",
			       dt->pid, v->start, v->end, p);
			return -1;
		}
		e->kind = VMA_KIND__VMA_SPECIAL;
		e->name = xstrdup(p);
		return 0;
	}
	if (p[0] == '[' || p[0] == '\0') {
		e->kind = v->shared ? VMA_KIND__VMA_ANON_SHARED : VMA_KIND__VMA_ANON_PRIVATE;
		if (p[0])
			e->name = xstrdup(p);
		return 0;
	}
	if (v->shared && v->ino && !strcmp(p, "/dev/zero (deleted)")) {
		/* MAP_SHARED|MAP_ANONYMOUS: a shmem object of its own */
		e->kind = VMA_KIND__VMA_ANON_SHARED;
		e->has_pgoff = true;
		e->pgoff = v->pgoff;
		e->has_file_id = true;
		e->file_id = 0;
		return 0;
	}
	if (!strncmp(p, "/SYSV", 5)) {
		pr_err("pid %d mapping %lx-%lx: %s (SysV shm) is not supported yet\n", dt->pid,
		       v->start, v->end, p);
		return -1;
	}
	if (fsobj_link_is_ghost(p))
		return vma_fsobj(ctx, dt, v, e);
	return vma_file(dt, v, e);
}

static int dump_vmas(struct dump_ctx *ctx, struct dump_task *dt, struct proc_vmas *vmas)
{
	MmEntry *mm = mm_task(dt)->mm;
	size_t i;

	mm->vmas = xzalloc(vmas->n * sizeof(*mm->vmas));
	for (i = 0; i < vmas->n; i++) {
		const struct proc_vma *v = &vmas->v[i];
		VmaEntry *e;

		if (!strcmp(v->path, "[vsyscall]"))
			continue; /* fixed by the kernel, identical everywhere */
		if (v->start >= dt_rt(dt)->inject_addr &&
		    v->end <= dt_rt(dt)->inject_addr + dt_rt(dt)->inject_len)
			continue; /* our own scratch mapping */
		if (v->start < dt_rt(dt)->inject_addr + dt_rt(dt)->inject_len &&
		    dt_rt(dt)->inject_addr < v->end) {
			pr_err("pid %d: mapping %lx-%lx overlaps stasis's scratch area\n", dt->pid,
			       v->start, v->end);
			return -1;
		}
		e = xmalloc(sizeof(*e));
		vma_entry__init(e);
		mm->vmas[mm->n_vmas++] = e;
		e->start = v->start;
		e->end = v->end;
		e->prot = v->prot;
		if (vma_classify(ctx, dt, v, e))
			return -1;
		if (v->vmflags & VMA_MADV_MASK) {
			e->has_madv = true;
			e->madv = v->vmflags & VMA_MADV_MASK;
		}
		if (v->vmflags & VMF_GROWSDOWN)
			e->has_growsdown = e->growsdown = true;
		if (v->vmflags & VMF_LOCKED)
			e->has_locked = e->locked = true;
		if (v->vmflags & VMF_NORESERVE)
			e->has_noreserve = e->noreserve = true;
		/* ino of shared anon memory tells which VMAs share one object */
		if (e->kind == VMA_KIND__VMA_ANON_SHARED) {
			e->has_file_id = true;
			e->file_id = v->ino;
		}
	}
	return 0;
}

static int dump_vdso_hash(struct dump_task *dt)
{
	MmEntry *mm = mm_task(dt)->mm;
	size_t i;

	for (i = 0; i < mm->n_vmas; i++) {
		VmaEntry *e = mm->vmas[i];
		size_t len = e->end - e->start;
		void *buf;

		if (e->kind != VMA_KIND__VMA_SPECIAL || strcmp(e->name, "[vdso]"))
			continue;
		buf = xmalloc(len);
		if (remote_read(dt->pid, e->start, buf, len)) {
			free(buf);
			return -1;
		}
		mm->has_vdso_hash = true;
		mm->vdso_hash = XXH64(buf, len, 0);
		free(buf);
	}
	return 0;
}

static int dump_exe(struct dump_ctx *ctx, struct dump_task *dt)
{
	char path[PATH_MAX], proc[64];
	struct stat st;

	if (readlink_proc(dt->pid, "exe", path, sizeof(path)) < 0) {
		pr_perror("pid %d: cannot read its executable link", dt->pid);
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/%d/exe", dt->pid);
	if (fsobj_link_is_ghost(path)) {
		/* deleted since it was started (an upgrade): saved like any deleted file */
		mm_task(dt)->mm->exe_file_id =
		    mm_fsobj_file(ctx, dt, "executable", proc, path, false);
		mm_task(dt)->mm->has_exe_file_id = mm_task(dt)->mm->exe_file_id != 0;
		return mm_task(dt)->mm->has_exe_file_id ? 0 : -1;
	}
	if (stat(proc, &st)) {
		pr_perror("pid %d: cannot stat its executable", dt->pid);
		return -1;
	}
	mm_task(dt)->mm->has_exe_file_id = true;
	mm_task(dt)->mm->exe_file_id = mm_file_id(mm_task(dt)->mm, path, &st, false);
	return 0;
}

/* The one part of the mm that needs the task to run a syscall: brk. */
static int mm_dump_remote(struct dump_ctx *ctx, struct dump_task *dt)
{
	long brk;

	if (remote_syscall(dt_rt(dt), &brk, __NR_brk, 0, 0, 0, 0, 0, 0))
		return -1;
	mm_task(dt)->brk = brk;
	return 0;
}

static int mm_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct proc_vmas vmas;
	struct proc_stat st;
	MmEntry *mm;
	char *auxv;
	size_t len;
	int ret = -1;

	mm = mm_task(dt)->mm = xmalloc(sizeof(*mm));
	mm_entry__init(mm);
	mm->pid = dt->pid;
	if (proc_parse_stat(dt->pid, &st))
		return -1;
	mm->start_code = st.start_code;
	mm->end_code = st.end_code;
	mm->start_data = st.start_data;
	mm->end_data = st.end_data;
	mm->start_brk = st.start_brk;
	mm->start_stack = st.start_stack;
	mm->arg_start = st.arg_start;
	mm->arg_end = st.arg_end;
	mm->env_start = st.env_start;
	mm->env_end = st.env_end;
	mm->brk = mm_task(dt)->brk;
	auxv = read_proc(dt->pid, "auxv", &len);
	if (!auxv) {
		pr_perror("cannot read /proc/%d/auxv", dt->pid);
		return -1;
	}
	mm->n_auxv = len / sizeof(uint64_t);
	mm->auxv = (uint64_t *)auxv;
	if (dump_exe(ctx, dt))
		return -1;
	if (proc_parse_smaps(dt->pid, &vmas))
		return -1;
	if (dump_vmas(ctx, dt, &vmas) || dump_vdso_hash(dt))
		goto out;
	ret = 0;
out:
	proc_vmas_free(&vmas);
	return ret;
}

/* A run of saved pages; 'forced' runs need /proc/PID/mem (unreadable VMA). */
struct run {
	unsigned long addr;
	unsigned long nr;
	bool forced;
};

struct runs {
	struct run *r;
	size_t n, cap;
	uint64_t pages;
};

static void runs_add(struct runs *rs, unsigned long addr, unsigned long nr, bool forced)
{
	if (rs->n && rs->r[rs->n - 1].forced == forced &&
	    rs->r[rs->n - 1].addr + rs->r[rs->n - 1].nr * PAGE_SIZE == addr) {
		rs->r[rs->n - 1].nr += nr;
	} else {
		if (rs->n == rs->cap) {
			rs->cap = rs->cap ? rs->cap * 2 : 256;
			rs->r = xrealloc(rs->r, rs->cap * sizeof(*rs->r));
		}
		rs->r[rs->n++] = (struct run){ addr, nr, forced };
	}
	rs->pages += nr;
}

/* Fallback for kernels without PAGEMAP_SCAN: one u64 per page. */
static int scan_pagemap_legacy(int pm_fd, const VmaEntry *e, struct runs *rs, bool forced)
{
	uint64_t ents[512];
	unsigned long addr;

	for (addr = e->start; addr < e->end;) {
		size_t n = min((e->end - addr) / PAGE_SIZE, ARRAY_SIZE(ents)), i;

		if (pread(pm_fd, ents, n * 8, addr / PAGE_SIZE * 8) != (ssize_t)(n * 8)) {
			pr_perror("cannot read pagemap at %lx", addr);
			return -1;
		}
		for (i = 0; i < n; i++, addr += PAGE_SIZE) {
			bool present = ents[i] >> 63 & 1, swapped = ents[i] >> 62 & 1;
			bool file = ents[i] >> 61 & 1;

			if ((present || swapped) && !file)
				runs_add(rs, addr, 1, forced);
		}
	}
	return 0;
}

static int scan_private(int pm_fd, const VmaEntry *e, struct runs *rs, bool forced)
{
	static bool no_scan;
	struct page_region regions[256];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = e->start,
		.end = e->end,
		.vec = (uintptr_t)regions,
		.vec_len = ARRAY_SIZE(regions),
		.category_inverted = PAGE_IS_PFNZERO | PAGE_IS_FILE,
		.category_mask = PAGE_IS_PFNZERO | PAGE_IS_FILE,
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
	};

	if (no_scan)
		return scan_pagemap_legacy(pm_fd, e, rs, forced);
	while (arg.start < e->end) {
		long n = ioctl(pm_fd, PAGEMAP_SCAN, &arg), i;

		if (n < 0) {
			if (errno == ENOTTY || errno == EINVAL) {
				no_scan = true;
				pr_info("PAGEMAP_SCAN unavailable, reading pagemap\n");
				return scan_pagemap_legacy(pm_fd, e, rs, forced);
			}
			pr_perror("PAGEMAP_SCAN %llx-%llx", (unsigned long long)arg.start,
				  (unsigned long long)arg.end);
			return -1;
		}
		for (i = 0; i < n; i++)
			runs_add(rs, regions[i].start,
				 (regions[i].end - regions[i].start) / PAGE_SIZE, forced);
		arg.start = arg.walk_end;
	}
	return 0;
}

static int scan_shared_anon(pid_t pid, const VmaEntry *e, struct runs *rs, bool forced)
{
	unsigned long len = e->end - e->start;
	char path[96];
	off_t data, hole, base = e->pgoff;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)e->start, (unsigned long long)e->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("pid %d: cannot open shared memory %s", pid, path);
		return -1;
	}
	for (data = base; data < (off_t)(base + len); data = hole) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0 || data >= (off_t)(base + len))
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > (off_t)(base + len))
			hole = base + len;
		runs_add(rs, e->start + (data - base), (hole - data) / PAGE_SIZE, forced);
	}
	close(fd);
	return 0;
}

static int collect_runs(struct dump_task *dt, struct runs *rs)
{
	char path[64];
	size_t i;
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", dt->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	for (i = 0; i < mm_task(dt)->mm->n_vmas && !ret; i++) {
		const VmaEntry *e = mm_task(dt)->mm->vmas[i];
		bool forced = !(e->prot & PROT_READ);

		switch (e->kind) {
		case VMA_KIND__VMA_ANON_PRIVATE:
		case VMA_KIND__VMA_FILE_PRIVATE:
			ret = scan_private(fd, e, rs, forced);
			break;
		case VMA_KIND__VMA_ANON_SHARED:
			ret = scan_shared_anon(dt->pid, e, rs, forced);
			break;
		default:
			break; /* file-shared pages live in the file; specials are the kernel's */
		}
	}
	close(fd);
	return ret;
}

struct page_reader {
	pid_t pid;
	struct img_writer *w;
	char *buf; /* the image writer's buffer being filled, or NULL */
	size_t fill;
	struct iovec riov[IOV_BATCH];
	int n;
	int mem_fd;
};

static int reader_flush(struct page_reader *pr)
{
	struct iovec l = { pr->buf, pr->fill };
	ssize_t got;

	if (!pr->fill)
		return 0;
	got = process_vm_readv(pr->pid, &l, 1, pr->riov, pr->n, 0);
	if (got != (ssize_t)pr->fill) {
		pr_err("pid %d: cannot read its memory at %p: %s\n", pr->pid, pr->riov[0].iov_base,
		       got < 0 ? strerror(errno) : "short read");
		return -1;
	}
	if (img_pages_submit(pr->w, pr->buf, pr->fill))
		return -1;
	pr->buf = NULL;
	pr->fill = 0;
	pr->n = 0;
	return 0;
}

/* Pages of PROT_NONE/write-only mappings: /proc/PID/mem reads them anyway. */
static int reader_forced(struct page_reader *pr, const struct run *r)
{
	unsigned long off, len = r->nr * PAGE_SIZE;

	if (pr->mem_fd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", pr->pid);
		pr->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (pr->mem_fd < 0) {
			pr_perror("cannot open %s", path);
			return -1;
		}
	}
	for (off = 0; off < len;) {
		size_t chunk = min(len - off, PAGES_BUF);
		char *buf = img_pages_buf(pr->w);

		if (pread(pr->mem_fd, buf, chunk, r->addr + off) != (ssize_t)chunk) {
			pr_perror("pid %d: cannot read memory at %lx", pr->pid, r->addr + off);
			return -1;
		}
		if (img_pages_submit(pr->w, buf, chunk))
			return -1;
		off += chunk;
	}
	return 0;
}

/*
 * Gather runs into one writer buffer per process_vm_readv call; the image
 * writer's thread hashes and writes a buffer while the next one fills.
 */
static int write_pages(struct dump_task *dt, struct img_writer *w, const struct runs *rs)
{
	struct page_reader pr = { .pid = dt->pid, .w = w, .mem_fd = -1 };
	size_t i;
	int ret = -1;

	for (i = 0; i < rs->n; i++) {
		const struct run *r = &rs->r[i];
		unsigned long off = 0, len = r->nr * PAGE_SIZE;

		if (r->forced) {
			if (reader_flush(&pr) || reader_forced(&pr, r))
				goto out;
			continue;
		}
		while (off < len) {
			size_t take;

			if (!pr.buf)
				pr.buf = img_pages_buf(w);
			take = min(len - off, PAGES_BUF - pr.fill);
			pr.riov[pr.n].iov_base = (void *)(r->addr + off);
			pr.riov[pr.n].iov_len = take;
			pr.n++;
			pr.fill += take;
			off += take;
			if ((pr.fill == PAGES_BUF || pr.n == IOV_BATCH) && reader_flush(&pr))
				goto out;
		}
	}
	ret = reader_flush(&pr);
out:
	if (pr.mem_fd >= 0)
		close(pr.mem_fd);
	return ret;
}

static int mm_dump_pages(struct dump_ctx *ctx, struct dump_task *dt)
{
	PagemapEntry pm = PAGEMAP_ENTRY__INIT;
	struct runs rs = { 0 };
	PageRun *runs = NULL, **runp = NULL;
	size_t i;
	int ret = -1;

	uint64_t t0 = now_ns(), t1;

	if (collect_runs(dt, &rs))
		goto out;
	t1 = now_ns();
	if (img_pages_begin(&ctx->w, rs.pages * PAGE_SIZE))
		goto out;
	if (write_pages(dt, &ctx->w, &rs)) {
		img_pages_end(&ctx->w, &pm.pages_hash);
		goto out;
	}
	if (img_pages_end(&ctx->w, &pm.pages_hash))
		goto out;
	pm.pid = dt->pid;
	pm.nr_pages = rs.pages;
	runs = xzalloc(rs.n * sizeof(*runs));
	runp = xzalloc(rs.n * sizeof(*runp));
	for (i = 0; i < rs.n; i++) {
		page_run__init(&runs[i]);
		runs[i].vaddr = rs.r[i].addr;
		runs[i].nr_pages = rs.r[i].nr;
		runp[i] = &runs[i];
	}
	pm.n_runs = rs.n;
	pm.runs = runp;
	ret = img_write_msg(&ctx->w, IMG_PAGEMAP, &pm.base);
	pr_info("pid %d: %llu pages in %zu runs (scan %.1f ms, copy %.1f ms)\n", dt->pid,
		(unsigned long long)rs.pages, rs.n, (t1 - t0) / 1e6, (now_ns() - t1) / 1e6);
out:
	free(runs);
	free(runp);
	free(rs.r);
	return ret;
}

/* ------------------------------------------------------------- restore */

/* The restore kernel must offer the very vDSO the image's code calls into. */
static int mm_vdso_check(struct image *img, const struct restore_opts *o)
{
	unsigned long base = getauxval(AT_SYSINFO_EHDR);
	struct proc_vmas vmas;
	size_t i, t;
	uint64_t hash = 0;

	if (proc_parse_maps(getpid(), &vmas))
		return -1;
	for (i = 0; i < vmas.n; i++)
		if (vmas.v[i].start == base)
			hash = XXH64((void *)base, vmas.v[i].end - vmas.v[i].start, 0);
	proc_vmas_free(&vmas);
	for (t = 0; t < img->ntasks; t++) {
		MmEntry *mm = img->tasks[t].mm;

		if (mm && mm->has_vdso_hash && mm->vdso_hash != hash) {
			pr_err("pid %u: the image's vDSO differs from this kernel's (dumped on %s, "
			       "restoring on another kernel build); not supported yet\n",
			       mm->pid, img->hdr->kernel_release);
			return -1;
		}
	}
	return 0;
}

/* The first VMA of mm ending above a (the loader checked they are sorted). */
static size_t vma_after(const MmEntry *mm, unsigned long a)
{
	size_t lo = 0, hi = mm->n_vmas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mm->vmas[mid]->end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* 0 if [a, a + len) is free in both layouts, else the end of what is there. */
static unsigned long range_busy(const struct proc_vmas *ours, const MmEntry *mm, unsigned long a,
				unsigned long len)
{
	size_t i;

	for (i = 0; i < ours->n; i++)
		if (a < ours->v[i].end && ours->v[i].start < a + len)
			return ours->v[i].end;
	i = vma_after(mm, a);
	if (i < mm->n_vmas && mm->vmas[i]->start < a + len)
		return mm->vmas[i]->end;
	return 0;
}

#define TRAMP_STEP 0x1000000UL

/*
 * Pick where the trampoline lives during the transplant: a range free both
 * in our own layout (the child is a copy of us) and in the target's.  The
 * candidates are 16 MiB apart; past a busy range, the next one is the
 * first candidate above it.
 */
static int mm_pick_trampoline(struct rst_ctx *c)
{
	/* our own layout, read once: every restore child starts as a copy of it */
	static struct proc_vmas ours;
	static bool have_ours;
	unsigned long a, busy;
	size_t len = 16 * PAGE_SIZE;

	if (!have_ours) {
		if (proc_parse_maps(getpid(), &ours))
			return -1;
		have_ours = true;
	}
	for (a = 0x10000000UL; a < TASK_SIZE_4L - len; a = max(a + TRAMP_STEP, busy)) {
		busy = range_busy(&ours, c->t->mm, a, len);
		if (!busy)
			break;
		busy = (busy + TRAMP_STEP - 1) & ~(TRAMP_STEP - 1);
	}
	if (a >= TASK_SIZE_4L - len) {
		pr_err("pid %u: no room for the restore trampoline\n", c->t->te->pid);
		return -1;
	}
	c->tramp = a;
	c->tramp_len = len;
	return 0;
}

static int open_mapped_file(struct rst_ctx *c, const MappedFile *f, int target_fd)
{
	struct stat st;
	int fd;

	if (f->has_fsobj_file) {
		char self[64];

		/*
		 * A memfd or deleted file: the inode our subtree's opener made,
		 * read-only unless a shared mapping may write it (an executable
		 * must have no writer).
		 */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", c->shared_base + f->fsobj_file);
		fd = open(self, (f->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("pid %u: mapped file %s was not recreated", c->t->te->pid,
				  f->path);
			return -1;
		}
		goto place;
	}
	fd = open(f->path, (f->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("pid %u: cannot open mapped file %s", c->t->te->pid, f->path);
		return -1;
	}
	if (fstat(fd, &st) ||
	    ((st.st_ino != f->ino || st.st_dev != f->dev) && !c->opts->skip_file_check)) {
		pr_err("pid %u: mapped file %s was replaced since the dump\n", c->t->te->pid,
		       f->path);
		close(fd);
		return -1;
	}
place:
	if (move_fd(fd, target_fd) < 0) {
		pr_perror("cannot place mapped file fd");
		close(fd);
		return -1;
	}
	return 0;
}

/* In the child: open mapped files as service fds and set up the trampoline. */
static int mm_restore_child(struct rst_ctx *c)
{
	static const unsigned char insn[8] = { 0x0f, 0x05, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc };
	MmEntry *mm = c->t->mm;
	void *p;
	size_t i;

	for (i = 0; i < mm->n_files; i++)
		if (open_mapped_file(c, mm->files[i], svc_fd(c, SVC_FILES) + mm->files[i]->id - 1))
			return -1;
	p = mmap((void *)c->tramp, c->tramp_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)c->tramp) {
		pr_perror("cannot map the restore trampoline at %lx", c->tramp);
		return -1;
	}
	memcpy(p, insn, sizeof(insn));
	if (mprotect(p, PAGE_SIZE, PROT_READ | PROT_EXEC)) {
		pr_perror("cannot protect the restore trampoline");
		return -1;
	}
	return 0;
}

/*
 * One mm syscall for the task being built: a plain syscall while the
 * restore child builds what it can itself, a remote one afterwards.
 */
static int rcall(struct rst_ctx *c, const char *what, long nr, unsigned long a1, unsigned long a2,
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
static unsigned long rarg(struct rst_ctx *c, const void *buf, size_t len)
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
static int unmap_own(struct rst_ctx *c)
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
			ret = rcall(c, "munmap", __NR_munmap, s, e - s, 0, 0, 0, 0, NULL);
		if (v) {
			s = v->start;
			e = v->end;
		}
	}
	proc_vmas_free(&now);
	return ret;
}

/* Recreate [vvar]/[vvar_vclock]/[vdso] at the image's address as one unit. */
static int map_vdso(struct rst_ctx *c)
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
	if (rcall(c, "arch_prctl(ARCH_MAP_VDSO_64)", __NR_arch_prctl, ARCH_MAP_VDSO_64, start, 0, 0,
		  0, 0, &ret))
		return -1;
	return 0;
}

/* After the transplant: the special mappings must sit where the image says. */
static int check_special_layout(struct rst_ctx *c)
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

static bool vma_has_pages(const PagemapEntry *pm, const VmaEntry *e)
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

/* How far a shared anonymous object extends over following VMAs. */
static size_t shmem_group_end(const MmEntry *mm, size_t i)
{
	const VmaEntry *e = mm->vmas[i];
	size_t j = i;

	while (j + 1 < mm->n_vmas) {
		const VmaEntry *n = mm->vmas[j + 1];

		if (n->kind != VMA_KIND__VMA_ANON_SHARED || n->file_id != e->file_id ||
		    n->start != mm->vmas[j]->end)
			break;
		j++;
	}
	return j;
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
 * Shared anonymous memory.  The first task that maps an object creates it
 * and fills it; every other task of the tree that mapped the same object
 * maps that very object, through the first one's /proc/PID/map_files
 * entry, so that a write by one is seen by the others.
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
		if (rcall(c, "mmap", __NR_mmap, e->start, len, prot, flags, -1, 0, NULL))
			return -1;
		mm_image(c->img)->built =
		    xrealloc(mm_image(c->img)->built,
			     (mm_image(c->img)->n + 1) * sizeof(*mm_image(c->img)->built));
		mm_image(c->img)->built[mm_image(c->img)->n++] =
		    (struct shmem_built){ e->file_id, c->rt.pid, e->start, e->end };
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
	at = rarg(c, path, strlen(path) + 1);
	if (!at || rcall(c, "open shared memory", __NR_open, at, O_RDWR, 0, 0, 0, 0, &fd))
		return -1;
	ret = rcall(c, "mmap of shared memory", __NR_mmap, e->start, len, prot,
		    (flags & ~MAP_ANONYMOUS) | MAP_SHARED, fd, e->pgoff, NULL);
	rcall(c, "close", __NR_close, fd, 0, 0, 0, 0, 0, NULL);
	for (k = first; k <= last; k++)
		c->filled[k] = 1; /* its pages are there already */
	return ret;
}

static int map_one(struct rst_ctx *c, size_t i, size_t *last)
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
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
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
	return rcall(c, "mmap", __NR_mmap, e->start, len, prot, flags, fd, off, NULL);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Saved pages split at VMA boundaries, so each piece is built by one side. */
struct page_batch {
	struct iovec *iov;
	size_t max, n;
	uint64_t off, next_off, total;
};

static int batch_flush(struct rst_ctx *c, struct page_batch *b)
{
	unsigned long iov_at;
	long got;

	if (!b->n)
		return 0;
	iov_at = rarg(c, b->iov, b->n * sizeof(*b->iov));
	if (!iov_at || rcall(c, "preadv of pages", __NR_preadv, svc_fd(c, SVC_IMAGE), iov_at, b->n,
			     b->off, 0, 0, &got))
		return -1;
	if ((uint64_t)got != b->total) {
		pr_err("pid %u: short page read from the image (%ld of %llu bytes)\n",
		       c->t->te->pid, got, (unsigned long long)b->total);
		return -1;
	}
	b->n = 0;
	b->total = 0;
	return 0;
}

static int batch_add(struct rst_ctx *c, struct page_batch *b, unsigned long addr, uint64_t len,
		     uint64_t off)
{
	/* one preadv reads one stretch of the file, at most 1 GiB */
	if (b->n && (b->n == b->max || off != b->next_off || b->total + len > (1UL << 30)) &&
	    batch_flush(c, b))
		return -1;
	if (!b->n)
		b->off = off;
	/* fault in large pieces in one call instead of a fault per page */
	if (len >= 64 * PAGE_SIZE) {
		long ret; /* an old kernel without it just takes the faults */

		if (c->in_child)
			madvise((void *)addr, len, MADV_POPULATE_WRITE);
		else if (remote_syscall(&c->rt, &ret, __NR_madvise, addr, len, MADV_POPULATE_WRITE,
					0, 0, 0))
			return -1;
	}
	b->iov[b->n].iov_base = (void *)addr;
	b->iov[b->n].iov_len = len;
	b->n++;
	b->total += len;
	b->next_off = off + len;
	return 0;
}

/* Fill the saved pages of the VMAs this side builds (premapped or not). */
static int fill_pages(struct rst_ctx *c, bool premapped)
{
	const PagemapEntry *pm = c->t->pm;
	MmEntry *mm = c->t->mm;
	struct page_batch b = { 0 };
	uint64_t off = c->t->pages_off;
	size_t r, v = 0;
	int ret = -1;

	b.max = c->in_child ? IOV_BATCH
			    : min((size_t)IOV_BATCH, c->rt.scratch_len / sizeof(struct iovec));
	b.iov = xmalloc(b.max * sizeof(*b.iov));
	for (r = 0; pm && r < pm->n_runs; r++) {
		unsigned long addr = pm->runs[r]->vaddr;
		uint64_t left = pm->runs[r]->nr_pages * PAGE_SIZE;

		while (left) {
			uint64_t len;

			while (v < mm->n_vmas && mm->vmas[v]->end <= addr)
				v++;
			if (v == mm->n_vmas || mm->vmas[v]->start > addr) {
				pr_err("pid %u: saved page at %lx lies outside every mapping\n",
				       c->t->te->pid, addr);
				goto out;
			}
			len = min(left, mm->vmas[v]->end - addr);
			if (!!c->premapped[v] == premapped && !c->filled[v] &&
			    batch_add(c, &b, addr, len, off))
				goto out;
			addr += len;
			off += len;
			left -= len;
		}
	}
	ret = batch_flush(c, &b);
out:
	free(b.iov);
	return ret;
}

static const struct {
	unsigned int flag;
	int advice;
} madv_table[] = {
	{ VMF_DONTCOPY, MADV_DONTFORK }, { VMF_WIPEONFORK, MADV_WIPEONFORK },
	{ VMF_HUGEPAGE, MADV_HUGEPAGE }, { VMF_NOHUGEPAGE, MADV_NOHUGEPAGE },
	{ VMF_DONTDUMP, MADV_DONTDUMP }, { VMF_MERGEABLE, MADV_MERGEABLE },
};

static int finish_vma(struct rst_ctx *c, const VmaEntry *e)
{
	unsigned long len = e->end - e->start;
	size_t k;

	if (e->kind == VMA_KIND__VMA_SPECIAL)
		return 0;
	/* only mappings opened up for filling need their protection back */
	if ((vma_has_pages(c->t->pm, e) || e->kind == VMA_KIND__VMA_ANON_SHARED) &&
	    !(e->prot & PROT_WRITE) &&
	    rcall(c, "mprotect", __NR_mprotect, e->start, len, e->prot, 0, 0, 0, NULL))
		return -1;
	for (k = 0; k < ARRAY_SIZE(madv_table); k++)
		if ((e->madv & madv_table[k].flag) &&
		    rcall(c, "madvise", __NR_madvise, e->start, len, madv_table[k].advice, 0, 0, 0,
			  NULL))
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
		at = rarg(c, name, nl);
		if (!at || rcall(c, "naming an anonymous mapping", __NR_prctl, PR_SET_VMA,
				 PR_SET_VMA_ANON_NAME, e->start, len, at, 0, NULL))
			return -1;
	}
	if (e->locked && rcall(c, "mlock", __NR_mlock, e->start, len, 0, 0, 0, 0, NULL))
		return -1;
	return 0;
}

static int restore_mm_fields(struct rst_ctx *c)
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
	return rcall(c, "prctl(PR_SET_MM_MAP)", __NR_prctl, PR_SET_MM, PR_SET_MM_MAP, c->rt.scratch,
		     sizeof(map), 0, 0, NULL);
}

static bool premappable(const VmaEntry *e)
{
	return e->kind == VMA_KIND__VMA_ANON_PRIVATE || e->kind == VMA_KIND__VMA_FILE_PRIVATE ||
	       e->kind == VMA_KIND__VMA_FILE_SHARED;
}

static bool overlaps(const struct proc_vmas *own, unsigned long s, unsigned long e)
{
	size_t i;

	for (i = 0; i < own->n; i++)
		if (own->v[i].start < e && s < own->v[i].end)
			return true;
	return false;
}

/*
 * In the restore child: build every mapping of the image that does not
 * collide with stasis's own, fill and finish it, with plain syscalls.
 * The controller does the rest remotely after the stop; c->premapped
 * tells it which (it reads the child's copy).
 */
static int mm_premap_child(struct rst_ctx *c)
{
	MmEntry *mm = c->t->mm;
	struct proc_vmas own;
	size_t i, last;
	int ret = -1;

	if (proc_parse_maps(0, &own))
		return -1;
	c->in_child = true;
	for (i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		int r;

		if (!premappable(e) || overlaps(&own, e->start, e->end) ||
		    (e->start < c->tramp + c->tramp_len && c->tramp < e->end))
			continue;
		r = map_one(c, i, &last);
		if (r < 0)
			goto out;
		c->premapped[i] = r == 0;
	}
	if (fill_pages(c, true))
		goto out;
	for (i = 0; i < mm->n_vmas; i++)
		if (c->premapped[i] && finish_vma(c, mm->vmas[i]))
			goto out;
	ret = 0;
out:
	c->in_child = false;
	proc_vmas_free(&own);
	return ret;
}

/* Remote: replace what is left of the child's address space with the image's. */
static int mm_restore_remote(struct rst_ctx *c)
{
	MmEntry *mm = c->t->mm;
	size_t i, last;

	c->rt.syscall_ip = c->tramp;
	c->rt.scratch = c->tramp + PAGE_SIZE;
	c->rt.scratch_len = c->tramp_len - PAGE_SIZE;
	/* what the child built itself, from its own copy of the array */
	if (remote_read(c->rt.pid, (unsigned long)c->premapped, c->premapped, mm->n_vmas))
		return -1;
	if (unmap_own(c) || map_vdso(c))
		return -1;
	for (i = 0; i < mm->n_vmas; i = last + 1) {
		last = i;
		if (!c->premapped[i] && map_one(c, i, &last))
			return -1;
	}
	if (fill_pages(c, false))
		return -1;
	for (i = 0; i < mm->n_vmas; i++)
		if (!c->premapped[i] && finish_vma(c, mm->vmas[i]))
			return -1;
	if (restore_mm_fields(c))
		return -1;
	return check_special_layout(c);
}

/* Stage 2, after the task record: the layout (its pages come last). */
static int mm_dump_write(struct dump_ctx *ctx, struct dump_task *dt)
{
	return img_write_msg(&ctx->w, IMG_MM, &mm_task(dt)->mm->base);
}

static void mm_dump_task_fini(struct dump_task *dt, void *state)
{
	struct mm_task *m = state;

	if (m->mm)
		mm_entry__free_unpacked(m->mm, NULL);
}

/* Before the fork: service fds for the mapped files (SVC_FILES on), per-VMA flags, trampoline. */
static int mm_restore_prepare(struct rst_ctx *c)
{
	c->premapped = xzalloc(c->t->mm->n_vmas + 1);
	c->filled = xzalloc(c->t->mm->n_vmas + 1);
	c->svc_files += c->t->mm->n_files;
	return mm_pick_trampoline(c);
}

/* Shared anonymous memory is created by one task and mapped from it by the others. */
static bool mm_reaches_other_tasks(const struct rst_ctx *c)
{
	const MmEntry *mm = c->t->mm;
	size_t i;

	for (i = 0; mm && i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND__VMA_ANON_SHARED)
			return true;
	return false;
}

static void mm_image_fini(struct image *img, void *state)
{
	free(((struct mm_image *)state)->built);
}

const struct res_ops mm_res = {
	.name = "mm",
	.dump_task_state_size = sizeof(struct mm_task),
	.image_state_size = sizeof(struct mm_image),
	.dump_remote = mm_dump_remote,
	.dump_local = mm_dump,
	.dump_write = mm_dump_write,
	.dump_data = mm_dump_pages,
	.dump_task_fini = mm_dump_task_fini,
	.restore_check = mm_vdso_check,
	.restore_prepare = mm_restore_prepare,
	.child = mm_restore_child,
	.child_late = mm_premap_child,
	.remote = mm_restore_remote,
	.reaches_other_tasks = mm_reaches_other_tasks,
	.image_fini = mm_image_fini,
};

/* Does the dumped task map the file dev:ino (its layout saved already)? */
bool mm_maps_file(struct dump_task *dt, dev_t dev, ino_t ino)
{
	const MmEntry *mm = mm_task(dt)->mm;
	size_t k;

	for (k = 0; mm && k < mm->n_files; k++)
		if (mm->files[k]->dev == dev && mm->files[k]->ino == ino)
			return true;
	return false;
}
