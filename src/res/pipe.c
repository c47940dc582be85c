/*
 * Pipes whose both ends are in the tree: saved once (a pipe_entry) with
 * the bytes in flight, each end as a file_entry naming the pipe.  Named
 * FIFOs (mkfifo) are the same pipe object reached through a path: when
 * every end is held in the tree they are saved the same way, as
 * FILE_FIFO ends; a FIFO with an end elsewhere stays external.
 *
 * The bytes are read without consuming them: tee(2) duplicates the pipe's
 * contents into a private pipe, which stasis drains.  So a dump that fails,
 * or runs with -R, leaves the data where it was.  At restore the task that
 * opens the pipe for its subtree creates it with pipe2() (a FIFO: opens
 * its path read-write first, which creates the pipe without blocking),
 * sets its capacity, writes the bytes back and places every end.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "res.h"
#include "util.h"

#define FIFO_ID_BIT (1ULL << 63)

static struct pipe_seen *pipe_find(struct dump_ctx *ctx, uint64_t dev, uint64_t ino)
{
	size_t i;

	for (i = 0; i < ctx->npipes; i++)
		if (ctx->pipes[i].ino == ino && ctx->pipes[i].dev == dev)
			return &ctx->pipes[i];
	return NULL;
}

/* One fd of the tree: if it is a pipe or FIFO, note which ends we hold. */
static int scan_fd(struct dump_ctx *ctx, pid_t pid, int fd, const char *fd_path)
{
	struct proc_fdinfo fi;
	struct pipe_seen *p;
	struct stat st;
	int acc;

	/* stat follows the link without opening: a FIFO never blocks here */
	if (stat(fd_path, &st) || !S_ISFIFO(st.st_mode) || proc_parse_fdinfo(pid, fd, &fi))
		return 0;
	p = pipe_find(ctx, st.st_dev, st.st_ino);
	if (!p) {
		ctx->pipes = xrealloc(ctx->pipes, (ctx->npipes + 1) * sizeof(*ctx->pipes));
		p = &ctx->pipes[ctx->npipes++];
		memset(p, 0, sizeof(*p));
		p->ino = st.st_ino;
		p->dev = st.st_dev;
	}
	acc = fi.flags & O_ACCMODE;
	if (acc != O_WRONLY && !p->has_read) {
		p->has_read = true;
		p->rd_pid = pid;
		p->rd_fd = fd;
	}
	if (acc != O_RDONLY)
		p->has_write = true;
	return 0;
}

/*
 * Which pipes have both ends inside the tree: one pass over every task's
 * fds, done when the first pipe shows up (trees without pipes skip it).
 */
int pipes_scan(struct dump_ctx *ctx)
{
	if (ctx->pipes_scanned)
		return ctx->pipes_scanned < 0 ? -1 : 0;
	ctx->pipes_scanned = -1;
	if (files_for_each_tree_fd(ctx, scan_fd))
		return -1;
	ctx->pipes_scanned = 1;
	return 0;
}

/* Both ends of this pipe or FIFO are held inside the tree. */
static bool pipe_inside(const struct fd_dump *d)
{
	struct pipe_seen *p;

	if (!S_ISFIFO(d->st.st_mode) || pipes_scan(d->ctx))
		return false;
	p = pipe_find(d->ctx, d->st.st_dev, d->st.st_ino);
	return p && p->has_read && p->has_write;
}

static bool pipe_match(const struct fd_dump *d)
{
	return !strncmp(d->link, "pipe:[", 6) && pipe_inside(d);
}

static bool fifo_match(const struct fd_dump *d)
{
	return d->link[0] == '/' && !strstr(d->link, " (deleted)") && pipe_inside(d);
}

