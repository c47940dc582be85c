/*
 * The controller's view of the tree: it follows the tree as it forks
 * itself (every task traced from its first instruction), joins process
 * groups once every task is parked, and in the end releases every task
 * together, or kills whatever of the tree exists.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "restore_int.h"
#include "util.h"

/* The task we see as host pid 'pid' (its number in the image may differ). */
static struct rst_ctx *ctx_by_pid(struct rst_tree *r, pid_t pid)
{
	pid_t inner = r->opts->pidns ? innermost_pid(pid) : pid;
	size_t i;

	for (i = 0; i < r->n; i++)
		if ((r->opts->pidns ? te_pid_inside(r->img->tasks[i].te)
				    : (pid_t)r->img->tasks[i].te->pid) == inner) {
			r->ctx[i].host_pid = pid;
			return &r->ctx[i];
		}
	return NULL;
}

static bool all_parked(struct rst_tree *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		struct rst_ctx *c = &r->ctx[i];

		if (c->t->te->zombie ? !c->exited : !c->parked)
			return false;
	}
	return true;
}

/*
 * Follow the tree as it forks itself: resume each new task and each
 * parent after a fork, until every task has stopped itself (or, for
 * zombies, exited).  A task that dies unexpectedly fails the restore.
 */
int wait_tree_parked(struct rst_tree *r)
{
	while (!all_parked(r)) {
		struct rst_ctx *c;
		int status, event;
		pid_t pid = fault_at(FAULT_RST_PARK) ? -1 : waitpid(-1, &status, __WALL);

		if (pid < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("waiting for the restored tree");
			return -1;
		}
		c = ctx_by_pid(r, pid);
		if (!c) {
			/* our namespace init, or a group stand-in: not part of the image */
			if (WIFSTOPPED(status) && ptrace(PTRACE_CONT, pid, 0, 0)) {
				pr_perror("cannot resume helper %d", pid);
				return -1;
			}
			continue;
		}
		c->attached = true;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			if (c->t->te->zombie) {
				/* 0x80: a core was dumped, which the copy does not */
				if ((status & ~0x80) != (int)(c->t->te->exit_code & ~0x80)) {
					pr_info("pid %d: the zombie's restore child failed (status "
						"%#x)\n",
						pid, status);
					return -1;
				}
				c->exited = true;
				continue;
			}
			/* the child said why before it exited */
			pr_info("pid %d: the restore child failed while setting up (status %#x)\n",
				pid, status);
			return -1;
		}
		if (!WIFSTOPPED(status))
			continue;
		event = status >> 16;
		if (!event && WSTOPSIG(status) == SIGSTOP && !c->t->te->zombie) {
			c->parked = true;
			continue;
		}
		/* a zombie's restore child dies by the signal it died by: let it */
		if (!event && c->t->te->zombie && WIFSIGNALED(c->t->te->exit_code) &&
		    WSTOPSIG(status) == WTERMSIG(c->t->te->exit_code)) {
			if (ptrace(PTRACE_CONT, pid, 0, WSTOPSIG(status))) {
				pr_perror("cannot resume the zombie's restore child %d", pid);
				return -1;
			}
			continue;
		}
		if (!event && WSTOPSIG(status) != SIGSTOP && WSTOPSIG(status) != SIGTRAP) {
			pr_err("pid %d: restore child stopped by signal %d\n", pid,
			       WSTOPSIG(status));
			return -1;
		}
		/* fork events, the initial stop of a new task: let it go on */
		if (ptrace(PTRACE_CONT, pid, 0, 0)) {
			pr_perror("cannot resume restore child %d", pid);
			return -1;
		}
	}
	return 0;
}

/* The group a task must join, or 0 to keep the one it inherited. */
static pid_t group_target(struct rst_tree *r, TaskEntry *te)
{
	TaskEntry *root = r->img->tasks[r->root].te;

	if (te->pgid == te->pid || image_task(r->img, te->pgid))
		return te->pgid;
	if (te->pgid == root->pgid && root->pgid != root->pid) {
		/* the root's group was outside the tree: the restorer's, as a shell job */
		return r->opts->pidns ? 0 : r->our_pgid;
	}
	return te->pgid; /* leaderless: its stand-in made it */
}

/* Remote, with every task parked: join process groups, leaders first. */
int restore_groups(struct rst_tree *r)
{
	int pass;
	size_t i;

	if (fault_at(FAULT_RST_GROUPS))
		return -1;
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < r->n; i++) {
			struct rst_ctx *c = &r->ctx[i];
			TaskEntry *te = c->t->te;
			pid_t want = group_target(r, te);
			long ret;

			if (te->zombie || te->sid == te->pid || !want ||
			    (pass == 0) != (te->pgid == te->pid))
				continue;
			if (remote_syscall(&c->rt, &ret, __NR_setpgid, 0,
					   want == (pid_t)te->pid ? 0 : image_own_pid(r->img, want),
					   0, 0, 0, 0))
				return -1;
			if (ret) {
				pr_err("pid %u: cannot join process group %d: %s\n", te->pid, want,
				       strerror(-ret));
				return -1;
			}
		}
	return 0;
}

