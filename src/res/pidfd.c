/*
 * pidfds (pidfd_open, clone with CLONE_PIDFD): a pidfd of a process of
 * the tree is opened again on the restored process.  fdinfo's "Pid:" names
 * the process; a pidfd of a process outside the tree, of one that has
 * exited and been reaped (Pid: -1), or of a thread that is not a leader
 * cannot be made faithfully and is refused (a thread's one could be, but
 * threads are created after the pidfds are placed).
 *
 * The target may be a child that does not exist yet when the restore
 * child sets up its fds, so the child only holds a placeholder there.
 * Once the whole tree is parked, the controller opens each pidfd with a
 * remote pidfd_open in its task and puts it at its fd number.  Fds that
 * shared one open file description share it again: a second fd of the
 * same task is a dup, a later task takes the first one's with a remote
 * pidfd_getfd.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat.h"
#include "files.h"
#include "log.h"
#include "res.h"
#include "util.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static bool pidfd_match(const struct fd_dump *d)
{
	return !strcmp(d->link, "anon_inode:[pidfd]") || !strncmp(d->link, "pidfd:", 6);
}

/* The process whose non-leader thread tid is, or 0. */
static pid_t thread_owner(struct dump_ctx *ctx, pid_t tid)
{
	size_t i, j;

	for (i = 0; i < ctx->ntasks; i++)
		for (j = 1; j < ctx->tasks[i].nth; j++)
			if (ctx->tasks[i].th[j].tid == tid)
				return ctx->tasks[i].pid;
	return 0;
}

static int pidfd_dump(const struct fd_dump *d, FileEntry *fe)
{
	char buf[64];
	long pid;

	if (!fdinfo_field(d, "Pid", buf, sizeof(buf))) {
		pr_err("pid %d fd %d: cannot read which process the pidfd refers to\n", d->pid,
		       d->fd);
		return -1;
	}
	pid = strtol(buf, NULL, 10);
	if (pid == -1) {
		pr_err("pid %d fd %d: pidfd of a process that has exited and been reaped is not "
		       "supported\n",
		       d->pid, d->fd);
		return -1;
	}
	if (pid > 0 && thread_owner(d->ctx, pid)) {
		pr_err("pid %d fd %d: pidfd of thread %ld of pid %d: pidfds of threads other than "
		       "the leader are not supported\n",
		       d->pid, d->fd, pid, thread_owner(d->ctx, pid));
		return -1;
	}
	if (pid <= 0 || !dump_tree_has(d->ctx, pid)) {
		pr_err("pid %d fd %d: pidfd of pid %ld, which is outside the dumped tree\n", d->pid,
		       d->fd, pid);
		return -1;
	}
	fe->pidfd = xmalloc(sizeof(*fe->pidfd));
	pidfd_entry__init(fe->pidfd);
	fe->pidfd->pid = pid;
	return 0;
}

/* The target may not exist yet in the restore child: placed by the controller. */
static bool pidfd_open_later(struct rst_ctx *c, const FileEntry *fe)
{
	return true;
}

const struct fd_ops pidfd_fd_ops = {
	.type = FILE_TYPE__FILE_PIDFD,
	.kind = FILE_ENTRY__KIND_PIDFD,
	.name = "pidfd",
	.match = pidfd_match,
	.dump = pidfd_dump,
	.open_later = pidfd_open_later,
};

/* ------------------------------------------------ restore, controller side */

/* Where a pidfd's description was put first. */
struct pidfd_done {
	uint32_t file_id;
	struct rst_ctx *c;
	int fd;
};

static long rcall(struct rst_ctx *c, long nr, long a1, long a2, long a3)
{
	long ret;

	if (remote_syscall(&c->rt, &ret, nr, a1, a2, a3, 0, 0, 0))
		return -ESRCH;
	return ret;
}

/* A new fd in c's task for the description first placed at done->fd in done->c. */
static long take_from(struct rst_ctx *c, const struct pidfd_done *done)
{
	long pfd, nfd;

	pfd = rcall(c, __NR_pidfd_open, te_pid_inside(done->c->t->te), 0, 0);
	if (pfd < 0)
		return pfd;
	nfd = rcall(c, __NR_pidfd_getfd, pfd, done->fd, 0);
	rcall(c, __NR_close, pfd, 0, 0);
	return nfd;
}

static int place_one(struct rst_ctx *c, const FdEntry *f, const FileEntry *fe,
		     struct pidfd_done **done, size_t *ndone)
{
	struct pidfd_done *d = NULL;
	long nfd, ret;
	size_t i;

	for (i = 0; i < *ndone; i++)
		if ((*done)[i].file_id == fe->id)
			d = &(*done)[i];
	if (d && d->c == c)
		nfd = rcall(c, __NR_fcntl, d->fd, F_DUPFD_CLOEXEC, 0);
	else if (d)
		nfd = take_from(c, d);
	else
		nfd = rcall(c, __NR_pidfd_open, image_own_pid(c->img, fe->pidfd->pid),
			    fe->flags & (O_NONBLOCK | PIDFD_THREAD), 0);
	if (nfd < 0) {
		pr_err("pid %u fd %u: cannot open a pidfd of pid %u: %s\n", c->t->te->pid, f->fd,
		       fe->pidfd->pid, strerror(-nfd));
		return -1;
	}
	ret = rcall(c, __NR_dup3, nfd, f->fd, f->cloexec ? O_CLOEXEC : 0);
	rcall(c, __NR_close, nfd, 0, 0);
	if (ret < 0) {
		pr_err("pid %u: cannot put a pidfd at fd %u: %s\n", c->t->te->pid, f->fd,
		       strerror(-ret));
		return -1;
	}
	if (!d) {
		*done = xrealloc(*done, (*ndone + 1) * sizeof(**done));
		(*done)[(*ndone)++] = (struct pidfd_done){ fe->id, c, f->fd };
	}
	return 0;
}

static int pidfd_restore_tree(struct rst_tree *tree)
{
	struct pidfd_done *done = NULL;
	size_t ndone = 0, i, j;
	int ret = 0;

	for (i = 0; i < tree->n && !ret; i++) {
		struct rst_ctx *c = &tree->ctx[i];

		if (c->t->te->zombie)
			continue;
		for (j = 0; j < c->t->nfds && !ret; j++) {
			const FdEntry *f = c->t->fds[j];
			const FileEntry *fe = image_file(c->img, f->file_id);

			if (fe && fe->type == FILE_TYPE__FILE_PIDFD)
				ret = place_one(c, f, fe, &done, &ndone);
		}
	}
	free(done);
	return ret;
}

const struct res_ops pidfd_res = {
	.name = "pidfd",
	.tree = pidfd_restore_tree,
};