/* Copy the unread bytes of the pipe behind rd (a read end) without taking them. */
static int pipe_peek(int rd, PipeEntry *pe)
{
	int tmp[2], avail = 0, ret = -1;
	ssize_t n;

	if (ioctl(rd, FIONREAD, &avail) || avail < 0) {
		pr_perror("cannot size a pipe's contents");
		return -1;
	}
	pe->data.data = xmalloc(avail ? avail : 1);
	pe->data.len = 0;
	if (!avail)
		return 0;
	if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK)) {
		pr_perror("pipe");
		return -1;
	}
	if (fcntl(tmp[1], F_SETPIPE_SZ, pe->capacity) < 0) {
		pr_perror("cannot size the peek pipe");
		goto out;
	}
	n = tee(rd, tmp[1], avail, SPLICE_F_NONBLOCK);
	if (n != avail) {
		pr_err("cannot copy %d bytes in flight in a pipe (got %zd)\n", avail, n);
		goto out;
	}
	if (read_all(tmp[0], pe->data.data, avail)) {
		pr_perror("cannot read a pipe's contents");
		goto out;
	}
	pe->data.len = avail;
	ret = 0;
out:
	close(tmp[0]);
	close(tmp[1]);
	return ret;
}

static int pipe_save(struct dump_ctx *ctx, struct pipe_seen *p, uint64_t id, int any_end)
{
	PipeEntry pe = PIPE_ENTRY__INIT;
	int pidfd, rd, cap, ret = -1;

	cap = fcntl(any_end, F_GETPIPE_SZ);
	if (cap < 0) {
		pr_perror("cannot read a pipe's capacity");
		return -1;
	}
	pidfd = syscall(__NR_pidfd_open, p->rd_pid, 0);
	rd = pidfd < 0 ? -1 : syscall(__NR_pidfd_getfd, pidfd, p->rd_fd, 0);
	if (rd < 0) {
		pr_perror("pid %d fd %d: cannot reach the pipe's read end", p->rd_pid, p->rd_fd);
		goto out;
	}
	pe.id = id;
	pe.capacity = cap;
	if (pipe_peek(rd, &pe) == 0 && img_write_msg(&ctx->w, IMG_PIPE, &pe.base) == 0) {
		p->saved = true;
		ret = 0;
	}
	free(pe.data.data);
out:
	if (rd >= 0)
		close(rd);
	if (pidfd >= 0)
		close(pidfd);
	return ret;
}

static int pipe_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct pipe_seen *p = pipe_find(d->ctx, d->st.st_dev, d->st.st_ino);

	fe->has_pipe_id = true;
	/* FIFOs live on other filesystems than pipes: keep their ids apart */
	fe->pipe_id = p->ino | (fe->type == FILE_TYPE__FILE_FIFO ? FIFO_ID_BIT : 0);
	/* a FIFO keeps dev/ino: restore checks it is the same FIFO */
	if (fe->type == FILE_TYPE__FILE_PIPE)
		fe->has_dev = fe->has_ino = false;
	return p->saved ? 0 : pipe_save(d->ctx, p, fe->pipe_id, d->lfd);
}

static const FileEntry *pipe_peer(struct image *img, const FileEntry *fe)
{
	size_t i;

	for (i = 0; i < img->nfiles; i++) {
		const FileEntry *o = img->files[i];

		if (o != fe && o->type == FILE_TYPE__FILE_PIPE && o->pipe_id == fe->pipe_id &&
		    (o->flags & O_ACCMODE) != (fe->flags & O_ACCMODE))
			return o;
	}
	return NULL;
}

static int set_status_flags(int fd, const FileEntry *fe);

/* Make the pipe behind fd hold what the image says: capacity, then data. */
static int pipe_fill(struct rst_ctx *c, int fd, const PipeEntry *pe)
{
	if (pe->capacity && fcntl(fd, F_SETPIPE_SZ, pe->capacity) < 0) {
		pr_perror("pid %u: cannot give a pipe its capacity of %u bytes", c->t->te->pid,
			  pe->capacity);
		return -1;
	}
	if (pe->data.len && write_all(fd, pe->data.data, pe->data.len)) {
		pr_perror("pid %u: cannot refill a pipe", c->t->te->pid);
		return -1;
	}
	return 0;
}

static int set_status_flags(int fd, const FileEntry *fe)
{
	if (fcntl(fd, F_SETFL, fe->flags & (O_NONBLOCK | O_APPEND | O_ASYNC | O_DIRECT))) {
		pr_perror("cannot set pipe flags");
		return -1;
	}
	return 0;
}

