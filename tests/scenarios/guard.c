// SPDX-License-Identifier: MIT
/*
 * guard - memory protections:
 *
 *   g:  8 pages PROT_NONE with pages 1..4 made RW and filled (guards at 0, 5..7)
 *   ro: 2 pages filled, then made PROT_READ
 *   sp: 4 pages filled, then split by mprotect: RW | R | NONE | RW
 *
 * Check: every filled page still holds its pattern (the PROT_NONE page of
 * sp after making it readable again), and with a SIGSEGV handler and
 * sigsetjmp: guard pages still fault on read, read-only pages still fault
 * on write, and RW pages take writes.
 */
#include <setjmp.h>
#include <sys/mman.h>
#include "scenario.h"

static size_t page;
static unsigned char *g, *ro, *sp;
static sigjmp_buf jb;
static void *volatile fault_addr;
static volatile sig_atomic_t probing;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	if (!probing) /* a fault outside faults(): report it instead of dying */
		scn_fail("unexpected SIGSEGV at %p", si->si_addr);
	fault_addr = si->si_addr;
	siglongjmp(jb, 1);
}

/* 1 if accessing p (a read, or a read+write) faults, 0 if not. */
static int faults(unsigned char *p, int write)
{
	volatile unsigned char *vp = p;

	fault_addr = NULL;
	if (sigsetjmp(jb, 1)) {
		probing = 0;
		return fault_addr == p ? 1 : -1;
	}
	probing = 1;
	if (write)
		*vp = *vp;
	else
		(void)*vp;
	probing = 0;
	return 0;
}

static unsigned char pat(const void *base, size_t i)
{
	return (unsigned char)scn_hash((uintptr_t)base + i);
}

static void fill(unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pat(p, i);
}

static void expect(unsigned char *p, size_t len, const char *what)
{
	size_t i;

	for (i = 0; i < len; i++)
		SCN_CHECK(p[i] == pat(p, i), "%s: byte %zu is %#x, expected %#x", what, i, p[i],
			  pat(p, i));
}

static void expect_fault(unsigned char *p, int write, int want, const char *what)
{
	int r = faults(p, write);

	SCN_CHECK(r >= 0, "%s: fault at an unexpected address %p", what, fault_addr);
	SCN_CHECK(r == want, "%s: %s %s", what, write ? "write" : "read",
		  want ? "did not fault" : "faulted");
}

static unsigned char *map(size_t pages, int prot)
{
	void *p = mmap(NULL, pages * page, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	return p;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	scn_init(argc, argv, 1);
	page = (size_t)sysconf(_SC_PAGESIZE);

	g = map(8, PROT_NONE);
	if (mprotect(g + page, 4 * page, PROT_READ | PROT_WRITE) < 0)
		scn_fail("mprotect: %s", strerror(errno));
	fill(g + page, 4 * page);

	ro = map(2, PROT_READ | PROT_WRITE);
	fill(ro, 2 * page);
	mprotect(ro, 2 * page, PROT_READ);

	sp = map(4, PROT_READ | PROT_WRITE);
	fill(sp, 4 * page);
	mprotect(sp + page, page, PROT_READ);
	mprotect(sp + 2 * page, page, PROT_NONE);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	scn_log("guard %p ro %p split %p", (void *)g, (void *)ro, (void *)sp);
	scn_ready();

	while (!scn_check)
		scn_msleep(5);

	expect(g + page, 4 * page, "guarded region");
	expect(ro, 2 * page, "read-only region");
	expect(sp, 2 * page, "split region pages 0-1");
	expect(sp + 3 * page, page, "split region page 3");

	expect_fault(g, 0, 1, "lower guard page");
	expect_fault(g + 5 * page, 0, 1, "upper guard page");
	expect_fault(g + 8 * page - 1, 0, 1, "last guard byte");
	expect_fault(g + page, 1, 0, "first RW page");
	expect_fault(g + 5 * page - 1, 1, 0, "last RW byte");
	expect_fault(ro, 1, 1, "read-only page 0");
	expect_fault(ro + 2 * page - 1, 1, 1, "read-only page 1");
	expect_fault(sp, 1, 0, "split page 0 (RW)");
	expect_fault(sp + page, 0, 0, "split page 1 (R)");
	expect_fault(sp + page, 1, 1, "split page 1 (R)");
	expect_fault(sp + 2 * page, 0, 1, "split page 2 (NONE)");
	expect_fault(sp + 3 * page, 1, 0, "split page 3 (RW)");

	/* the content of the PROT_NONE page must have been kept too */
	SCN_CHECK(mprotect(sp + 2 * page, page, PROT_READ) == 0, "mprotect: %s", strerror(errno));
	expect(sp + 2 * page, page, "split page 2 (was PROT_NONE)");
	scn_pass();
}
