/*
 * The restore driver.  For each task: fork a child at the original PID
 * (clone3 + set_tid); the child, still running stasis code, sets up what
 * plain C can (session, fds, signal actions, cwd, limits), opens the files
 * its mappings need and parks itself stopped.  The controller then
 * transplants the image's address space and kernel state into it with
 * remote syscalls, sets its registers, and lets it go.
 *
 * A failure at any step kills the child: nothing half-restored runs.
 * While the child is rebuilt, a second thread re-reads the image's page
 * data and checks it against its checksum, so a corrupt image is refused
 * without slowing the restore down.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "res.h"
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
	    syscall(__NR_rseq, area, __rseq_size, STASIS_RSEQ_FLAG_UNREGISTER, RSEQ_SIG)) {
		pr_perror("cannot unregister rseq");
		return -1;
	}
	return 0;
}

static int child_service_fds(struct rst_ctx *c, int *svc_end)
{
	int fd, k;

	/* everything goes above the target's fds; log first so errors show */
	if (child_move_fd(log_fd_get(), svc_fd(c, SVC_LOG)))
		return -1;
	log_fd_set(svc_fd(c, SVC_LOG));
	for (k = 0; k < 3; k++) {
		if (fcntl(k, F_GETFD) < 0) {
			/* closed in the restorer: stand in /dev/null */
			fd = open("/dev/null", O_RDWR);
			if (fd < 0 || child_move_fd(fd, svc_fd(c, SVC_STDIN) + k))
				return -1;
			close(fd);
		} else if (child_move_fd(k, svc_fd(c, SVC_STDIN) + k)) {
			return -1;
		}
	}
	fd = open(c->img->r.path, O_RDONLY);
	if (fd < 0 || child_move_fd(fd, svc_fd(c, SVC_IMAGE))) {
		pr_perror("cannot open the image in the restore child");
		return -1;
	}
	close(fd);
	for (k = 0; k < c->opts->n_inherit; k++)
		if (child_move_fd(c->opts->inherit[k].fd,
				  svc_fd(c, SVC_FILES) + c->t->mm->n_files + k))
			return -1;
	*svc_end = svc_fd(c, SVC_FILES) + c->t->mm->n_files + c->opts->n_inherit;
	return 0;
}

/* The restore child: stasis code until it stops itself for the transplant. */
static void __attribute__((noreturn)) child_main(struct rst_ctx *c, int sync_fd)
{
	sigset_t all;
	char go;
	int svc_end;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (read(sync_fd, &go, 1) != 1)
		_exit(1);
	close(sync_fd);
	if (child_drop_rseq() || child_service_fds(c, &svc_end))
		_exit(1);
	if (mm_restore_child(c) || task_restore_child(c) || files_restore_child(c, svc_end) ||
	    sig_restore_child(c))
		_exit(1);
	raise(SIGSTOP);
	/* never resumed here: the controller replaces this whole program */
	_exit(2);
}

