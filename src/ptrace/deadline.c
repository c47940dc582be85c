/*
 * The time a frozen thread had left in a call with a relative timeout, and
 * its release back into that call with only that time left.
 *
 * A freeze interrupts a thread sleeping in a timed call.  Some of these
 * calls (epoll_wait, epoll_pwait, epoll_pwait2, sigtimedwait, semtimedop,
 * io_getevents) then fail with EINTR though no signal came; the others
 * (poll, nanosleep, relative clock_nanosleep, FUTEX_WAIT with a timeout)
 * keep their end in a restart block, which a restored task does not have.
 * Either way the time left is gone from the registers.  It is still in the
 * kernel while the thread sleeps: the call's hrtimer (function
 * hrtimer_wakeup) is listed in /proc/timer_list (root only) with its
 * expiry, to the nanosecond.  Nothing there names the task, so the list is
 * read after PTRACE_SEIZE (the thread still sleeps, and /proc/TID/syscall
 * says in what) and again when the interrupt has stopped it: the sleeper's
 * timer is the one that went away in between, had not expired and ends no
 * later than its call's timeout after the first read (each side read more
 * than once: see tl_merge).  A tie goes to the timer armed when the thread
 * went to sleep; if one is still left, or there is no /proc/timer_list,
 * the deadline is unknown and the thread is let go as before (EINTR, or
 * the whole timeout again after a restore).
 *
 * The release: the registers say "restart" (-ERESTARTNOHAND) as before,
 * with the call's timeout argument set to the time left at that moment (a
 * timespec goes into the stack, below the red zone, where the kernel
 * reads it when the call is issued again), and the thread is detached
 * from a stop in the kernel's signal path: a signal pending then runs its
 * handler and the call returns EINTR, else the call is issued again,
 * exactly as the kernel restarts any interrupted call.  (Detaching at the
 * syscall-entry stop of the re-issued call instead does not work: a detach
 * marks the thread signal-pending, and epoll_wait, for one, then fails at
 * once with EINTR.  A call that sets a mask of its own recomputes that
 * flag, so there it does work, and is needed: see release_into_call.)
 * The timeout's register keeps its new value after the call (C code does
 * not rely on it: it is caller-saved).
 *
 * Socket calls with SO_RCVTIMEO/SO_SNDTIMEO fail with EINTR after a stop
 * too, but their timeout is the socket's, read once as the call starts,
 * and their timer is not an hrtimer: the time left is the moment the
 * thread went to sleep (its scheduler's last run) plus the option, and
 * the call is re-issued with the option set to that for its start only,
 * the thread staying traced, asleep, until stasis exits (sock_release;
 * docs/design.md says more).
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>

#include "log.h"
#include "rtask.h"
#include "util.h"

#define NSEC 1000000000LL

/* socket calls timed by their socket's option: at the end of this file */
static bool sock_probe_begin(pid_t tid, const struct user_regs_struct *r, struct deadline_probe *p);
static int sock_probe_end(pid_t tid, struct deadline_probe *p, const struct user_regs_struct *regs,
			  struct call_deadline *d);
static int sock_release(pid_t tid, const struct user_regs_struct *regs, clockid_t clk,
			long long end, int opt);

/* ------------------------------------------------------- the calls */

/* Where the call's relative timeout is, if it has one. */
#define ARG(reg, k, e) ((struct timed_arg){ offsetof(struct user_regs_struct, reg), k, e })

static unsigned long long *arg_reg(struct user_regs_struct *r, const struct timed_arg *a)
{
	return (unsigned long long *)((char *)r + a->off);
}

bool timed_call(const struct user_regs_struct *r, struct timed_arg *a)
{
	unsigned long long v;

	memset(a, 0, sizeof(*a));
	switch ((long)r->orig_rax) {
	case __NR_epoll_wait:
		*a = ARG(r10, TA_MS, true);
		break;
	case __NR_epoll_pwait: /* a mask of its own: see release_into_call */
		*a = ARG(r10, TA_MS, true);
		break;
	case __NR_epoll_pwait2:
		*a = ARG(r10, TA_TS, true);
		break;
	case __NR_rt_sigtimedwait:
		*a = ARG(rdx, TA_TS, true);
		break;
	case __NR_semtimedop:
		*a = ARG(r10, TA_TS, true);
		break;
	case __NR_io_getevents:
		*a = ARG(r8, TA_TS, true);
		break;
	case __NR_poll:
		*a = ARG(rdx, TA_MS, false);
		break;
	case __NR_nanosleep:
		*a = ARG(rdi, TA_TS, false);
		break;
	case __NR_clock_nanosleep:
		if (r->rsi & TIMER_ABSTIME)
			return false;
		*a = ARG(rdx, TA_TS, false);
		break;
	case __NR_select: /* these three restart with the time left written back (glibc: pselect6)
			   */
		*a = ARG(r8, TA_TV, false);
		a->user = true;
		break;
	case __NR_pselect6:
		*a = ARG(r8, TA_TS, false);
		a->user = true;
		break;
	case __NR_ppoll:
		*a = ARG(rdx, TA_TS, false);
		a->user = true;
		break;
	case __NR_futex:
		if ((r->rsi & FUTEX_CMD_MASK) != FUTEX_WAIT)
			return false;
		*a = ARG(r10, TA_TS, false);
		break;
	default:
		return false;
	}
	v = *arg_reg((struct user_regs_struct *)r, a);
	a->value = v;
	return a->kind == TA_MS ? (int)v > 0 : v != 0;
}

