/*
 * The trampoline and scratch area of a task being dumped, made so that
 * losing stasis at any moment (SIGKILL, the OOM killer) loses nothing of
 * the task.
 *
 * Between two remote calls a thread rests exactly as it was frozen
 * (registers and signal mask, see remote_syscall), in a stop the kernel
 * lets it go from without a signal should its tracer die.  For the call
 * itself, its signals are blocked and its registers are ours; it then runs
 * from a resume stub of its own:
 *
 *     syscall                          ; the remote call
 *     rt_sigprocmask(SIG_SETMASK, &its_mask)
 *     popfq, mov ..., %r15 ...         ; its flags and registers
 *     mov its_rsp, %rsp
 *     jmp *its_rip                     ; where it was frozen
 *
 * with its registers and mask as data right after the code (its syscall,
 * if it was frozen in one, rewound to be issued again, as the kernel's
 * restart would have done; a thread's restart block is left alone, so
 * restart_syscall still works).  If stasis dies in the middle of a call,
 * the thread finishes the call and goes back to where it was.  The
 * leader's stub is written into the zero padding at the end of its vDSO
 * image (never executed, never parsed; the page becomes the task's private
 * copy, as with a debugger's breakpoint), so even the mmap of the scratch
 * area and its final munmap are covered; the other threads' stubs are in
 * the area.  Without a usable vDSO, two code bytes at the leader's rip are
 * borrowed for the mmap, as before, and that first call is not covered.
 *
 * What stays if stasis dies: the scratch area, and the leader's stub in
 * its vDSO padding (harmless: never executed; reused by the next dump).
 */
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "rtask.h"
#include "util.h"

#ifndef PR_GET_MDWE
#define PR_GET_MDWE 66 /* Linux 6.3 */
#endif

#define INJECT_PAGES 16	 /* 16 scratch pages, then the threads' stubs */
#define STUB_SLOT    512 /* bytes per thread stub in the area */

/* The resume stub: code, then its data (struct stub_data), copied as one. */
asm(".pushsection .rodata\n"
    ".balign 16\n"
    "stasis_stub_start:\n"
    "	syscall\n"
    "	mov $14, %eax\n" /* rt_sigprocmask(SIG_SETMASK, &mask, NULL, 8) */
    "	mov $2, %edi\n"
    "	lea stasis_stub_data(%rip), %rsi\n"
    "	xor %edx, %edx\n"
    "	mov $8, %r10d\n"
    "	syscall\n"
    "	lea stasis_stub_data+8(%rip), %rsp\n" /* popfq only reads there */
    "	popfq\n"
    "	mov stasis_stub_data+16(%rip), %rax\n"
    "	mov stasis_stub_data+24(%rip), %rbx\n"
    "	mov stasis_stub_data+32(%rip), %rcx\n"
    "	mov stasis_stub_data+40(%rip), %rdx\n"
    "	mov stasis_stub_data+48(%rip), %rsi\n"
    "	mov stasis_stub_data+56(%rip), %rdi\n"
    "	mov stasis_stub_data+64(%rip), %rbp\n"
    "	mov stasis_stub_data+72(%rip), %r8\n"
    "	mov stasis_stub_data+80(%rip), %r9\n"
    "	mov stasis_stub_data+88(%rip), %r10\n"
    "	mov stasis_stub_data+96(%rip), %r11\n"
    "	mov stasis_stub_data+104(%rip), %r12\n"
    "	mov stasis_stub_data+112(%rip), %r13\n"
    "	mov stasis_stub_data+120(%rip), %r14\n"
    "	mov stasis_stub_data+128(%rip), %r15\n"
    "	mov stasis_stub_data+136(%rip), %rsp\n"
    "	jmp *stasis_stub_data+144(%rip)\n"
    "	.balign 8\n"
    "stasis_stub_data:\n"
    "	.fill 19, 8, 0\n"
    "stasis_stub_end:\n"
    ".popsection\n");

extern const unsigned char stasis_stub_start[], stasis_stub_data[], stasis_stub_end[];

