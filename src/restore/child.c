/*
 * The restore child: every restored task starts as a copy of stasis and
 * runs this code until it parks itself with raise(SIGSTOP).  It places the
 * service fds, opens what its subtree inherits, forks its children at
 * their PIDs (making its session and group on the way), then runs the
 * child stages of the resource table (fds, mapped files, cwd, limits,
 * signal actions ...) with plain syscalls.  A zombie only takes its
 * session and group and dies the way it died.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "restore_int.h"
#include "util.h"

static int child_move_fd(int from, int to)
{
	if (from == to)
		return 0;
	if (dup2(from, to) < 0) {
		pr_perror("cannot place service fd %d", to);
		return -1;
	}
	return 0;
}

/* glibc registered rseq for us; the image's code brings its own. */
static int child_drop_rseq(void)
{
	void *area = (char *)__builtin_thread_pointer() + __rseq_offset;

	if (!__rseq_size)
		return 0;
	/* glibc registers 32 bytes (the original ABI size) but reports fewer */
	if (syscall(__NR_rseq, area, 32, STASIS_RSEQ_FLAG_UNREGISTER, RSEQ_SIG) &&
	    syscall(__NR_rseq, area, __rseq_size, STASIS_RSEQ_FLAG_UNREGISTER, RSEQ_SIG) &&
	    errno != EINVAL) {
		pr_perror("cannot unregister rseq");
		return -1;
	}
	return 0;
}

/*
 * The image as the parent restore child holds it (its slot, inherited at
 * fork), -1 in the root: a parent that entered the tree's root
 * (pivot_root) can no longer name the image by its path.
 */
static int parent_image_fd = -1;

static int child_service_fds(struct rst_ctx *c)
{
	int fd, k, inh[c->opts->n_inherit + 1], img = -1;

	/* out of the way of the slots placed below, like the inherited fds */
	if (parent_image_fd >= 0 &&
	    (img = fcntl(parent_image_fd, F_DUPFD_CLOEXEC, c->svc_end)) < 0) {
		pr_perror("cannot take the image from the parent restore child");
		return -1;
	}

	/*
	 * --inherit-fd fds first go above every slot: a low one (say 9) may
	 * be where the log or the restorer's 0-2 are placed next.
	 */
	for (k = 0; k < c->opts->n_inherit; k++) {
		inh[k] = fcntl(c->opts->inherit[k].fd, F_DUPFD_CLOEXEC, c->svc_end);
		if (inh[k] < 0) {
			pr_perror("--inherit-fd: no fd %d", c->opts->inherit[k].fd);
			return -1;
		}
	}
	/* everything goes above the target's fds; log first so errors show */
	if (child_move_fd(log_fd_get(), svc_fd(c, SVC_LOG)))
		return -1;
	log_fd_set(svc_fd(c, SVC_LOG));
	for (k = 0; k < 3; k++) {
		if (fcntl(k, F_GETFD) < 0) {
			/* closed in the restorer: stand in /dev/null */
			fd = open("/dev/null", O_RDWR);
			if (fd < 0 || move_fd(fd, svc_fd(c, SVC_STDIN) + k) < 0)
				return -1;
		} else if (child_move_fd(k, svc_fd(c, SVC_STDIN) + k)) {
			return -1;
		}
	}
	fd = img >= 0 ? img : open(c->img->r.path, O_RDONLY);
	if (fd < 0 || move_fd(fd, svc_fd(c, SVC_IMAGE)) < 0) {
		pr_perror("cannot open the image in the restore child");
		return -1;
	}
	parent_image_fd = svc_fd(c, SVC_IMAGE);
	for (k = 0; k < c->opts->n_inherit; k++) {
		if (child_move_fd(inh[k], svc_fd(c, SVC_FILES) + c->svc_files + k))
			return -1;
		close(inh[k]);
	}
	return 0;
}

/*
 * Fork at 'pid' as the restorer sees it and, in a tree with a PID
 * namespace of its own, at 'pid_inside' inside it (0: no such namespace).
 */
/*
 * Set in the tasks of the tree (and our namespace init), which the
 * controller traces: what they fork is traced too from its first
 * instruction (CLONE_PTRACE), and they go on at once, without stopping
 * for a fork event the controller would have to answer first (which made
 * a parent's forks one round trip each).  Not in the controller itself,
 * which may be traced by a debugger.
 */
