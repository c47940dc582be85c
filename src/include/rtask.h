/*
 * The ptrace layer: seize and freeze threads, run system calls inside a
 * stopped task ("remote syscalls"), read and write its memory, and let it
 * go again exactly as it was.  This replaces injected parasite code.
 */
#ifndef STASIS_RTASK_H
#define STASIS_RTASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <sys/user.h>

/* Restart codes the kernel leaves in rax of a syscall interrupted by a stop. */
#define ERESTARTSYS	      512
#define ERESTARTNOINTR	      513
#define ERESTARTNOHAND	      514
#define ERESTART_RESTARTBLOCK 516

struct rtask {
	pid_t pid;		      /* thread we drive */
	struct user_regs_struct regs; /* as found at freeze time */
	bool regs_dirty;	      /* we ran remote syscalls since */
	unsigned long syscall_ip;     /* address of a 'syscall' instruction */
	unsigned long scratch;	      /* RW scratch area in the task */
	size_t scratch_len;
	/* dump-time injection bookkeeping */
	unsigned long inject_addr; /* our mapping, 0 if none */
	size_t inject_len;
	uint64_t sigmask; /* blocked mask found at inject time */
	bool sigmask_saved;
	unsigned long borrowed_at; /* while injecting: code bytes we replaced */
	unsigned char borrowed[2];
	bool syscall_stops;	 /* remote calls stop at syscall entry and exit (inject.c) */
	unsigned long vdso_stub; /* leader: its resume stub in the vDSO padding, or 0 */
	unsigned long stubs_at;	 /* leader: the threads' resume stubs in the area */
	size_t nstubs;
	bool sealed; /* the stubs are executable */
	/*
	 * A run of remote calls (rtask_rest_in_stub): between two of them the
	 * thread rests in its resume stub's syscall-exit stop, signals
	 * blocked, instead of being put back each time (in_stub: it does now).
	 */
	bool rest_in_stub, in_stub;
	int stop_sig; /* at freeze: in a job-control (group) stop by this signal */
	/* restore: the batch loop in the trampoline (rbatch.c), 0 if none */
	unsigned long batch_ip;
	struct rbatch *batch; /* calls queued for it */
	/* a timed call it was frozen in (deadline.c): its end, 0 if unknown */
	long long deadline_mono, deadline_real;
	bool reissue;  /* released into that call again, with the time it had left */
	bool released; /* restore: let go already (socket re-issues go first) */
};

/* Attach to a thread and stop it (PTRACE_SEIZE + PTRACE_INTERRUPT).
 * Returns -ESRCH, silently, if the thread no longer exists. */
int tracee_seize(pid_t tid);
/* The same; *stop_sig is the signal of a job-control stop it was in, or 0. */
int tracee_seize_stop(pid_t tid, int *stop_sig);
/* Wait until a seized thread is in a ptrace stop. */
int tracee_wait_stop(pid_t tid, int *status);
int tracee_get_regs(pid_t tid, struct user_regs_struct *regs);
int tracee_set_regs(pid_t tid, const struct user_regs_struct *regs);
int tracee_get_xstate(pid_t tid, void *buf, size_t *len);
int tracee_set_xstate(pid_t tid, const void *buf, size_t len);

/* Freeze: seize + record registers (-ESRCH: gone).  Release: put them back. */
int rtask_freeze(struct rtask *t, pid_t tid);
/*
 * The same in two halves, many threads at a time: begin seizes and
 * interrupts; if *waiting, the thread is frozen once rtask_freeze_wait
 * (which detaches it on failure) returns 0.  A thread in a timed call is
 * frozen at once, after drain(arg) has waited for the others (rtask.c).
 */
int rtask_freeze_begin(struct rtask *t, pid_t tid, bool *waiting, int (*drain)(void *), void *arg);
int rtask_freeze_wait(struct rtask *t);
/* Put the registers back (with syscall restart applied) and detach. */
int rtask_release(struct rtask *t);

/*
 * Make the syscall 'nr' run in the stopped task and return its result in
 * *ret (a negative errno on failure).  Returns -1 only if ptrace itself
 * failed (the task died, ...).  The task must have syscall_ip set.
 */
extern unsigned long remote_syscall_count; /* for -v4 statistics */
/*
 * The same call in n threads at once (args[i]: thread i's six arguments),
 * their stops waited for together; rets[i] their results.  -1 only if
 * ptrace failed, every thread then put back as it was.
 */
int remote_syscall_each(struct rtask *const *ts, size_t n, long nr, const unsigned long (*args)[6],
			long *rets);
int remote_syscall(struct rtask *t, long *ret, long nr, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6);

/*
 * Dump side (inject.c): map a scratch area with a resume stub for each of
 * nthreads threads into a frozen task's leader; give another thread (index
 * 1..) its stub; make the stubs executable once every thread has one (no
 * thread's call runs before); give a thread its registers and mask back;
 * remove the area (and put the leader back).
 */