/* The timeout the call was given, in ns (-1: unreadable). */
static long long call_timeout(pid_t tid, const struct timed_arg *a)
{
	struct timespec ts; /* a timeval has the same layout, in us */

	if (a->kind == TA_MS)
		return (long long)(int)a->value * 1000000LL;
	if (remote_read(tid, a->value, &ts, sizeof(ts)) || ts.tv_sec < 0)
		return -1;
	return ts.tv_sec * NSEC + ts.tv_nsec * (a->kind == TA_TV ? 1000 : 1);
}

/* ------------------------------------------------- /proc/timer_list */

struct tl_timer {
	int clock;
	long long soft, hard; /* as listed, on the clock's base */
	long long mono;	      /* soft expiry on CLOCK_MONOTONIC */
};

struct tl_list {
	long long now; /* CLOCK_MONOTONIC when the kernel began the list */
	struct tl_timer *t;
	size_t n;
};

static bool tl_same(const struct tl_timer *a, const struct tl_timer *b)
{
	return a->clock == b->clock && a->soft == b->soft && a->hard == b->hard;
}

/* Is l's timer n one of the n before it? */
static bool tl_has_before(const struct tl_list *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (tl_same(&l->t[i], &l->t[n]))
			return true;
	return false;
}

/* Every hrtimer_wakeup timer of the list (-1: no list). */
static int timer_list_read(struct tl_list *l)
{
	char *text = read_file("/proc/timer_list", NULL), *line, *save = NULL;
	long long offset = 0, soft, hard;
	bool sleeper = false;
	int clock = -1;
	size_t cap = 0;

	memset(l, 0, sizeof(*l));
	if (!text)
		return -1;
	/*
	 * Most lines are none of these: each is told by its first characters
	 * before any sscanf (which took most of a read's time; a dump of a
	 * process in a timed call reads the list three times or more).
	 */
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *p = line + strspn(line, " ");
		char *end;

		if (line[0] == 'n') {
			if (sscanf(line, "now at %lld nsecs", &l->now) == 1)
				continue;
		} else if (*p == 'c') {
			if (sscanf(line, " clock %d:", &clock) == 1)
				continue;
		} else if (*p == '.' && p[1] == 'o') {
			if (sscanf(line, " .offset: %lld nsecs", &offset) == 1)
				continue;
		}
		if (line[0] == ' ' && line[1] == '#' && line[2] != ' ') {
			sleeper = strstr(line, ", hrtimer_wakeup,") != NULL;
			continue;
		}
		if (!sleeper || strncmp(line, " # expires at ", 14))
			continue;
		soft = strtoll(line + 14, &end, 10);
		if (end == line + 14 || *end != '-')
			continue;
		p = end + 1;
		hard = strtoll(p, &end, 10);
		if (end == p)
			continue;
		sleeper = false;
		if (l->n == cap) {
			cap = cap ? 2 * cap : 32;
			l->t = xrealloc(l->t, cap * sizeof(*l->t));
		}
		l->t[l->n] = (struct tl_timer){ clock, soft, hard, soft - offset };
		/* a timer the shifting list showed twice (see tl_merge) is one */
		if (!tl_has_before(l, l->n))
			l->n++;
	}
	free(text);
	return l->now ? 0 : -1;
}

static bool tl_has(const struct tl_list *l, const struct tl_timer *t)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->t[i].clock == t->clock && l->t[i].soft == t->soft && l->t[i].hard == t->hard)
			return true;
	return false;
}

/*
 * The kernel lists a CPU's timers by position, dropping its lock between
 * two: a timer that fires meanwhile (the tick's, every few ms) shifts the
 * rest, and the list skips one.  So a timer missing from one read may be
 * there: the first list is the union of two reads, and a timer is gone
 * only if the reads after the interrupt (more of them while several are
 * left) all miss it.
 */
static void tl_merge(struct tl_list *into, const struct tl_list *from)
{
	size_t i;

	for (i = 0; i < from->n; i++)
		if (!tl_has(into, &from->t[i])) {
			into->t = xrealloc(into->t, (into->n + 1) * sizeof(*into->t));
			into->t[into->n++] = from->t[i];
		}
}

/* Drop from gone[] the timers list l has; how many are left. */
static size_t tl_still_gone(const struct tl_list *b, const struct tl_list *l, bool *gone)
{
	size_t i, n = 0;

	for (i = 0; i < b->n; i++) {
		if (gone[i] && tl_has(l, &b->t[i]))
			gone[i] = false;
		n += gone[i];
	}
	return n;
}

/* ----------------------------------------------------------- probe */

/* The thread's call while it still sleeps, from /proc/TID/syscall. */
static bool sleeping_call(pid_t tid, struct user_regs_struct *r)
{
	char path[64], *s;
	unsigned long long v[9];
	long nr;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/syscall", tid);
	s = read_file(path, NULL);
	n = s ? sscanf(s, "%ld %llx %llx %llx %llx %llx %llx %llx %llx", &nr, &v[0], &v[1], &v[2],
		       &v[3], &v[4], &v[5], &v[6], &v[7])
	      : 0;
	free(s);
	if (n < 7)
		return false;
	memset(r, 0, sizeof(*r));
	r->orig_rax = nr;
	r->rdi = v[0];
	r->rsi = v[1];
	r->rdx = v[2];
	r->r10 = v[3];
	r->r8 = v[4];
	r->r9 = v[5];
	return true;
}