/* Groups whose leader is gone: the first live member recreates each. */
int plan_group_helpers(struct rst_tree *r)
{
	TaskEntry *root = r->img->tasks[r->root].te;
	size_t i, j;

	for (i = 0; i < r->n; i++) {
		TaskEntry *te = r->ctx[i].t->te;
		bool planned = false;

		if (te->zombie || te->pgid == te->pid || image_task(r->img, te->pgid) ||
		    (te->pgid == root->pgid && root->pgid != root->pid))
			continue;
		for (j = 0; j < i; j++)
			if (r->ctx[j].group_helper == (pid_t)te->pgid)
				planned = true;
		if (!planned)
			r->ctx[i].group_helper = te->pgid;
	}
	return 0;
}

/*
 * Let one thread go.  One frozen in a call with a relative timeout goes
 * back into it with the time it had left before its deadline (deadline.c);
 * every other is detached, and the kernel restarts an interrupted call
 * (inside it, if it has a mask of its own: release_into_call).
 */
static int release_thread(pid_t pid, const ThreadCore *core)
{
	struct user_regs_struct r;
	struct timed_arg a;

	if (core->has_call_deadline && !tracee_get_regs(pid, &r) && (long)r.orig_rax >= 0 &&
	    (long)r.rax == -ERESTARTNOHAND && (timed_call(&r, &a) || sock_call(pid, &r, NULL)))
		return deadline_release(pid, &r, CLOCK_REALTIME, core->call_deadline);
	if (tracee_get_regs(pid, &r))
		return -1;
	return release_into_call(pid, &r);
}

/*
 * A thread going back into a socket call timed by its socket's option: let
 * go before the rest of the tree, which must not see the option shortened
 * for that call's start (deadline.c's sock_release).  Leaders keep their
 * turn (the release stage of their task comes first).
 */
static bool release_first(pid_t pid, const ThreadCore *core)
{
	struct user_regs_struct r;

	return core->has_call_deadline && !tracee_get_regs(pid, &r) && (long)r.orig_rax >= 0 &&
	       (long)r.rax == -ERESTARTNOHAND && sock_call(pid, &r, NULL);
}

static int release_socket_threads(struct rst_ctx *c)
{
	size_t j;

	for (j = 1; j < c->t->ncores; j++)
		if (!c->th[j].released && release_first(c->th[j].pid, c->t->cores[j])) {
			c->th[j].released = true;
			if (release_thread(c->th[j].pid, c->t->cores[j])) {
				pr_perror("cannot release tid %d", c->th[j].pid);
				return -1;
			}
		}
	return 0;
}

int release_task(struct rst_ctx *c)
{
	size_t j;

	if (fault_at(FAULT_RST_RELEASE) || release_socket_threads(c))
		return -1;
	for (j = 1; j < c->t->ncores; j++)
		if (!c->th[j].released && release_thread(c->th[j].pid, c->t->cores[j])) {
			pr_perror("cannot release tid %d", c->th[j].pid);
			return -1;
		}
	if (res_stage(release, c) || release_thread(c->rt.pid, c->t->cores[0])) {
		pr_perror("cannot release pid %d", c->rt.pid);
		return -1;
	}
	return 0;
}

/* Release every thread of every task: the tree runs from here on. */
int release_tree(struct restore *r)
{
	size_t i;

	if (second_driver_finish(r, true))
		return -1;
	for (i = 0; i < r->tree.n; i++)
		if (!r->tree.ctx[i].t->te->zombie && !r->tree.ctx[i].second &&
		    release_socket_threads(&r->tree.ctx[i]))
			return -1;
	for (i = 0; i < r->tree.n; i++)
		if (!r->tree.ctx[i].t->te->zombie && !r->tree.ctx[i].second &&
		    release_task(&r->tree.ctx[i]))
			return -1;
	return 0;
}

/* Kill whatever of the tree exists; the root is ours to reap. */
void kill_tree(struct restore *r, pid_t root)
{
	size_t i;
	int status;
	pid_t w;

	for (i = 0; i < r->tree.n; i++)
		if (r->tree.ctx[i].attached && r->tree.ctx[i].host_pid > 0)
			kill(r->tree.ctx[i].host_pid, SIGKILL);
	if (r->tree.ns_init > 0)
		kill(r->tree.ns_init, SIGKILL); /* takes the whole namespace with it */
	if (root > 0) {
		kill(root, SIGKILL);
		/*
		 * Reap every tracee until none is left: a dying --pidns init
		 * waits for every task of its namespace, and a traced zombie is
		 * only handed to it once we reaped it.  A task whose fork we
		 * have not seen yet (its parent failed first) sits in its first
		 * ptrace stop, without a parent-death signal yet: it is ours
		 * (traced since its fork) and is killed here.
		 */
		for (;;) {
			w = waitpid(-1, &status, __WALL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			if (WIFSTOPPED(status))
				kill(w, SIGKILL);
		}
	}
}
