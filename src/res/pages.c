/*
 * Page contents, both directions: at dump, the runs of pages only the
 * process's memory holds (found with PAGEMAP_SCAN, or /proc/PID/pagemap),
 * streamed with process_vm_readv into one fixed buffer and written as one
 * IMG_PAGES record per task; at restore, the saved pages of each mapping
 * filled by remote preadv straight from the image file (one copy, kernel
 * to kernel), large runs faulted in first with MADV_POPULATE_WRITE.  The
 * layout around them is src/res/mm.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "mm.h"
#include "proc.h"
#include "res.h"
#include "util.h"
#include "image.h"

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

#define PM_PFN(x)     ((x) & ((1ULL << 55) - 1))
#define PM_PRESENT(x) ((x) >> 63 & 1)
#define PM_SWAPPED(x) ((x) >> 62 & 1)

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

/*
 * A page mapped by more than this task (shared copy-on-write with a
 * parent or child) must not be read with process_vm_readv: its read-only
 * pin unshares the page (the kernel gives the pinned task a copy of its
 * own), which would end the sharing in the original and make the pages
 * of the tree's other tasks look different.  Such pages are read through
 * /proc/PID/mem (no pin), as the 'forced' runs are.
 */
static int add_checked(int pm_fd, struct runs *rs, unsigned long s, unsigned long end, bool forced)
{
	uint64_t ents[512];

	while (s < end) {
		size_t n = min((end - s) / PAGE_SIZE, ARRAY_SIZE(ents)), i;

		if (pread(pm_fd, ents, n * 8, s / PAGE_SIZE * 8) != (ssize_t)(n * 8)) {
			pr_perror("cannot read pagemap at %lx", s);
			return -1;
		}
		for (i = 0; i < n; i++, s += PAGE_SIZE)
			runs_add(rs, s, 1, forced || (PM_PRESENT(ents[i]) && !(ents[i] >> 56 & 1)));
	}
	return 0;
}

static int scan_private(int pm_fd, const VmaEntry *e, struct runs *rs, bool forced, bool excl)
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
			if (!excl)
				runs_add(rs, regions[i].start,
					 (regions[i].end - regions[i].start) / PAGE_SIZE, forced);
			else if (add_checked(pm_fd, rs, regions[i].start, regions[i].end, forced))
				return -1;
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

/*
 * A mapping the parent has too (vma_entry.cow_parent, mm.c): its pages are
 * read in both pagemaps; a page both map at the same frame is shared
 * copy-on-write and comes back through fork from the parent's restore
 * child, so it is not saved; the task's other pages are saved, and those
 * only the parent has go to 'zap' (dropped after the fork).
 */

static int scan_cow(int pm_fd, int ppm_fd, const VmaEntry *e, struct runs *rs, struct runs *zap,
		    bool forced, uint64_t *shared)
{
	uint64_t me[512], par[512];
	unsigned long addr;

	for (addr = e->start; addr < e->end;) {
		size_t n = min((e->end - addr) / PAGE_SIZE, ARRAY_SIZE(me)), i;
		off_t at = addr / PAGE_SIZE * 8;

		if (pread(pm_fd, me, n * 8, at) != (ssize_t)(n * 8) ||
		    pread(ppm_fd, par, n * 8, at) != (ssize_t)(n * 8)) {
			pr_perror("cannot read pagemap at %lx", addr);
			return -1;
		}
		for (i = 0; i < n; i++, addr += PAGE_SIZE) {
			if (PM_PRESENT(me[i]) && PM_PRESENT(par[i]) && PM_PFN(me[i]) &&
			    PM_PFN(me[i]) == PM_PFN(par[i])) {
				(*shared)++; /* one frame for both: shared copy-on-write */
				continue;
			}
			if (PM_PRESENT(me[i]) || PM_SWAPPED(me[i]))
				runs_add(rs, addr, 1,
					 forced || (PM_PRESENT(me[i]) && !(me[i] >> 56 & 1)));
			else if (PM_PRESENT(par[i]) || PM_SWAPPED(par[i]))
				runs_add(zap, addr, 1, false);
		}
	}
	return 0;
}