/*
 * When the sleeping thread last ran (went to sleep), CLOCK_MONOTONIC ns as
 * near as the scheduler's clock has it; 0 without CONFIG_SCHED_DEBUG.
 */
static long long last_ran(pid_t tid)
{
	char path[64], *s, *p;
	double ms = 0;

	snprintf(path, sizeof(path), "/proc/%d/sched", tid);
	s = read_file(path, NULL);
	p = s ? strstr(s, "se.exec_start") : NULL;
	if (p && sscanf(p, "se.exec_start : %lf", &ms) != 1)
		ms = 0;
	free(s);
	return (long long)(ms * 1e6);
}

/* The CPU a sleeping thread last ran on (-1: unknown). */
static int last_cpu(pid_t tid)
{
	char path[64], *s, *p;
	int field, cpu = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	s = read_file(path, NULL);
	p = s ? strrchr(s, ')') : NULL;
	/* field 39, "processor"; the one after the comm is field 3 */
	for (field = 2; p && field < 39; field++)
		p = strchr(p + 1, ' ');
	if (p)
		cpu = atoi(p + 1);
	free(s);
	return cpu;
}

/*
 * nanosleep and a relative clock_nanosleep given a struct for the time
 * left: interrupted, the kernel writes the time left there before the
 * call stops for the restart, so the stop itself tells the deadline, with
 * no timer list to read and no need to be frozen alone.
 */
static long long real_minus_mono(void);

static unsigned long rem_struct(const struct user_regs_struct *r)
{
	if ((long)r->orig_rax == __NR_nanosleep)
		return r->rsi;
	if ((long)r->orig_rax == __NR_clock_nanosleep && !(r->rsi & TIMER_ABSTIME))
		return r->r10;
	return 0;
}

int deadline_from_rem(pid_t tid, const struct user_regs_struct *regs, struct call_deadline *d)
{
	unsigned long rem_at = rem_struct(regs);
	struct timespec left;
	long long now = now_ns();

	memset(d, 0, sizeof(*d));
	/* stopped in such a call, for its restart: the kernel wrote the time left */
	if (!rem_at || (long)regs->rax != -ERESTART_RESTARTBLOCK ||
	    remote_read(tid, rem_at, &left, sizeof(left)) || left.tv_sec < 0 || left.tv_nsec < 0 ||
	    left.tv_nsec >= NSEC)
		return -1;
	/* written when the interrupt woke it, a little before now: never early */
	d->mono = now + left.tv_sec * NSEC + left.tv_nsec;
	d->real = d->mono + real_minus_mono();
	pr_debug("tid %d: syscall %lld had %lld ns left (written back by the kernel)\n", tid,
		 regs->orig_rax, d->mono - now);
	return 0;
}

void deadline_probe_begin(pid_t tid, struct deadline_probe *p)
{
	struct user_regs_struct r;
	struct timed_arg a;

	memset(p, 0, sizeof(*p));
	if (!sleeping_call(tid, &r))
		return;
	if (timed_call(&r, &a) && rem_struct(&r)) {
		p->by_rem = true; /* deadline_from_rem, once it is stopped */
		return;
	}
	if (sock_probe_begin(tid, &r, p) || !timed_call(&r, &a))
		return;
	p->timeout = call_timeout(tid, &a);
	if (p->timeout <= 0)
		return;
	p->slept = last_ran(tid);
	p->cpu = last_cpu(tid);
	p->before = xmalloc(sizeof(struct tl_list));
	p->nr = r.orig_rax;
	if (!timer_list_read(p->before)) {
		struct tl_list again;

		if (!timer_list_read(&again)) {
			tl_merge(p->before, &again);
			free(again.t);
		}
	} else if (p->slept) {
		/* a normal user: estimate() alone, from the moment it went to sleep */
		pr_debug("tid %d: no /proc/timer_list: time left in its call by its last run\n",
			 tid);
		p->before->now = now_ns();
		p->by_last_run = true;
	} else {
		pr_debug("tid %d: no /proc/timer_list: time left in its call unknown\n", tid);
		deadline_probe_free(p);
	}
}

void deadline_probe_free(struct deadline_probe *p)
{
	p->sock = false;
	p->by_last_run = false;
	if (p->before)
		free(p->before->t);
	free(p->before);
	p->before = NULL;
}

/* Realtime minus monotonic, now. */
static long long real_minus_mono(void)
{
	struct timespec m, r;

	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &r);
	return (r.tv_sec - m.tv_sec) * NSEC + (r.tv_nsec - m.tv_nsec);
}

/*
 * The scheduler's clock of a CPU minus CLOCK_MONOTONIC: our own last run
 * there, read right after a short sleep, against the time just before it.
 * Once per CPU and process; each CPU's scheduler clock may be tens of ms
 * off another's (seen in a VM: 58 ms between the two CPUs of one), so
 * stasis runs on the CPU the sleeper went to sleep on for it (-1, or no
 * such CPU: where it runs).
 */