/*
 * Create the pipe, refill it, and put the other end where its file id
 * lives in the shared area; return this end.
 */
static int pipe_open(struct rst_ctx *c, const FileEntry *fe)
{
	const PipeEntry *pe = image_pipe(c->img, fe->pipe_id);
	const FileEntry *peer = pipe_peer(c->img, fe);
	bool reader = (fe->flags & O_ACCMODE) == O_RDONLY;
	int p[2], mine, other;

	if (!pe) {
		pr_err("pid %u: image lacks pipe %llu\n", c->t->te->pid,
		       (unsigned long long)fe->pipe_id);
		return -1;
	}
	if (pipe2(p, O_CLOEXEC)) {
		pr_perror("pipe");
		return -1;
	}
	if (pipe_fill(c, p[1], pe))
		goto err;
	mine = reader ? p[0] : p[1];
	other = reader ? p[1] : p[0];
	if (set_status_flags(mine, fe))
		goto err;
	if (peer) {
		if (set_status_flags(other, peer) ||
		    move_fd(other, c->shared_base + peer->id) < 0) {
			pr_perror("cannot place the other end of a pipe");
			goto err;
		}
	} else {
		close(other);
	}
	return mine;
err:
	close(p[0]);
	close(p[1]);
	return -1;
}

static uint64_t pipe_group(const FileEntry *fe)
{
	return fe->pipe_id;
}

/* One end of a FIFO, by its path, with its flags; the pipe must exist. */
static int fifo_open_end(struct rst_ctx *c, const FileEntry *fe)
{
	int fd = open(fe->path, (fe->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		pr_perror("pid %u: cannot open FIFO %s", c->t->te->pid, fe->path);
		return -1;
	}
	if (set_status_flags(fd, fe)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Open the FIFO read-write first (this creates the pipe and never
 * blocks), check it is the FIFO of the dump and empty, refill it, then
 * open every end of it the subtree uses; the read-write handle goes.
 */
static int fifo_open(struct rst_ctx *c, const FileEntry *fe)
{
	const PipeEntry *pe = image_pipe(c->img, fe->pipe_id);
	int hold, mine = -1, avail = 0;
	struct stat st;
	size_t i;

	if (!pe) {
		pr_err("pid %u: image lacks FIFO %s\n", c->t->te->pid, fe->path);
		return -1;
	}
	hold = open(fe->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (hold < 0) {
		pr_perror("pid %u: cannot open FIFO %s", c->t->te->pid, fe->path);
		return -1;
	}
	if (fstat(hold, &st) || !S_ISFIFO(st.st_mode) ||
	    (fe->has_ino && (st.st_ino != fe->ino || st.st_dev != fe->dev))) {
		pr_err("pid %u: FIFO %s was replaced by another file since the dump\n",
		       c->t->te->pid, fe->path);
		goto out;
	}
	if (ioctl(hold, FIONREAD, &avail) || avail) {
		pr_err("pid %u: FIFO %s already holds data of another process\n", c->t->te->pid,
		       fe->path);
		goto out;
	}
	if (pipe_fill(c, hold, pe))
		goto out;
	for (i = 0; i < c->img->nfiles; i++) {
		const FileEntry *o = c->img->files[i];
		int slot = c->shared_base + o->id, fd;

		if (o == fe || o->type != FILE_TYPE__FILE_FIFO || o->pipe_id != fe->pipe_id ||
		    fcntl(slot, F_GETFD) >= 0)
			continue;
		fd = fifo_open_end(c, o);
		if (fd < 0 || move_fd(fd, slot) < 0) {
			if (fd >= 0)
				close(fd);
			goto out;
		}
	}
	mine = fifo_open_end(c, fe);
out:
	close(hold);
	return mine;
}

const struct fd_ops pipe_fd_ops = {
	FILE_TYPE__FILE_PIPE, "pipe", pipe_match, pipe_dump, pipe_open, pipe_group,
};

const struct fd_ops fifo_fd_ops = {
	FILE_TYPE__FILE_FIFO, "FIFO", fifo_match, pipe_dump, fifo_open,
};