static bool forks_traced;

void fork_traced(void)
{
	forks_traced = true;
}

pid_t fork_at_pid_flags(pid_t pid, pid_t pid_inside, uint64_t flags)
{
	pid_t both[2] = { pid_inside, pid }; /* innermost namespace first */
	struct stasis_clone_args args = {
		.flags = flags | (forks_traced ? CLONE_PTRACE : 0),
		/* a sibling's exit signal is our own, chosen by our parent */
		.exit_signal = flags & CLONE_PARENT ? 0 : SIGCHLD,
		.set_tid = pid_inside ? (uintptr_t)both : (uintptr_t)&pid,
		.set_tid_size = pid_inside ? 2 : 1,
	};
	sigset_t all, old;
	char comm[64];
	pid_t ret;

	/* the new task is born with every signal blocked: none sent to it is lost */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	ret = syscall(__NR_clone3, &args, sizeof(args));
	if (ret)
		sigprocmask(SIG_SETMASK, &old, NULL);
	if (ret < 0) {
		if (errno == EEXIST && pid_inside && !pid_exists(pid)) {
			pr_err("pid %d of the tree's PID namespace is taken there; restore needs "
			       "it free\n",
			       pid_inside);
		} else if (errno == EEXIST) {
			proc_comm(pid, comm, sizeof(comm));
			pr_err(
			    "pid %d is taken by another process ('%s', pid %d); restore needs it "
			    "free\n",
			    pid, comm, pid);
		} else if (errno == EPERM) {
			pr_err("cannot create pid %d: permission denied (restore needs root or "
			       "CAP_CHECKPOINT_RESTORE)\n",
			       pid);
		} else {
			pr_perror("clone3 at pid %d", pid);
		}
	}
	return ret;
}

pid_t fork_at_pid(pid_t pid)
{
	return fork_at_pid_flags(pid, 0, 0);
}

/*
 * Fork a task of the tree at its numbers: the image's pid and, in a tree
 * with a PID namespace of its own, its number there too; with --pidns
 * only the number inside the namespace (the kernel picks ours).
 */
pid_t fork_at(const struct rst_ctx *c, pid_t pid, pid_t pid_inside, uint64_t flags)
{
	if (c->opts->pidns)
		return fork_at_pid_flags(pid_inside ? pid_inside : pid, 0, flags);
	return fork_at_pid_flags(pid, pid_inside, flags);
}

/*
 * A kid cloned into our fd table (CLONE_FILES) runs its child stages on
 * the table we go on building: wait until it parks.  The pipe is placed
 * above every slot either of us fills; if the kid fails, the controller
 * kills the tree, and us with it.
 */
static int park_pipe(struct rst_ctx *c, struct rst_ctx *kc, int p[2])
{
	int k, high = c->shared_base + c->shared_slots;

	if (pipe2(p, O_CLOEXEC)) {
		pr_perror("pid %u: cannot make a pipe", c->t->te->pid);
		return -1;
	}
	for (k = 0; k < 2; k++) {
		int fd = fcntl(p[k], F_DUPFD_CLOEXEC, high);

		close(p[k]);
		p[k] = fd;
	}
	if (p[0] < 0 || p[1] < 0) {
		pr_perror("pid %u: cannot place a pipe above fd %d", c->t->te->pid, high);
		if (p[0] >= 0)
			close(p[0]);
		if (p[1] >= 0)
			close(p[1]);
		return -1;
	}
	kc->park_fd = p[1];
	return 0;
}

static int fork_kid(struct rst_ctx *c, struct rst_task *kid)
{
	struct rst_ctx *kc = rst_ctx_of(c->tree, kid);
	int p[2] = { -1, -1 };
	ssize_t n = 1;
	pid_t pid;
	char b;

	if ((kc->clone_flags & CLONE_FILES) && park_pipe(c, kc, p))
		return -1;
	pid = fault_at(FAULT_RST_FORK) ? -1
				       : fork_at(c, kid->te->pid, kid->te->ns_pid, kc->clone_flags);
	if (pid == 0)
		child_main(kc);
	if (pid > 0 && p[0] >= 0)
		while ((n = read(p[0], &b, 1)) < 0 && errno == EINTR)
			;
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	if (n != 1)
		pr_perror("pid %u: its clone %d did not park", c->t->te->pid, kid->te->pid);
	return pid < 0 || n != 1 ? -1 : 0;
}

