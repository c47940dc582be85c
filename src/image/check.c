/*
 * The bounds the loader enforces on what an image says, before restore
 * turns any of it into an allocation, a loop, an fd number or an address:
 * fd numbers and file ids below this system's fs.nr_open, mappings and
 * page runs inside the user address space, sorted and disjoint, the page
 * count of a pagemap equal to its runs and to its page data.  Sizes of
 * records and payloads are bounded by the file itself (image.c), repeated
 * fields and strings by their payload (protobuf-c).  Each check refuses
 * with one line: "image X is corrupt: ...".
 */
#include <stdio.h>

#include "log.h"
#include "records.h"
#include "stasis.h"
#include "util.h"

#define USER_END 0x7ffffffff000UL /* end of user space, 4-level page tables */

/* fs.nr_open: no fd number or service fd of a restore can reach it. */
static uint32_t nr_open(void)
{
	static uint32_t limit;
	char *s;

	if (limit)
		return limit;
	s = read_file("/proc/sys/fs/nr_open", NULL);
	limit = s ? (uint32_t)strtoul(s, NULL, 10) : 0;
	free(s);
	if (!limit || limit > (1U << 30))
		limit = 1U << 20; /* the kernel's default */
	return limit;
}

static int corrupt(struct image *img, const char *what, uint32_t pid)
{
	pr_err("image %s is corrupt: pid %u: %s\n", img->r.path, pid, what);
	return -1;
}

int check_fd(struct image *img, const FdEntry *fd)
{
	char what[96];

	if (fd->fd < nr_open() && fd->file_id < nr_open())
		return 0;
	snprintf(what, sizeof(what), "fd %u (file %u) is beyond fs.nr_open (%u)", fd->fd,
		 fd->file_id, nr_open());
	return corrupt(img, what, fd->pid);
}

int check_file(struct image *img, const FileEntry *fe)
{
	if (fe->id && fe->id < nr_open())
		return 0;
	pr_err("image %s is corrupt: file id %u is 0 or beyond fs.nr_open (%u)\n", img->r.path,
	       fe->id, nr_open());
	return -1;
}

static bool range_ok(uint64_t start, uint64_t end)
{
	return start < end && end <= USER_END && !(start % PAGE_SIZE) && !(end % PAGE_SIZE);
}

/* Mappings: page-aligned, inside user space, sorted and disjoint. */
int check_mm(struct image *img, const MmEntry *mm)
{
	uint64_t last = 0;
	size_t i;

	/* each mapped file is a service fd of the restore child */
	if (mm->n_files >= nr_open())
		return corrupt(img, "it maps more files than fs.nr_open allows fds", mm->pid);
	for (i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (!range_ok(v->start, v->end) || v->start < last)
			return corrupt(img, "its mappings overlap or leave user space", mm->pid);
		last = v->end;
	}
	return 0;
}

/*
 * Page runs: sorted, disjoint, inside user space, and together exactly
 * nr_pages, which is exactly the length of the page data before them.
 */
int check_pagemap(struct image *img, const PagemapEntry *pm, uint64_t pages_len)
{
	uint64_t last = 0, sum = 0;
	size_t i;

	if (pages_len % PAGE_SIZE || pages_len / PAGE_SIZE != pm->nr_pages)
		return corrupt(img, "its pagemap does not match its pages", pm->pid);
	for (i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];

		if (!r->nr_pages || r->nr_pages > USER_END / PAGE_SIZE ||
		    !range_ok(r->vaddr, r->vaddr + r->nr_pages * PAGE_SIZE) || r->vaddr < last ||
		    r->nr_pages > pm->nr_pages - sum)
			return corrupt(img,
				       "its page runs overlap, leave user space or exceed "
				       "its pages",
				       pm->pid);
		last = r->vaddr + r->nr_pages * PAGE_SIZE;
		sum += r->nr_pages;
	}
	if (sum != pm->nr_pages)
		return corrupt(img, "its page runs do not add up to its pages", pm->pid);
	if (pm->n_chunk_hashes &&
	    (!pm->has_chunk_shift || pm->chunk_shift != IMG_PAGES_CHUNK_SHIFT ||
	     pm->n_chunk_hashes != page_sums_count(pages_len)))
		return corrupt(img, "its page checksums do not match its pages", pm->pid);
	if (pm->n_chunk_hashes &&
	    page_sums_digest(pm->chunk_hashes, pm->n_chunk_hashes) != pm->pages_hash)
		return corrupt(img, "its page checksums fail their own checksum", pm->pid);
	return 0;
}

int check_header(struct image *img, const ImageHeader *h)
{
	if (h->page_size != PAGE_SIZE) {
		pr_err("image %s was made with %u-byte pages; this machine uses %lu\n", img->r.path,
		       h->page_size, PAGE_SIZE);
		return -1;
	}
	return 0;
}