static long long sched_clock_offset(int cpu)
{
	static long long off[CPU_SETSIZE], any;
	struct timespec t, nap = { 0, 1000 };
	cpu_set_t was, one;
	bool pinned = false;
	long long o;
	int slack;

	if (cpu >= 0 && cpu < CPU_SETSIZE && off[cpu])
		return off[cpu];
	if (cpu < 0 || cpu >= CPU_SETSIZE) {
		if (any)
			return any;
		cpu = -1;
	}
	if (cpu >= 0 && !sched_getaffinity(0, sizeof(was), &was)) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		pinned = !sched_setaffinity(0, sizeof(one), &one);
	}
	/* the nap without our 50 us of timer slack (restored before anything forks) */
	slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
	clock_gettime(CLOCK_MONOTONIC, &t);
	nanosleep(&nap, NULL);
	if (slack > 0)
		prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0);
	o = last_ran(gettid()) - (t.tv_sec * NSEC + t.tv_nsec);
	o = o ? o : 1;
	if (pinned) {
		sched_setaffinity(0, sizeof(was), &was);
		off[cpu] = o;
	} else {
		any = o;
	}
	return o;
}

/* How far timer t ends from the call's timeout after the thread went to sleep. */
static long long off_sleep(const struct tl_timer *t, const struct deadline_probe *p)
{
	long long slept = p->slept - sched_clock_offset(p->cpu);

	return llabs(t->mono - (slept + p->timeout));
}

/* Timer t ends about the call's timeout after the thread went to sleep. */
static bool found_near(const struct tl_timer *t, const struct deadline_probe *p)
{
	return p->slept && off_sleep(t, p) < 50000000LL;
}

/*
 * Several candidates within found_near's 50 ms, or none: the nearest one
 * still, if it is within limit and every other is clearly farther (by gap
 * and four times as far), as the timer of a stranger's short sleep that
 * ended meanwhile is.  (The sleeper's own is within 1 ms, on an idle
 * CPU's clock; 50 ms and more when the clocks of two CPUs part further.)
 */
static const struct tl_timer *nearest(const struct tl_list *b, const bool *gone,
				      const struct deadline_probe *p, long long limit,
				      long long gap)
{
	const struct tl_timer *best = NULL;
	long long bd = 0, next = -1, o;
	size_t i;

	if (!p->slept)
		return NULL;
	for (i = 0; i < b->n; i++) {
		if (!gone[i])
			continue;
		o = off_sleep(&b->t[i], p);
		if (!best || o < bd) {
			if (best)
				next = bd;
			best = &b->t[i];
			bd = o;
		} else if (next < 0 || o < next) {
			next = o;
		}
	}
	if (!best || bd >= limit || (next >= 0 && (next < bd + gap || next < 4 * bd)))
		return NULL;
	return best;
}

/*
 * No timer told apart (the list skipped it in both first reads, or
 * strangers' timers left with it): the end its last run gives, the moment
 * it went to sleep plus its timeout, within a ms or so on the per-CPU
 * offsets, if that is still ahead when it stopped and within the timeout
 * of the first read.  Later than the true end when the call woke inside
 * the kernel and slept again (poll, epoll on an event that was not for
 * it), not earlier but by the clocks' error.  Better than the alternatives:
 * EINTR, or (for a
 * restart-block call) restart_syscall, which a later dump cannot name and
 * a restore cannot re-issue.
 */
static bool estimate(const struct deadline_probe *p, long long first, long long stopped,
		     long long *end)
{
	long long e;

	if (!p->slept)
		return false;
	e = p->slept - sched_clock_offset(p->cpu) + p->timeout;
	if (e <= stopped || e > first + p->timeout)
		return false;
	*end = e;
	return true;
}

int deadline_probe_end(pid_t tid, struct deadline_probe *p, const struct user_regs_struct *regs,
		       struct call_deadline *d)
{
	const struct tl_list *b = p->before;
	const struct tl_timer *found = NULL, *near = NULL;
	size_t i, n = 0, nnear = 0, reads;
	struct tl_list after;
	long long stopped;
	bool *gone = NULL;

	memset(d, 0, sizeof(*d));
	if (p->sock)
		return sock_probe_end(tid, p, regs, d);
	if (b && (long)regs->orig_rax == p->nr && p->by_last_run) {
		if (estimate(p, b->now, now_ns(), &d->mono)) {
			d->real = d->mono + real_minus_mono();
			pr_debug("tid %d: syscall %ld: %lld ns left by its last run\n", tid, p->nr,
				 d->mono - b->now);
		}
		goto out;
	}
	if (!b || (long)regs->orig_rax != p->nr || timer_list_read(&after))
		goto out;
	gone = xmalloc((b->n + 1) * sizeof(*gone));
	/* gone, neither expired nor ending later than the call's timeout allows */
	for (i = 0; i < b->n; i++)
		gone[i] = b->t[i].mono > after.now && b->t[i].mono <= b->now + p->timeout;
	n = tl_still_gone(b, &after, gone);
	stopped = after.now;
	free(after.t);
	for (reads = 1; n > 1 && reads < 4 && !timer_list_read(&after); reads++) {
		n = tl_still_gone(b, &after, gone);
		free(after.t);
	}
	for (i = 0; i < b->n; i++) {
		if (!gone[i])
			continue;
		found = found ? found : &b->t[i];
		pr_debug("tid %d: candidate timer on clock %d, %lld ns after the first read, "
			 "%lld ns off its sleep + timeout (cpu %d)\n",
			 tid, b->t[i].clock, b->t[i].mono - b->now,
			 p->slept ? off_sleep(&b->t[i], p) : -1, p->cpu);
		/* another sleeper woke meanwhile: ours was armed when it went to sleep */
		if (found_near(&b->t[i], p) && !nnear++)
			near = &b->t[i];
	}
	if (n > 1 && nnear == 1) {
		found = near;
		n = 1;
	} else if (n > 1 && (near = nnear ? nearest(b, gone, p, 50000000LL, 5000000LL)
					  : nearest(b, gone, p, 250000000LL, 250000000LL))) {
		found = near;
		n = 1;
	}
	if (n == 1) {
		d->mono = found->mono;
		d->real = found->mono + real_minus_mono();
		pr_debug("tid %d: syscall %ld had %lld ns left (went to sleep %lld ns off)\n", tid,
			 p->nr, found->mono - b->now,
			 p->slept ? found->mono - p->timeout - p->slept + sched_clock_offset(p->cpu)
				  : 0);
	} else if (estimate(p, b->now, stopped, &d->mono)) {
		d->real = d->mono + real_minus_mono();
		pr_debug(
		    "tid %d: syscall %ld: %zu candidate timers, %lld ns left by its last run\n",
		    tid, p->nr, n, d->mono - b->now);
	} else {
		pr_debug("tid %d: syscall %ld: %zu candidate timers, time left unknown\n", tid,
			 p->nr, n);
	}
out:
	free(gone);
	deadline_probe_free(p);
	return d->mono ? 0 : -1;
}