/*
 * Fork the children: those that keep the session this task was born in
 * before it makes its own, the others after.  Then, if this task leads a
 * group, it is made before the rest of its children inherit it.
 */
static int child_fork_kids(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;
	size_t i;

	for (i = 0; i < c->t->nkids; i++) {
		TaskEntry *k = c->t->kids[i]->te;

		if (te->sid == te->pid && k->sid != te->sid && k->sid != k->pid &&
		    fork_kid(c, c->t->kids[i]))
			return -1;
	}
	if (te->sid == te->pid && te_pid_inside(te) != getsid(0) && setsid() < 0) {
		pr_perror("pid %u: cannot create its session", te->pid);
		return -1;
	}
	if (te->sid == te->pid && res_stage(child_session, c))
		return -1;
	if (te->pgid == te->pid && te->sid != te->pid && setpgid(0, 0)) {
		pr_perror("pid %u: cannot create its process group", te->pid);
		return -1;
	}
	for (i = 0; i < c->t->nkids; i++) {
		TaskEntry *k = c->t->kids[i]->te;

		if ((te->sid != te->pid || k->sid == te->sid || k->sid == k->pid) &&
		    fork_kid(c, c->t->kids[i]))
			return -1;
	}
	return 0;
}

/*
 * This task's group lost its leader before the dump: fork a stand-in with
 * the leader's PID that creates the group, join it, and let the stand-in
 * go.  The group lives on through its members, as it did before.
 */
static int child_make_group(struct rst_ctx *c)
{
	pid_t pgid = c->group_helper, pid;
	int status, p[2];
	char b;

	if (pipe(p))
		return -1;
	pid = fork_at(c, pgid, c->t->te->ns_pgid, 0);
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[1]);
		if (setpgid(0, 0))
			_exit(1);
		if (read(p[0], &b, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[0]);
	/* the group exists once the stand-in's setpgid is done */
	while (getpgid(pid) != pid)
		usleep(100);
	if (setpgid(0, te_pgid_inside(c->t->te))) {
		pr_perror("pid %u: cannot join process group %d", c->t->te->pid, pgid);
		close(p[1]);
		return -1;
	}
	close(p[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return 0;
}

/* A zombie: take its session and group, then die the way it died. */
static void __attribute__((noreturn)) zombie_main(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;
	int status = te->exit_code;
	sigset_t one;

	if (te->sid == te->pid)
		setsid();
	else if (te->pgid == te->pid)
		setpgid(0, 0);
	else if (te_pgid_inside(te) != getpgrp() && image_task(c->img, te->pgid))
		setpgid(0, te_pgid_inside(te)); /* best effort: its leader may not exist yet */
	prctl(PR_SET_NAME, te->comm, 0, 0, 0);
	/* what /proc still shows of it: a status it cannot have had says it failed */
	if (res_stage(child_zombie, c))
		_exit(WIFEXITED(status) && WEXITSTATUS(status) == 127 ? 126 : 127);
	if (WIFSIGNALED(status)) {
		/* no core file of ours (a task that drops its ids is not dumpable) */
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		signal(WTERMSIG(status), SIG_DFL);
		sigemptyset(&one);
		sigaddset(&one, WTERMSIG(status));
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		raise(WTERMSIG(status));
	}
	_exit(WEXITSTATUS(status));
}

/* The restore child: stasis code until it stops itself for the transplant. */
void __attribute__((noreturn)) child_main(struct rst_ctx *c)
{
	sigset_t all;
	char go;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	fork_traced();
	if (c->go_fd >= 0) {
		if (read(c->go_fd, &go, 1) != 1)
			_exit(1);
		close(c->go_fd);
	}
	if (c->t->te->zombie)
		zombie_main(c);
	if (child_drop_rseq() || child_service_fds(c) || res_stage(child_early, c))
		_exit(1);
	if (c->group_helper && child_make_group(c))
		_exit(1);
	if (child_fork_kids(c))
		_exit(1);
	if (res_stage(child, c) || res_stage(child_late, c))
		_exit(1);
	if (c->park_fd > 0 && write(c->park_fd, "p", 1) != 1)
		_exit(1);
	raise(SIGSTOP);
	/*
	 * Resumed here only when the controller hands this task to its second
	 * driver (see below): wait, every signal blocked, to be seized again.
	 */
	for (;;)
		pause();
}
