/*
 * Seize, freeze, remote syscalls and release of one thread.
 *
 * A remote syscall loads the syscall number and arguments into the
 * registers of a stopped thread, points rip at a 'syscall' instruction and
 * single-steps it: the thread stops again right after the syscall returns,
 * before it executes anything else, even if the syscall unmapped the very
 * page that holds the instruction.  orig_rax is set to -1 so that the
 * kernel's syscall-restart logic never touches our registers.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "rtask.h"
#include "util.h"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

int tracee_wait_stop(pid_t tid, int *statusp)
{
	int status;

	for (;;) {
		pid_t r = waitpid(tid, &status, __WALL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("waitpid(%d)", tid);
			return -1;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			pr_err("task %d exited unexpectedly (status 0x%x)\n", tid, status);
			return -1;
		}
		if (WIFSTOPPED(status))
			break;
	}
	if (statusp)
		*statusp = status;
	return 0;
}

/* A zombie (or a task past it) cannot be attached: EPERM, though not for lack of rights. */
static bool thread_exiting(pid_t tid)
{
	char path[64], *stat, *p;
	bool gone;

	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	stat = read_file(path, NULL);
	p = stat ? strrchr(stat, ')') : NULL;
	gone = !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X' || p[2] == 'x';
	free(stat);
	return gone;
}

static pid_t traced_by(pid_t tid)
{
	char *status = read_proc(tid, "status", NULL);
	const char *v = status ? status_field(status, "TracerPid") : NULL;
	pid_t tracer = v ? atoi(v) : 0;

	free(status);
	return tracer;
}

static int seize_stop(pid_t tid, int *stop_sig, struct deadline_probe *probe);

int tracee_seize(pid_t tid)
{
	return tracee_seize_stop(tid, NULL);
}

int tracee_seize_stop(pid_t tid, int *stop_sig)
{
	return seize_stop(tid, stop_sig, NULL);
}

/*
 * Why may we not trace tid?  For a normal user: another user's process,
 * one that is not dumpable (its /proc files are then root's), or Yama.
 */
static const char *why_no_ptrace(pid_t tid)
{
	static char why[160];
	char path[64], *status = read_proc(tid, "status", NULL), *yama;
	const char *uids = status ? status_field(status, "Uid") : NULL;
	unsigned int r = 0, e = 0, sv = 0;
	struct stat st;
	int scope;

	snprintf(why, sizeof(why), "stasis needs root or CAP_SYS_PTRACE + CAP_CHECKPOINT_RESTORE");
	yama = read_file("/proc/sys/kernel/yama/ptrace_scope", NULL);
	scope = yama ? atoi(yama) : 0;
	free(yama);
	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	if (uids && sscanf(uids, "%u %u %u", &r, &e, &sv) == 3 &&
	    (r != getuid() || e != getuid() || sv != getuid()))
		snprintf(why, sizeof(why),
			 "it runs as uid %u, and a user without CAP_SYS_PTRACE may dump only "
			 "its own processes",
			 e);
	else if (uids && !stat(path, &st) && st.st_uid != getuid())
		snprintf(why, sizeof(why),
			 "it is not dumpable: it ran a set-id program or set PR_SET_DUMPABLE 0, "
			 "and only CAP_SYS_PTRACE may trace it");
	else if (uids && scope > 0)
		snprintf(why, sizeof(why), "Yama's ptrace_scope is %d: %s", scope,
			 scope == 1 ? "a user may trace only its descendants, or a process "
				      "that allows it (PR_SET_PTRACER)"
				    : "only CAP_SYS_PTRACE may trace");
	free(status);
	return why;
}

