/*
 * POSIX timers (timer_create): per process, each with its id, clock,
 * notification (signal to the process, to one thread, or none), signal
 * number and sigev_value, time left and interval.  /proc/PID/timers lists
 * them; the time left comes from a remote timer_gettime in the task.
 *
 * Restore creates them with remote timer_create in the task while
 * PR_TIMER_CREATE_RESTORE_IDS is on, which makes the kernel take the id
 * from the caller: every timer keeps its id.  They are armed as late as
 * possible (after threads exist: a thread-directed timer needs its
 * thread).  The overrun count is not restored (no interface sets it).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "res.h"
#include "util.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#endif

static uint64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000ULL + ts->tv_nsec;
}

static struct timespec ns_ts(uint64_t ns)
{
	struct timespec ts = { ns / 1000000000ULL, ns % 1000000000ULL };

	return ts;
}

/* One "ID:" block of /proc/PID/timers into t; 0, or -1 if it is malformed. */
static int parse_timer(const char *blk, PosixTimer *t)
{
	char kind[16], who[8];
	unsigned long long val;
	unsigned int signo;
	int id, clk, target;
	const char *p;

	if (sscanf(blk, "ID: %d", &id) != 1 || !(p = strstr(blk, "signal: ")) ||
	    sscanf(p, "signal: %u/%llx", &signo, &val) != 2 || !(p = strstr(blk, "notify: ")) ||
	    sscanf(p, "notify: %15[a-z]/%7[a-z].%d", kind, who, &target) != 3 ||
	    !(p = strstr(blk, "ClockID: ")) || sscanf(p, "ClockID: %d", &clk) != 1)
		return -1;
	t->id = id;
	t->clockid = clk;
	t->signo = signo;
	t->sigval = val;
	if (!strcmp(kind, "none"))
		t->notify = SIGEV_NONE;
	else if (!strcmp(kind, "signal"))
		t->notify = SIGEV_SIGNAL;
	else
		return -1;
	if (!strcmp(who, "tid")) {
		t->notify |= SIGEV_THREAD_ID;
		t->has_tid = true;
		t->tid = target;
	}
	return 0;
}

/* Remote: time left, interval and overrun of timer t. */
static int timer_state(struct dump_task *dt, PosixTimer *t)
{
	struct rtask *rt = dt_rt(dt);
	struct itimerspec its;
	long ret;

	if (remote_syscall(rt, &ret, __NR_timer_gettime, t->id, rt->scratch, 0, 0, 0, 0) || ret ||
	    remote_read(dt->pid, rt->scratch, &its, sizeof(its)))
		return -1;
	t->value_ns = ts_ns(&its.it_value);
	t->interval_ns = ts_ns(&its.it_interval);
	if (remote_syscall(rt, &ret, __NR_timer_getoverrun, t->id, 0, 0, 0, 0, 0) || ret < 0)
		return -1;
	t->has_overrun = true;
	t->overrun = ret;
	return 0;
}

/* CPU-time clocks of another process or thread cannot be carried over. */
static bool clock_supported(int clk)
{
	return clk >= 0 || (~clk >> 3) == 0;
}

