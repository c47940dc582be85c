/*
 * seed IN_DIR OUT_DIR: copy the image in IN_DIR to OUT_DIR with every
 * task's page data cut to its first page (the first run of its pagemap,
 * one page long), so a real image makes a small fuzz seed.  Metadata
 * records are copied as they are; pads and the trailer are rewritten.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "log.h"
#include "util.h"
#include "mm.pb-c.h"

struct seed {
	struct img_reader r;
	struct img_writer w;
	void *pages;
	uint64_t pages_len;
};

static int copy_pagemap(struct seed *s, const struct img_rec_hdr *h)
{
	PagemapEntry *pm = img_read_msg(&s->r, h, &pagemap_entry__descriptor);
	struct page_sums sums = { 0 };
	uint64_t keep = 0;
	int ret = -1;

	if (!pm)
		return -1;
	if (pm->n_runs && s->pages_len >= PAGE_SIZE) {
		keep = PAGE_SIZE;
		pm->n_runs = 1;
		pm->runs[0]->nr_pages = 1;
		pm->nr_pages = 1;
	} else {
		pm->n_runs = 0;
		pm->nr_pages = 0;
	}
	if (img_pages_begin(&s->w, keep) || img_pages_feed(&s->w, s->pages, keep) ||
	    img_pages_end(&s->w, &sums))
		goto out;
	free(pm->chunk_hashes);
	pm->chunk_hashes = sums.chunk; /* freed with pm */
	pm->n_chunk_hashes = sums.n;
	sums.chunk = NULL;
	pm->has_chunk_shift = true;
	pm->chunk_shift = IMG_PAGES_CHUNK_SHIFT;
	pm->pages_hash = page_sums_digest(pm->chunk_hashes, pm->n_chunk_hashes);
	ret = img_write_msg(&s->w, IMG_PAGEMAP, &pm->base);
out:
	page_sums_free(&sums);
	pagemap_entry__free_unpacked(pm, NULL);
	free(s->pages);
	s->pages = NULL;
	return ret;
}

static int copy_record(struct seed *s, const struct img_rec_hdr *h)
{
	void *buf;
	int ret;

	if (h->type == IMG_PAGEMAP)
		return copy_pagemap(s, h);
	if (img_read_payload(&s->r, h, &buf))
		return -1;
	switch (h->type) {
	case IMG_PAGES:
		free(s->pages);
		s->pages = buf;
		s->pages_len = h->len;
		return 0;
	case IMG_PAD:
	case IMG_TRAILER:
		ret = 0;
		break;
	default:
		ret = img_write_raw(&s->w, h->type, buf, h->len);
	}
	free(buf);
	return ret;
}

int main(int argc, char **argv)
{
	struct seed s = { 0 };
	struct img_rec_hdr h;
	int ret;

	if (argc != 3) {
		fprintf(stderr, "usage: %s IN_DIR OUT_DIR\n", argv[0]);
		return 2;
	}
	if (img_reader_open(&s.r, argv[1]))
		return 1;
	if (img_writer_open(&s.w, argv[2])) {
		img_reader_close(&s.r);
		return 1;
	}
	while ((ret = img_next(&s.r, &h)) == 0)
		if (copy_record(&s, &h))
			break;
	img_reader_close(&s.r);
	free(s.pages);
	if (ret != 1) {
		img_writer_abort(&s.w);
		return 1;
	}
	return img_writer_commit(&s.w) ? 1 : 0;
}