static int open_pagemap(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("cannot open %s", path);
	return fd;
}

static int collect_runs(struct dump_ctx *ctx, struct dump_task *dt, const MmEntry *mm,
			struct runs *rs, struct runs *zap, uint64_t *shared)
{
	bool excl = ctx->ntasks > 1; /* pages may be shared with another task */
	size_t i;
	int fd, ppm_fd = -1, ret = 0;

	fd = open_pagemap(dt->pid);
	if (fd < 0)
		return -1;
	for (i = 0; i < mm->n_vmas && !ret; i++) {
		const VmaEntry *e = mm->vmas[i];
		bool forced = !(e->prot & PROT_READ);

		if (e->cow_parent && ppm_fd < 0 && (ppm_fd = open_pagemap(dt->te->ppid)) < 0) {
			ret = -1;
			break;
		}
		switch (e->kind) {
		case VMA_KIND__VMA_ANON_PRIVATE:
			if (e->cow_parent) {
				ret = scan_cow(fd, ppm_fd, e, rs, zap, forced, shared);
				break;
			}
			/* fall through */
		case VMA_KIND__VMA_FILE_PRIVATE:
			ret = scan_private(fd, e, rs, forced, excl);
			break;
		case VMA_KIND__VMA_ANON_SHARED:
			ret = scan_shared_anon(dt->pid, e, rs, forced);
			break;
		default:
			break; /* file-shared pages live in the file; specials are the kernel's */
		}
	}
	if (ppm_fd >= 0)
		close(ppm_fd);
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

/*
 * Workers (STASIS_DUMP_WORKERS=N; not the default: on this 2-CPU machine
 * they cost 25% more CPU than the stream, for clearing each page-cache
 * page and faulting it in, and were not faster): the page record's
 * payload is mapped from the image file (img_pages_map) and cut into
 * chunks; each worker takes the next chunk, faults its pages of the page
 * cache in (MADV_POPULATE_WRITE) and reads the target's pages straight
 * into them with process_vm_readv: one copy, no buffer, and no inode lock
 * shared between the workers, as write(2) would take.  Each chunk is
 * one checksum piece of the record (IMG_PAGES_CHUNK): its worker hashes
 * it while it is still in cache, then drops it from its page tables.
 */
#define DUMP_CHUNK	 IMG_PAGES_CHUNK
#define DUMP_PER_WORKER	 (32UL << 20) /* a worker only for this much memory */
#define DUMP_MAX_WORKERS 64

struct chunk_at {
	size_t run;   /* the run the chunk starts in */
	uint64_t off; /* and the offset in it */
};

struct dump_crew {
	pid_t pid;
	char *map;
	const struct runs *rs;
	uint64_t total;
	size_t n; /* chunks */
	struct chunk_at *at;
	atomic_size_t next;
	uint64_t *sums; /* each chunk's checksum */
	int mem_fd;
	pthread_mutex_t mem_lock; /* opening mem_fd */
	atomic_int failed;
	int err;
	unsigned long err_at;
};

static unsigned dump_workers(uint64_t total)
{
	const char *env = getenv("STASIS_DUMP_WORKERS");
	long n = env ? atol(env) : 0; /* not the default: see docs/design.md */

	if (n <= 0 || total < 2 * DUMP_CHUNK)
		return 0; /* the streaming path: small, or asked for */
	if (n > DUMP_MAX_WORKERS)
		n = DUMP_MAX_WORKERS;
	if ((uint64_t)n > total / DUMP_PER_WORKER)
		n = total / DUMP_PER_WORKER ? total / DUMP_PER_WORKER : 1;
	return n;
}

static void crew_fail(struct dump_crew *w, int err, unsigned long at)
{
	if (!atomic_exchange(&w->failed, 1)) {
		w->err = err;
		w->err_at = at;
	}
}

static uint64_t chunk_len(const struct dump_crew *w, size_t k)
{
	return min(DUMP_CHUNK, w->total - k * DUMP_CHUNK);
}

/* Pages of an unreadable mapping: /proc/PID/mem, straight into the chunk. */
static int crew_forced(struct dump_crew *w, char *dst, unsigned long addr, uint64_t len)
{
	pthread_mutex_lock(&w->mem_lock);
	if (w->mem_fd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", w->pid);
		w->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	pthread_mutex_unlock(&w->mem_lock);
	if (w->mem_fd < 0 || pread(w->mem_fd, dst, len, addr) != (ssize_t)len) {
		crew_fail(w, errno ? errno : EIO, addr);
		return -1;
	}
	return 0;
}

static int crew_readv(struct dump_crew *w, char *dst, struct iovec *riov, int n, uint64_t len)
{
	struct iovec l = { dst, len };
	ssize_t got;

	if (!n)
		return 0;
	got = process_vm_readv(w->pid, &l, 1, riov, n, 0);
	if (got != (ssize_t)len) {
		crew_fail(w, got < 0 ? errno : EIO, (unsigned long)riov[0].iov_base);
		return -1;
	}
	return 0;
}

static int crew_fill(struct dump_crew *w, size_t k)
{
	struct iovec riov[IOV_BATCH];
	char *dst = w->map + k * DUMP_CHUNK, *batch = dst;
	uint64_t left = chunk_len(w, k), in_batch = 0;
	size_t r = w->at[k].run;
	uint64_t roff = w->at[k].off;
	int n = 0;

	madvise(dst, left, MADV_POPULATE_WRITE); /* advice: faults do it otherwise */
	while (left) {
		const struct run *run = &w->rs->r[r];
		uint64_t take = min(left, run->nr * PAGE_SIZE - roff);

		if (run->forced) {
			if (crew_readv(w, batch, riov, n, in_batch) ||
			    crew_forced(w, batch + in_batch, run->addr + roff, take))
				return -1;
			batch += in_batch + take;
			in_batch = n = 0;
		} else {
			riov[n].iov_base = (void *)(run->addr + roff);
			riov[n].iov_len = take;
			n++;
			in_batch += take;
			if (n == IOV_BATCH) {
				if (crew_readv(w, batch, riov, n, in_batch))
					return -1;
				batch += in_batch;
				in_batch = n = 0;
			}
		}
		left -= take;
		roff += take;
		if (roff == run->nr * PAGE_SIZE) {
			r++;
			roff = 0;
		}
	}
	return crew_readv(w, batch, riov, n, in_batch);
}

static void *crew_work(void *arg)
{
	struct dump_crew *w = arg;
	size_t k;

	while (!atomic_load(&w->failed) && (k = atomic_fetch_add(&w->next, 1)) < w->n) {
		char *chunk = w->map + k * DUMP_CHUNK;

		if (crew_fill(w, k))
			break;
		w->sums[k] = XXH3_64bits(chunk, chunk_len(w, k));
		/* out of our page tables (the page cache keeps it): RSS stays flat */
		madvise(chunk, chunk_len(w, k), MADV_DONTNEED);
	}
	return NULL;
}

static void *crew_thread(void *arg)
{
	unpin(); /* the dumping thread is pinned to one CPU; the crew takes all */
	return crew_work(arg);
}

/* Where each chunk of the payload starts in the runs. */
static struct chunk_at *chunk_starts(const struct runs *rs, size_t n)
{
	struct chunk_at *at = xzalloc(n * sizeof(*at));
	uint64_t pos = 0;
	size_t r, k = 0;

	for (r = 0; r < rs->n && k < n; r++) {
		uint64_t len = rs->r[r].nr * PAGE_SIZE;

		while (k < n && k * DUMP_CHUNK < pos + len) {
			at[k] = (struct chunk_at){ r, k * DUMP_CHUNK - pos };
			k++;
		}
		pos += len;
	}
	return at;
}

/* Fill the mapped payload with n workers; 0 and its checksums, or -1. */
static int write_pages_mapped(struct dump_task *dt, char *map, const struct runs *rs, unsigned n,
			      struct page_sums *sums)
{
	struct dump_crew w = { .pid = dt->pid, .map = map, .rs = rs, .mem_fd = -1 };
	pthread_t th[DUMP_MAX_WORKERS];
	unsigned k, started = 0;
	int ret = -1;

	w.total = rs->pages * PAGE_SIZE;
	w.n = (w.total + DUMP_CHUNK - 1) / DUMP_CHUNK;
	w.at = chunk_starts(rs, w.n);
	page_sums_init(sums, w.total);
	w.sums = sums->chunk;
	pthread_mutex_init(&w.mem_lock, NULL);
	for (k = 1; k < n; k++)
		if (pthread_create(&th[started], NULL, crew_thread, &w) == 0)
			started++;
	crew_work(&w);
	for (k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	if (atomic_load(&w.failed))
		pr_err("pid %d: cannot read its memory at %#lx: %s\n", dt->pid, w.err_at,
		       strerror(w.err));
	else
		ret = 0;
	sums->done = w.n;
	if (w.mem_fd >= 0)
		close(w.mem_fd);
	pthread_mutex_destroy(&w.mem_lock);
	free(w.at);
	return ret;
}

/* The page record: by workers into the mapped image, or streamed; 0 and its checksums. */
static int pages_record(struct dump_ctx *ctx, struct dump_task *dt, const struct runs *rs,
			struct page_sums *sums, unsigned *workers)
{
	uint64_t len = rs->pages * PAGE_SIZE;
	unsigned n = dump_workers(len);
	int err = 0;

	*workers = 0;
	if (n) {
		char *map = img_pages_map(&ctx->w, len, &err);

		if (map) {
			*workers = n;
			err = write_pages_mapped(dt, map, rs, n, sums);
			return img_pages_unmap(&ctx->w, map, len, !err);
		}
		if (err)
			return -1;
	}
	if (img_pages_begin(&ctx->w, len))
		return -1;
	if (write_pages(dt, &ctx->w, rs)) {
		img_pages_end(&ctx->w, sums);
		return -1;
	}
	return img_pages_end(&ctx->w, sums);
}

int mm_pages_dump(struct dump_ctx *ctx, struct dump_task *dt, const MmEntry *mm)
{
	PagemapEntry pm = PAGEMAP_ENTRY__INIT;
	struct runs rs = { 0 }, zap = { 0 };
	PageRun *runs = NULL, **runp = NULL, *zruns = NULL, **zrunp = NULL;
	struct page_sums sums = { 0 };
	unsigned workers = 0;
	uint64_t shared = 0;
	size_t i;
	int ret = -1;

	uint64_t t0 = now_ns(), t1;

	if (collect_runs(ctx, dt, mm, &rs, &zap, &shared))
		goto out;
	if (shared || zap.n)
		pr_info("pid %d: %llu pages shared with the parent copy-on-write, not saved; %llu "
			"pages of the parent to drop\n",
			dt->pid, (unsigned long long)shared, (unsigned long long)zap.pages);
	t1 = now_ns();
	if (pages_record(ctx, dt, &rs, &sums, &workers))
		goto out;
	pm.n_chunk_hashes = sums.n;
	pm.chunk_hashes = sums.chunk;
	pm.has_chunk_shift = true;
	pm.chunk_shift = IMG_PAGES_CHUNK_SHIFT;
	pm.pages_hash = page_sums_digest(sums.chunk, sums.n);
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
	zruns = xzalloc((zap.n + 1) * sizeof(*zruns));
	zrunp = xzalloc((zap.n + 1) * sizeof(*zrunp));
	for (i = 0; i < zap.n; i++) {
		page_run__init(&zruns[i]);
		zruns[i].vaddr = zap.r[i].addr;
		zruns[i].nr_pages = zap.r[i].nr;
		zrunp[i] = &zruns[i];
	}
	pm.n_zap_runs = zap.n;
	pm.zap_runs = zrunp;
	ret = img_write_msg(&ctx->w, IMG_PAGEMAP, &pm.base);
	pr_info("pid %d: %llu pages in %zu runs (scan %.1f ms, copy %.1f ms, %s%u)\n", dt->pid,
		(unsigned long long)rs.pages, rs.n, (t1 - t0) / 1e6, (now_ns() - t1) / 1e6,
		workers ? "workers " : "streamed ", workers ? workers : 1);
out:
	page_sums_free(&sums);
	free(runs);
	free(runp);
	free(zruns);
	free(zrunp);
	free(rs.r);
	free(zap.r);
	return ret;
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
	iov_at = mm_rarg(c, b->iov, b->n * sizeof(*b->iov));
	if (!iov_at || mm_rcall(c, "preadv of pages", __NR_preadv, svc_fd(c, SVC_IMAGE), iov_at,
				b->n, b->off, 0, 0, &got))
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

static bool fill_pass_takes(const struct rst_ctx *c, size_t v, int which)
{
	switch (c->premapped[v]) {
	case MM_PREMAP_NO:
		return which == MM_FILL_REMOTE;
	case MM_PREMAP_DONE:
	case MM_PREMAP_UFFD:
		return which == MM_FILL_CHILD;
	default:
		return which == MM_FILL_FORK;
	}
}

/* Add [a, a + len) at image offset off to the batch, less the task's zapped pages. */
static int batch_add_unzapped(struct rst_ctx *c, struct page_batch *b, unsigned long a,
			      uint64_t len, uint64_t off)
{
	const PagemapEntry *pm = c->t->pm;
	unsigned long end = a + len;
	size_t z;

	for (z = 0; pm && z < pm->n_zap_runs && a < end; z++) {
		unsigned long zs = pm->zap_runs[z]->vaddr;
		unsigned long ze = zs + pm->zap_runs[z]->nr_pages * PAGE_SIZE;

		if (ze <= a || zs >= end)
			continue;
		if (zs > a && batch_add(c, b, a, zs - a, off))
			return -1;
		off += min(ze, end) - a;
		a = min(ze, end);
	}
	return a < end ? batch_add(c, b, a, end - a, off) : 0;
}

/*
 * A mapping that shares pages with the parent but was not inherited
 * through fork (mm_cow.c): the parent's saved pages in it first, then
 * the task's own over them.
 */
static int fill_from_parent(struct rst_ctx *c, struct page_batch *b, const VmaEntry *e)
{
	const struct rst_task *p = c->t->parent;
	uint64_t off = p->pages_off;
	size_t r;

	for (r = 0; p->pm && r < p->pm->n_runs; r++) {
		unsigned long s = p->pm->runs[r]->vaddr;
		uint64_t len = p->pm->runs[r]->nr_pages * PAGE_SIZE;
		unsigned long from = max(s, (unsigned long)e->start);
		unsigned long to = min(s + len, (unsigned long)e->end);

		if (from < to && batch_add_unzapped(c, b, from, to - from, off + (from - s)))
			return -1;
		off += len;
	}
	return 0;
}

/* Fill the saved pages of the VMAs one pass builds (mm.h: MM_FILL_*). */
int mm_pages_fill(struct rst_ctx *c, int which, int uffd)
{
	const PagemapEntry *pm = c->t->pm;
	MmEntry *mm = c->t->mm;
	struct page_batch b = { 0 };
	struct uffd_fill u = { 0 };
	uint64_t off = c->t->pages_off;
	size_t r, v = 0;
	int ret = -1;

	u.base = off;
	b.max = c->in_child ? IOV_BATCH
			    : min((size_t)IOV_BATCH, c->rt.scratch_len / sizeof(struct iovec));
	b.iov = xmalloc(b.max * sizeof(*b.iov));
	for (v = 0; c->t->parent && v < mm->n_vmas; v++)
		if (mm->vmas[v]->cow_parent && c->premapped[v] != MM_PREMAP_KEPT && !c->filled[v] &&
		    fill_pass_takes(c, v, which) && fill_from_parent(c, &b, mm->vmas[v]))
			goto out;
	v = 0;
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
			if (c->filled[v] || !fill_pass_takes(c, v, which))
				;
			else if (c->premapped[v] == MM_PREMAP_UFFD)
				uffd_fill_add(&u, addr, len, off);
			else if (batch_add(c, &b, addr, len, off))
				goto out;
			addr += len;
			off += len;
			left -= len;
		}
	}
	if (batch_flush(c, &b) || uffd_fill_run(c, &u, svc_fd(c, SVC_IMAGE), uffd))
		goto out;
	ret = 0;
out:
	free(u.jobs);
	free(b.iov);
	return ret;
}
