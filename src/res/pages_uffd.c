/*
 * Filling restored anonymous memory through userfaultfd: one copy per
 * byte, no page cleared first.
 *
 * The plain path (pages.c) faults each page in (the kernel clears it) and
 * then preadv()s the image into it: two passes over every byte.  Here the
 * restore child, once it has mapped its private anonymous mappings,
 * registers them with a userfaultfd of its own mm, and fills them with
 * UFFDIO_COPY from a read-only shared mapping of the image's page records
 * (the page cache itself, no copy): the kernel allocates each page and
 * copies into it in one step.  The ranges are then unregistered and the
 * fd closed, so the restored task never sees a userfaultfd.  (One copier
 * per task: the child may not start threads, which would take thread ids
 * the tree may need; trees fill their tasks in parallel.)
 *
 * Mappings that are locked, shared or file-backed, or would get huge
 * pages, or a kernel or sandbox without userfaultfd, take the plain path
 * (STASIS_TEST_NO_UFFD=1 forces it, for the tests).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/userfaultfd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"
#include "mm.h"
#include "proc.h"
#include "restore.h"
#include "rtask.h"
#include "util.h"

#define UFFD_MIN_PAGES	 16		 /* smaller mappings: the plain path is as fast */
#define UFFD_CHUNK	 IMG_PAGES_CHUNK /* one UFFDIO_COPY; the unit the workers share */
#define UFFD_PER_WORKER	 (32UL << 20)	 /* a worker thread only for this much to copy */
#define UFFD_MAX_WORKERS 64

/* Transparent huge pages for every mapping: the plain path's faults get them. */
static bool thp_always(void)
{
	char buf[128] = "";
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = '\0';
	close(fd);
	return strstr(buf, "[always]") != NULL;
}

/*
 * UFFDIO_COPY fills small pages: a mapping that would get huge pages
 * (MADV_HUGEPAGE, or THP for all) keeps the plain path, which faults them in.
 */
static bool uffd_wanted(const struct rst_ctx *c, const VmaEntry *e, bool thp)
{
	const PagemapEntry *pm = c->t->pm;
	uint64_t pages = 0;
	size_t r;

	/* a copy-on-write sharer takes the plain path: its parent's pages go first */
	if (e->kind != VMA_KIND__VMA_ANON_PRIVATE || e->locked || !pm || e->cow_parent ||
	    (e->madv & VMF_HUGEPAGE) || (thp && !(e->madv & VMF_NOHUGEPAGE)))
		return false;
	for (r = 0; r < pm->n_runs && pages < UFFD_MIN_PAGES; r++) {
		unsigned long s = pm->runs[r]->vaddr;
		unsigned long end = s + pm->runs[r]->nr_pages * PAGE_SIZE;

		if (end > e->start && s < e->end)
			pages += (min(end, e->end) - max(s, e->start)) / PAGE_SIZE;
	}
	return pages >= UFFD_MIN_PAGES;
}

/* The child hands its userfaultfd to the controller's crew (pidfd_getfd). */
static bool handoff;

/* Where it leaves it: the service fd after the mapped files' (mm_restore_prepare). */
static int uffd_slot(const struct rst_ctx *c)
{
	return svc_fd(c, SVC_FILES) + c->t->mm->n_files;
}

/* pidfd_getfd exists (an invalid pidfd gets EBADF, not ENOSYS)? */
static bool can_hand_off(void)
{
	if (getenv("STASIS_UFFD_WORKERS") && atoi(getenv("STASIS_UFFD_WORKERS")) == 0)
		return false; /* 0: the child copies alone, in place (for the bench) */
	return syscall(__NR_pidfd_getfd, -1, 0, 0) < 0 && errno == EBADF;
}

/*
 * In the restore child, its mappings built: register the ones worth it
 * and mark them MM_PREMAP_UFFD (the controller fills and finishes them).
 * Any failure just leaves the plain path to the rest.
 */
