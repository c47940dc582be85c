// SPDX-License-Identifier: MIT
/*
 * sparse - a 1 GiB MAP_NORESERVE anonymous mapping in which only 16 pages
 * are ever written (whole pages, with a hash pattern).  Nothing else is
 * touched before the check, so a good dump stays small (the runner checks
 * the image size).  Check: the 16 pages are intact and a sample of
 * untouched pages (read only now) are all zeros.
 */
#include <sys/mman.h>
#include "scenario.h"

#define SIZE	(1UL << 30)
#define NTOUCH	16
#define NSAMPLE 256
#define SEED	0x5370617273650000ULL /* "Sparse" */

static size_t page;

/* Offset of the i-th touched page: one per 64 MiB, at a varying page. */
static size_t touched_off(int i)
{
	return (size_t)i * (SIZE / NTOUCH) + (size_t)((i * 5) % 13) * page;
}

static int is_touched(size_t off)
{
	int i;

	for (i = 0; i < NTOUCH; i++)
		if (touched_off(i) == off)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char *mem;
	uint64_t *w;
	size_t off, j;
	int i, s;

	scn_init(argc, argv, 1);
	page = (size_t)sysconf(_SC_PAGESIZE);
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (mem == MAP_FAILED)
		scn_fail("mmap 1 GiB: %s", strerror(errno));
	/* no transparent huge pages: a touched page must stay one page */
	madvise(mem, SIZE, MADV_NOHUGEPAGE);
	for (i = 0; i < NTOUCH; i++) {
		off = touched_off(i);
		w = (uint64_t *)(mem + off);
		for (j = 0; j < page / sizeof(uint64_t); j++)
			w[j] = scn_hash(SEED + off + j * sizeof(uint64_t));
	}
	scn_log("touched %d pages of a 1 GiB mapping at %p", NTOUCH, (void *)mem);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);

	for (i = 0; i < NTOUCH; i++) {
		off = touched_off(i);
		w = (uint64_t *)(mem + off);
		for (j = 0; j < page / sizeof(uint64_t); j++)
			SCN_CHECK(w[j] == scn_hash(SEED + off + j * sizeof(uint64_t)),
				  "touched page at %#zx: word %zu is %#llx", off, j,
				  (unsigned long long)w[j]);
	}
	for (s = 0; s <= NSAMPLE; s++) {
		/* one page per 4 MiB, plus the very last page */
		off = s < NSAMPLE ? (size_t)s * (SIZE / NSAMPLE) + 37 * page : SIZE - page;
		if (is_touched(off))
			continue;
		w = (uint64_t *)(mem + off);
		for (j = 0; j < page / sizeof(uint64_t); j++)
			SCN_CHECK(w[j] == 0, "untouched page at %#zx: word %zu is %#llx", off, j,
				  (unsigned long long)w[j]);
	}
	scn_pass();
}
