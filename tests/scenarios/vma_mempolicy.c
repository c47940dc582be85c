// SPDX-License-Identifier: MIT
/*
 * vma_mempolicy - NUMA memory policies of single mappings (mbind), under a
 * process policy of its own (interleave over node 0, as `numactl
 * --interleave=0` sets it), or under the default one with
 * VMA_MEMPOLICY_PLAIN=1 in the environment: one mapping bound to node 0, one interleaved
 * with MPOL_F_STATIC_NODES, one preferring node 0, one with the local
 * policy, one with a policy on its middle page only (the mapping splits in
 * three), one with the process's policy set again, and one with none of
 * its own; each with a page touched.
 * Check: get_mempolicy(MPOL_F_ADDR) of every page finds the policy set on
 * it, or the default where none was (it tells the mapping's own policy,
 * which numa_maps does not where it equals the process's).
 */
#include <sys/mman.h>
#include <sys/syscall.h>

#include "scenario.h"

#define MPOL_PREFERRED	    1
#define MPOL_BIND	    2
#define MPOL_INTERLEAVE	    3
#define MPOL_LOCAL	    4
#define MPOL_F_STATIC_NODES (1 << 15)
#define MPOL_F_ADDR	    (1 << 1)
#define PAGES		    3

static const struct {
	int mode;   /* -1: none of its own */
	int middle; /* on the middle page only */
} want[] = {
	{ MPOL_BIND, 0 },
	{ MPOL_INTERLEAVE | MPOL_F_STATIC_NODES, 0 },
	{ MPOL_PREFERRED, 0 },
	{ MPOL_LOCAL, 0 },
	{ MPOL_BIND, 1 },
	{ MPOL_INTERLEAVE, 0 },
	{ -1, 0 },
};
#define NMAPS (sizeof(want) / sizeof(want[0]))

static char *maps[NMAPS];
static long page;

static int policy_at(void *addr, unsigned long *nodes)
{
	unsigned long mask[8] = { 0 };
	int mode = -1;

	if (syscall(SYS_get_mempolicy, &mode, mask, 8 * 64, addr, MPOL_F_ADDR))
		return -errno;
	*nodes = mask[0];
	return mode;
}

static void verify(void)
{
	size_t i;
	int p;

	for (i = 0; i < NMAPS; i++)
		for (p = 0; p < PAGES; p++) {
			int expect = want[i].mode < 0 || (want[i].middle && p != 1)
					 ? 0 /* MPOL_DEFAULT: none of its own */
					 : want[i].mode;
			unsigned long nodes = 0;
			int got = policy_at(maps[i] + p * page, &nodes);

			SCN_CHECK(got == expect && (expect == MPOL_LOCAL || !expect || (nodes & 1)),
				  "mapping %zu page %d: policy %#x nodes %#lx, expected %#x", i, p,
				  got, nodes, expect);
		}
}

int main(int argc, char **argv)
{
	unsigned long node0 = 1;
	size_t i;

	scn_init(argc, argv, 1);
	page = sysconf(_SC_PAGESIZE);
	if (!getenv("VMA_MEMPOLICY_PLAIN") &&
	    syscall(SYS_set_mempolicy, MPOL_INTERLEAVE, &node0, 64))
		scn_fail("set_mempolicy: %s", strerror(errno));
	for (i = 0; i < NMAPS; i++) {
		char *at;

		/* a guard page between them, so no two merge */
		maps[i] = mmap(NULL, (PAGES + 1) * page, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (maps[i] == MAP_FAILED)
			scn_fail("mmap: %s", strerror(errno));
		munmap(maps[i] + PAGES * page, page);
		at = want[i].middle ? maps[i] + page : maps[i];
		if (want[i].mode >= 0 &&
		    syscall(SYS_mbind, at, (want[i].middle ? 1 : PAGES) * page, want[i].mode,
			    want[i].mode == MPOL_LOCAL ? NULL : &node0, 64, 0))
			scn_fail("mbind %#x: %s", want[i].mode, strerror(errno));
		maps[i][page] = (char)i;
	}
	verify();
	scn_ready_then_wait();
	verify();
	for (i = 0; i < NMAPS; i++)
		SCN_CHECK(maps[i][page] == (char)i, "mapping %zu: its page lost", i);
	scn_pass();
}
