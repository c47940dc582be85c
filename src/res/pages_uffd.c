/*
 * Filling restored anonymous memory through userfaultfd: one copy per
 * byte, no page cleared first, spread over every CPU.
 *
 * The plain path (pages.c) faults each page in (the kernel clears it) and
 * then preadv()s the image into it: two passes over every byte, on one
 * CPU.  Here the restore child, once it has mapped its private anonymous
 * mappings, registers them with a userfaultfd of its own mm and leaves the
 * fd at a service fd (SVC_UFFD); nothing touches them.  After the stop
 * the controller takes that fd with pidfd_getfd and, from a read-only
 * shared mapping of the image's page records (the page cache itself, no
 * copy), fills them with UFFDIO_COPY, which allocates each page and copies
 * into it in one step, from as many worker threads as there are CPUs (the
 * mm is only read-locked, so the copies run side by side).  Then the
 * ranges are unregistered, so the restored task never sees a userfaultfd;
 * the service fd goes with the others before release.
 *
 * Mappings that are locked, shared or file-backed, or a kernel or a
 * sandbox without userfaultfd, take the plain path (STASIS_TEST_NO_UFFD=1
 * forces it, for the tests).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "mm.h"
#include "proc.h"
#include "util.h"

#define UFFD_MIN_PAGES	 16	      /* smaller mappings: the plain path is as fast */
#define UFFD_CHUNK	 (4UL << 20)  /* one UFFDIO_COPY; the unit the workers share */
#define UFFD_PER_WORKER	 (32UL << 20) /* a worker thread only for this much to copy */
#define UFFD_MAX_WORKERS 16

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

	if (e->kind != VMA_KIND__VMA_ANON_PRIVATE || e->locked || !pm || (e->madv & VMF_HUGEPAGE) ||
	    (thp && !(e->madv & VMF_NOHUGEPAGE)))
		return false;
	for (r = 0; r < pm->n_runs && pages < UFFD_MIN_PAGES; r++) {
		unsigned long s = pm->runs[r]->vaddr;
		unsigned long end = s + pm->runs[r]->nr_pages * PAGE_SIZE;

		if (end > e->start && s < e->end)
			pages += (min(end, e->end) - max(s, e->start)) / PAGE_SIZE;
	}
	return pages >= UFFD_MIN_PAGES;
}

/*
 * In the restore child, its mappings built: register the ones worth it
 * and mark them MM_PREMAP_UFFD (the controller fills and finishes them).
 * Any failure just leaves the plain path to the rest.
 */
void mm_uffd_register(struct rst_ctx *c)
{
	struct uffdio_api api = { .api = UFFD_API };
	const MmEntry *mm = c->t->mm;
	int fd = -1, done = 0;
	bool thp;
	size_t i;

	if (getenv("STASIS_TEST_NO_UFFD"))
		return;
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
	if (done && dup2(fd, svc_fd(c, SVC_UFFD)) < 0) {
		for (i = 0; i < mm->n_vmas; i++)
			if (c->premapped[i] == MM_PREMAP_UFFD)
				c->premapped[i] = MM_PREMAP_DONE;
		/* closing the fd below drops the registrations */
	}
out:
	if (fd >= 0)
		close(fd);
}

void uffd_fill_add(struct uffd_fill *f, unsigned long addr, uint64_t len, uint64_t off)
{
	while (len) {
		uint64_t n = min(len, UFFD_CHUNK);

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
	int fd;
	const char *src; /* the image, mapped from src_off */
	uint64_t src_off;
	atomic_size_t next;
	atomic_int failed;
	int err; /* the first failure's errno, and where */
	unsigned long err_at;
};

static int copy_one(struct uffd_crew *w, const struct uffd_job *j)
{
	uint64_t done = 0;

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
			if (!atomic_exchange(&w->failed, 1)) {
				w->err = errno;
				w->err_at = cp.dst;
			}
			return -1;
		}
	}
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

static void *crew_thread(void *arg)
{
	unpin(); /* the controller is pinned near its tracee; a worker goes anywhere */
	return crew_work(arg);
}

static int crew_size(uint64_t total)
{
	cpu_set_t cpus;
	int n = 1;

	if (affinity_saved(&cpus, sizeof(cpus)) || sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
		n = CPU_COUNT(&cpus);
	n = min(n, UFFD_MAX_WORKERS);
	n = min((uint64_t)n, total / UFFD_PER_WORKER);
	return n < 1 ? 1 : n;
}

/* Copy every job with a crew of threads; this one works too. */
static int crew_run(struct uffd_crew *w, int workers)
{
	pthread_t th[UFFD_MAX_WORKERS];
	int i, started = 0;

	for (i = 1; i < workers; i++, started++)
		if (pthread_create(&th[started], NULL, crew_thread, w))
			break;
	crew_work(w);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return atomic_load(&w->failed) ? -1 : 0;
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

/* Controller, after the stop: fill what the child registered. */
int uffd_fill_run(struct rst_ctx *c, struct uffd_fill *f, int img_fd)
{
	struct uffd_crew w = { .f = f, .fd = -1 };
	uint64_t map_len, t0 = now_ns();
	void *map = MAP_FAILED;
	int pidfd, workers, ret = -1;

	if (!f->n)
		return 0;
	pidfd = syscall(__NR_pidfd_open, c->rt.pid, 0);
	if (pidfd >= 0)
		w.fd = syscall(__NR_pidfd_getfd, pidfd, svc_fd(c, SVC_UFFD), 0);
	if (w.fd < 0) {
		pr_perror("pid %u: cannot take its userfaultfd", c->t->te->pid);
		goto out;
	}
	/* the task's page records: one stretch of the file, page-aligned */
	w.src_off = f->jobs[0].off & ~(PAGE_SIZE - 1);
	map_len = f->jobs[f->n - 1].off + f->jobs[f->n - 1].len - w.src_off;
	map = mmap(NULL, map_len, PROT_READ, MAP_SHARED | MAP_POPULATE, img_fd, w.src_off);
	if (map == MAP_FAILED) {
		pr_perror("pid %u: cannot map the image's pages", c->t->te->pid);
		goto out;
	}
	w.src = map;
	workers = crew_size(f->total);
	if (crew_run(&w, workers)) {
		pr_err("pid %u: filling memory at %lx failed: %s\n", c->t->te->pid, w.err_at,
		       strerror(w.err));
		goto out;
	}
	unregister_all(c, w.fd);
	pr_info("pid %u: %llu MiB by userfaultfd, %d worker(s), %.1f ms\n", c->t->te->pid,
		(unsigned long long)(f->total >> 20), workers, (now_ns() - t0) / 1e6);
	ret = 0;
out:
	if (map != MAP_FAILED)
		munmap(map, map_len);
	if (w.fd >= 0)
		close(w.fd);
	if (pidfd >= 0)
		close(pidfd);
	return ret;
}