/* The data after the stub's code, in the order the code reads it. */
struct stub_data {
	uint64_t mask, flags;
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rsp, rip;
};

#define STUB_CODE_LEN ((size_t)(stasis_stub_data - stasis_stub_start))
#define STUB_LEN      ((size_t)(stasis_stub_end - stasis_stub_start))

/*
 * Registers the stub must bring back: a syscall the thread was frozen in
 * is rewound to be issued again, as the kernel's restart would have done
 * (its restart block is intact: restart_syscall works).
 */
static void regs_for_resume(struct user_regs_struct *r)
{
	if ((long)r->orig_rax < 0)
		return;
	switch ((long)r->rax) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		r->rax = r->orig_rax;
		r->rip -= 2;
		break;
	case -ERESTART_RESTARTBLOCK:
		r->rax = __NR_restart_syscall;
		r->rip -= 2;
		break;
	}
}

/* Write thread t's stub (code and its registers and mask) at 'at'. */
static int stub_write(struct rtask *t, unsigned long at)
{
	unsigned char buf[STUB_SLOT];
	struct user_regs_struct r = t->regs;
	struct stub_data d;

	if (STUB_LEN > sizeof(buf))
		return -1;
	regs_for_resume(&r);
	d = (struct stub_data){
		.mask = t->sigmask,
		.flags = r.eflags & ~0x100UL,
		.rax = r.rax,
		.rbx = r.rbx,
		.rcx = r.rcx,
		.rdx = r.rdx,
		.rsi = r.rsi,
		.rdi = r.rdi,
		.rbp = r.rbp,
		.r8 = r.r8,
		.r9 = r.r9,
		.r10 = r.r10,
		.r11 = r.r11,
		.r12 = r.r12,
		.r13 = r.r13,
		.r14 = r.r14,
		.r15 = r.r15,
		.rsp = r.rsp,
		.rip = r.rip,
	};
	memcpy(buf, stasis_stub_start, STUB_CODE_LEN);
	memcpy(buf + STUB_CODE_LEN, &d, sizeof(d));
	if (remote_write(t->pid, at, buf, STUB_LEN))
		return -1;
	t->syscall_ip = at;
	return 0;
}

/* ------------------------------------------------------- a usable vDSO */

/*
 * Where the leader's stub goes in our own vDSO (the same kernel's as the
 * task's): past the section headers, in the zero padding up to the end.
 */