int mm_uffd_register(struct rst_ctx *c)
{
	struct uffdio_api api = { .api = UFFD_API };
	const MmEntry *mm = c->t->mm;
	int fd = -1, done = 0;
	bool thp;
	size_t i;

	if (getenv("STASIS_TEST_NO_UFFD"))
		return -1;
	thp = thp_always();
	for (i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		struct uffdio_register reg = {
			.range = { .start = e->start, .len = e->end - e->start },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (c->premapped[i] != MM_PREMAP_DONE || !uffd_wanted(c, e, thp))
			continue;
		if (fd < 0) {
			handoff = can_hand_off();
			fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
			if (fd < 0 || ioctl(fd, UFFDIO_API, &api)) {
				pr_debug("pid %u: no userfaultfd (%m): pages by preadv\n",
					 c->t->te->pid);
				goto out;
			}
		}
		if (ioctl(fd, UFFDIO_REGISTER, &reg))
			continue;
		c->premapped[i] = MM_PREMAP_UFFD;
		done++;
	}
	if (done)
		return fd;
out:
	if (fd >= 0)
		close(fd);
	return -1;
}

void uffd_fill_add(struct uffd_fill *f, unsigned long addr, uint64_t len, uint64_t off)
{
	while (len) {
		/* up to the end of the checksum piece it starts in */
		uint64_t n = min(len, UFFD_CHUNK - ((off - f->base) & (UFFD_CHUNK - 1)));

		if (f->n == f->cap) {
			f->cap = f->cap ? f->cap * 2 : 64;
			f->jobs = xrealloc(f->jobs, f->cap * sizeof(*f->jobs));
		}
		f->jobs[f->n++] = (struct uffd_job){ .dst = addr, .off = off, .len = n };
		f->total += n;
		addr += n;
		off += n;
		len -= n;
	}
}

struct uffd_crew {
	const struct uffd_fill *f;
	struct rst_ctx *c; /* the controller's crew: checks the pieces it copies */
	int fd;
	const char *src; /* the image, mapped from src_off */
	uint64_t src_off;
	atomic_size_t next;
	atomic_int failed;
	int err; /* the first failure's errno, and where */
	unsigned long err_at;
};

/*
 * The image's pages of one job, mapped (POPULATE_READ: page-table entries
 * for the page cache, in one call, on this worker's CPU) or dropped from
 * our page tables again once copied (DONTNEED: stasis's RSS stays at a few
 * jobs per worker whatever the image's size; the page cache keeps them).
 */
static void src_window(const struct uffd_crew *w, const struct uffd_job *j, int advice)
{
	unsigned long s = (unsigned long)(w->src + (j->off - w->src_off));
	unsigned long e = s + j->len;

	s &= ~(PAGE_SIZE - 1);
	e = (e + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	madvise((void *)s, e - s, advice); /* advice only: a failure costs faults */
}

static void crew_fail(struct uffd_crew *w, int err, unsigned long at)
{
	if (!atomic_exchange(&w->failed, 1)) {
		w->err = err;
		w->err_at = at;
	}
}

/*
 * The checksum piece j starts in, if no one has taken it yet (the
 * verifier thread takes what the copiers do not): hashed here, just
 * before the copy reads it again from the cache.  The window then
 * covers the whole piece, mapped: 1; not ours to check: 0 (the window is
 * the job's, not mapped yet); -1: the piece fails its checksum.
 */
static int check_piece(struct uffd_crew *w, struct uffd_job *win, const struct uffd_job *j)
{
	struct rst_task *t = w->c ? w->c->t : NULL;
	uint64_t rel, len;
	size_t k;

	*win = *j;
	if (!t || !t->piece_taken || j->off < t->pages_off)
		return 0;
	rel = j->off - t->pages_off;
	k = rel >> IMG_PAGES_CHUNK_SHIFT;
	if (k >= t->pm->n_chunk_hashes || atomic_exchange(&t->piece_taken[k], 1))
		return 0;
	win->off = t->pages_off + ((uint64_t)k << IMG_PAGES_CHUNK_SHIFT);
	len = min(IMG_PAGES_CHUNK, t->pages_len - ((uint64_t)k << IMG_PAGES_CHUNK_SHIFT));
	win->len = len;
	src_window(w, win, MADV_POPULATE_READ);
	if (XXH3_64bits(w->src + (win->off - w->src_off), len) == t->pm->chunk_hashes[k])
		return 1;
	crew_fail(w, EBADMSG, j->dst);
	image_pages_corrupt(w->c->img, t);
	return -1;
}

static int copy_one(struct uffd_crew *w, const struct uffd_job *j)
{
	struct uffd_job win;
	uint64_t done = 0;
	int checked = check_piece(w, &win, j);

	if (checked < 0)
		return -1;
	if (!checked)
		src_window(w, j, MADV_POPULATE_READ);
	while (done < j->len) {
		struct uffdio_copy cp = {
			.dst = j->dst + done,
			.src = (unsigned long)(w->src + (j->off - w->src_off) + done),
			.len = j->len - done,
		};

		if (ioctl(w->fd, UFFDIO_COPY, &cp) == 0) {
			done += cp.len;
			continue;
		}
		if (cp.copy > 0) /* a partial copy: go on from there */
			done += cp.copy;
		else if (errno != EAGAIN) {
			crew_fail(w, errno, cp.dst);
			return -1;
		}
	}
	src_window(w, &win, MADV_DONTNEED);
	return 0;
}

static void *crew_work(void *arg)
{
	struct uffd_crew *w = arg;
	size_t k;

	while (!atomic_load(&w->failed) && (k = atomic_fetch_add(&w->next, 1)) < w->f->n)
		if (copy_one(w, &w->f->jobs[k]))
			break;
	return NULL;
}

/* STASIS_FAULT=restore:uffd_copy: the crew fails as a UFFDIO_COPY would; 1 if so. */
static int crew_fault(struct uffd_crew *w)
{
	if (!fault_at(FAULT_RST_UFFD))
		return 0;
	w->err = errno;
	w->err_at = w->f->jobs[0].dst;
	atomic_store(&w->failed, 1);
	return 1;
}

static void unregister_all(const struct rst_ctx *c, int fd)
{
	const MmEntry *mm = c->t->mm;
	size_t i;

	for (i = 0; i < mm->n_vmas; i++) {
		struct uffdio_range r = { mm->vmas[i]->start,
					  mm->vmas[i]->end - mm->vmas[i]->start };

		if (c->premapped[i] == MM_PREMAP_UFFD && ioctl(fd, UFFDIO_UNREGISTER, &r))
			pr_warn("pid %u: cannot unregister %lx-%lx from userfaultfd: %m\n",
				c->t->te->pid, mm->vmas[i]->start, mm->vmas[i]->end);
	}
}

/* The restore child, its mappings registered on fd: fill them, unregister, close fd. */
int uffd_fill_run(struct rst_ctx *c, struct uffd_fill *f, int img_fd, int fd)
{
	struct uffd_crew w = { .f = f, .fd = fd };
	uint64_t map_len = 0, t0 = now_ns();
	void *map = MAP_FAILED;
	size_t i;
	int ret = -1;

	if (fd < 0 || !f->n)
		goto done;
	if (handoff && c->in_child && dup3(fd, uffd_slot(c), O_CLOEXEC) == uffd_slot(c)) {
		/* the controller's crew fills them (uffd_remote_fill) */
		close(fd);
		return 0;
	}
	/* the task's page records: one stretch of the file, page-aligned */
	w.src_off = f->jobs[0].off & ~(PAGE_SIZE - 1);
	map_len = f->jobs[f->n - 1].off + f->jobs[f->n - 1].len - w.src_off;
	map = mmap(NULL, map_len, PROT_READ, MAP_SHARED, img_fd, w.src_off);
	if (map == MAP_FAILED) {
		pr_perror("pid %u: cannot map the image's pages", c->t->te->pid);
		goto out;
	}
	w.src = map;
	/* one worker: the restore child must not take thread ids the tree may need */
	if (fault_armed() && crew_fault(&w))
		;
	else
		crew_work(&w);
	if (atomic_load(&w.failed)) {
		pr_err("pid %u: filling memory at %lx failed: %s\n", c->t->te->pid, w.err_at,
		       strerror(w.err));
		goto out;
	}
	pr_info("pid %u: %llu MiB by userfaultfd, %.1f ms\n", c->t->te->pid,
		(unsigned long long)(f->total >> 20), (now_ns() - t0) / 1e6);
done:
	ret = 0;
out:
	if (fd >= 0)
		unregister_all(c, fd);
	for (i = 0; i < c->t->mm->n_vmas; i++)
		if (c->premapped[i] == MM_PREMAP_UFFD)
			c->premapped[i] = MM_PREMAP_DONE;
	if (map != MAP_FAILED)
		munmap(map, map_len);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The jobs of the mappings marked MM_PREMAP_UFFD, in image order. */
static void remote_jobs(const struct rst_ctx *c, struct uffd_fill *f)
{
	const PagemapEntry *pm = c->t->pm;
	const MmEntry *mm = c->t->mm;
	uint64_t off = c->t->pages_off;
	size_t r, v = 0;

	f->base = off;
	for (r = 0; pm && r < pm->n_runs; r++) {
		unsigned long addr = pm->runs[r]->vaddr;
		uint64_t left = pm->runs[r]->nr_pages * PAGE_SIZE;

		while (left) {
			uint64_t len;

			while (v < mm->n_vmas && mm->vmas[v]->end <= addr)
				v++;
			if (v == mm->n_vmas || mm->vmas[v]->start > addr)
				return; /* mm_pages_fill says it */
			len = min(left, mm->vmas[v]->end - addr);
			if (c->premapped[v] == MM_PREMAP_UFFD && !c->filled[v])
				uffd_fill_add(f, addr, len, off);
			addr += len;
			off += len;
			left -= len;
		}
	}
}

static unsigned crew_size(uint64_t total)
{
	const char *env = getenv("STASIS_UFFD_WORKERS");
	long n = env ? atol(env) : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > UFFD_MAX_WORKERS)
		n = UFFD_MAX_WORKERS;
	if ((uint64_t)n > total / UFFD_PER_WORKER)
		n = total / UFFD_PER_WORKER ? total / UFFD_PER_WORKER : 1;
	return n;
}

/* Run the crew: this thread and n - 1 more. */
static void crew_run(struct uffd_crew *w, unsigned n)
{
	pthread_t th[UFFD_MAX_WORKERS];
	unsigned k, started = 0;

	for (k = 1; k < n; k++)
		if (pthread_create(&th[started], NULL, crew_work, w) == 0)
			started++;
	crew_work(w);
	for (k = 0; k < started; k++)
		pthread_join(th[k], NULL);
}

/*
 * Controller, the child stopped: take the child's userfaultfd and image fd
 * (pidfd_getfd), fill its registered mappings with a crew of threads (the
 * tree's tasks all exist by now: our threads take no thread id it needs),
 * unregister them, close the child's userfaultfd and finish the mappings.
 */
int uffd_remote_fill(struct rst_ctx *c)
{
	const MmEntry *mm = c->t->mm;
	struct uffd_fill f = { 0 };
	struct uffd_crew w = { .f = &f, .c = c, .fd = -1 };
	int child_fd = uffd_slot(c), pidfd = -1, img_fd = -1, ret = -1;
	uint64_t map_len = 0, t0 = now_ns();
	void *map = MAP_FAILED;
	unsigned n = 0;
	size_t i;
	long r;

	for (i = 0; i < mm->n_vmas; i++)
		if (c->premapped[i] == MM_PREMAP_UFFD)
			break;
	if (i == mm->n_vmas)
		return 0;
	pidfd = syscall(__NR_pidfd_open, c->rt.pid, 0);
	if (pidfd >= 0) {
		w.fd = syscall(__NR_pidfd_getfd, pidfd, child_fd, 0);
		img_fd = syscall(__NR_pidfd_getfd, pidfd, svc_fd(c, SVC_IMAGE), 0);
	}
	if (w.fd < 0 || img_fd < 0) {
		pr_perror("pid %u: cannot take its userfaultfd", c->t->te->pid);
		goto out;
	}
	remote_jobs(c, &f);
	if (f.n) {
		/* all the task's page data: the pieces checked here may reach past the jobs */
		w.src_off = c->t->pages_off & ~(PAGE_SIZE - 1);
		map_len = c->t->pages_off + c->t->pages_len - w.src_off;
		map = mmap(NULL, map_len, PROT_READ, MAP_SHARED, img_fd, w.src_off);
		if (map == MAP_FAILED) {
			pr_perror("pid %u: cannot map the image's pages", c->t->te->pid);
			goto out;
		}
		w.src = map;
		n = crew_size(f.total);
		if (!fault_armed() || !crew_fault(&w))
			crew_run(&w, n);
		if (atomic_load(&w.failed)) {
			if (w.err != EBADMSG) /* a piece failed its checksum: said */
				pr_err("pid %u: filling memory at %lx failed: %s\n", c->t->te->pid,
				       w.err_at, strerror(w.err));
			goto out;
		}
	}
	pr_info("pid %u: %llu MiB by userfaultfd, %u workers, %.1f ms\n", c->t->te->pid,
		(unsigned long long)(f.total >> 20), n, (now_ns() - t0) / 1e6);
	ret = 0;
out:
	if (w.fd >= 0)
		unregister_all(c, w.fd);
	if (remote_syscall(&c->rt, &r, __NR_close, child_fd, 0, 0, 0, 0, 0))
		ret = -1;
	for (i = 0; i < mm->n_vmas; i++)
		if (c->premapped[i] == MM_PREMAP_UFFD) {
			c->premapped[i] = MM_PREMAP_DONE;
			if (!ret && mm_finish_vma(c, mm->vmas[i]))
				ret = -1;
		}
	if (map != MAP_FAILED)
		munmap(map, map_len);
	if (img_fd >= 0)
		close(img_fd);
	if (w.fd >= 0)
		close(w.fd);
	if (pidfd >= 0)
		close(pidfd);
	free(f.jobs);
	return ret;
}