/* --------------------------------------------------------- release */

/* Does the mapping holding sp reach down to at?  (No malloc: also run by the rescue.) */
static bool stack_reaches(pid_t tid, unsigned long sp, unsigned long at)
{
	char path[64], buf[4096 + 1];
	unsigned long start, end;
	size_t have = 0;
	bool ok = false;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/maps", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	for (;;) {
		char *nl = memchr(buf, '\n', have);

		if (!nl) {
			if (have == sizeof(buf) - 1)
				break; /* a line longer than the buffer: not a stack's */
			n = read(fd, buf + have, sizeof(buf) - 1 - have);
			if (n <= 0)
				break;
			have += n;
			continue;
		}
		*nl = '\0';
		if (sscanf(buf, "%lx-%lx", &start, &end) == 2 && start <= sp && sp < end) {
			ok = at >= start;
			break;
		}
		have -= nl + 1 - buf;
		memmove(buf, nl + 1, have);
	}
	close(fd);
	return ok;
}

/*
 * Where the timespec goes: well below the red zone, so that even a signal
 * handler that runs right at the restart leaves it alone, if the stack
 * mapping reaches that far; else right below the red zone.
 */
static unsigned long timespec_spot(pid_t tid, unsigned long sp)
{
	unsigned long deep = (sp - 128 - 16384) & ~15UL;

	if (stack_reaches(tid, sp, deep))
		return deep;
	return (sp - 128 - sizeof(struct timespec)) & ~15UL;
}

/* The time left until end into the call's timeout argument, in r. */
static int set_time_left(pid_t tid, struct user_regs_struct *r, clockid_t clk, long long end)
{
	struct timed_arg a;
	struct timespec now;
	long long left;

	if (!timed_call(r, &a))
		return -1;
	clock_gettime(clk, &now);
	left = end - (now.tv_sec * NSEC + now.tv_nsec);
	if (left < 0)
		left = 0;
	if (a.kind == TA_MS) {
		*arg_reg(r, &a) = (unsigned int)((left + 999999) / 1000000);
	} else if (a.user) {
		/* where the kernel itself wrote the time left at the interrupt */
		struct timespec ts = { left / NSEC, left % NSEC };

		if (a.kind == TA_TV && (ts.tv_nsec = (ts.tv_nsec + 999) / 1000) == 1000000) {
			ts.tv_sec++;
			ts.tv_nsec = 0;
		}
		if (remote_write(tid, a.value, &ts, sizeof(ts)))
			return -1;
	} else {
		struct timespec ts = { left / NSEC, left % NSEC };
		unsigned long at = timespec_spot(tid, r->rsp);

		if (remote_write(tid, at, &ts, sizeof(ts)))
			return -1;
		*arg_reg(r, &a) = at;
	}
	pr_debug("tid %d: syscall %lld again with %lld ns left\n", tid, r->orig_rax, left);
	return 0;
}

int deadline_release(pid_t tid, const struct user_regs_struct *regs, clockid_t clk, long long end)
{
	struct user_regs_struct r = *regs;

	int opt;

	if ((long)r.rax == -ERESTARTNOHAND && sock_call(tid, &r, &opt))
		return sock_release(tid, &r, clk, end, opt);
	if ((long)r.rax != -ERESTARTNOHAND || set_time_left(tid, &r, clk, end) ||
	    tracee_set_regs(tid, &r))
		r = *regs; /* the whole timeout again */
	return release_into_call(tid, &r);
}

/* ---------------------------------------- calls with a mask of their own */

#define UNBLOCKABLE ((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)))

