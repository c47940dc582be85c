/*
 * Loading a whole image for restore and show: every metadata record is
 * decoded and attached to its task; page data is not read, only located
 * (its offset in the file), since restore reads it straight into the
 * restored tasks.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "res.h"
#include "stasis.h"
#include "util.h"

struct rst_task *image_task(struct image *img, uint32_t pid)
{
	size_t i;

	for (i = 0; i < img->ntasks; i++)
		if (img->tasks[i].te && img->tasks[i].te->pid == pid)
			return &img->tasks[i];
	return NULL;
}

static struct rst_task *task_for(struct image *img, uint32_t pid, const char *what)
{
	struct rst_task *t = image_task(img, pid);

	if (!t)
		pr_err("image %s is corrupt: %s record for unknown pid %u\n", img->r.path, what,
		       pid);
	return t;
}

struct pending_pages {
	bool have;
	uint64_t off, len;
};

static int load_record(struct image *img, struct img_rec_hdr *h, struct pending_pages *pp)
{
	struct img_reader *r = &img->r;
	struct rst_task *t;
	void *m;

	switch (h->type) {
	case IMG_HEADER:
		if (img->hdr) {
			pr_err("image %s is corrupt: two headers\n", r->path);
			return -1;
		}
		img->hdr = img_read_msg(r, h, &image_header__descriptor);
		return img->hdr ? 0 : -1;
	case IMG_TASK:
		m = img_read_msg(r, h, &task_entry__descriptor);
		if (!m)
			return -1;
		img->tasks = xrealloc(img->tasks, (img->ntasks + 1) * sizeof(*img->tasks));
		memset(&img->tasks[img->ntasks], 0, sizeof(*img->tasks));
		img->tasks[img->ntasks++].te = m;
		return 0;
	case IMG_THREAD_CORE:
		m = img_read_msg(r, h, &thread_core__descriptor);
		if (!m || !(t = task_for(img, ((ThreadCore *)m)->pid, "thread")))
			return -1;
		t->cores = xrealloc(t->cores, (t->ncores + 1) * sizeof(*t->cores));
		t->cores[t->ncores++] = m;
		if (((ThreadCore *)m)->tid == t->te->pid && t->ncores > 1) {
			/* the leader's core goes first */
			t->cores[t->ncores - 1] = t->cores[0];
			t->cores[0] = m;
		}
		return 0;
	case IMG_MM:
		m = img_read_msg(r, h, &mm_entry__descriptor);
		if (!m || !(t = task_for(img, ((MmEntry *)m)->pid, "mm")))
			return -1;
		t->mm = m;
		return 0;
	case IMG_FILE:
		m = img_read_msg(r, h, &file_entry__descriptor);
		return m ? files_load(img, h, m) : -1;
	case IMG_PIPE:
		m = img_read_msg(r, h, &pipe_entry__descriptor);
		return m ? pipe_load(img, h, m) : -1;
	case IMG_POSIX_TIMERS:
		m = img_read_msg(r, h, &posix_timers_entry__descriptor);
		if (!m || !(t = task_for(img, ((PosixTimersEntry *)m)->pid, "posix-timers")))
			return -1;
		if (t->ptimers)
			posix_timers_entry__free_unpacked(t->ptimers, NULL);
		t->ptimers = m;
		return 0;
	case IMG_TTY:
		m = img_read_msg(r, h, &tty_entry__descriptor);
		return m ? tty_load(img, h, m) : -1;
	case IMG_FD:
		m = img_read_msg(r, h, &fd_entry__descriptor);
		if (!m || !(t = task_for(img, ((FdEntry *)m)->pid, "fd")))
			return -1;
		t->fds = xrealloc(t->fds, (t->nfds + 1) * sizeof(*t->fds));
		t->fds[t->nfds++] = m;
		return 0;
	case IMG_PAGES:
		pp->have = true;
		pp->len = h->len;
		return img_skip_payload(r, h, &pp->off);
	case IMG_PAGEMAP: {
		PagemapEntry *pm = img_read_msg(r, h, &pagemap_entry__descriptor);

		if (!pm || !(t = task_for(img, pm->pid, "pagemap")))
			return -1;
		if (!pp->have || pp->len != pm->nr_pages * img->hdr->page_size) {
			pr_err("image %s is corrupt: pagemap of pid %u does not match its pages\n",
			       r->path, pm->pid);
			return -1;
		}
		t->pm = pm;
		t->pages_off = pp->off;
		t->pages_len = pp->len;
		t->pages_hash = pm->pages_hash;
		pp->have = false;
		return 0;
	}
	case IMG_FSOBJ_DATA:
		return fsobj_data_load(img, h, NULL);
	case IMG_FLOCK:
		m = img_read_msg(r, h, &flock_entry__descriptor);
		return m ? flock_load(img, h, m) : -1;
	case IMG_PAD: {
		uint64_t off;

		return img_skip_payload(r, h, &off);
	}
	default:
		/* records of a newer minor version: skip what we do not know */
		pr_debug("skipping unknown record type %u\n", h->type);
		{
			uint64_t off;

			return img_skip_payload(r, h, &off);
		}
	}
}