static int seize_attach(pid_t tid)
{
	if (!ptrace(PTRACE_SEIZE, tid, 0, 0))
		return 0;
	if (errno == ESRCH || (errno == EPERM && thread_exiting(tid)))
		return -ESRCH; /* gone: the caller decides whether that matters */
	if (errno == EPERM && traced_by(tid) > 0) {
		char comm[64];

		proc_comm(traced_by(tid), comm, sizeof(comm));
		pr_err("cannot attach to pid %d: it is being traced by pid %d (%s)\n", tid,
		       traced_by(tid), comm);
		return -1;
	}
	if (errno == EPERM)
		pr_err("cannot attach to pid %d: permission denied (%s)\n", tid,
		       why_no_ptrace(tid));
	else
		pr_perror("cannot attach to pid %d", tid);
	return -1;
}

/* How long a seized thread may take to reach its interrupt's stop. */
#define FREEZE_STOP_MS 5000

/*
 * Why a thread has not stopped: a parent waiting in vfork() for its child
 * (which the kernel lets go only when the child execs or exits), or a
 * sleep no signal ends (state D).
 */
static void why_not_stopped(pid_t tid)
{
	char path[64], wchan[64] = "?", who[48], *sc, *st;
	const char *state = "?", *tgid;
	unsigned long flags = 0;
	long nr = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	st = read_file(path, NULL);
	tgid = st ? status_field(st, "Tgid") : NULL;
	if (tgid && atoi(tgid) != tid)
		snprintf(who, sizeof(who), "pid %d (thread %d)", atoi(tgid), tid);
	else
		snprintf(who, sizeof(who), "pid %d", tid);
	if (st && status_field(st, "State"))
		state = status_field(st, "State");
	snprintf(path, sizeof(path), "/proc/%d/syscall", tid);
	sc = read_file(path, NULL);
	if (sc)
		sscanf(sc, "%ld %lx", &nr, &flags);
	free(sc);
	if (nr == __NR_vfork || (nr == __NR_clone && (flags & CLONE_VFORK))) {
		pr_err("%s did not stop within %d ms: it waits in vfork() for its child to exec or "
		       "exit; not supported\n",
		       who, FREEZE_STOP_MS);
		free(st);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/wchan", tid);
	sc = read_file(path, NULL);
	if (sc)
		snprintf(wchan, sizeof(wchan), "%s", sc);
	pr_err("%s did not stop within %d ms (state %.*s, in %s): a sleep no signal ends; not "
	       "supported\n",
	       who, FREEZE_STOP_MS, (int)strcspn(state, "\n"), state, wchan);
	free(sc);
	free(st);
}

/*
 * waitpid for a stop, but not for good: the kernel cannot stop every
 * thread (see why_not_stopped).  The stop mostly comes at once: a few
 * yields, then naps of 20 us, and of 1 ms after the first 10 ms.
 */
static pid_t wait_stop_bounded(pid_t tid, int *status)
{
	struct timespec nap = { 0, 20000 };
	uint64_t end = 0, start = 0;
	unsigned int spins;

	for (spins = 0;; spins++) {
		pid_t r = waitpid(tid, status, __WALL | WNOHANG);

		if (r)
			return r;
		if (spins < 64) {
			sched_yield();
			continue;
		}
		if (!end) {
			start = now_ns();
			end = start + FREEZE_STOP_MS * 1000000ULL;
		} else if (now_ns() > end) {
			why_not_stopped(tid);
			errno = ETIMEDOUT;
			return 0;
		} else if (now_ns() > start + 10000000ULL) {
			nap.tv_nsec = 1000000;
		}
		nanosleep(&nap, NULL);
	}
}

/*
 * Wait for the interrupt's stop of a seized, interrupted thread.  The
 * first stop may be a signal-delivery stop for a signal that was already
 * on its way; let it through and wait for our interrupt stop, so no
 * signal is lost or delivered twice.  On failure the thread is detached.
 */
static int seize_wait(pid_t tid, int *stop_sig, struct deadline_probe *probe)
{
	int status;

	for (;;) {
		pid_t r = wait_stop_bounded(tid, &status);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			pr_perror("waitpid(%d)", tid);
			return -1;
		}
		if (!r)
			return -1; /* said why; the kernel lets it go when we exit */
		/* it exited before it stopped: gone, like a seize that came late */
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return -ESRCH;
		if ((status >> 16) == PTRACE_EVENT_STOP) {
			/* a job-control stop reports its signal, our interrupt SIGTRAP */
			if (stop_sig)
				*stop_sig = WSTOPSIG(status) == SIGTRAP ? 0 : WSTOPSIG(status);
			return 0;
		}
		/* signal-delivery stop: deliver it; INTERRUPT stays pending */
		if (probe)
			deadline_probe_free(probe); /* a handler may end the call */
		if (ptrace(PTRACE_CONT, tid, 0, WSTOPSIG(status))) {
			pr_perror("cannot resume pid %d", tid);
			ptrace(PTRACE_DETACH, tid, 0, 0);
			return -1;
		}
		/*
		 * An interrupt that came while it sat in that stop is lost
		 * (a POSIX timer's signal every 3 ms kept a thread in
		 * nanosleep from ever reaching our stop: soak hang): ask
		 * again; one pending trap is one stop however often asked.
		 */
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) && errno != ESRCH) {
			pr_perror("cannot interrupt pid %d", tid);
			ptrace(PTRACE_DETACH, tid, 0, 0);
			return -1;
		}
	}
}

