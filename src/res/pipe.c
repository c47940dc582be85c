/*
 * Pipes whose both ends are in the tree: saved once (a pipe_entry) with
 * the bytes in flight, each end as a file_entry naming the pipe.
 *
 * The bytes are read without consuming them: tee(2) duplicates the pipe's
 * contents into a private pipe, which stasis drains.  So a dump that fails,
 * or runs with -R, leaves the data where it was.  At restore the task that
 * opens the pipe for its subtree creates it with pipe2(), sets its
 * capacity, writes the bytes back and places both ends.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "res.h"
#include "util.h"

static uint64_t pipe_ino(const char *link)
{
	return strncmp(link, "pipe:[", 6) ? 0 : strtoull(link + 6, NULL, 10);
}

static struct pipe_seen *pipe_find(struct dump_ctx *ctx, uint64_t ino)
{
	size_t i;

	for (i = 0; i < ctx->npipes; i++)
		if (ctx->pipes[i].ino == ino)
			return &ctx->pipes[i];
	return NULL;
}

static int scan_task(struct dump_ctx *ctx, pid_t pid)
{
	char path[64], link[64], name[32];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d) {
		pr_perror("cannot list the fds of %d", pid);
		return -1;
	}
	while ((de = readdir(d))) {
		struct proc_fdinfo fi;
		struct pipe_seen *p;
		uint64_t ino;
		int fd = atoi(de->d_name);

		snprintf(name, sizeof(name), "fd/%d", fd);
		if (de->d_name[0] == '.' || readlink_proc(pid, name, link, sizeof(link)) < 0)
			continue;
		ino = pipe_ino(link);
		if (!ino || proc_parse_fdinfo(pid, fd, &fi))
			continue;
		p = pipe_find(ctx, ino);
		if (!p) {
			ctx->pipes = xrealloc(ctx->pipes, (ctx->npipes + 1) * sizeof(*ctx->pipes));
			p = &ctx->pipes[ctx->npipes++];
			memset(p, 0, sizeof(*p));
			p->ino = ino;
		}
		if ((fi.flags & O_ACCMODE) == O_RDONLY && !p->has_read) {
			p->has_read = true;
			p->rd_pid = pid;
			p->rd_fd = fd;
		}
		if ((fi.flags & O_ACCMODE) == O_WRONLY)
			p->has_write = true;
	}
	closedir(d);
	return 0;
}

/*
 * Which pipes have both ends inside the tree: one pass over every task's
 * fds, done when the first pipe shows up (trees without pipes skip it).
 */
int pipes_scan(struct dump_ctx *ctx)
{
	size_t i;

	if (ctx->pipes_scanned)
		return ctx->pipes_scanned < 0 ? -1 : 0;
	ctx->pipes_scanned = -1;
	for (i = 0; i < ctx->ntasks; i++)
		if (!ctx->tasks[i].zombie && scan_task(ctx, ctx->tasks[i].pid))
			return -1;
	ctx->pipes_scanned = 1;
	return 0;
}

static bool pipe_match(const struct fd_dump *d)
{
	struct pipe_seen *p;

	if (!S_ISFIFO(d->st.st_mode) || pipes_scan(d->ctx))
		return false;
	p = pipe_find(d->ctx, pipe_ino(d->link));
	return p && p->has_read && p->has_write;
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

static int pipe_save(struct dump_ctx *ctx, struct pipe_seen *p, int any_end)
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
	pe.id = p->ino;
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
	struct pipe_seen *p = pipe_find(d->ctx, pipe_ino(d->link));

	fe->has_pipe_id = true;
	fe->pipe_id = p->ino;
	fe->has_dev = fe->has_ino = false;
	return p->saved ? 0 : pipe_save(d->ctx, p, d->lfd);
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
	if (pe->capacity && fcntl(p[1], F_SETPIPE_SZ, pe->capacity) < 0) {
		pr_perror("pid %u: cannot give a pipe its capacity of %u bytes", c->t->te->pid,
			  pe->capacity);
		goto err;
	}
	if (pe->data.len && write_all(p[1], pe->data.data, pe->data.len)) {
		pr_perror("pid %u: cannot refill a pipe", c->t->te->pid);
		goto err;
	}
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

const struct fd_ops pipe_fd_ops = {
	FILE_TYPE__FILE_PIPE, "pipe", pipe_match, pipe_dump, pipe_open, pipe_group,
};
