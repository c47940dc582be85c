/*
 * Loading a whole image for restore and show: every metadata record is
 * decoded and attached to its task; page data is not read, only located
 * (its offset in the file), since restore reads it straight into the
 * restored tasks.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "records.h"
#include "res.h"
#include "stasis.h"
#include "util.h"

/* Tasks are indexed by pid once loaded (image_index_tasks). */
pid_t te_tid_inside(const TaskEntry *te, uint32_t tid)
{
	size_t i;

	for (i = 0; te->has_ns_pid && i < te->n_threads && i < te->n_ns_threads; i++)
		if (te->threads[i] == tid)
			return te->ns_threads[i];
	return tid;
}

pid_t image_own_pid(struct image *img, uint32_t pid)
{
	struct rst_task *t = image_task(img, pid);

	return t ? te_pid_inside(t->te) : (pid_t)pid;
}

struct rst_task *image_task(struct image *img, uint32_t pid)
{
	size_t lo = 0, hi = img->by_pid ? img->ntasks : 0, i;

	/* an image being built (unit tests, the loader itself): no index yet */
	for (i = 0; !img->by_pid && i < img->ntasks; i++)
		if (img->tasks[i].te && img->tasks[i].te->pid == pid)
			return &img->tasks[i];

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (img->by_pid[mid]->te->pid == pid)
			return img->by_pid[mid];
		if (img->by_pid[mid]->te->pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int cmp_task_pid(const void *a, const void *b)
{
	uint32_t x = (*(struct rst_task *const *)a)->te->pid;
	uint32_t y = (*(struct rst_task *const *)b)->te->pid;

	return x < y ? -1 : x > y;
}

/* Index tasks by pid for image_task(); a repeated pid is corrupt. */
static int image_index_tasks(struct image *img)
{
	size_t i;

	img->by_pid = xmalloc((img->ntasks + 1) * sizeof(*img->by_pid));
	for (i = 0; i < img->ntasks; i++)
		img->by_pid[i] = &img->tasks[i];
	sort_array(img->by_pid, img->ntasks, sizeof(*img->by_pid), cmp_task_pid);
	for (i = 1; i < img->ntasks; i++)
		if (img->by_pid[i]->te->pid == img->by_pid[i - 1]->te->pid) {
			pr_err("image %s is corrupt: pid %u appears twice\n", img->r.path,
			       img->by_pid[i]->te->pid);
			return -1;
		}
	return 0;
}

/*
 * The records of a task follow its task record, before the next task's;
 * a zombie has none.
 */
static struct rst_task *task_for(struct image *img, uint32_t pid, const char *what)
{
	struct rst_task *t = img->ntasks ? &img->tasks[img->ntasks - 1] : NULL;

	if (t && t->te->pid == pid && !t->te->zombie)
		return t;
	if (t && t->te->pid == pid)
		pr_err("image %s is corrupt: %s record for pid %u, a zombie\n", img->r.path, what,
		       pid);
	else
		pr_err("image %s is corrupt: %s record for pid %u outside that task's records\n",
		       img->r.path, what, pid);
	return NULL;
}

/*
 * Room for one more element in an array of n: the capacity is the next
 * power of two, so loading n records costs O(n) copying in all.
 */
static void *grow(void *arr, size_t n, size_t size)
{
	if (n & (n - 1))
		return arr;
	return xrealloc(arr, (n ? 2 * n : 1) * size);
}

#define APPEND(arr, n, v)                                 \
	do {                                              \
		(arr) = grow((arr), (n), sizeof(*(arr))); \
		(arr)[(n)++] = (v);                       \
	} while (0)

int rec_load_header(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	if (img->hdr || check_header(img, msg)) {
		if (img->hdr)
			pr_err("image %s is corrupt: two headers\n", img->r.path);
		image_header__free_unpacked(msg, NULL);
		return -1;
	}
	img->hdr = msg;
	return 0;
}

/* The reader has checked the trailer against the records already. */
int rec_load_trailer(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	image_trailer__free_unpacked(msg, NULL);
	return 0;
}

int rec_load_skip(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	uint64_t off;

	return img_skip_payload(&img->r, h, &off);
}

int rec_load_task(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct rst_task t = { .te = msg };

	APPEND(img->tasks, img->ntasks, t);
	return 0;
}

int rec_load_thread_core(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	ThreadCore *core = msg;
	struct rst_task *t = task_for(img, core->pid, "thread");

	if (!t) {
		thread_core__free_unpacked(core, NULL);
		return -1;
	}
	APPEND(t->cores, t->ncores, core);
	if (core->tid == t->te->pid && t->ncores > 1) {
		/* the leader's core goes first */
		t->cores[t->ncores - 1] = t->cores[0];
		t->cores[0] = core;
	}
	return 0;
}

int rec_load_mm(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	MmEntry *mm = msg;
	struct rst_task *t = task_for(img, mm->pid, "mm");

	if (!t || check_mm(img, mm)) {
		mm_entry__free_unpacked(mm, NULL);
		return -1;
	}
	if (t->mm)
		mm_entry__free_unpacked(t->mm, NULL);
	t->mm = mm;
	return 0;
}

/* Open files: bounds checked here, then the fd kinds' own loader (res/files.c). */
int rec_load_file(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	if (check_file(img, msg)) {
		file_entry__free_unpacked(msg, NULL);
		return -1;
	}
	return files_load(img, h, msg);
}

int rec_load_posix_timers(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	PosixTimersEntry *pt = msg;
	struct rst_task *t = task_for(img, pt->pid, "posix-timers");

	if (!t) {
		posix_timers_entry__free_unpacked(pt, NULL);
		return -1;
	}
	if (t->ptimers)
		posix_timers_entry__free_unpacked(t->ptimers, NULL);
	t->ptimers = pt;
	return 0;
}

int rec_load_fd(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	FdEntry *fd = msg;
	struct rst_task *t = task_for(img, fd->pid, "fd");

	if (!t || check_fd(img, fd)) {
		fd_entry__free_unpacked(fd, NULL);
		return -1;
	}
	APPEND(t->fds, t->nfds, fd);
	return 0;
}

/* Page data is only located here; its pagemap record follows it. */
int rec_load_pages(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	img->pages_pending.have = true;
	img->pages_pending.len = h->len;
	return img_skip_payload(&img->r, h, &img->pages_pending.off);
}

int rec_load_pagemap(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	PagemapEntry *pm = msg;
	struct rst_task *t = task_for(img, pm->pid, "pagemap");

	if (!t)
		goto err;
	if (!img->pages_pending.have) {
		pr_err("image %s is corrupt: pagemap of pid %u without its pages\n", img->r.path,
		       pm->pid);
		goto err;
	}
	if (check_pagemap(img, pm, img->pages_pending.len))
		goto err;
	if (t->pm)
		pagemap_entry__free_unpacked(t->pm, NULL);
	t->pm = pm;
	t->pages_off = img->pages_pending.off;
	t->pages_len = img->pages_pending.len;
	t->pages_hash = pm->pages_hash;
	free(t->piece_taken);
	t->piece_taken = pm->n_chunk_hashes ? xzalloc(pm->n_chunk_hashes) : NULL;
	img->pages_pending.have = false;
	return 0;
err:
	pagemap_entry__free_unpacked(pm, NULL);
	return -1;
}

/* One record, through the table of kinds; unknown kinds are skipped. */
static int load_record(struct image *img, const struct img_rec_hdr *h)
{
	const struct img_rec_kind *k = img_rec_kind(h->type);
	void *msg = NULL;

	if (!k) {
		/* records of a newer minor version: skip what we do not know */
		pr_debug("skipping unknown record type %u\n", h->type);
		return rec_load_skip(img, h, NULL);
	}
	if (h->type != IMG_HEADER && h->type != IMG_TRAILER && !img->hdr) {
		pr_err("image %s is corrupt: it does not start with a header\n", img->r.path);
		return -1;
	}
	if (k->desc && !(msg = img_read_msg(&img->r, h, k->desc)))
		return -1;
	return k->load(img, h, msg);
}

static int image_check_complete(struct image *img)
{
	size_t i;

	if (!img->hdr) {
		pr_err("image %s is corrupt: no header record\n", img->r.path);
		return -1;
	}
	for (i = 0; i < img->ntasks; i++) {
		struct rst_task *t = &img->tasks[i];

		if (t->te->zombie)
			continue;
		if (!t->ncores || t->cores[0]->tid != t->te->pid || t->ncores != t->te->n_threads ||
		    !t->mm || !t->pm) {
			pr_err("image %s is corrupt: pid %u lacks its %s\n", img->r.path,
			       t->te->pid,
			       !t->mm	? "memory layout"
			       : !t->pm ? "pages"
					: "thread registers");
			return -1;
		}
	}
	return 0;
}

int image_load(const char *dir, struct image *img)
{
	struct img_rec_hdr h;
	int ret;

	memset(img, 0, sizeof(*img));
	res_image_states_init(img);
	if (img_reader_open(&img->r, dir)) {
		res_image_states_fini(img);
		return -1;
	}
	while ((ret = img_next(&img->r, &h)) == 0)
		if (load_record(img, &h))
			goto err;
	if (ret < 0 || image_index_tasks(img) || res_stage(image_loaded, img) ||
	    image_check_complete(img))
		goto err;
	return 0;
err:
	image_free(img);
	return -1;
}

void image_free(struct image *img)
{
	size_t i, j;

	for (i = 0; i < img->ntasks; i++) {
		struct rst_task *t = &img->tasks[i];

		task_entry__free_unpacked(t->te, NULL);
		for (j = 0; j < t->ncores; j++)
			thread_core__free_unpacked(t->cores[j], NULL);
		free(t->cores);
		if (t->mm)
			mm_entry__free_unpacked(t->mm, NULL);
		if (t->pm)
			pagemap_entry__free_unpacked(t->pm, NULL);
		free(t->piece_taken);
		if (t->ptimers)
			posix_timers_entry__free_unpacked(t->ptimers, NULL);
		for (j = 0; j < t->nfds; j++)
			fd_entry__free_unpacked(t->fds[j], NULL);
		free(t->fds);
		free(t->kids);
		free(t->open_ids);
	}
	free(img->tasks);
	free(img->by_pid);
	res_image_states_fini(img);
	if (img->hdr)
		image_header__free_unpacked(img->hdr, NULL);
	img_reader_close(&img->r);
	memset(img, 0, sizeof(*img));
}

/* The pages of t are beyond the end of the file? */
static bool pages_truncated(const struct image *img, const struct rst_task *t,
			    const struct stat *sb)
{
	if (t->pages_off + t->pages_len <= (uint64_t)sb->st_size)
		return false;
	pr_err("image %s is truncated inside the pages of pid %u\n", img->r.path, t->te->pid);
	return true;
}

int image_pages_corrupt(const struct image *img, const struct rst_task *t)
{
	pr_err("image %s is corrupt: the memory pages of pid %u fail their checksum\n", img->r.path,
	       t->te->pid);
	return -1;
}

/*
 * Pages with per-piece checksums: every piece no copier has taken, from
 * the last one back (the copiers go forwards: they meet in the middle).
 */
static int verify_pieces(struct image *img, struct rst_task *t, void *buf, size_t bufsz,
			 XXH3_state_t *st)
{
	size_t k = t->pm->n_chunk_hashes;

	while (k--) {
		uint64_t at = t->pages_off + ((uint64_t)k << IMG_PAGES_CHUNK_SHIFT);
		size_t n =
		    min(IMG_PAGES_CHUNK, t->pages_len - ((uint64_t)k << IMG_PAGES_CHUNK_SHIFT));
		uint64_t base = at & ~(uint64_t)(PAGE_SIZE - 1);
		size_t len = n + (at - base);
		uint64_t h;
		void *win;

		if (atomic_exchange(&t->piece_taken[k], 1))
			continue;
		win = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, img->r.fd, base);
		if (win != MAP_FAILED) {
			h = XXH3_64bits((char *)win + (at - base), n);
			munmap(win, len);
		} else { /* a file system that cannot map: read it */
			size_t done = 0;

			XXH3_64bits_reset(st);
			while (done < n) {
				size_t m = min(bufsz, n - done);

				if (pread(img->r.fd, buf, m, at + done) != (ssize_t)m) {
					pr_err(
					    "image %s cannot be read inside the pages of pid %u\n",
					    img->r.path, t->te->pid);
					return -1;
				}
				XXH3_64bits_update(st, buf, m);
				done += m;
			}
			h = XXH3_64bits_digest(st);
		}
		if (h != t->pm->chunk_hashes[k])
			return image_pages_corrupt(img, t);
	}
	return 0;
}

/*
 * Runs in a thread while restore forks the tree, so it must not allocate:
 * a child forked while this thread held malloc's lock would deadlock.
 * The pages are hashed where they lie, through windows of the image mapped
 * from the page cache (no copy); a file too short for them is refused
 * before any window is touched, which would fault past its end.
 */
#define VERIFY_WINDOW (64UL << 20)

int image_verify_pages(struct image *img, void *buf, size_t bufsz, XXH3_state_t *st)
{
	struct stat sb;
	size_t i;

	if (fault_at(FAULT_RST_VERIFY))
		return -1;
	if (fstat(img->r.fd, &sb)) {
		pr_perror("image %s", img->r.path);
		return -1;
	}
	for (i = 0; i < img->ntasks; i++)
		if (!img->tasks[i].te->zombie && pages_truncated(img, &img->tasks[i], &sb))
			return -1;
	for (i = img->ntasks; i--;) { /* from the back, as verify_pieces goes */
		struct rst_task *t = &img->tasks[i];
		uint64_t off = 0;

		if (t->te->zombie)
			continue;
		if (t->piece_taken) {
			if (verify_pieces(img, t, buf, bufsz, st))
				return -1;
			continue;
		}
		XXH3_64bits_reset(st);
		while (off < t->pages_len) {
			uint64_t at = t->pages_off + off, base = at & ~(uint64_t)(PAGE_SIZE - 1);
			size_t n = min(VERIFY_WINDOW, t->pages_len - off), len = n + (at - base);
			void *win =
			    mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, img->r.fd, base);

			if (win == MAP_FAILED) { /* a file system that cannot map: read it */
				n = min(bufsz, n);
				if (pread(img->r.fd, buf, n, at) != (ssize_t)n) {
					pr_err("image %s is truncated inside the pages of pid %u\n",
					       img->r.path, t->te->pid);
					return -1;
				}
				XXH3_64bits_update(st, buf, n);
			} else {
				XXH3_64bits_update(st, (char *)win + (at - base), n);
				munmap(win, len);
			}
			off += n;
		}
		if (XXH3_64bits_digest(st) != t->pages_hash)
			return image_pages_corrupt(img, t);
	}
	return 0;
}