/* probe: the deadline of a timed call it sleeps in is looked for (deadline.c) */
static int seize_stop(pid_t tid, int *stop_sig, struct deadline_probe *probe)
{
	int ret = seize_attach(tid);

	if (ret)
		return ret;
	if (probe)
		deadline_probe_begin(tid, probe);
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
		pr_perror("cannot interrupt pid %d", tid);
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return -1;
	}
	return seize_wait(tid, stop_sig, probe);
}

int tracee_get_regs(pid_t tid, struct user_regs_struct *regs)
{
	struct iovec iov = { regs, sizeof(*regs) };

	if (ptrace(PTRACE_GETREGSET, tid, NT_PRSTATUS, &iov)) {
		pr_perror("cannot read registers of %d", tid);
		return -1;
	}
	return 0;
}

int tracee_set_regs(pid_t tid, const struct user_regs_struct *regs)
{
	struct iovec iov = { (void *)regs, sizeof(*regs) };

	if (ptrace(PTRACE_SETREGSET, tid, NT_PRSTATUS, &iov)) {
		pr_perror("cannot set registers of %d", tid);
		return -1;
	}
	return 0;
}

int tracee_get_xstate(pid_t tid, void *buf, size_t *len)
{
	struct iovec iov = { buf, *len };

	if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov)) {
		pr_perror("cannot read FPU/xstate of %d", tid);
		return -1;
	}
	*len = iov.iov_len;
	return 0;
}

int tracee_set_xstate(pid_t tid, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	if (ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &iov)) {
		pr_perror("cannot set FPU/xstate of %d (CPU features differ?)", tid);
		return -1;
	}
	return 0;
}

/*
 * Calls the kernel never restarts after a stop (signal(7)): interrupted by
 * our freeze they return EINTR, though no signal came.  True if regs are
 * such a call that waits without a timeout: re-issuing it then is exactly
 * what the program would have seen without the freeze (one with a mask of
 * its own is let go inside the call: release_into_call).
 */
static bool eintr_call_without_timeout(const struct user_regs_struct *r)
{
	switch ((long)r->orig_rax) {
	case __NR_epoll_wait:
		return (int)r->r10 < 0;
	case __NR_epoll_pwait: /* a mask of its own: deadline.c's release_into_call */
		return (int)r->r10 < 0;
	case __NR_epoll_pwait2:
		return !r->r10;
	case __NR_rt_sigtimedwait: /* sigwaitinfo */
		return !r->rdx;
	case __NR_semop:
		return true;
	case __NR_semtimedop:
		return !r->r10;
	case __NR_io_getevents:
		return !r->r8;
	}
	return false;
}

