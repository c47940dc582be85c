// SPDX-License-Identifier: MIT
/*
 * cow - a preforked server in small: the parent fills 64 MiB of private
 * anonymous memory with a pattern (derived from the token) and forks
 * three workers that share it copy-on-write: R only reads it, W rewrites
 * its first 256 pages, Z drops pages 1024-2047 (MADV_DONTNEED: zeros).
 * After the forks the parent rewrites pages 8192-8255 (its own copies
 * from then on).  The workers' PIDs are in WORKDIR/pids, the mapping's
 * address in WORKDIR/cow.addr.
 *
 * Check: the parent first writes page 100 (a write after the restore:
 * no worker may see it), then each worker checks every page of its view
 * and reports through a pipe; the parent checks its own.  That the pages
 * are still shared (one physical page for all four) is the runner's
 * check (tests/suites/cow.sh, the sum of Pss).
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "scenario.h"

#define PAGE	 4096UL
#define NPAGES	 16384UL /* 64 MiB */
#define W_PAGES	 256UL
#define Z_FIRST	 1024UL
#define Z_LAST	 2048UL
#define P_FIRST	 8192UL
#define P_LAST	 8256UL
#define P_LATE	 100UL
#define NWORKERS 3

enum { PAT, W_OWN, ZERO, P_OWN };

static unsigned char *mem;

static void fill(size_t i, int how)
{
	unsigned char *p = mem + i * PAGE;
	uint64_t word = how == PAT ? scn_token ^ i : how == W_OWN ? ~i : scn_token + i * 3;

	memset(p, how == PAT ? (int)(i * 7 + 1) : how == W_OWN ? 0xa5 : 0x5a, PAGE);
	memcpy(p, &word, sizeof(word));
}

/* Does page i hold what 'how' wrote?  NULL, or what differs. */
static const char *page_is(size_t i, int how)
{
	static char why[128];
	unsigned char *p = mem + i * PAGE, want[PAGE];

	if (how == ZERO) {
		memset(want, 0, PAGE);
	} else {
		unsigned char *save = mem;

		mem = want - i * PAGE;
		fill(i, how);
		mem = save;
	}
	if (!memcmp(p, want, PAGE))
		return NULL;
	snprintf(why, sizeof(why), "page %zu holds %#x.. (want %#x..)", i, p[8], want[8]);
	return why;
}

/* What worker k (0 R, 1 W, 2 Z; -1 the parent) must see at page i. */
static int expected(int k, size_t i, bool late)
{
	if (k == 1 && i < W_PAGES)
		return W_OWN;
	if (k == 2 && i >= Z_FIRST && i < Z_LAST)
		return ZERO;
	if (k == -1 && ((i >= P_FIRST && i < P_LAST) || (late && i == P_LATE)))
		return P_OWN;
	return PAT;
}

static const char *check_all(int k, bool late)
{
	static char why[160];
	size_t i;

	for (i = 0; i < NPAGES; i++) {
		const char *bad = page_is(i, expected(k, i, late));

		if (bad) {
			snprintf(why, sizeof(why), "%s %s", k < 0 ? "parent" : "worker", bad);
			return why;
		}
	}
	return NULL;
}

static void __attribute__((noreturn)) worker(int k, int cmd, int res, int rdy)
{
	char c, out[160] = "ok";
	const char *bad;
	size_t i;

	if (k == 1)
		for (i = 0; i < W_PAGES; i++)
			fill(i, W_OWN);
	if (k == 2 && madvise(mem + Z_FIRST * PAGE, (Z_LAST - Z_FIRST) * PAGE, MADV_DONTNEED))
		_exit(3);
	if (write(rdy, "r", 1) != 1)
		_exit(3);
	while (read(cmd, &c, 1) < 0 && errno == EINTR)
		;
	bad = check_all(k, false);
	if (bad)
		snprintf(out, sizeof(out), "worker %d: %s", k, bad);
	if (write(res, out, sizeof(out)) != sizeof(out))
		_exit(4);
	_exit(0);
}

int main(int argc, char **argv)
{
	int cmd[NWORKERS][2], res[2], rdy[2], k, st;
	pid_t kid[NWORKERS];
	char buf[160], pids[64] = "";
	const char *bad;
	size_t i;

	scn_init(argc, argv, 1);
	mem = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	madvise(mem, NPAGES * PAGE, MADV_NOHUGEPAGE); /* one sharing per small page */
	for (i = 0; i < NPAGES; i++)
		fill(i, PAT);
	if (pipe(res) || pipe(rdy))
		scn_fail("pipe: %s", strerror(errno));
	for (k = 0; k < NWORKERS; k++) {
		if (pipe(cmd[k]))
			scn_fail("pipe: %s", strerror(errno));
		kid[k] = fork();
		if (kid[k] < 0)
			scn_fail("fork: %s", strerror(errno));
		if (kid[k] == 0) {
			close(cmd[k][1]);
			worker(k, cmd[k][0], res[1], rdy[1]);
		}
		close(cmd[k][0]);
		snprintf(pids + strlen(pids), sizeof(pids) - strlen(pids), "%s%d", k ? " " : "",
			 (int)kid[k]);
	}
	for (i = P_FIRST; i < P_LAST; i++)
		fill(i, P_OWN);
	snprintf(buf, sizeof(buf), "%s\n", pids);
	scn_write_file("pids", buf);
	snprintf(buf, sizeof(buf), "%lx\n", (unsigned long)mem);
	scn_write_file("cow.addr", buf);
	for (k = 0; k < NWORKERS; k++) /* the workers have written and dropped their pages */
		SCN_CHECK(read(rdy[0], buf, 1) == 1, "a worker did not start");
	close(rdy[0]);
	close(rdy[1]);
	scn_ready();
	while (!scn_check)
		scn_msleep(10);
	fill(P_LATE, P_OWN);
	for (k = 0; k < NWORKERS; k++)
		SCN_CHECK(write(cmd[k][1], "c", 1) == 1, "worker %d: %s", k, strerror(errno));
	for (k = 0; k < NWORKERS; k++) {
		SCN_CHECK(read(res[0], buf, sizeof(buf)) == sizeof(buf), "no report from a worker");
		SCN_CHECK(!strcmp(buf, "ok"), "%s", buf);
	}
	for (k = 0; k < NWORKERS; k++)
		SCN_CHECK(waitpid(kid[k], &st, 0) == kid[k] && WIFEXITED(st) && !WEXITSTATUS(st),
			  "worker %d ended with status %#x", k, st);
	bad = check_all(-1, true);
	SCN_CHECK(!bad, "%s", bad);
	scn_pass();
}