/* The mask a call blocks while it sleeps, read from its argument. */
static bool call_mask(pid_t tid, const struct user_regs_struct *r, uint64_t *mask)
{
	struct {
		unsigned long at, size;
	} ss = { 0, 0 };

	switch ((long)r->orig_rax) {
	case __NR_epoll_pwait:
	case __NR_epoll_pwait2:
		ss.at = r->r8;
		ss.size = r->r9;
		break;
	case __NR_ppoll:
		ss.at = r->r10;
		ss.size = r->r8;
		break;
	case __NR_rt_sigsuspend:
		ss.at = r->rdi;
		ss.size = r->rsi;
		break;
	case __NR_pselect6: /* a pointer to {mask, size} */
		if (!r->r9 || remote_read(tid, r->r9, &ss, sizeof(ss)))
			return false;
		break;
	default:
		return false;
	}
	return ss.at && ss.size == sizeof(*mask) && !remote_read(tid, ss.at, mask, sizeof(*mask));
}

static bool restarts(const struct user_regs_struct *r)
{
	long rax = (long)r->rax;

	return (long)r->orig_rax >= 0 &&
	       (rax == -ERESTARTNOHAND || rax == -ERESTARTSYS || rax == -ERESTARTNOINTR);
}

static int set_mask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(mask), &mask)) {
		pr_perror("cannot set the signal mask of %d", tid);
		return -1;
	}
	return 0;
}

/* Detach from a stop; sig: the signal of a signal-delivery stop, passed on. */
static int detach(pid_t tid, int sig)
{
	if (ptrace(PTRACE_DETACH, tid, 0, sig)) {
		pr_perror("cannot detach from %d", tid);
		return -1;
	}
	return 0;
}

/*
 * A call that sleeps with a mask of its own (set_user_sigmask: epoll_pwait,
 * epoll_pwait2, ppoll, pselect6; rt_sigsuspend) re-reads it from its
 * argument when it is issued again, but between the stop and the restart
 * the thread's own mask is in place: a signal pending that the call's
 * mask blocks and the thread's does not would run its handler there, and
 * the thread would then sleep in the call again.  So such a thread is let
 * go inside the call: everything blocked, its registers set to issue the
 * call again (the syscall instruction, orig_rax -1 so that no restart
 * rule touches them), PTRACE_SYSCALL to the call's entry, its own mask
 * back, detach there.  (This works from every stop stasis leaves a thread
 * in, a syscall-exit stop too, where the kernel's restart would need a
 * pending signal.)  The detach marks it signal-pending; the call, setting
 * its mask (which differs from the thread's, else none of this is done),
 * recomputes that, so it sleeps, or fails with EINTR for a signal its
 * mask lets through, as it would have.  A signal-delivery stop met on the
 * way (the thread was still in the call's mask, at its interrupt) is such
 * a signal: with the registers of the interrupted call and the thread's
 * mask, it is passed on, and the call returns EINTR after the handler.
 */