static int image_check_complete(struct image *img)
{
	size_t i;

	if (!img->hdr) {
		pr_err("image %s is corrupt: no header record\n", img->r.path);
		return -1;
	}
	if (img->hdr->page_size != PAGE_SIZE) {
		pr_err("image %s was made with %u-byte pages; this machine uses %lu\n", img->r.path,
		       img->hdr->page_size, PAGE_SIZE);
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
	struct pending_pages pp = { 0 };
	struct img_rec_hdr h;
	int ret;

	memset(img, 0, sizeof(*img));
	res_image_states_init(img);
	if (img_reader_open(&img->r, dir))
		return -1;
	while ((ret = img_next(&img->r, &h)) == 0) {
		if (h.type == IMG_TRAILER) {
			void *buf;

			if (img_read_payload(&img->r, &h, &buf))
				goto err;
			free(buf);
			continue;
		}
		if (h.type != IMG_HEADER && !img->hdr) {
			pr_err("image %s is corrupt: it does not start with a header\n",
			       img->r.path);
			goto err;
		}
		if (load_record(img, &h, &pp))
			goto err;
	}
	if (ret < 0 || res_stage(image_loaded, img) || image_check_complete(img))
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
		if (t->ptimers)
			posix_timers_entry__free_unpacked(t->ptimers, NULL);
		for (j = 0; j < t->nfds; j++)
			fd_entry__free_unpacked(t->fds[j], NULL);
		free(t->fds);
		free(t->kids);
		free(t->open_ids);
	}
	free(img->tasks);
	res_image_states_fini(img);
	if (img->hdr)
		image_header__free_unpacked(img->hdr, NULL);
	img_reader_close(&img->r);
	memset(img, 0, sizeof(*img));
}

/*
 * Runs in a thread while restore forks the tree, so it must not allocate:
 * a child forked while this thread held malloc's lock would deadlock.
 */
int image_verify_pages(struct image *img, void *buf, size_t bufsz, XXH3_state_t *st)
{
	size_t i;

	for (i = 0; i < img->ntasks; i++) {
		struct rst_task *t = &img->tasks[i];
		uint64_t off = 0;

		if (t->te->zombie)
			continue;
		XXH3_64bits_reset(st);
		while (off < t->pages_len) {
			size_t n = min(bufsz, t->pages_len - off);

			if (pread(img->r.fd, buf, n, t->pages_off + off) != (ssize_t)n) {
				pr_err("image %s is truncated inside the pages of pid %u\n",
				       img->r.path, t->te->pid);
				return -1;
			}
			XXH3_64bits_update(st, buf, n);
			off += n;
		}
		if (XXH3_64bits_digest(st) != t->pages_hash) {
			pr_err(
			    "image %s is corrupt: the memory pages of pid %u fail their checksum\n",
			    img->r.path, t->te->pid);
			return -1;
		}
	}
	return 0;
}
