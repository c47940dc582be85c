// SPDX-License-Identifier: MIT
/*
 * bigmem - 256 MiB of private anonymous memory; every 64-bit word holds
 * scn_hash(its byte offset).  Check: every word is still right.
 */
#include <sys/mman.h>
#include "scenario.h"

#define SIZE (256UL << 20)

int main(int argc, char **argv)
{
	uint64_t *mem;
	size_t i, n = SIZE / sizeof(uint64_t);

	scn_init(argc, argv, 1);
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		scn_fail("mmap %lu bytes: %s", SIZE, strerror(errno));
	for (i = 0; i < n; i++)
		mem[i] = scn_hash(i * sizeof(uint64_t));
	scn_log("filled %lu MiB at %p", SIZE >> 20, (void *)mem);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);

	for (i = 0; i < n; i++)
		SCN_CHECK(mem[i] == scn_hash(i * sizeof(uint64_t)),
			  "word at offset %#zx is %#llx, expected %#llx", i * sizeof(uint64_t),
			  (unsigned long long)mem[i],
			  (unsigned long long)scn_hash(i * sizeof(uint64_t)));
	scn_pass();
}