static int timer_cmp(const void *a, const void *b)
{
	const PosixTimer *x = *(PosixTimer *const *)a, *y = *(PosixTimer *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* The task's timers between stage 1 (read) and stage 2 (written). */
static PosixTimersEntry **ptimers_of(struct dump_task *dt)
{
	return res_dump_task_state(dt, &ptimer_res);
}

static int ptimers_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	char *list = read_proc(dt->pid, "timers", NULL), *blk, *next;
	PosixTimersEntry *e;
	int ret = 0;

	if (!list) {
		pr_perror("pid %d: cannot read its POSIX timers", dt->pid);
		return -1;
	}
	e = xmalloc(sizeof(*e));
	posix_timers_entry__init(e);
	e->pid = dt->pid;
	*ptimers_of(dt) = e;
	for (blk = strstr(list, "ID: "); blk && !ret; blk = next) {
		PosixTimer *t = xmalloc(sizeof(*t));

		/* blocks start at "ID:" on a line of its own ("ClockID:" ends one) */
		next = strstr(blk, "\nID: ");
		if (next)
			*next++ = '\0';
		posix_timer__init(t);
		e->timers = xrealloc(e->timers, (e->n_timers + 1) * sizeof(*e->timers));
		e->timers[e->n_timers++] = t;
		if (parse_timer(blk, t)) {
			pr_err("pid %d: cannot parse POSIX timer '%.40s'\n", dt->pid, blk);
			ret = -1;
		} else if (!clock_supported(t->clockid)) {
			pr_err(
			    "pid %d: POSIX timer %d counts another process's CPU time (clock %d): "
			    "not supported\n",
			    dt->pid, t->id, (int)t->clockid);
			ret = -1;
		} else if (timer_state(dt, t)) {
			pr_err("pid %d: cannot read POSIX timer %d\n", dt->pid, t->id);
			ret = -1;
		}
	}
	free(list);
	sort_array(e->timers, e->n_timers, sizeof(*e->timers), timer_cmp);
	return ret;
}

static int ptimers_write(struct dump_ctx *ctx, struct dump_task *dt)
{
	PosixTimersEntry *e = *ptimers_of(dt);

	if (!e || !e->n_timers)
		return 0;
	return img_write_msg(&ctx->w, IMG_POSIX_TIMERS, &e->base);
}

static void ptimers_dump_fini(struct dump_task *dt, void *state)
{
	PosixTimersEntry **e = state;

	if (*e)
		posix_timers_entry__free_unpacked(*e, NULL);
}

static int create_one(struct rst_ctx *c, const PosixTimer *t)
{
	struct sigevent sev;
	struct itimerspec its = { ns_ts(t->interval_ns), ns_ts(t->value_ns) };
	unsigned long a_sev = c->rt.scratch, a_id = a_sev + 128, a_its = a_id + 16;
	int id = t->id;
	long ret;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = t->notify;
	sev.sigev_signo = t->signo;
	sev.sigev_value.sival_ptr = (void *)(uintptr_t)t->sigval;
	if (t->has_tid)
		sev._sigev_un._tid = te_tid_inside(c->t->te, t->tid);
	if (remote_write(c->rt.pid, a_sev, &sev, sizeof(sev)) ||
	    remote_write(c->rt.pid, a_id, &id, sizeof(id)) ||
	    remote_write(c->rt.pid, a_its, &its, sizeof(its)) ||
	    remote_syscall(&c->rt, &ret, __NR_timer_create, (int)t->clockid, a_sev, a_id, 0, 0, 0))
		return -1;
	if (ret || remote_read(c->rt.pid, a_id, &id, sizeof(id)) || id != t->id) {
		pr_err("pid %u: cannot recreate POSIX timer %d: %s\n", c->t->te->pid, t->id,
		       ret ? strerror(-ret) : "it got another id");
		return -1;
	}
	if (!t->value_ns)
		return 0;
	if (remote_syscall(&c->rt, &ret, __NR_timer_settime, t->id, 0, a_its, 0, 0, 0) || ret) {
		pr_err("pid %u: cannot arm POSIX timer %d\n", c->t->te->pid, t->id);
		return -1;
	}
	return 0;
}

static int ptimers_restore_remote(struct rst_ctx *c)
{
	const PosixTimersEntry *e = c->t->ptimers;
	size_t i;
	long ret;

	if (!e || !e->n_timers)
		return 0;
	if (remote_syscall(&c->rt, &ret, __NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0, 0))
		return -1;
	if (ret) {
		pr_err("pid %u: this kernel cannot create POSIX timers with given ids "
		       "(PR_TIMER_CREATE_RESTORE_IDS: %s)\n",
		       c->t->te->pid, strerror(-ret));
		return -1;
	}
	for (i = 0; i < e->n_timers; i++)
		if (create_one(c, e->timers[i]))
			return -1;
	if (remote_syscall(&c->rt, &ret, __NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0, 0) ||
	    ret) {
		pr_err("pid %u: cannot leave POSIX timer id restore mode\n", c->t->te->pid);
		return -1;
	}
	return 0;
}

const struct res_ops ptimer_res = {
	.name = "ptimer",
	.dump_task_state_size = sizeof(PosixTimersEntry *),
	.dump_remote = ptimers_dump,
	.dump_write = ptimers_write,
	.dump_task_fini = ptimers_dump_fini,
	.remote_late = ptimers_restore_remote,
};