/* Is a signal pending that the thread does not block (so the EINTR is real)? */
static bool unblocked_signal_pending(pid_t tid)
{
	char path[64], *status;
	const char *p, *s, *b;
	bool pending = true;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	status = read_file(path, NULL);
	p = status ? status_field(status, "SigPnd") : NULL;
	s = status ? status_field(status, "ShdPnd") : NULL;
	b = status ? status_field(status, "SigBlk") : NULL;
	if (p && s && b)
		pending = (strtoull(p, NULL, 16) | strtoull(s, NULL, 16)) & ~strtoull(b, NULL, 16);
	free(status);
	return pending;
}

/*
 * The freeze made such a call fail with EINTR: make it an interrupted call
 * the kernel restarts (-ERESTARTNOHAND), so the thread is back in it after
 * a -R dump or a restore, and a signal that does come interrupts it as
 * before.  A call with a relative timeout is only made so when the time it
 * had left is known (deadline.c), and it is then let go by
 * deadline_release with that time; also one the kernel would restart
 * through its restart block (poll, nanosleep, ...): it goes back to the
 * call itself, which a later dump or a restore can see and re-issue (a
 * restore has no restart block, and restart_syscall says nothing of what
 * it restarts).
 */
static void undo_freeze_eintr(struct rtask *t)
{
	unsigned char insn[2];
	struct timed_arg a;
	bool timed = false;

	if ((long)t->regs.orig_rax < 0)
		return;
	/* select, pselect6, ppoll: restarted with the time left the kernel wrote back */
	if ((long)t->regs.rax == -ERESTARTNOHAND && timed_call(&t->regs, &a) && a.user) {
		t->reissue = t->deadline_mono && !t->stop_sig; /* that time, exact */
		return;
	}
	if ((long)t->regs.rax == -EINTR) {
		/* also a socket call timed by its socket's option (deadline.c) */
		timed = (timed_call(&t->regs, &a) && a.eintr) || sock_call(t->pid, &t->regs, NULL);
		if (!timed && !eintr_call_without_timeout(&t->regs))
			return;
	} else if ((long)t->regs.rax == -ERESTART_RESTARTBLOCK) {
		timed = timed_call(&t->regs, &a) && !a.eintr;
		if (!timed)
			return;
	} else {
		return;
	}
	if (timed && (!t->deadline_mono || t->stop_sig))
		return; /* as the kernel has it: EINTR, or its restart block */
	if (remote_read(t->pid, t->regs.rip - 2, insn, 2) || insn[0] != 0x0f || insn[1] != 0x05 ||
	    unblocked_signal_pending(t->pid))
		return;
	t->regs.rax = -ERESTARTNOHAND;
	t->regs_dirty = true;
	if (timed) {
		/* should stasis die before deadline_release: the whole timeout again */
		t->reissue = true;
		return;
	}
	/* in the thread at once: if stasis dies now, the kernel restarts the call */
	tracee_set_regs(t->pid, &t->regs);
}

/* The freeze's second half, once the thread is stopped: registers, deadline. */
static int freeze_stopped(struct rtask *t, struct deadline_probe *probe)
{
	struct call_deadline d;

	if (tracee_get_regs(t->pid, &t->regs)) {
		deadline_probe_free(probe);
		ptrace(PTRACE_DETACH, t->pid, 0, 0);
		return -1;
	}
	/* a nanosleep says its time left itself; else what the probe found */
	if (!deadline_from_rem(t->pid, &t->regs, &d)) {
		deadline_probe_free(probe);
		t->deadline_mono = d.mono;
		t->deadline_real = d.real;
	} else if (!deadline_probe_end(t->pid, probe, &t->regs, &d)) {
		t->deadline_mono = d.mono;
		t->deadline_real = d.real;
	}
	undo_freeze_eintr(t);
	return 0;
}

int rtask_freeze(struct rtask *t, pid_t tid)
{
	struct deadline_probe probe = { 0 };
	int ret;

	memset(t, 0, sizeof(*t));
	t->pid = tid;
	ret = seize_stop(tid, &t->stop_sig, &probe);
	if (ret) {
		deadline_probe_free(&probe);
		return ret;
	}
	return freeze_stopped(t, &probe);
}

