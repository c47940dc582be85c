/*
 * The restore driver.
 *
 * 1. Fork the tree.  The root is forked at its original PID (clone3 +
 *    set_tid); every restored task, still running stasis code, forks its
 *    own children at their PIDs, so parent links are the original ones.
 *    Sessions are made on the way down (setsid() between the children that
 *    keep the old session and those that share the new one), zombies exit
 *    at once with their original status.  Each task then sets up what
 *    plain C can (fds, signal actions, cwd, limits), opens the files its
 *    mappings need, and stops itself.  The controller traces the whole
 *    tree as it is created (PTRACE_O_TRACEFORK) and waits for every task to
 *    park.
 * 2. Process groups are joined with remote setpgid, leaders first.
 * 3. Each task is transplanted: the image's address space, threads,
 *    signals and credentials are put in with remote syscalls, then its
 *    registers.
 * 4. Every task is released.
 *
 * A failure at any step kills every task created: nothing half-restored
 * runs.  While the tree is rebuilt, a second thread re-reads the image's
 * page data and checks it against its checksum, so a corrupt image is
 * refused without slowing the restore down.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "res.h"
#include "util.h"

#define VERIFY_BUF (1 << 20) /* page data checked in chunks of this size */

struct restore {
	const struct restore_opts *opts;
	struct image img;
	struct rst_ctx *ctx; /* one per task, in image order */
	size_t n;
	size_t root;		      /* index of the root */
	pid_t our_pgid;		      /* the restorer's group: outside groups map to it */
	pid_t ns_init;		      /* --pidns: our init of the new namespace */
	int nhelpers;		      /* group helpers still to exit */
	struct second_driver *second; /* rebuilds some tasks in parallel, or NULL */
};

static struct restore *R; /* the child code walks the tree through it */

static struct rst_ctx *ctx_of(struct rst_task *t)
{
	return &R->ctx[t - R->img.tasks];
}

/* ---------------------------------------------------- the restore child */

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

static int child_service_fds(struct rst_ctx *c)
{
	int fd, k, inh[c->opts->n_inherit + 1];

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
	fd = open(c->img->r.path, O_RDONLY);
	if (fd < 0 || move_fd(fd, svc_fd(c, SVC_IMAGE)) < 0) {
		pr_perror("cannot open the image in the restore child");
		return -1;
	}
	for (k = 0; k < c->opts->n_inherit; k++) {
		if (child_move_fd(inh[k], svc_fd(c, SVC_FILES) + c->t->mm->n_files + k))
			return -1;
		close(inh[k]);
	}
	return 0;
}

static void __attribute__((noreturn)) child_main(struct rst_ctx *c);

