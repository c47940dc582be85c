// SPDX-License-Identifier: MIT
/*
 * pages_zoo - the shapes of memory the page paths must get right: a large
 * mapping with holes, read-only and PROT_NONE mappings holding written
 * pages, a MADV_HUGEPAGE mapping, shared anonymous memory, a private file
 * mapping whose pages were written (copy-on-write), pages present but
 * zero, pages only read (the zero page), a locked mapping, and a mapping
 * partly written at its two ends.  Every written byte holds a pattern of
 * its mapping and offset.  Check: every byte is still right.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <sys/mman.h>
#include "scenario.h"

#define MIB (1UL << 20)

struct zone {
	const char *name;
	size_t size;
	int prot; /* after filling */
	char *mem;
	size_t step, stride; /* written: the first `step` bytes of every `stride` */
};

static struct zone zones[] = {
	{ "holes", 64 * MIB, PROT_READ | PROT_WRITE, NULL, MIB, 2 * MIB },
	{ "readonly", 8 * MIB, PROT_READ, NULL, 8 * MIB, 8 * MIB },
	{ "none", 4 * MIB, PROT_NONE, NULL, 4 * MIB, 4 * MIB },
	{ "huge", 16 * MIB, PROT_READ | PROT_WRITE, NULL, 16 * MIB, 16 * MIB },
	{ "shared", 4 * MIB, PROT_READ | PROT_WRITE, NULL, 4 * MIB, 4 * MIB },
	{ "filepriv", 4 * MIB, PROT_READ | PROT_WRITE, NULL, 64 * 1024, 256 * 1024 },
	{ "locked", 1 * MIB, PROT_READ | PROT_WRITE, NULL, 1 * MIB, 1 * MIB },
	{ "ends", 8 * MIB, PROT_READ | PROT_WRITE, NULL, 12 * 4096, 8 * MIB - 12 * 4096 },
};

static unsigned char pattern(size_t zone, size_t off)
{
	return (unsigned char)(scn_hash(zone * 1000003 + off / 8) >> ((off % 8) * 8)) | 1;
}

static bool written(const struct zone *z, size_t off)
{
	return off % z->stride < z->step;
}

static char *map_zone(size_t k, struct zone *z)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS, fd = -1;
	char *p;

	if (!strcmp(z->name, "shared"))
		flags = MAP_SHARED | MAP_ANONYMOUS;
	if (!strcmp(z->name, "filepriv")) {
		fd = open("filepriv.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || ftruncate(fd, z->size))
			scn_fail("filepriv.dat: %s", strerror(errno));
		flags = MAP_PRIVATE;
	}
	p = mmap(NULL, z->size, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED)
		scn_fail("mmap %s: %s", z->name, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (!strcmp(z->name, "huge"))
		madvise(p, z->size, MADV_HUGEPAGE); /* best effort: THP may be off */
	(void)k;
	return p;
}

int main(int argc, char **argv)
{
	volatile unsigned char sink = 0;
	char *zero, *readonly_zero;
	size_t k, off;

	scn_init(argc, argv, 1);
	for (k = 0; k < sizeof(zones) / sizeof(zones[0]); k++) {
		struct zone *z = &zones[k];

		z->mem = map_zone(k, z);
		for (off = 0; off < z->size; off++)
			if (written(z, off))
				z->mem[off] = pattern(k, off);
		if (!strcmp(z->name, "locked") && mlock(z->mem, z->size))
			scn_fail("mlock: %s", strerror(errno));
		if (mprotect(z->mem, z->size, z->prot))
			scn_fail("mprotect %s: %s", z->name, strerror(errno));
	}
	/* 2 MiB of pages written with zeros (present, not the zero page) */
	zero = mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* 2 MiB only read: the shared zero page */
	readonly_zero = mmap(NULL, 2 * MIB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (zero == MAP_FAILED || readonly_zero == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	for (off = 0; off < 2 * MIB; off += 4096) {
		zero[off] = 0;
		sink += readonly_zero[off];
	}
	scn_log("mapped %zu zones", k);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);

	for (k = 0; k < sizeof(zones) / sizeof(zones[0]); k++) {
		struct zone *z = &zones[k];

		if (z->prot == PROT_NONE && mprotect(z->mem, z->size, PROT_READ))
			scn_fail("mprotect %s: %s", z->name, strerror(errno));
		for (off = 0; off < z->size; off++) {
			unsigned char want = written(z, off) ? pattern(k, off) : 0;

			SCN_CHECK((unsigned char)z->mem[off] == want,
				  "%s: byte at offset %#zx is %#x, expected %#x", z->name, off,
				  (unsigned char)z->mem[off], want);
		}
	}
	for (off = 0; off < 2 * MIB; off++)
		SCN_CHECK(!zero[off] && !readonly_zero[off], "zero pages: byte %#zx not zero", off);
	(void)sink;
	scn_pass();
}