int release_into_call(pid_t tid, const struct user_regs_struct *r)
{
	struct user_regs_struct again = *r, at;
	unsigned char insn[2];
	uint64_t call, own;
	int status;

	if (!restarts(r) || !call_mask(tid, r, &call) ||
	    ptrace(PTRACE_GETSIGMASK, tid, sizeof(own), &own) || !((call ^ own) & ~UNBLOCKABLE) ||
	    remote_read(tid, r->rip - 2, insn, 2) || insn[0] != 0x0f || insn[1] != 0x05)
		return detach(tid, 0);
	again.rax = r->orig_rax;
	again.orig_rax = -1;
	again.rip -= 2;
	if (set_mask(tid, ~0ULL))
		return detach(tid, 0);
	if (tracee_set_regs(tid, &again) || ptrace(PTRACE_SYSCALL, tid, 0, 0)) {
		pr_perror("cannot resume %d into its call", tid);
		tracee_set_regs(tid, r);
		set_mask(tid, own);
		return detach(tid, 0);
	}
	if (tracee_wait_stop(tid, &status) || tracee_get_regs(tid, &at))
		return -1;
	/* the entry stop (with or without PTRACE_O_TRACESYSGOOD): the call's own registers */
	if ((status >> 16) == 0 && (WSTOPSIG(status) & 0x7f) == SIGTRAP &&
	    (long)at.rax == -ENOSYS && at.orig_rax == r->orig_rax && at.rip == r->rip) {
		pr_debug("tid %d: let go at the entry of syscall %lld\n", tid, r->orig_rax);
		return set_mask(tid, own) ? -1 : detach(tid, 0);
	}
	/* a signal on the way, or a group stop: the interrupted call as it was */
	if (tracee_set_regs(tid, r) || set_mask(tid, own))
		return -1;
	return detach(tid,
		      (status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP ? WSTOPSIG(status) : 0);
}

/* ------------------------------- socket calls with SO_RCVTIMEO/SO_SNDTIMEO */

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

bool sock_call(pid_t tid, const struct user_regs_struct *r, int *opt)
{
	char path[64], link[32];
	ssize_t n;
	int o;

	switch ((long)r->orig_rax) {
	case __NR_recvfrom:
	case __NR_recvmsg:
	case __NR_accept:
	case __NR_accept4:
	case __NR_read:
	case __NR_readv:
		o = SO_RCVTIMEO;
		break;
	case __NR_sendto:
	case __NR_sendmsg:
	case __NR_connect:
	case __NR_write:
	case __NR_writev:
		o = SO_SNDTIMEO;
		break;
	default:
		return false;
	}
	/* no malloc: also run by the dump's rescue */
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", tid, (int)r->rdi);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 8 || strncmp(link, "socket:[", 8))
		return false;
	if (opt)
		*opt = o;
	return true;
}

/* The thread's socket fd in stasis (pidfd_getfd), or -1. */
static int sock_grab(pid_t tid, int fd)
{
	int pidfd = syscall(__NR_pidfd_open, tid, PIDFD_THREAD), sk;

	if (pidfd < 0)
		pidfd = syscall(__NR_pidfd_open, tid, 0); /* before Linux 6.9: a leader only */
	if (pidfd < 0)
		return -1;
	sk = syscall(__NR_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	return sk;
}

static long long sock_timeo(int sk, int opt)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (getsockopt(sk, SOL_SOCKET, opt, &tv, &len) || len != sizeof(tv))
		return -1;
	return tv.tv_sec * NSEC + tv.tv_usec * 1000LL;
}

/* ns 0 is "no timeout" to the kernel: the shortest real one is 1 us (a jiffy). */
static int sock_timeo_set(int sk, int opt, long long ns)
{
	struct timeval tv = { ns / NSEC, (ns % NSEC + 999) / 1000 };

	if (tv.tv_usec == 1000000) {
		tv.tv_sec++;
		tv.tv_usec = 0;
	}
	if (!tv.tv_sec && !tv.tv_usec)
		tv.tv_usec = 1;
	return setsockopt(sk, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static long long mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

/*
 * The deadline of a call stasis re-issued, kept in its rcx and r11 (the
 * syscall instruction clobbers both: set at the entry stop, they stay in
 * the kernel's copy of the registers until the call returns), so that the
 * next dump finds the call's own deadline rather than the socket's whole
 * timeout from its restart.  r11 (rflags, had the call come in by itself:
 * bits 22-63 clear) holds a tag of rcx and this boot.
 */
static unsigned long long boot_key(void)
{
	static unsigned long long key;
	char buf[64] = "";
	ssize_t n;
	int fd;

	if (key)
		return key;
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	key = strtoull(buf, NULL, 16) | 1;
	return key;
}

static unsigned long long stash_tag(unsigned long long end)
{
	return 0x5354000000000000ULL | (((end ^ boot_key()) * 0x9e3779b97f4a7c15ULL) >> 24);
}

/* The deadline stashed in regs (CLOCK_MONOTONIC ns), or 0. */
static long long stashed_end(const struct user_regs_struct *r)
{
	return r->r11 == stash_tag(r->rcx) ? (long long)r->rcx : 0;
}

/*
 * A thread asleep in a socket call with a timeout: when it went to sleep
 * (read now, before the interrupt wakes it) and the option.  Without a
 * timeout the call restarts by itself (-ERESTARTSYS); true if it is one.
 */
static bool sock_probe_begin(pid_t tid, const struct user_regs_struct *r, struct deadline_probe *p)
{
	int opt, sk;

	if (!sock_call(tid, r, &opt))
		return false;
	sk = sock_grab(tid, r->rdi);
	p->timeout = sk < 0 ? -1 : sock_timeo(sk, opt);
	if (sk >= 0)
		close(sk);
	if (p->timeout <= 0)
		return true;
	p->sock = true;
	p->nr = r->orig_rax;
	p->slept = last_ran(tid);
	p->cpu = last_cpu(tid);
	p->begun = mono_now();
	return true;
}

/*
 * Its deadline: the moment it went to sleep plus the timeout, if that is
 * still ahead when it stopped (the kernel's timer-wheel timer of the call
 * is listed nowhere).  Exact but for the scheduler clocks' error (about
 * a ms) when the call slept from its start; later by as much as it slept
 * before when it woke in the kernel and slept again (a datagram another
 * thread took first).
 */
static int sock_probe_end(pid_t tid, struct deadline_probe *p, const struct user_regs_struct *regs,
			  struct call_deadline *d)
{
	long long stash = stashed_end(regs), now = mono_now();

	p->sock = false;
	if ((long)regs->orig_rax != p->nr || (long)regs->rax != -EINTR)
		return -1;
	/* one stasis re-issued: its own end, never later than the option from its last run */
	if (stash > now && stash <= p->begun + p->timeout &&
	    (!estimate(p, p->begun, now, &d->mono) || stash < d->mono)) {
		d->mono = stash;
	} else if (!estimate(p, p->begun, now, &d->mono)) {
		pr_debug("tid %d: socket call %ld: time left unknown\n", tid, p->nr);
		return -1;
	}
	d->real = d->mono + real_minus_mono();
	pr_debug("tid %d: socket call %ld had %lld ns left by its last run\n", tid, p->nr,
		 d->mono - p->begun);
	return 0;
}

/* The state letter of /proc/TID/stat (0: unreadable).  No malloc. */
static char task_state(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* Threads left traced, asleep in their re-issued call, until we exit. */
static pid_t kept[256];
static size_t nkept;

bool tracee_kept(pid_t tid)
{
	size_t i;

	for (i = 0; i < nkept; i++)
		if (kept[i] == tid || !tid)
			return true;
	return false;
}

static void kept_drop(pid_t tid)
{
	size_t i;

	for (i = 0; i < nkept; i++)
		if (kept[i] == tid) {
			kept[i] = kept[--nkept];
			return;
		}
}

/* A kept thread's call returned (syscall-exit stop) or it got a signal: let it go. */
int tracee_kept_service(pid_t tid, int status)
{
	kept_drop(tid);
	if (!WIFSTOPPED(status))
		return 0;
	return detach(tid, (status >> 16) == 0 && (WSTOPSIG(status) & 0x7f) != SIGTRAP
			       ? WSTOPSIG(status)
			       : 0);
}

/*
 * The thread's own re-issue of the call, at its entry stop: the socket's
 * option set to the time left, PTRACE_SYSCALL, and once the call sleeps
 * (state S: it read the option as it started; the locks it may wait for
 * first sleep uninterruptibly) or returned (its exit stop), the option
 * back.  Nothing else of the tree runs meanwhile (these threads are let
 * go first).  Detaching at the entry stop would mark the thread
 * signal-pending and the socket's wait would fail at once; detaching a
 * sleeping tracee is only done by the tracer's exit, which does not wake
 * it.  So the thread stays traced, asleep, until stasis exits: should its
 * call return before, it waits in its exit stop until then (or until
 * tracee_kept_service).
 */
static int sock_reissue(pid_t tid, struct user_regs_struct *at, int sk, int opt, long long was,
			clockid_t clk, long long end)
{
	struct timespec now, nap = { 0, 20000 };
	long long left, until;
	int status, i;
	char st;

	clock_gettime(clk, &now);
	left = end - (now.tv_sec * NSEC + now.tv_nsec);
	if (left < 1000)
		left = 1000;
	at->rcx = mono_now() + left;
	at->r11 = stash_tag(at->rcx);
	if (tracee_set_regs(tid, at))
		return -1;
	/* no exit-kill, no fork events while it is kept */
	if (ptrace(PTRACE_SETOPTIONS, tid, 0, PTRACE_O_TRACESYSGOOD) ||
	    sock_timeo_set(sk, opt, left) || ptrace(PTRACE_SYSCALL, tid, 0, 0)) {
		pr_perror("tid %d: cannot re-issue its socket call", tid);
		sock_timeo_set(sk, opt, was);
		return -1;
	}
	until = mono_now() + 2 * NSEC;
	for (i = 0;; i++) {
		pid_t w = waitpid(tid, &status, WNOHANG | __WALL);

		if (w == tid) { /* returned already, or a signal */
			sock_timeo_set(sk, opt, was);
			pr_debug("tid %d: socket call back with %lld ns, returned at once\n", tid,
				 left);
			return tracee_kept_service(tid, status);
		}
		st = task_state(tid);
		if (st == 'S' || !st || mono_now() > until)
			break;
		if (i > 100)
			nanosleep(&nap, NULL);
		else
			sched_yield();
	}
	sock_timeo_set(sk, opt, was);
	if (st != 'S')
		pr_warn("tid %d: its socket call did not sleep in time (state %c)\n", tid,
			st ? st : '?');
	pr_debug("tid %d: socket call %s with %lld ns left, kept traced\n", tid,
		 st == 'S' ? "asleep" : "re-issued", left);
	if (nkept < ARRAY_SIZE(kept))
		kept[nkept++] = tid;
	if (waitpid(tid, &status, WNOHANG | __WALL) == tid)
		return tracee_kept_service(tid, status);
	return 0;
}

/*
 * Let a thread go into its socket call again (registers regs: the call
 * interrupted, -ERESTARTNOHAND), with the time left until end: at the
 * syscall-entry stop of the call issued again (rip on its syscall
 * instruction, orig_rax -1 so no restart rule touches them), see
 * sock_reissue.  A signal met on the way is passed on with the registers
 * of the interrupted call: its handler runs and the call fails with EINTR,
 * as it would have.  Without its timeout now (changed, or a restore that
 * did not set it) it is detached as any other.
 */
static int sock_release(pid_t tid, const struct user_regs_struct *regs, clockid_t clk,
			long long end, int opt)
{
	struct user_regs_struct again = *regs, at;
	unsigned char insn[2];
	long long was;
	int sk, status, ret;

	sk = sock_grab(tid, regs->rdi);
	was = sk < 0 ? -1 : sock_timeo(sk, opt);
	if (was <= 0 || remote_read(tid, regs->rip - 2, insn, 2) || insn[0] != 0x0f ||
	    insn[1] != 0x05) {
		if (sk >= 0)
			close(sk);
		return release_into_call(tid, regs);
	}
	again.rax = regs->orig_rax;
	again.orig_rax = -1;
	again.rip -= 2;
	if (tracee_set_regs(tid, &again) || ptrace(PTRACE_SYSCALL, tid, 0, 0)) {
		pr_perror("cannot resume %d into its socket call", tid);
		tracee_set_regs(tid, regs);
		close(sk);
		return detach(tid, 0);
	}
	if (tracee_wait_stop(tid, &status) || tracee_get_regs(tid, &at)) {
		close(sk);
		return -1;
	}
	if ((status >> 16) == 0 && (WSTOPSIG(status) & 0x7f) == SIGTRAP &&
	    (long)at.rax == -ENOSYS && at.orig_rax == regs->orig_rax && at.rip == regs->rip) {
		ret = sock_reissue(tid, &at, sk, opt, was, clk, end);
		close(sk);
		if (ret) { /* as before: EINTR, the call skipped */
			at.orig_rax = -1;
			at.rax = -EINTR;
			tracee_set_regs(tid, &at);
			return detach(tid, 0);
		}
		return 0;
	}
	close(sk);
	/* a signal on the way, or a group stop: the interrupted call as it was */
	if (tracee_set_regs(tid, regs))
		return -1;
	return detach(tid,
		      (status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP ? WSTOPSIG(status) : 0);
}