static pid_t fork_at_pid_flags(pid_t pid, uint64_t flags)
{
	struct stasis_clone_args args = {
		.flags = flags,
		/* a sibling's exit signal is our own, chosen by our parent */
		.exit_signal = flags & CLONE_PARENT ? 0 : SIGCHLD,
		.set_tid = (uintptr_t)&pid,
		.set_tid_size = 1,
	};
	char comm[64];
	pid_t ret;

	ret = syscall(__NR_clone3, &args, sizeof(args));
	if (ret < 0) {
		if (errno == EEXIST) {
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

static pid_t fork_at_pid(pid_t pid)
{
	return fork_at_pid_flags(pid, 0);
}

static int fork_kid(struct rst_task *kid)
{
	pid_t pid = fork_at_pid(kid->te->pid);

	if (pid == 0)
		child_main(ctx_of(kid));
	return pid < 0 ? -1 : 0;
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
		    fork_kid(c->t->kids[i]))
			return -1;
	}
	if (te->sid == te->pid && te->pid != (uint32_t)getsid(0) && setsid() < 0) {
		pr_perror("pid %u: cannot create its session", te->pid);
		return -1;
	}
	if (te->sid == te->pid && tty_child_session(c))
		return -1;
	if (te->pgid == te->pid && te->sid != te->pid && setpgid(0, 0)) {
		pr_perror("pid %u: cannot create its process group", te->pid);
		return -1;
	}
	for (i = 0; i < c->t->nkids; i++) {
		TaskEntry *k = c->t->kids[i]->te;

		if ((te->sid != te->pid || k->sid == te->sid || k->sid == k->pid) &&
		    fork_kid(c->t->kids[i]))
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
	pid = fork_at_pid(pgid);
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
	if (setpgid(0, pgid)) {
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
	struct rlimit none = { 0, 0 };
	sigset_t one;

	if (te->sid == te->pid)
		setsid();
	else if (te->pgid == te->pid)
		setpgid(0, 0);
	else if ((pid_t)te->pgid != getpgrp() && image_task(&R->img, te->pgid))
		setpgid(0, te->pgid); /* best effort: its leader may not exist yet */
	prctl(PR_SET_NAME, te->comm, 0, 0, 0);
	if (WIFSIGNALED(status)) {
		setrlimit(RLIMIT_CORE, &none);
		signal(WTERMSIG(status), SIG_DFL);
		sigemptyset(&one);
		sigaddset(&one, WTERMSIG(status));
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		raise(WTERMSIG(status));
	}
	_exit(WEXITSTATUS(status));
}

/* The restore child: stasis code until it stops itself for the transplant. */
static void __attribute__((noreturn)) child_main(struct rst_ctx *c)
{
	sigset_t all;
	char go;
	int svc_end = c->svc_end;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (c->go_fd >= 0) {
		if (read(c->go_fd, &go, 1) != 1)
			_exit(1);
		close(c->go_fd);
	}
	if (c->t->te->zombie)
		zombie_main(c);
	if (child_drop_rseq() || child_service_fds(c) || files_open_shared(c))
		_exit(1);
	if (c->group_helper && child_make_group(c))
		_exit(1);
	if (child_fork_kids(c))
		_exit(1);
	if (mm_restore_child(c) || task_restore_child(c) || files_restore_child(c, svc_end) ||
	    epoll_restore_watches(c) || sig_restore_child(c) || mm_premap_child(c) ||
	    thread_restore_child(c))
		_exit(1);
	raise(SIGSTOP);
	/*
	 * Resumed here only when the controller hands this task to its second
	 * driver (see below): wait, every signal blocked, to be seized again.
	 */
	for (;;)
		pause();
}

/* ------------------------------------------------------- the controller */

/* The task we see as host pid 'pid' (its number in the image may differ). */
static struct rst_ctx *ctx_by_pid(struct restore *r, pid_t pid)
{
	pid_t inner = r->opts->pidns ? ns_pid(pid) : pid;
	size_t i;

	for (i = 0; i < r->n; i++)
		if ((pid_t)r->img.tasks[i].te->pid == inner) {
			r->ctx[i].host_pid = pid;
			return &r->ctx[i];
		}
	return NULL;
}

static bool all_parked(struct restore *r)
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
static int wait_tree_parked(struct restore *r)
{
	while (!all_parked(r)) {
		struct rst_ctx *c;
		int status, event;
		pid_t pid = waitpid(-1, &status, __WALL);

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
static pid_t group_target(struct restore *r, TaskEntry *te)
{
	TaskEntry *root = r->img.tasks[r->root].te;

	if (te->pgid == te->pid || image_task(&r->img, te->pgid))
		return te->pgid;
	if (te->pgid == root->pgid && root->pgid != root->pid) {
		/* the root's group was outside the tree: the restorer's, as a shell job */
		return r->opts->pidns ? 0 : r->our_pgid;
	}
	return te->pgid; /* leaderless: its stand-in made it */
}

/* Remote, with every task parked: join process groups, leaders first. */
static int restore_groups(struct restore *r)
{
	int pass;
	size_t i;

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
					   want == (pid_t)te->pid ? 0 : want, 0, 0, 0, 0))
				return -1;
			if (ret) {
				pr_err("pid %u: cannot join process group %d: %s\n", te->pid, want,
				       strerror(-ret));
				return -1;
			}
		}
	return 0;
}

/* Remote: drop signals the restore itself left pending (SIGCHLD of zombies). */
/* Anything pending for the task or its process (one /proc read, no remote call)? */
static bool signals_pending(pid_t pid)
{
	char *status = read_proc(pid, "status", NULL);
	const char *p = status ? status_field(status, "SigPnd") : NULL;
	const char *s = status ? status_field(status, "ShdPnd") : NULL;
	bool pending = !p || !s || strtoull(p, NULL, 16) || strtoull(s, NULL, 16);

	free(status);
	return pending;
}

static int flush_signals(struct rst_ctx *c)
{
	struct timespec zero = { 0, 0 };
	uint64_t all = ~0ULL;
	int i;

	if (!signals_pending(c->rt.pid))
		return 0;
	if (remote_write(c->rt.pid, c->rt.scratch, &all, sizeof(all)) ||
	    remote_write(c->rt.pid, c->rt.scratch + 8, &zero, sizeof(zero)))
		return -1;
	for (i = 0; i < 128; i++) {
		long ret;

		if (remote_syscall(&c->rt, &ret, __NR_rt_sigtimedwait, c->rt.scratch, 0,
				   c->rt.scratch + 8, 8, 0, 0))
			return -1;
		if (ret < 0)
			return 0;
	}
	return 0;
}

/* Remote, from the leader: the other threads, each with its own state. */
static int restore_threads(struct rst_ctx *c)
{
	size_t i;

	if (c->t->ncores < 2)
		return 0;
	if (ptrace(PTRACE_SETOPTIONS, c->rt.pid, 0, PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE)) {
		pr_perror("pid %d: cannot trace thread creation", c->rt.pid);
		return -1;
	}
	c->th = xzalloc(c->t->ncores * sizeof(*c->th));
	for (i = 1; i < c->t->ncores; i++) {
		ThreadCore *core = c->t->cores[i];

		if (thread_create(c, core, &c->th[i]) ||
		    thread_restore_remote(c, &c->th[i], core) ||
		    sched_restore_remote(c, &c->th[i], core) ||
		    sig_restore_thread(c, &c->th[i], core))
			return -1;
	}
	return 0;
}

static int transplant_begin(struct rst_ctx *c)
{
	memset(&c->rt, 0, sizeof(c->rt));
	c->rt.pid = c->host_pid;
	if (thread_get_regs(c->rt.pid, &c->rt.regs))
		return -1;
	c->rt.syscall_ip = c->tramp;
	c->rt.scratch = c->tramp + PAGE_SIZE;
	c->rt.scratch_len = c->tramp_len - PAGE_SIZE;
	return 0;
}

/*
 * Credentials and seccomp filters of one thread.  Installing a filter
 * needs no_new_privs or CAP_SYS_ADMIN: with no_new_privs the filters go in
 * after the credentials, without it while we still hold the capability.
 */
static int restore_thread_creds(struct rst_ctx *c, struct rtask *rt, ThreadCore *core)
{
	const CredsEntry *cr = core->creds ? core->creds : c->t->te->creds;

	if (!cr->no_new_privs && seccomp_restore_remote(c, rt, core))
		return -1;
	if (creds_restore_remote(c, rt, core))
		return -1;
	return cr->no_new_privs ? seccomp_restore_remote(c, rt, core) : 0;
}

/* Controller: rebuild one parked task from the image. */
static int transplant(struct rst_ctx *c)
{
	pid_t pid = c->host_pid;
	size_t i;
	long ret;

	if (flush_signals(c) || mm_restore_remote(c) || task_restore_remote(c) ||
	    thread_restore_remote(c, &c->rt, c->t->cores[0]) ||
	    sched_restore_remote(c, &c->rt, c->t->cores[0]) ||
	    sig_restore_thread(c, &c->rt, c->t->cores[0]))
		return -1;
	if (restore_threads(c))
		return -1;
	if (sig_restore_remote(c))
		return -1;
	if (remote_syscall(&c->rt, &ret, __NR_close_range, c->svc_base, ~0U, 0, 0, 0, 0) || ret) {
		pr_err("pid %d: cannot close service fds\n", pid);
		return -1;
	}
	if (itimer_restore_remote(c) || ptimers_restore_remote(c))
		return -1;
	/* credentials and seccomp last: the other threads, then the leader */
	for (i = c->t->ncores; i-- > 0;) {
		struct rtask *rt = i ? &c->th[i] : &c->rt;

		if (restore_thread_creds(c, rt, c->t->cores[i]))
			return -1;
	}
	/* last remote call: the trampoline removes itself */
	if (remote_syscall(&c->rt, &ret, __NR_munmap, c->tramp, c->tramp_len, 0, 0, 0, 0) || ret) {
		pr_err("pid %d: cannot remove the restore trampoline\n", pid);
		return -1;
	}
	for (i = 1; i < c->t->ncores; i++)
		if (thread_restore_regs(c, &c->th[i], c->t->cores[i]))
			return -1;
	return thread_restore_regs(c, &c->rt, c->t->cores[0]);
}

static int second_driver_finish(struct restore *r, bool release);

static int release_task(struct rst_ctx *c);

/* Release every thread of every task: the tree runs from here on. */
static int release_tree(struct restore *r)
{
	size_t i;

	if (second_driver_finish(r, true))
		return -1;
	for (i = 0; i < r->n; i++)
		if (!r->ctx[i].t->te->zombie && !r->ctx[i].second && release_task(&r->ctx[i]))
			return -1;
	return 0;
}

/*
 * Kill whatever of the tree exists; the root is ours to reap.  Reap our
 * tracees on the way: a dying --pidns init waits for every task of its
 * namespace, and a traced zombie is only handed to it once we reaped it.
 */
static void kill_tree(struct restore *r, pid_t root)
{
	size_t i;
	int status;
	pid_t w;

	for (i = 0; i < r->n; i++)
		if (r->ctx[i].attached && r->ctx[i].host_pid > 0)
			kill(r->ctx[i].host_pid, SIGKILL);
	if (r->ns_init > 0)
		kill(r->ns_init, SIGKILL); /* takes the whole namespace with it */
	if (root > 0) {
		kill(root, SIGKILL);
		while ((w = waitpid(-1, &status, __WALL)) != root && (w > 0 || errno == EINTR))
			;
	}
}

struct verify_job {
	struct image *img;
	void *buf;
	XXH3_state_t *st;
	int ret;
};

static void *verify_thread(void *arg)
{
	struct verify_job *j = arg;

	unpin(); /* hash on the other CPU while the tree is rebuilt on ours */
	j->ret = image_verify_pages(j->img, j->buf, VERIFY_BUF, j->st);
	return NULL;
}

/*
 * With -d the restored root's parent, stasis, exits at once: a parent-death
 * signal would fire right away.  Say so instead of restoring a process
 * that dies.
 */
static int check_pdeath(const struct restore_opts *o, struct image *img)
{
	TaskEntry *root = image_task(img, img->hdr->root_pid)->te;

	if (o->detached && !o->sibling && !o->pidns && root->pdeath_sig) {
		pr_err("pid %u has a parent-death signal (%u) that would fire when stasis exits; "
		       "use --restore-sibling or restore without -d\n",
		       root->pid, root->pdeath_sig);
		return -1;
	}
	return 0;
}

static int check_image_host(struct image *img)
{
	struct utsname u;

	uname(&u);
	if (strcmp(img->hdr->arch, u.machine)) {
		pr_err("image was made on %s; this machine is %s\n", img->hdr->arch, u.machine);
		return -1;
	}
	return mm_vdso_check(img);
}

/* Groups whose leader is gone: the first live member recreates each. */
static int plan_group_helpers(struct restore *r)
{
	TaskEntry *root = r->img.tasks[r->root].te;
	size_t i, j;

	for (i = 0; i < r->n; i++) {
		TaskEntry *te = r->ctx[i].t->te;
		bool planned = false;

		if (te->zombie || te->pgid == te->pid || image_task(&r->img, te->pgid) ||
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

/* Service fd layout, trampolines and the shared file area of every task. */
static int prepare(struct restore *r)
{
	int top = 0;
	size_t i;

	r->n = r->img.ntasks;
	r->ctx = xzalloc(r->n * sizeof(*r->ctx));
	r->our_pgid = getpgrp();
	for (i = 0; i < r->n; i++) {
		struct rst_ctx *c = &r->ctx[i];

		c->opts = r->opts;
		c->img = &r->img;
		c->t = &r->img.tasks[i];
		c->go_fd = -1;
		c->host_pid = c->t->te->pid;
		if (c->t->te->pid == r->img.hdr->root_pid)
			r->root = i;
		if (c->t->te->zombie)
			continue;
		c->svc_base = files_max_fd(c->t) + 1;
		c->premapped = xzalloc(c->t->mm->n_vmas + 1);
		c->filled = xzalloc(c->t->mm->n_vmas + 1);
		c->svc_end = svc_fd(c, SVC_FILES) + c->t->mm->n_files + r->opts->n_inherit;
		top = max(top, c->svc_end);
		if (mm_pick_trampoline(c))
			return -1;
	}
	for (i = 0; i < r->n; i++)
		r->ctx[i].shared_base = top;
	return plan_group_helpers(r);
}

static int write_pidfile(const char *path, pid_t pid)
{
	char buf[32];
	int fd, n = snprintf(buf, sizeof(buf), "%d", pid);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, buf, n)) {
		pr_perror("cannot write pidfile %s", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int wait_root(pid_t pid)
{
	int status;

	for (;;) {
		if (waitpid(pid, &status, 0) < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("waitpid(%d)", pid);
			return 1;
		}
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		if (WIFSIGNALED(status))
			return 128 + WTERMSIG(status);
	}
}

/*
 * --pidns: PID 1 of the new namespace.  It forks the root at its PID in
 * there, reaps orphans like any init, and exits with the root's status
 * (which ends the namespace).
 */
static void __attribute__((noreturn)) ns_init_main(struct restore *r, int go_fd)
{
	struct rst_ctx *c = &r->ctx[r->root];
	int status;
	pid_t root, w;
	char go;

	if (read(go_fd, &go, 1) != 1)
		_exit(1);
	close(go_fd);
	prctl(PR_SET_NAME, "stasis-init", 0, 0, 0);
	root = fork_at_pid(c->t->te->pid);
	if (root == 0)
		child_main(c);
	if (root < 0)
		_exit(1);
	/* hold nothing of the restorer's: no terminal, no pipe kept open */
	syscall(__NR_close_range, 0, ~0U, 0);
	for (;;) {
		w = waitpid(-1, &status, 0);
		if (w == root)
			_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		if (w < 0 && errno == ECHILD)
			_exit(0);
	}
}

static pid_t fork_ns_init(void)
{
	struct stasis_clone_args args = { .flags = CLONE_NEWPID, .exit_signal = SIGCHLD };
	pid_t pid = syscall(__NR_clone3, &args, sizeof(args));

	if (pid < 0)
		pr_perror("cannot create a PID namespace");
	return pid;
}

/* Fork the root (or, with --pidns, our init that forks it) and start it. */
static int fork_root(struct restore *r, pid_t *first)
{
	struct rst_ctx *c = &r->ctx[r->root];
	int sync[2];

	if (pipe2(sync, O_CLOEXEC)) {
		pr_perror("pipe");
		return -1;
	}
	if (r->opts->pidns) {
		*first = fork_ns_init();
		if (*first == 0) {
			close(sync[1]);
			ns_init_main(r, sync[0]);
		}
		r->ns_init = *first;
	} else {
		c->go_fd = sync[0];
		*first = fork_at_pid_flags(c->t->te->pid, r->opts->sibling ? CLONE_PARENT : 0);
		if (*first == 0) {
			close(sync[1]);
			child_main(c);
		}
		c->go_fd = -1;
	}
	close(sync[0]);
	if (*first < 0) {
		close(sync[1]);
		return -1;
	}
	/* only now is there a task of ours at that pid: never kill someone else's */
	c->attached = !r->opts->pidns;
	if (ptrace(PTRACE_SEIZE, *first, 0, PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK)) {
		pr_perror("cannot trace the restore child %d", *first);
		close(sync[1]);
		return -1;
	}
	if (write(sync[1], "g", 1) != 1) {
		pr_perror("cannot start the restore child");
		close(sync[1]);
		return -1;
	}
	close(sync[1]);
	return 0;
}

/* Our init must stop being traced, or it dies with us (PTRACE_O_EXITKILL). */
static int release_ns_init(pid_t pid)
{
	int status;

	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) || waitpid(pid, &status, __WALL) != pid ||
	    !WIFSTOPPED(status) || ptrace(PTRACE_DETACH, pid, 0, 0)) {
		pr_perror("cannot release the namespace init %d", pid);
		return -1;
	}
	return 0;
}

/*
 * The second driver.  ptrace ties every tracee to one thread, and the
 * main thread traces the whole tree as it is forked; rebuilding is mostly
 * waiting for one task at a time to run a syscall.  With two CPUs, the
 * main thread hands some tasks over to a second thread: it lets such a
 * task return from its raise(SIGSTOP) into an endless pause(), and the
 * second thread seizes it again, rebuilds it pinned to the other CPU, and
 * releases it when told to, while the main thread rebuilds the others.
 *
 * Only tasks whose rebuild does not involve another task go to it: a
 * task mapping shared anonymous memory another task created must be
 * rebuilt after it, so those stay with the main thread, in image order.
 */
#define SECOND_DRIVER_MIN 4 /* fewer tasks than this: not worth a thread */

struct second_driver {
	struct restore *r;
	struct rst_ctx **tasks;
	size_t n;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;   /* 0: rebuilding, 1: rebuilt, -1: failed */
	int order;   /* 0: none yet, 1: release, -1: give up */
	int release; /* result of the release */
};

static bool rebuild_independent(const struct rst_ctx *c)
{
	const MmEntry *mm = c->t->mm;
	size_t i;

	for (i = 0; mm && i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND__VMA_ANON_SHARED)
			return false;
	return !c->t->te->zombie;
}

static void second_driver_set(struct second_driver *d, int *field, int value)
{
	pthread_mutex_lock(&d->lock);
	*field = value;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static int second_driver_wait(struct second_driver *d, int *field)
{
	int v;

	pthread_mutex_lock(&d->lock);
	while (!*field)
		pthread_cond_wait(&d->cond, &d->lock);
	v = *field;
	pthread_mutex_unlock(&d->lock);
	return v;
}

static int second_driver_seize(struct rst_ctx *c)
{
	int status;

	if (ptrace(PTRACE_SEIZE, c->host_pid, 0, PTRACE_O_EXITKILL) ||
	    ptrace(PTRACE_INTERRUPT, c->host_pid, 0, 0)) {
		pr_perror("cannot seize restore child %d again", c->host_pid);
		return -1;
	}
	if (thread_wait_stop(c->host_pid, &status))
		return -1;
	return transplant_begin(c);
}

static int release_task(struct rst_ctx *c)
{
	size_t j;

	for (j = 1; j < c->t->ncores; j++)
		if (ptrace(PTRACE_DETACH, c->th[j].pid, 0, 0)) {
			pr_perror("cannot release tid %d", c->th[j].pid);
			return -1;
		}
	if (tty_stop_job(c) || ptrace(PTRACE_DETACH, c->rt.pid, 0, 0)) {
		pr_perror("cannot release pid %d", c->rt.pid);
		return -1;
	}
	return 0;
}

static void *second_driver_main(void *arg)
{
	struct second_driver *d = arg;
	size_t i;
	int ret = 0;

	for (i = 0; i < d->n && !ret; i++) {
		struct rst_ctx *c = d->tasks[i];

		pin_to_cpu(task_cpu(c->host_pid));
		if (second_driver_seize(c) || transplant(c))
			ret = -1;
	}
	second_driver_set(d, &d->state, ret ? -1 : 1);
	if (ret || second_driver_wait(d, &d->order) < 0)
		return NULL; /* the main thread kills the tree */
	for (i = 0; i < d->n && !d->release; i++)
		d->release = release_task(d->tasks[i]);
	return NULL;
}

/* Hand a parked task over: back to where it stopped, then let it go on into pause(). */
static int second_driver_hand(struct rst_ctx *c)
{
	if (thread_set_regs(c->rt.pid, &c->rt.regs) || ptrace(PTRACE_DETACH, c->rt.pid, 0, 0)) {
		pr_perror("cannot hand restore child %d over", c->rt.pid);
		return -1;
	}
	c->second = true;
	return 0;
}

/* Start the second driver on the tasks last seen on odd CPUs, if worth it. */
static int second_driver_start(struct restore *r)
{
	struct second_driver *d;
	int ret = -1;
	size_t i;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return 0;
	d = xzalloc(sizeof(*d));
	d->r = r;
	d->tasks = xzalloc(r->n * sizeof(*d->tasks));
	for (i = 0; i < r->n; i++)
		if (rebuild_independent(&r->ctx[i]) && task_cpu(r->ctx[i].host_pid) % 2)
			d->tasks[d->n++] = &r->ctx[i];
	if (d->n < SECOND_DRIVER_MIN) {
		ret = 0;
		goto out_free;
	}
	/* a task handed over and never seized again pauses until kill_tree */
	for (i = 0; i < d->n; i++)
		if (second_driver_hand(d->tasks[i]))
			goto out_free;
	creds_prepare(); /* its lazily read state, before two threads use it */
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	if (pthread_create(&d->thread, NULL, second_driver_main, d)) {
		pr_err("cannot start the second restore driver\n");
		pthread_mutex_destroy(&d->lock);
		pthread_cond_destroy(&d->cond);
		goto out_free;
	}
	r->second = d;
	return 0;
out_free:
	free(d->tasks);
	free(d);
	return ret;
}

/* Release (or give up on) the second driver's tasks and end it. */
static int second_driver_finish(struct restore *r, bool release)
{
	struct second_driver *d = r->second;
	int ret;

	if (!d)
		return 0;
	second_driver_set(d, &d->order, release ? 1 : -1);
	pthread_join(d->thread, NULL);
	ret = release && d->state > 0 ? d->release : -1;
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d->tasks);
	free(d);
	r->second = NULL;
	return release ? ret : 0;
}

static int rebuild(struct restore *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (!r->ctx[i].t->te->zombie && transplant_begin(&r->ctx[i]))
			return -1;
	/* pidfds first: they are placed by remote calls that reach several tasks */
	if (restore_groups(r) || tty_restore_fg(r->ctx, r->n, r->root) ||
	    pidfd_restore_tree(r->ctx, r->n) || second_driver_start(r))
		return -1;
	/* the tree was born on every CPU, its own mask unless restored below */
	for (i = 0; i < r->n; i++) {
		unsigned long before = remote_syscall_count;
		uint64_t t0 = now_ns();

		if (r->ctx[i].t->te->zombie || r->ctx[i].second)
			continue;
		/* drive each task from its own CPU: no cross-CPU wakeup per remote call */
		pin_to_cpu(task_cpu(r->ctx[i].host_pid));
		if (transplant(&r->ctx[i]))
			return -1;
		pr_debug("pid %u: transplanted with %lu remote syscalls in %.2f ms\n",
			 r->ctx[i].t->te->pid, remote_syscall_count - before,
			 (now_ns() - t0) / 1e6);
	}
	if (r->second && second_driver_wait(r->second, &r->second->state) < 0)
		return -1;
	if (r->second)
		pr_debug("%zu task(s) rebuilt by the second driver\n", r->second->n);
	return 0;
}

int cmd_restore(const struct restore_opts *o)
{
	struct restore r = { .opts = o };
	struct verify_job vj = { 0 };
	pthread_t verifier;
	bool verifying = false;
	uint64_t t0 = now_ns();
	pid_t root = -1;
	size_t i;
	int ret = -1;

	R = &r;
	if (image_load(o->dir, &r.img))
		return -1;
	if (check_image_host(&r.img) || tree_build(&r.img) || tty_check_shell_job(&r.img, o) ||
	    check_pdeath(o, &r.img) || files_plan(&r.img) || prepare(&r))
		goto out;
	/*
	 * Fork the root first, while we are still one thread (its copy of us
	 * can take any lock), then check the page data on the other CPU while
	 * the tree builds itself.
	 */
	if (fork_root(&r, &root))
		goto fail;
	vj.img = &r.img;
	vj.buf = mmap(NULL, VERIFY_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vj.buf == MAP_FAILED) {
		vj.buf = NULL;
		pr_perror("cannot allocate the verify buffer");
		goto fail;
	}
	vj.st = XXH3_createState();
	if (pthread_create(&verifier, NULL, verify_thread, &vj) == 0)
		verifying = true;
	else if ((vj.ret = image_verify_pages(&r.img, vj.buf, VERIFY_BUF, vj.st)))
		goto fail;
	if (wait_tree_parked(&r))
		goto fail;
	pr_info("tree forked and parked in %.2f ms\n", (now_ns() - t0) / 1e6);
	if (rebuild(&r))
		goto fail;
	pr_info("tree rebuilt in %.2f ms\n", (now_ns() - t0) / 1e6);
	if (verifying) {
		pthread_join(verifier, NULL);
		verifying = false;
		if (vj.ret)
			goto fail;
	}
	if (release_tree(&r))
		goto fail;
	if (r.ns_init > 0 && release_ns_init(r.ns_init))
		goto fail;
	pr_info("restored %zu process(es), root pid %d, in %.2f ms\n", r.n, r.ctx[r.root].host_pid,
		(now_ns() - t0) / 1e6);
	if (o->pidfile && write_pidfile(o->pidfile, r.ctx[r.root].host_pid))
		pr_warn("pid %d runs, but its pidfile could not be written\n",
			r.ctx[r.root].host_pid);
	ret = 0;
	goto out;
fail:
	if (verifying)
		pthread_join(verifier, NULL);
	kill_tree(&r, root);
	second_driver_finish(&r, false);
	pr_info("restore failed; nothing of it is left running\n");
out:
	unpin();
	for (i = 0; i < r.n; i++) {
		free(r.ctx[i].th);
		free(r.ctx[i].premapped);
		free(r.ctx[i].filled);
	}
	if (vj.buf)
		munmap(vj.buf, VERIFY_BUF);
	if (vj.st)
		XXH3_freeState(vj.st);
	free(r.ctx);
	image_free(&r.img);
	if (ret == 0 && !o->detached)
		return wait_root(root);
	return ret;
}