/*
 * The freeze in two halves, so that many threads are interrupted before
 * the first of them is waited for: their stops come in parallel, not one
 * round trip after the other.  A thread sleeping in a timed call is
 * frozen whole at once, alone: drain(arg) first waits for the threads
 * interrupted before it, and its deadline probe then reads the timers
 * again, so no other thread's wakeup falls between its reads.  For any
 * other thread, *waiting says rtask_freeze_wait must follow.
 */
int rtask_freeze_begin(struct rtask *t, pid_t tid, bool *waiting, int (*drain)(void *), void *arg)
{
	struct deadline_probe probe = { 0 };
	int ret;

	memset(t, 0, sizeof(*t));
	t->pid = tid;
	*waiting = false;
	ret = seize_attach(tid);
	if (ret)
		return ret;
	deadline_probe_begin(tid, &probe);
	if (probe.before || probe.sock) {
		deadline_probe_free(&probe);
		if (drain(arg)) {
			ptrace(PTRACE_DETACH, tid, 0, 0);
			return -1;
		}
		deadline_probe_begin(tid, &probe);
	}
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
		pr_perror("cannot interrupt pid %d", tid);
		deadline_probe_free(&probe);
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return -1;
	}
	if (!probe.before && !probe.sock) {
		*waiting = true;
		return 0;
	}
	ret = seize_wait(tid, &t->stop_sig, &probe);
	if (ret) {
		deadline_probe_free(&probe);
		return ret;
	}
	return freeze_stopped(t, &probe);
}

int rtask_freeze_wait(struct rtask *t)
{
	struct deadline_probe probe = { 0 };
	int ret = seize_wait(t->pid, &t->stop_sig, NULL);

	return ret ? ret : freeze_stopped(t, &probe);
}

/*
 * Registers for a thread about to be let go, interrupted in a syscall
 * (rax = -ERESTART*, orig_rax = the syscall): they stay as the kernel left
 * them.  Every stop stasis leaves a thread in (an interrupt, the SIGTRAP of
 * a single step) is inside the kernel's signal path, so on detach the
 * kernel itself applies its restart rules to them, exactly: a signal
 * pending at that moment runs its handler and the call returns EINTR or
 * restarts as SA_RESTART says, and otherwise the call is issued again.
 * A restored task has no restart block, so -ERESTART_RESTARTBLOCK (whose
 * restart_syscall would need it) becomes -ERESTARTNOHAND: the original
 * call again with its original arguments, or EINTR if a handler runs,
 * which is what those calls return then anyway.
 */
void regs_for_release(struct user_regs_struct *regs, bool fresh_task)
{
	if ((long)regs->orig_rax >= 0 && fresh_task && (long)regs->rax == -ERESTART_RESTARTBLOCK)
		regs->rax = -ERESTARTNOHAND;
}

int rtask_release(struct rtask *t)
{
	int ret = rtask_leave_stub(t);

	if (t->borrowed_at && remote_write(t->pid, t->borrowed_at, t->borrowed, 2))
		ret = -1;
	/* as frozen: the kernel restarts an interrupted call itself on detach */
	if (t->regs_dirty) {
		struct user_regs_struct regs = t->regs;

		regs_for_release(&regs, false);
		if (tracee_set_regs(t->pid, &regs))
			ret = -1;
	}
	if (t->sigmask_saved && ptrace(PTRACE_SETSIGMASK, t->pid, sizeof(uint64_t), &t->sigmask)) {
		pr_perror("cannot restore the signal mask of %d", t->pid);
		ret = -1;
	}
	if (t->reissue) {
		struct user_regs_struct regs = t->regs;

		regs_for_release(&regs, false);
		if (deadline_release(t->pid, &regs, CLOCK_MONOTONIC, t->deadline_mono))
			ret = -1;
		return ret;
	}
	if (!t->stop_sig) /* in a job-control stop it stays there */
		return release_into_call(t->pid, &t->regs) ? -1 : ret;
	if (ptrace(PTRACE_DETACH, t->pid, 0, 0)) {
		pr_perror("cannot detach from %d", t->pid);
		ret = -1;
	}
	return ret;
}