static long vdso_stub_offset(void)
{
	static long off = -2;
	unsigned long base = getauxval(AT_SYSINFO_EHDR), end, len = 0, start, stop;
	const Elf64_Ehdr *e = (const Elf64_Ehdr *)base;
	char *maps, *p;
	size_t i;

	if (off != -2)
		return off;
	off = -1;
	if (!base || memcmp(e->e_ident, ELFMAG, SELFMAG))
		return -1;
	maps = read_file("/proc/self/maps", NULL);
	for (p = maps; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (sscanf(p, "%lx-%lx", &start, &stop) == 2 && start == base)
			len = stop - start;
	free(maps);
	end = (e->e_shoff + (unsigned long)e->e_shnum * e->e_shentsize + 15) & ~15UL;
	if (!len || end + STUB_SLOT > len)
		return -1;
	for (i = end; i < end + STUB_SLOT; i++)
		if (((const unsigned char *)base)[i])
			return -1;
	off = end;
	return off;
}

/* The stub's place in the task's own vDSO (checked to be ours and unused), or 0. */
static unsigned long task_vdso_stub(pid_t pid)
{
	long off = vdso_stub_offset();
	unsigned char theirs[64], pad[STUB_SLOT], zero[STUB_SLOT] = { 0 };
	unsigned long at = 0;
	size_t alen, i;
	uint64_t *auxv;

	if (off < 0)
		return 0;
	auxv = (uint64_t *)read_proc(pid, "auxv", &alen);
	for (i = 0; auxv && i + 1 < alen / 8; i += 2)
		if (auxv[i] == AT_SYSINFO_EHDR)
			at = auxv[i + 1];
	free(auxv);
	/*
	 * The vDSO may have been moved or removed since exec: check it is ours,
	 * its padding zero (or holding the stub of a dump that was killed).
	 */
	if (!at || remote_read(pid, at, theirs, sizeof(theirs)) ||
	    memcmp((const void *)getauxval(AT_SYSINFO_EHDR), theirs, sizeof(theirs)) ||
	    remote_read(pid, at + off, pad, sizeof(pad)))
		return 0;
	if (memcmp(pad, zero, sizeof(pad)) && memcmp(pad, stasis_stub_start, STUB_CODE_LEN))
		return 0;
	return at + off;
}

/* ------------------------------------------------------------ the area */

/* Remote calls between syscall stops, which lose nothing if stasis dies. */
static int use_syscall_stops(struct rtask *t)
{
	if (ptrace(PTRACE_SETOPTIONS, t->pid, 0, PTRACE_O_TRACESYSGOOD)) {
		pr_perror("cannot set ptrace options of %d", t->pid);
		return -1;
	}
	t->syscall_stops = true;
	return 0;
}

static int save_signal_mask(struct rtask *t)
{
	if (ptrace(PTRACE_GETSIGMASK, t->pid, sizeof(uint64_t), &t->sigmask)) {
		pr_perror("cannot read the signal mask of %d", t->pid);
		return -1;
	}
	t->sigmask_saved = true;
	return 0;
}

/* The leader's stub in its vDSO padding, or else two borrowed bytes at rip. */
static int place_first_stub(struct rtask *t)
{
	static const unsigned char insn[2] = { 0x0f, 0x05 };
	unsigned long at = task_vdso_stub(t->pid);

	if (at && !stub_write(t, at)) {
		t->vdso_stub = at;
		return 0;
	}
	if (remote_read(t->pid, t->regs.rip, t->borrowed, 2))
		return -1;
	t->borrowed_at = t->regs.rip; /* from here on, a release puts them back */
	if (remote_write(t->pid, t->regs.rip, insn, 2))
		return -1;
	t->syscall_ip = t->regs.rip;
	return 0;
}

static int give_back_borrowed(struct rtask *t)
{
	if (!t->borrowed_at)
		return 0;
	if (remote_write(t->pid, t->borrowed_at, t->borrowed, 2))
		return -1;
	t->borrowed_at = 0;
	return 0;
}

/* Zero the stub's bytes in the vDSO padding again (the leader put back first). */
static int remove_vdso_stub(struct rtask *t)
{
	static const unsigned char zero[STUB_SLOT];

	if (!t->vdso_stub)
		return 0;
	if (remote_write(t->pid, t->vdso_stub, zero, STUB_LEN))
		return -1;
	t->vdso_stub = 0;
	return 0;
}

/* Map the area: scratch pages, then one stub slot per thread (RW until sealed). */
static int map_area(struct rtask *t, size_t nthreads)
{
	size_t stubs = (nthreads * STUB_SLOT + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	long addr;

	/*
	 * Shared, so the kernel never merges it into a neighbour of the task's;
	 * private without a vDSO stub: the stubs are then sealed at once and
	 * the threads' written in later through /proc/PID/mem (a private copy).
	 */
	if (remote_syscall(t, &addr, __NR_mmap, 0, INJECT_PAGES * PAGE_SIZE + stubs,
			   PROT_READ | PROT_WRITE,
			   (t->vdso_stub ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0))
		return -1;
	if (addr < 0 && addr > -4096) {
		pr_err("pid %d: cannot map scratch memory: %s\n", t->pid, strerror(-addr));
		return -1;
	}
	t->inject_addr = addr;
	t->inject_len = INJECT_PAGES * PAGE_SIZE + stubs;
	t->stubs_at = addr + INJECT_PAGES * PAGE_SIZE;
	t->nstubs = nthreads;
	t->scratch = addr;
	t->scratch_len = INJECT_PAGES * PAGE_SIZE;
	return 0;
}

int rtask_inject(struct rtask *t, size_t nthreads)
{
	long r;

	if (!nthreads)
		nthreads = 1;
	if (use_syscall_stops(t) || save_signal_mask(t) || place_first_stub(t))
		goto err;
	if (map_area(t, nthreads))
		goto err;
	/* without a vDSO stub, the leader's is the area's first: stubs sealed at once */
	if (!t->vdso_stub) {
		unsigned long first = t->syscall_ip;

		if (stub_write(t, t->stubs_at))
			goto err_unmap;
		t->syscall_ip = first; /* the mprotect still runs from the borrowed bytes */
		if (rtask_seal(t))
			goto err_unmap;
		t->syscall_ip = t->stubs_at;
		if (give_back_borrowed(t))
			goto err_unmap;
	}
	pr_debug("pid %d: stub at %lx (%s), area at %lx\n", t->pid, t->syscall_ip,
		 t->vdso_stub ? "vDSO" : "area", t->inject_addr);
	return 0;
err_unmap:
	remote_syscall(t, &r, __NR_munmap, t->inject_addr, t->inject_len, 0, 0, 0, 0);
	t->inject_addr = 0;
err:
	give_back_borrowed(t);
	rtask_putback(t);
	remove_vdso_stub(t);
	t->syscall_ip = 0;
	return -1;
}

int rtask_adopt(struct rtask *t, const struct rtask *leader, size_t index)
{
	if (index >= leader->nstubs) {
		pr_err("tid %d: no stub for it in the scratch area\n", t->pid);
		return -1;
	}
	if (use_syscall_stops(t) || save_signal_mask(t) ||
	    stub_write(t, leader->stubs_at + index * STUB_SLOT))
		return -1;
	t->scratch = leader->scratch;
	t->scratch_len = leader->scratch_len;
	return 0;
}

int rtask_seal(struct rtask *t)
{
	long r;

	if (!t->inject_addr || t->sealed)
		return 0;
	if (remote_syscall(t, &r, __NR_mprotect, t->stubs_at, t->inject_len - t->scratch_len,
			   PROT_READ | PROT_EXEC, 0, 0, 0) ||
	    r) {
		long mdwe = 0;

		/* memory-deny-write-execute refuses a mapping that gains PROT_EXEC */
		if (r == -EACCES &&
		    !remote_syscall(t, &mdwe, __NR_prctl, PR_GET_MDWE, 0, 0, 0, 0, 0) && mdwe > 0)
			pr_err("pid %d: it denies memory that becomes executable (PR_SET_MDWE, as "
			       "systemd's MemoryDenyWriteExecute= may set); not supported yet\n",
			       t->pid);
		else
			pr_err("pid %d: cannot make the thread stubs executable\n", t->pid);
		return -1;
	}
	t->sealed = true;
	return 0;
}

int rtask_putback(struct rtask *t)
{
	struct user_regs_struct regs = t->regs;
	int ret = rtask_leave_stub(t);

	if (t->regs_dirty) {
		regs_for_release(&regs, false);
		if (tracee_set_regs(t->pid, &regs))
			ret = -1;
	}
	if (t->sigmask_saved) {
		if (ptrace(PTRACE_SETSIGMASK, t->pid, sizeof(uint64_t), &t->sigmask)) {
			pr_perror("cannot restore the signal mask of %d", t->pid);
			ret = -1;
		} else {
			t->sigmask_saved = false;
		}
	}
	return ret;
}

int rtask_uninject(struct rtask *t)
{
	long r;

	if (!t->inject_addr)
		return 0;
	if (remote_syscall(t, &r, __NR_munmap, t->inject_addr, t->inject_len, 0, 0, 0, 0) || r) {
		pr_err("pid %d: cannot remove scratch mapping at %lx\n", t->pid, t->inject_addr);
		return -1;
	}
	t->inject_addr = 0;
	t->scratch = 0;
	t->sealed = false;
	/* the leader back first: it rests on the stub until then */
	if (rtask_putback(t) || remove_vdso_stub(t))
		return -1;
	t->syscall_ip = 0;
	return 0;
}