int rtask_inject(struct rtask *t, size_t nthreads);
int rtask_adopt(struct rtask *t, const struct rtask *leader, size_t index);
int rtask_seal(struct rtask *t);
int rtask_putback(struct rtask *t);
int rtask_uninject(struct rtask *t);
/*
 * The calls from here on rest in the stub between them (inject.c); and
 * the end of that: the thread put back as it was frozen.
 */
void rtask_rest_in_stub(struct rtask *t);
int rtask_leave_stub(struct rtask *t);

/*
 * rbatch.c: queue a remote call (WHAT names it in the error line should it
 * fail: a result in -4095..-1); run the queued calls with one stop; pass
 * memory to a queued call (its address in the task, 0 on failure).  The
 * loop's code, which the restore trampoline holds at batch_ip.
 */
int remote_queue(struct rtask *t, const char *what, long nr, unsigned long a1, unsigned long a2,
		 unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6);
int rbatch_flush(struct rtask *t);
/* The same in two halves, so that several threads run theirs at once. */
int rbatch_start(struct rtask *t);
int rbatch_finish(struct rtask *t, long *rets, size_t *failed);
/* The scratch area a thread needs of its own for its batches. */
size_t rbatch_window(void);
unsigned long rbatch_arg(struct rtask *t, const void *buf, size_t len);
void rbatch_free(struct rtask *t);
const void *rbatch_code(size_t *len);

/* Copy to/from the task's memory (ignores page protections). */
int remote_write(pid_t pid, unsigned long addr, const void *buf, size_t len);
int remote_read(pid_t pid, unsigned long addr, void *buf, size_t len);

/* Registers of an interrupted syscall, ready for detach (see rtask.c). */
void regs_for_release(struct user_regs_struct *regs, bool fresh_task);

/*
 * deadline.c: the relative timeout of a call (its register, in ms or as
 * a timespec or timeval pointer; eintr: the call fails with EINTR after a
 * stop; user: it restarts with the time left written back (select), else
 * it has a restart block); the deadline of the call a thread sleeps in,
 * found around its interrupt (begin after PTRACE_SEIZE, end once stopped;
 * -1: unknown); the detach of a thread whose registers regs (in place
 * already) restart that call, with the time left until end on clk.
 */
enum { TA_MS, TA_TS, TA_TV };
struct timed_arg {
	size_t off; /* in struct user_regs_struct */
	int kind;
	bool eintr;
	bool user; /* the kernel writes the time left back to the caller's struct */
	unsigned long long value;
};
struct deadline_probe {
	long nr;
	long long timeout;
	long long slept; /* when it last ran, CLOCK_MONOTONIC ns (0: unknown) */
	int cpu;	 /* where (its scheduler clock's), -1 if unknown */
	struct tl_list *before;
	bool sock;	  /* a socket call timed by SO_RCVTIMEO/SO_SNDTIMEO */
	long long begun;  /* CLOCK_MONOTONIC at the probe's begin (sock) */
	bool by_last_run; /* no /proc/timer_list (a normal user): the end from its last run */
	/* nanosleep with a struct for the time left: the kernel writes it at the interrupt */
	bool by_rem;
};
struct call_deadline {
	long long mono, real;
};
bool timed_call(const struct user_regs_struct *r, struct timed_arg *a);
void deadline_probe_begin(pid_t tid, struct deadline_probe *p);
int deadline_probe_end(pid_t tid, struct deadline_probe *p, const struct user_regs_struct *regs,
		       struct call_deadline *d);
void deadline_probe_free(struct deadline_probe *p);
/* The end of a nanosleep stopped for its restart, from the time left it wrote back. */
int deadline_from_rem(pid_t tid, const struct user_regs_struct *regs, struct call_deadline *d);
int deadline_release(pid_t tid, const struct user_regs_struct *regs, clockid_t clk, long long end);
/*
 * A socket call (recv*, send*, accept*, connect, read/write and their
 * vectored forms on a socket) timed by the socket's SO_RCVTIMEO or
 * SO_SNDTIMEO: *opt is which (if opt), the fd is r->rdi.  Such a thread
 * is re-issued with the time left set in the option for its call only
 * (sock_release) and may stay traced, asleep in its call, until stasis
 * exits (tracee_kept: is tid one, 0: any); tracee_kept_service lets go
 * one of those that stopped (or reaps it).
 */
bool sock_call(pid_t tid, const struct user_regs_struct *r, int *opt);
bool tracee_kept(pid_t tid);
int tracee_kept_service(pid_t tid, int status);
/* Detach a thread whose registers (in place) are regs; one whose call has a
 * mask of its own is let go inside the call (deadline.c). */
int release_into_call(pid_t tid, const struct user_regs_struct *regs);

#endif