static pid_t fork_at_pid(pid_t pid)
{
	struct stasis_clone_args args = {
		.exit_signal = SIGCHLD,
		.set_tid = (uintptr_t)&pid,
		.set_tid_size = 1,
	};
	char comm[64];
	pid_t ret;

	ret = syscall(__NR_clone3, &args, sizeof(args));
	if (ret < 0) {
		if (errno == EEXIST) {
			proc_comm(pid, comm, sizeof(comm));
			pr_err("pid %d is taken by another process ('%s', pid %d); restore needs it "
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

static void kill_child(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	ptrace(PTRACE_DETACH, pid, 0, 0);
	while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR)
		;
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
		    sig_restore_thread(c, &c->th[i], core))
			return -1;
	}
	return 0;
}

/* Controller: wait for the child to park itself, then rebuild it. */
static int transplant(struct rst_ctx *c, pid_t pid)
{
	size_t i;
	int status;
	long ret;

	while (waitpid(pid, &status, __WALL) < 0) {
		if (errno != EINTR) {
			pr_perror("waitpid(%d)", pid);
			return -1;
		}
	}
	if (!WIFSTOPPED(status)) {
		/* the child said why before it exited */
		pr_info("pid %d: the restore child failed while setting up (status %#x)\n", pid,
			status);
		return -1;
	}
	if (WSTOPSIG(status) != SIGSTOP) {
		pr_err("pid %d: restore child stopped by signal %d\n", pid, WSTOPSIG(status));
		return -1;
	}
	memset(&c->rt, 0, sizeof(c->rt));
	c->rt.pid = pid;
	if (thread_get_regs(pid, &c->rt.regs))
		return -1;
	if (mm_restore_remote(c) || thread_restore_remote(c, &c->rt, c->t->cores[0]) ||
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
	/* credentials last: the other threads, then the leader */
	for (i = 1; i < c->t->ncores; i++)
		if (creds_restore_remote(c, &c->th[i]))
			return -1;
	if (creds_restore_remote(c, &c->rt))
		return -1;
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

/* Release every thread of the restored process. */
static int release_threads(struct rst_ctx *c)
{
	size_t i;

	for (i = 1; i < c->t->ncores; i++)
		if (ptrace(PTRACE_DETACH, c->th[i].pid, 0, 0)) {
			pr_perror("cannot release tid %d", c->th[i].pid);
			return -1;
		}
	if (ptrace(PTRACE_DETACH, c->rt.pid, 0, 0)) {
		pr_perror("cannot release pid %d", c->rt.pid);
		return -1;
	}
	return 0;
}

struct verify_job {
	struct image *img;
	int ret;
};

static void *verify_thread(void *arg)
{
	struct verify_job *j = arg;

	j->ret = image_verify_pages(j->img);
	return NULL;
}

static int check_image_host(struct image *img)
{
	struct utsname u;

	uname(&u);
	if (strcmp(img->hdr->arch, u.machine)) {
		pr_err("image was made on %s; this machine is %s\n", img->hdr->arch, u.machine);
		return -1;
	}
	if (img->ntasks != 1) {
		pr_err("image holds %zu processes; restoring process trees is not supported yet\n",
		       img->ntasks);
		return -1;
	}
	return mm_vdso_check(img);
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

int cmd_restore(const struct restore_opts *o)
{
	struct verify_job vj = { 0 };
	struct rst_ctx c = { .opts = o };
	struct image img;
	pthread_t verifier;
	bool verifying = false;
	uint64_t t0 = now_ns();
	int sync[2] = { -1, -1 };
	pid_t pid = -1;
	int ret = -1;

	if (image_load(o->dir, &img))
		return -1;
	if (check_image_host(&img))
		goto out;
	c.img = &img;
	c.t = &img.tasks[0];
	c.svc_base = files_max_fd(c.t) + 1;
	if (mm_pick_trampoline(&c))
		goto out;
	if (pipe2(sync, O_CLOEXEC)) {
		pr_perror("pipe");
		goto out;
	}
	pid = fork_at_pid(c.t->te->pid);
	if (pid < 0)
		goto out;
	if (pid == 0) {
		close(sync[1]);
		child_main(&c, sync[0]);
	}
	close(sync[0]);
	sync[0] = -1;
	if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_EXITKILL)) {
		pr_perror("cannot trace the restore child %d", pid);
		goto fail;
	}
	if (write(sync[1], "g", 1) != 1) {
		pr_perror("cannot start the restore child");
		goto fail;
	}
	vj.img = &img;
	if (pthread_create(&verifier, NULL, verify_thread, &vj) == 0)
		verifying = true;
	else if ((vj.ret = image_verify_pages(&img)))
		goto fail;
	if (transplant(&c, pid))
		goto fail;
	if (verifying) {
		pthread_join(verifier, NULL);
		verifying = false;
		if (vj.ret)
			goto fail;
	}
	if (release_threads(&c))
		goto fail;
	pr_info("restored pid %d in %.2f ms\n", pid, (now_ns() - t0) / 1e6);
	if (o->pidfile && write_pidfile(o->pidfile, pid))
		pr_warn("pid %d runs, but its pidfile could not be written\n", pid);
	ret = 0;
	goto out;
fail:
	if (verifying)
		pthread_join(verifier, NULL);
	kill_child(pid);
	pr_info("restore failed; nothing of it is left running\n");
out:
	if (sync[0] >= 0)
		close(sync[0]);
	if (sync[1] >= 0)
		close(sync[1]);
	image_free(&img);
	free(c.th);
	if (ret == 0 && !o->detached)
		return wait_root(pid);
	return ret;
}