unsigned long remote_syscall_count;

/*
 * STASIS_TEST_KILL_AT=N (tests): die of SIGKILL with the Nth remote call
 * set up in its thread but not yet run, as an OOM kill could strike.
 */
static void test_kill_at(unsigned long n)
{
	static long at = -1;

	if (at < 0) {
		const char *v = getenv("STASIS_TEST_KILL_AT");

		at = v ? atol(v) : 0;
	}
	if (at && (unsigned long)at == n)
		raise(SIGKILL);
}

/*
 * The call runs between a syscall-entry and a syscall-exit stop (with
 * PTRACE_O_TRACESYSGOOD): a thread resting in such a stop is let go by the
 * kernel, should stasis die, without a signal, where the SIGTRAP of a
 * single-step stop would be delivered to it and kill it.
 */
static int run_between_stops(struct rtask *t, long *ret, long nr)
{
	struct user_regs_struct regs;
	int status, stops = 0, tries;

	for (tries = 0; stops < 2 && tries < 16; tries++) {
		if (ptrace(PTRACE_SYSCALL, t->pid, 0, 0)) {
			pr_perror("remote syscall %ld in %d: cannot resume", nr, t->pid);
			return -1;
		}
		if (tracee_wait_stop(t->pid, &status))
			return -1;
		if (WSTOPSIG(status) == (SIGTRAP | 0x80)) {
			stops++;
			continue;
		}
		if ((status >> 16) == 0) {
			pr_err("remote syscall %ld in %d: signal %d\n", nr, t->pid,
			       WSTOPSIG(status));
			return -1;
		}
		/* a group stop or event stop: go on */
	}
	if (stops < 2 || tracee_get_regs(t->pid, &regs))
		return -1;
	if (regs.rip != t->syscall_ip + 2 || (long)regs.orig_rax != nr) {
		pr_err("remote syscall %ld in %d stopped at %llx (syscall %lld)\n", nr, t->pid,
		       regs.rip, regs.orig_rax);
		return -1;
	}
	*ret = regs.rax;
	return 0;
}

/*
 * Between two calls the thread rests as it was frozen, registers and mask:
 * should stasis die then, the kernel lets it go exactly as from the freeze.
 * Only for the call itself are its signals blocked and its registers ours
 * (and then its resume stub brings it back, see src/ptrace/inject.c).  In
 * a run of calls (rtask_rest_in_stub) it rests in the call's exit stop
 * instead, until rtask_leave_stub: as safe, since the stub is where the
 * thread goes from that stop should stasis die, and three ptrace requests
 * a call cheaper.
 *
 * The order matters should stasis die in between: with the call's
 * registers in place, the thread runs into its resume stub, which puts
 * its mask and registers back whatever the mask was at that moment.  So:
 * registers first, then the mask; back, the mask first.
 */
static int call_set_up(struct rtask *t, const struct user_regs_struct *call)
{
	uint64_t all = ~0ULL;

	if (tracee_set_regs(t->pid, call))
		return -1;
	if (!t->in_stub && ptrace(PTRACE_SETSIGMASK, t->pid, sizeof(uint64_t), &all)) {
		pr_perror("cannot block signals in %d", t->pid);
		return -1;
	}
	return 0;
}

/* Mask and registers as frozen: nothing left for rtask_putback and the release to redo. */
static int put_back(struct rtask *t)
{
	t->in_stub = false;
	if (ptrace(PTRACE_SETSIGMASK, t->pid, sizeof(uint64_t), &t->sigmask) ||
	    tracee_set_regs(t->pid, &t->regs)) {
		pr_perror("cannot put %d back as it was frozen", t->pid);
		return -1;
	}
	t->sigmask_saved = false;
	t->regs_dirty = false;
	return 0;
}

