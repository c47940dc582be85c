// SPDX-License-Identifier: MIT
/*
 * shm_shapes - MAP_SHARED memory in the shapes that break a naive restore,
 * shared by the root and a child it forks afterwards:
 *
 *   R   4 MiB of MAP_SHARED|MAP_ANONYMOUS with a 1 MiB hole punched in the
 *       middle (munmap) and its last 512 KiB moved elsewhere (mremap): one
 *       shmem object behind three mappings at pgoffs 0, 2 MiB and 3.5 MiB;
 *   A   a second mapping of R's first 64 KiB, made through
 *       /proc/self/map_files (the same object, another address);
 *   M   a memfd of 64 KiB mapped MAP_SHARED (MS) and MAP_PRIVATE (MP); the
 *       first page of MP was written (a private copy), the others were
 *       only read (still the memfd's pages).
 *
 * Every part holds a pattern on one word per page.  The child answers, in
 * each of R's three parts, the request word the root writes there.
 *
 * Check: the patterns are intact; the child answers in each part of R; a
 * word written through A shows in R and the other way; a word written
 * through MS shows in MP's second page but not in its first, which keeps
 * its private value.
 */

#include <sys/mman.h>
#include <sys/wait.h>

#include "scenario.h"

#define KIB	 1024UL
#define MIB	 (1024 * KIB)
#define PAGE	 4096UL
#define R_LEN	 (4 * MIB)
#define HOLE_AT	 (1 * MIB)
#define HOLE_LEN (1 * MIB)
#define MOVE_AT	 (R_LEN - 512 * KIB)
#define MOVE_LEN (512 * KIB)
#define A_LEN	 (64 * KIB)
#define M_LEN	 (64 * KIB)

static char *r, *moved, *alias, *ms, *mp;
static pid_t kid;

/* The three parts of R: where they are, and their offset in the object. */
struct part {
	char *at;
	size_t len, off;
};
static struct part parts[3];

static uint64_t *word(char *base, size_t page)
{
	return (uint64_t *)(base + page * PAGE + 64);
}

static uint64_t pat(size_t off)
{
	return scn_hash(off) | 1;
}

static void kid_loop(void)
{
	int i;

	for (;;) {
		for (i = 0; i < 3; i++) {
			volatile uint64_t *w = (uint64_t *)parts[i].at;

			if (w[1] != w[0])
				w[1] = w[0];
		}
		scn_msleep(2);
	}
}

static void fill(void)
{
	size_t pg;
	int i;

	for (i = 0; i < 3; i++)
		for (pg = 0; pg < parts[i].len / PAGE; pg += 16)
			*word(parts[i].at, pg) = pat(parts[i].off + pg * PAGE);
	for (pg = 0; pg < M_LEN / PAGE; pg++)
		*word(ms, pg) = pat(100 * MIB + pg * PAGE);
	/* MP: the first page is written (private now), the others only read */
	*word(mp, 0) = 0xabcdef;
	for (pg = 1; pg < M_LEN / PAGE; pg++)
		(void)*(volatile uint64_t *)word(mp, pg);
}

static void make_shapes(void)
{
	char path[96];
	int fd;

	r = mmap(NULL, R_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	if (munmap(r + HOLE_AT, HOLE_LEN))
		scn_fail("munmap: %s", strerror(errno));
	moved = mremap(r + MOVE_AT, MOVE_LEN, MOVE_LEN, MREMAP_MAYMOVE);
	if (moved == MAP_FAILED)
		scn_fail("mremap: %s", strerror(errno));
	parts[0] = (struct part){ r, HOLE_AT, 0 };
	parts[1] = (struct part){ r + HOLE_AT + HOLE_LEN, MOVE_AT - HOLE_AT - HOLE_LEN,
				  HOLE_AT + HOLE_LEN };
	parts[2] = (struct part){ moved, MOVE_LEN, MOVE_AT };

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)r,
		 (unsigned long)(r + HOLE_AT));
	fd = open(path, O_RDWR);
	if (fd < 0)
		scn_fail("open %s: %s", path, strerror(errno));
	alias = mmap(NULL, A_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (alias == MAP_FAILED)
		scn_fail("mmap of map_files: %s", strerror(errno));

	fd = memfd_create("shapes", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, M_LEN))
		scn_fail("memfd: %s", strerror(errno));
	ms = mmap(NULL, M_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	mp = mmap(NULL, M_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (ms == MAP_FAILED || mp == MAP_FAILED)
		scn_fail("mmap of the memfd: %s", strerror(errno));
}

static void verify(void)
{
	uint64_t req = scn_hash(getpid()) | 1;
	size_t pg;
	int i, tries;

	for (i = 0; i < 3; i++)
		for (pg = 0; pg < parts[i].len / PAGE; pg += 16)
			SCN_CHECK(*word(parts[i].at, pg) == pat(parts[i].off + pg * PAGE),
				  "part %d of R: page %zu changed", i, pg);
	for (pg = 0; pg < M_LEN / PAGE; pg++)
		SCN_CHECK(*word(ms, pg) == pat(100 * MIB + pg * PAGE), "memfd page %zu changed",
			  pg);
	SCN_CHECK(*word(mp, 0) == 0xabcdef, "the private copy of the memfd's first page changed");
	for (i = 0; i < 3; i++) {
		volatile uint64_t *w = (uint64_t *)parts[i].at;

		w[0] = req + i;
		for (tries = 0; tries < 500 && w[1] != req + i; tries++)
			scn_msleep(2);
		SCN_CHECK(w[1] == req + i, "the child did not answer in part %d of R", i);
	}
	*word(alias, 3) = req;
	SCN_CHECK(*word(r, 3) == req, "a write through the map_files alias is not in R");
	*word(r, 5) = req + 7;
	SCN_CHECK(*word(alias, 5) == req + 7, "a write to R is not in the map_files alias");
	*word(ms, 1) = req;
	SCN_CHECK(*word(mp, 1) == req, "the memfd's private mapping does not see the file");
	*word(ms, 0) = req;
	SCN_CHECK(*word(mp, 0) == 0xabcdef, "the private copy follows the file");
	SCN_CHECK(kill(kid, 0) == 0, "the child is gone");
}

int main(int argc, char **argv)
{
	scn_init(argc, argv, 0);
	make_shapes();
	fill();
	kid = scn_fork(kid_loop);
	scn_write_pids(&kid, 1);
	scn_ready_then_wait();
	verify();
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	scn_pass();
}
