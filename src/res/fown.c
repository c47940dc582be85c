/*
 * The owner of an open file description (F_SETOWN_EX) and the signal it
 * is sent (F_SETSIG): who gets SIGIO and SIGURG.  Both belong to the
 * description, so the dumper reads them from its own copy of the fd and
 * save_description() (files.c) keeps them in the file_entry.  The owner
 * must be a thread, task or process group of the tree: anything else is
 * refused.  At restore the controller sets them once every thread of the
 * task exists (remote_late), on its own copy of the task's fd
 * (pidfd_getfd), naming the owner by the PID the controller sees (with
 * --pidns the copy's host PID).  The kernel keeps the uid and euid of
 * whoever sets the owner and checks them against the owner's when it
 * sends the signal (root may signal anyone): for a task that is not root,
 * the owner is set by a helper forked with the task's uid and euid, not
 * by the restorer, whose root would let the signal reach any owner.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "res.h"
#include "util.h"

/* Is tid a thread of the tree? */
static bool tree_has_thread(const struct dump_ctx *ctx, pid_t tid)
{
	size_t i, j;

	for (i = 0; i < ctx->ntasks; i++)
		for (j = 0; j < ctx->tasks[i].nth; j++)
			if (ctx->tasks[i].th[j].tid == tid)
				return true;
	return false;
}

/* Is pgid the process group of a task of the tree? */
static bool tree_has_group(const struct dump_ctx *ctx, pid_t pgid)
{
	size_t i;

	for (i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].te && (pid_t)ctx->tasks[i].te->pgid == pgid)
			return true;
	return dump_tree_has(ctx, pgid);
}

int fown_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct f_owner_ex o;
	bool inside;
	int sig;

	if (d->fi.flags & O_PATH) /* no I/O, no owner (and fcntl refuses to say) */
		return 0;
	if (fcntl(d->lfd, F_GETOWN_EX, &o)) {
		pr_perror("pid %d fd %d: cannot read its owner (F_GETOWN_EX)", d->pid, d->fd);
		return -1;
	}
	sig = fcntl(d->lfd, F_GETSIG);
	if (sig < 0) {
		pr_perror("pid %d fd %d: cannot read its signal (F_GETSIG)", d->pid, d->fd);
		return -1;
	}
	if (sig) {
		fe->has_owner_sig = true;
		fe->owner_sig = sig;
	}
	if (!o.pid)
		return 0;
	inside = o.type == F_OWNER_TID	  ? tree_has_thread(d->ctx, o.pid)
		 : o.type == F_OWNER_PGRP ? tree_has_group(d->ctx, o.pid)
					  : dump_tree_has(d->ctx, o.pid);
	if (!inside) {
		pr_err("pid %d fd %d: its SIGIO owner (%s %d, F_SETOWN) is outside the tree; not "
		       "supported\n",
		       d->pid, d->fd,
		       o.type == F_OWNER_TID	? "thread"
		       : o.type == F_OWNER_PGRP ? "process group"
						: "process",
		       o.pid);
		return -1;
	}
	fe->has_owner_type = fe->has_owner_pid = true;
	fe->owner_type = o.type;
	fe->owner_pid = o.pid;
	return 0;
}

/* The PID the controller sees for image PID id (a task, or a thread of c). */
static pid_t host_pid_of(struct rst_ctx *c, uint32_t id)
{
	struct rst_tree *tr = c->tree;
	size_t i;

	for (i = 1; i < c->t->ncores; i++)
		if (c->t->cores[i]->tid == id)
			return c->th[i].pid;
	for (i = 0; i < tr->n; i++)
		if (tr->ctx[i].t->te->pid == id)
			return tr->ctx[i].host_pid;
	/* a group whose leader is gone keeps its number (no --pidns then) */
	return c->opts->pidns ? 0 : (pid_t)id;
}

/*
 * F_SETOWN_EX with the task's real and effective uid (the ids the kernel
 * records), by a forked helper when they are not ours: the restorer is
 * multithreaded, and its own ids must not change.  Raw syscalls only in
 * the helper (a fork of a multithreaded process).
 */
static int set_owner_as(struct rst_ctx *c, int fd, const struct f_owner_ex *o)
{
	const CredsEntry *cr = c->t->te->creds;
	uid_t ruid, euid;
	int status;
	pid_t pid;

	if (!cr || cr->n_uids < 2 || (cr->uids[0] == getuid() && cr->uids[1] == geteuid()))
		return fcntl(fd, F_SETOWN_EX, o);
	ruid = cr->uids[0];
	euid = cr->uids[1];
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (syscall(SYS_setresuid, ruid, euid, -1) || fcntl(fd, F_SETOWN_EX, o))
			syscall(SYS_exit_group, errno);
		syscall(SYS_exit_group, 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		errno = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
		return -1;
	}
	return 0;
}

static int fown_set(struct rst_ctx *c, int pidfd, const FdEntry *f, const FileEntry *fe)
{
	struct f_owner_ex o = { .type = fe->owner_type, .pid = 0 };
	int fd, ret = -1;

	fd = syscall(__NR_pidfd_getfd, pidfd, f->fd, 0);
	if (fd < 0) {
		pr_perror("pid %u fd %u: cannot reach it to set its owner", c->t->te->pid, f->fd);
		return -1;
	}
	if (fe->has_owner_pid) {
		o.pid = host_pid_of(c, fe->owner_pid);
		if (!o.pid) {
			pr_err("pid %u fd %u: its owner %u is not restored\n", c->t->te->pid, f->fd,
			       fe->owner_pid);
			goto out;
		}
		if (set_owner_as(c, fd, &o)) {
			pr_perror("pid %u fd %u: cannot give it its owner %u", c->t->te->pid, f->fd,
				  fe->owner_pid);
			goto out;
		}
	}
	if (fe->has_owner_sig && fcntl(fd, F_SETSIG, fe->owner_sig)) {
		pr_perror("pid %u fd %u: cannot set its signal %u", c->t->te->pid, f->fd,
			  fe->owner_sig);
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

/*
 * A description several tasks hold gets its owner once, from the first of
 * them in the image (parents come first: the one that most likely set it),
 * whose ids the helper takes.
 */
static bool held_before(const struct rst_ctx *c, uint32_t file_id)
{
	const struct rst_tree *tr = c->tree;
	size_t i, j;

	for (i = 0; i < tr->n && &tr->ctx[i] != c; i++)
		for (j = 0; j < tr->ctx[i].t->nfds; j++)
			if (tr->ctx[i].t->fds[j]->file_id == file_id)
				return true;
	return false;
}

/* Every thread of the task exists: its descriptions get their owners. */
static int fown_restore(struct rst_ctx *c)
{
	int pidfd = -1, ret = 0;
	size_t i;

	for (i = 0; i < c->t->nfds && !ret; i++) {
		const FdEntry *f = c->t->fds[i];
		const FileEntry *fe = image_file(c->img, f->file_id);

		if (!fe || (!fe->has_owner_pid && !fe->has_owner_sig) || held_before(c, f->file_id))
			continue;
		if (pidfd < 0) {
			pidfd = syscall(__NR_pidfd_open, c->host_pid, 0);
			if (pidfd < 0) {
				pr_perror("pid %u: pidfd_open", c->t->te->pid);
				return -1;
			}
		}
		ret = fown_set(c, pidfd, f, fe);
	}
	if (pidfd >= 0)
		close(pidfd);
	return ret;
}

const struct res_ops fown_res = {
	.name = "fown",
	.remote_late = fown_restore,
};