/* After a call: back as frozen, or resting in the stub (not after a failure). */
static int call_done(struct rtask *t, int err)
{
	if (!err && t->rest_in_stub) {
		t->in_stub = true;
		return 0;
	}
	return put_back(t) ? -1 : err;
}

void rtask_rest_in_stub(struct rtask *t)
{
	t->rest_in_stub = t->syscall_stops;
}

int rtask_leave_stub(struct rtask *t)
{
	t->rest_in_stub = false;
	return t->in_stub ? put_back(t) : 0;
}

static int remote_syscall_stops(struct rtask *t, const struct user_regs_struct *call, long *ret,
				long nr)
{
	int err;

	if (call_set_up(t, call))
		return call_done(t, -1);
	test_kill_at(remote_syscall_count);
	err = run_between_stops(t, ret, nr);
	return call_done(t, err);
}

int remote_syscall(struct rtask *t, long *ret, long nr, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6)
{
	struct user_regs_struct regs = t->regs;
	int status;

	if (t->batch && rbatch_flush(t)) /* what was queued runs first */
		return -1;
	regs.rax = nr;
	regs.orig_rax = -1;
	regs.rdi = a1;
	regs.rsi = a2;
	regs.rdx = a3;
	regs.r10 = a4;
	regs.r8 = a5;
	regs.r9 = a6;
	regs.rip = t->syscall_ip;
	regs.eflags &= ~0x100UL; /* no stale TF */
	__atomic_fetch_add(&remote_syscall_count, 1, __ATOMIC_RELAXED);
	t->regs_dirty = true;
	if (t->syscall_stops)
		return remote_syscall_stops(t, &regs, ret, nr);
	if (tracee_set_regs(t->pid, &regs))
		return -1;
	for (;;) {
		if (ptrace(PTRACE_SINGLESTEP, t->pid, 0, 0)) {
			pr_perror("remote syscall %ld in %d: cannot step", nr, t->pid);
			return -1;
		}
		if (tracee_wait_stop(t->pid, &status))
			return -1;
		if (WSTOPSIG(status) == SIGTRAP && (status >> 16) == 0)
			break;
		if ((status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP) {
			siginfo_t si = { 0 };
			struct user_regs_struct now;

			/* the syscall instruction itself faulted: report, do not loop */
			ptrace(PTRACE_GETSIGINFO, t->pid, 0, &si);
			tracee_get_regs(t->pid, &now);
			pr_err("remote syscall %ld in %d: signal %d at ip %llx (addr %p)\n", nr,
			       t->pid, WSTOPSIG(status), now.rip, si.si_addr);
			return -1;
		}
		/* a group stop or event stop: step again */
	}
	if (tracee_get_regs(t->pid, &regs))
		return -1;
	if (regs.rip != t->syscall_ip + 2) {
		pr_err("remote syscall %ld in %d stopped at %llx, expected %lx\n", nr, t->pid,
		       regs.rip, t->syscall_ip + 2);
		return -1;
	}
	*ret = regs.rax;
	return 0;
}

/* Wait for t's next syscall stop; group and event stops are passed. */
static int next_syscall_stop(struct rtask *t, long nr)
{
	int status, tries;

	for (tries = 0; tries < 16; tries++) {
		if (tracee_wait_stop(t->pid, &status))
			return -1;
		if (WSTOPSIG(status) == (SIGTRAP | 0x80))
			return 0;
		if ((status >> 16) == 0) {
			pr_err("remote syscall %ld in %d: signal %d\n", nr, t->pid,
			       WSTOPSIG(status));
			return -1;
		}
		if (ptrace(PTRACE_SYSCALL, t->pid, 0, 0)) {
			pr_perror("remote syscall %ld in %d: cannot resume", nr, t->pid);
			return -1;
		}
	}
	return -1;
}

/*
 * The same call in n threads at once, each with its own arguments
 * (args[i]) and from its own resume stub: every thread is set up, then all
 * are let run to their syscall-entry stops, then to their exit stops, and
 * the round trips overlap instead of adding up.  Between calls each thread
 * rests as it was frozen, as with remote_syscall.  rets[i]: thread i's
 * result.  Threads without syscall stops, or with calls queued, run theirs
 * one after the other.
 */
int remote_syscall_each(struct rtask *const *ts, size_t n, long nr, const unsigned long (*args)[6],
			long *rets)
{
	size_t i, set;
	int err = 0, round;

	for (i = 0; i < n && ts[i]->syscall_stops && !ts[i]->batch; i++)
		;
	if (i < n) {
		for (i = 0; i < n; i++)
			if (remote_syscall(ts[i], &rets[i], nr, args[i][0], args[i][1], args[i][2],
					   args[i][3], args[i][4], args[i][5]))
				return -1;
		return 0;
	}
	/* registers first, then the mask (see remote_syscall_stops) */
	for (set = 0; set < n && !err; set++) {
		struct rtask *t = ts[set];
		struct user_regs_struct regs = t->regs;

		regs.rax = nr;
		regs.orig_rax = -1;
		regs.rdi = args[set][0];
		regs.rsi = args[set][1];
		regs.rdx = args[set][2];
		regs.r10 = args[set][3];
		regs.r8 = args[set][4];
		regs.r9 = args[set][5];
		regs.rip = t->syscall_ip;
		regs.eflags &= ~0x100UL; /* no stale TF */
		__atomic_fetch_add(&remote_syscall_count, 1, __ATOMIC_RELAXED);
		t->regs_dirty = true;
		if (call_set_up(t, &regs))
			err = -1;
		test_kill_at(remote_syscall_count);
	}
	/* entry stops, then exit stops: every thread resumed is waited for */
	for (round = 0; round < 2 && !err; round++) {
		size_t resumed;

		for (resumed = 0; resumed < set; resumed++)
			if (ptrace(PTRACE_SYSCALL, ts[resumed]->pid, 0, 0)) {
				pr_perror("remote syscall %ld in %d: cannot resume", nr,
					  ts[resumed]->pid);
				err = -1;
				break;
			}
		for (i = 0; i < resumed; i++)
			if (next_syscall_stop(ts[i], nr))
				err = -1;
	}
	for (i = 0; i < set && !err; i++) {
		struct user_regs_struct regs;

		if (tracee_get_regs(ts[i]->pid, &regs)) {
			err = -1;
		} else if (regs.rip != ts[i]->syscall_ip + 2 || (long)regs.orig_rax != nr) {
			pr_err("remote syscall %ld in %d stopped at %llx (syscall %lld)\n", nr,
			       ts[i]->pid, regs.rip, regs.orig_rax);
			err = -1;
		} else {
			rets[i] = regs.rax;
		}
	}
	for (i = 0; i < set; i++)
		if (call_done(ts[i], err))
			err = -1;
	return err;
}

/* /proc/PID/mem ignores page protections (FOLL_FORCE): the fallback both ways. */
static int proc_mem_rw(pid_t pid, unsigned long addr, void *buf, size_t len, bool write)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	n = write ? pwrite(fd, buf, len, addr) : pread(fd, buf, len, addr);
	close(fd);
	if (n != (ssize_t)len) {
		pr_perror("cannot %s %zu bytes at %lx in %d", write ? "write" : "read", len, addr,
			  pid);
		return -1;
	}
	return 0;
}

int remote_write(pid_t pid, unsigned long addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, r = { (void *)addr, len };

	if (process_vm_writev(pid, &l, 1, &r, 1, 0) == (ssize_t)len)
		return 0;
	/* read-only or exec-only pages */
	return proc_mem_rw(pid, addr, (void *)buf, len, true);
}

int remote_read(pid_t pid, unsigned long addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)addr, len };

	if (process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len)
		return 0;
	return proc_mem_rw(pid, addr, buf, len, false);
}
