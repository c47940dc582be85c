/*
 * memhog - benchmark target: a process with N MiB of touched anonymous memory.
 *
 *   memhog MIB [READY_FILE]
 *
 * Maps MIB MiB of private anonymous memory, writes every byte of every page
 * (a non-zero pattern that differs from page to page, so no page is zero,
 * identical to another or trivially compressible), then announces that it
 * is ready, either by printing "ready" on stdout or, when READY_FILE is
 * given, by creating that file, and pause()s until it is killed.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

int main(int argc, char **argv)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size, off;
	unsigned char *mem;
	char *end;
	long mib;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: memhog MIB [READY_FILE]\n");
		return 2;
	}
	mib = strtol(argv[1], &end, 10);
	if (*end || mib <= 0) {
		fprintf(stderr, "memhog: bad size '%s'\n", argv[1]);
		return 2;
	}
	size = (size_t)mib << 20;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("memhog: mmap");
		return 1;
	}
	for (off = 0; off < size; off += page) {
		uint64_t idx = off / page;

		memset(mem + off, 0xa5 ^ (int)(idx & 0x5a), page);
		memcpy(mem + off, &idx, sizeof(idx)); /* page index: unique */
		mem[off + sizeof(idx)] = 0x5a;	      /* never all-zero */
	}
	if (bench_ready("memhog", argc == 3 ? argv[2] : NULL))
		return 1;
	for (;;)
		pause();
}
