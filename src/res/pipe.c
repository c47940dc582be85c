/*
 * Pipes whose both ends are in the tree: saved once (a pipe_entry) with
 * the bytes in flight, each end as a file_entry naming the pipe.  A pipe
 * whose other end is closed everywhere (a reader whose writer exited) is
 * saved the same way: restore closes the missing end at once.  A pipe
 * whose other end is held outside the tree is external (fs_plain.c).
 * Named FIFOs (mkfifo) are the same pipe object reached through a path:
 * they are saved the same way, as FILE_FIFO ends, whether the tree holds
 * every end or only readers or only writers ("half": the pipe may outlive
 * the tree through an end outside, and restore finds its bytes still in it).
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
#include <poll.h>
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

/* A pipe seen anywhere in the tree during the pre-scan. */
struct pipe_seen {
	uint64_t dev, ino;
	bool has_read, has_write;
	pid_t rd_pid; /* some task holding the read end, and its fd */
	int rd_fd;
	bool saved;
};

/* pipe_res's state for one dump: every pipe the tree holds */
struct pipe_dump {
	struct pipe_seen *v;
	size_t n;
};

/* pipe_res's state for one image: its pipe records, sorted by id once loaded */
struct pipe_image {
	PipeEntry **v;
	size_t n;
};

static struct pipe_seen *pipe_find(struct dump_ctx *ctx, uint64_t dev, uint64_t ino)
{
	struct pipe_dump *pd = res_dump_state(ctx, &pipe_res);
	size_t i;

	for (i = 0; i < pd->n; i++)
		if (pd->v[i].ino == ino && pd->v[i].dev == dev)
			return &pd->v[i];
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
		struct pipe_dump *pd = res_dump_state(ctx, &pipe_res);

		pd->v = xrealloc(pd->v, (pd->n + 1) * sizeof(*pd->v));
		p = &pd->v[pd->n++];
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
static int pipes_scan(struct dump_ctx *ctx)
{
	return files_for_each_tree_fd(ctx, scan_fd);
}

/* The pipe or FIFO of d as the pre-scan saw it, or NULL. */
static struct pipe_seen *pipe_seen_of(const struct fd_dump *d)
{
	if (!S_ISFIFO(d->st.st_mode) || fd_prescan(d->ctx, &pipe_fd_ops))
		return NULL;
	return pipe_find(d->ctx, d->st.st_dev, d->st.st_ino);
}

/*
 * The tree holds only one kind of end of the pipe: is the other kind
 * closed everywhere?  A read end polls POLLHUP without writers, a write
 * end POLLERR without readers (our copy of the end is no new opener).
 */
static bool other_end_gone(const struct fd_dump *d, const struct pipe_seen *p)
{
	struct pollfd pfd = { .fd = d->lfd, .events = p->has_read ? POLLIN : POLLOUT };

	if (poll(&pfd, 1, 0) < 0)
		return false;
	return p->has_read ? (pfd.revents & POLLHUP) : (pfd.revents & POLLERR);
}

/* Both ends of this pipe are held inside the tree, or the other is gone. */
static bool pipe_inside(const struct fd_dump *d)
{
	struct pipe_seen *p = pipe_seen_of(d);

	return p && ((p->has_read && p->has_write) || other_end_gone(d, p));
}

static bool pipe_match(const struct fd_dump *d)
{
	return !strncmp(d->link, "pipe:[", 6) && pipe_inside(d);
}

/* A FIFO by its path: whatever ends the tree holds (see "half" above). */
static bool fifo_match(const struct fd_dump *d)
{
	return d->link[0] == '/' && !strstr(d->link, " (deleted)") && pipe_seen_of(d);
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
	pe.id = id;
	pe.capacity = cap;
	if (!p->has_read) {
		/* writers only: what they wrote nobody in the tree reads */
		p->saved = !img_write_msg(&ctx->w, IMG_PIPE, &pe.base);
		return p->saved ? 0 : -1;
	}
	pidfd = syscall(__NR_pidfd_open, p->rd_pid, 0);
	rd = pidfd < 0 ? -1 : syscall(__NR_pidfd_getfd, pidfd, p->rd_fd, 0);
	if (rd < 0) {
		pr_perror("pid %d fd %d: cannot reach the pipe's read end", p->rd_pid, p->rd_fd);
		goto out;
	}
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

static PipeFileEntry *end_entry(const struct fd_dump *d, struct pipe_seen *p, uint64_t id_bit)
{
	PipeFileEntry *pf = xmalloc(sizeof(*pf));

	pipe_file_entry__init(pf);
	pf->pipe_id = p->ino | id_bit;
	return pf;
}

static int pipe_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct pipe_seen *p = pipe_find(d->ctx, d->st.st_dev, d->st.st_ino);

	fe->pipe = end_entry(d, p, 0);
	return p->saved ? 0 : pipe_save(d->ctx, p, fe->pipe->pipe_id, d->lfd);
}

/* A FIFO keeps dev/ino (restore checks it is the same FIFO) and its own ids. */
static int fifo_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct pipe_seen *p = pipe_find(d->ctx, d->st.st_dev, d->st.st_ino);

	/* FIFOs live on other filesystems than pipes: keep their ids apart */
	fe->fifo = end_entry(d, p, FIFO_ID_BIT);
	fe->fifo->has_dev = fe->fifo->has_ino = true;
	fe->fifo->dev = d->st.st_dev;
	fe->fifo->ino = d->st.st_ino;
	if (!p->has_read || !p->has_write)
		fe->fifo->has_half = fe->fifo->half = true;
	return p->saved ? 0 : pipe_save(d->ctx, p, fe->fifo->pipe_id, d->lfd);
}

static void pipe_dump_fini(struct dump_ctx *ctx, void *state)
{
	free(((struct pipe_dump *)state)->v);
}

/* ------------------------------------------------------------- loading */

int pipe_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct pipe_image *pi = res_image_state(img, &pipe_res);

	pi->v = xrealloc(pi->v, (pi->n + 1) * sizeof(*pi->v));
	pi->v[pi->n++] = msg;
	return 0;
}

static int cmp_pipe_id(const void *a, const void *b)
{
	uint64_t x = (*(PipeEntry *const *)a)->id, y = (*(PipeEntry *const *)b)->id;

	return x < y ? -1 : x > y;
}

/* Sorted by id for image_pipe(); a repeated id is corrupt. */
static int pipe_loaded(struct image *img)
{
	struct pipe_image *pi = res_image_state(img, &pipe_res);
	size_t i;

	sort_array(pi->v, pi->n, sizeof(*pi->v), cmp_pipe_id);
	for (i = 1; i < pi->n; i++)
		if (pi->v[i]->id == pi->v[i - 1]->id) {
			pr_err("image %s is corrupt: pipe %llu appears twice\n", img->r.path,
			       (unsigned long long)pi->v[i]->id);
			return -1;
		}
	return 0;
}

static void pipe_image_fini(struct image *img, void *state)
{
	struct pipe_image *pi = state;
	size_t i;

	for (i = 0; i < pi->n; i++)
		pipe_entry__free_unpacked(pi->v[i], NULL);
	free(pi->v);
}

static const PipeEntry *image_pipe(struct image *img, uint64_t id)
{
	struct pipe_image *pi = res_image_state(img, &pipe_res);
	size_t lo = 0, hi = pi->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pi->v[mid]->id == id)
			return pi->v[mid];
		if (pi->v[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ------------------------------------------------------------- restore */

/* The other end of the pipe of fe, if the tree holds it. */
static const FileEntry *pipe_peer(struct image *img, const FileEntry *fe)
{
	FileEntry **files;
	size_t i, n;

	files = image_files(img, &n);
	for (i = 0; i < n; i++) {
		const FileEntry *o = files[i];

		if (o != fe && o->type == FILE_TYPE__FILE_PIPE &&
		    o->pipe->pipe_id == fe->pipe->pipe_id &&
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
	const PipeEntry *pe = image_pipe(c->img, fe->pipe->pipe_id);
	const FileEntry *peer = pipe_peer(c->img, fe);
	bool reader = (fe->flags & O_ACCMODE) == O_RDONLY;
	int p[2], mine, other;

	if (!pe) {
		pr_err("pid %u: image lacks pipe %llu\n", c->t->te->pid,
		       (unsigned long long)fe->pipe->pipe_id);
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
		if (set_status_flags(other, peer))
			goto err;
		if (fd_place_shared(c, peer->id, other)) {
			close(mine);
			return -1;
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

/* Every end of one pipe is opened by one task. */
static uint64_t pipe_group(const FileEntry *fe)
{
	return fe->pipe->pipe_id;
}

static uint64_t fifo_group(const FileEntry *fe)
{
	return fe->fifo->pipe_id;
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
	const PipeFileEntry *pf = fe->fifo;
	const PipeEntry *pe = image_pipe(c->img, pf->pipe_id);
	int hold, mine = -1, avail = 0;
	FileEntry **files;
	struct stat st;
	size_t i, n;

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
	    (pf->has_ino && (st.st_ino != pf->ino || st.st_dev != pf->dev))) {
		pr_err("pid %u: FIFO %s was replaced by another file since the dump\n",
		       c->t->te->pid, fe->path);
		goto out;
	}
	if (ioctl(hold, FIONREAD, &avail) || (avail && !pf->half)) {
		pr_err("pid %u: FIFO %s already holds data of another process\n", c->t->te->pid,
		       fe->path);
		goto out;
	}
	/* half: bytes there are the pipe's own, kept alive by an end outside */
	if (avail)
		pr_info("pid %u: FIFO %s still holds %d bytes: not refilled\n", c->t->te->pid,
			fe->path, avail);
	else if (pipe_fill(c, hold, pe))
		goto out;
	files = image_files(c->img, &n);
	for (i = 0; i < n; i++) {
		const FileEntry *o = files[i];
		int fd;

		if (o == fe || o->type != FILE_TYPE__FILE_FIFO || o->fifo->pipe_id != pf->pipe_id ||
		    fd_shared_placed(c, o->id))
			continue;
		fd = fifo_open_end(c, o);
		if (fd < 0 || fd_place_shared(c, o->id, fd))
			goto out;
	}
	mine = fifo_open_end(c, fe);
out:
	close(hold);
	return mine;
}

const struct fd_ops pipe_fd_ops = {
	.type = FILE_TYPE__FILE_PIPE,
	.kind = FILE_ENTRY__KIND_PIPE,
	.name = "pipe",
	.prescan = pipes_scan,
	.match = pipe_match,
	.dump = pipe_dump,
	.lock = &flock_fd_lock,
	.group = pipe_group,
	.open = pipe_open,
};

/* FIFOs share the pipes' scan (fd_prescan(&pipe_fd_ops)) */
const struct fd_ops fifo_fd_ops = {
	.type = FILE_TYPE__FILE_FIFO,
	.kind = FILE_ENTRY__KIND_FIFO,
	.name = "FIFO",
	.match = fifo_match,
	.dump = fifo_dump,
	.lock = &flock_fd_lock,
	.group = fifo_group,
	.open = fifo_open,
};

const struct res_ops pipe_res = {
	.name = "pipe",
	.dump_state_size = sizeof(struct pipe_dump),
	.image_state_size = sizeof(struct pipe_image),
	.dump_fini = pipe_dump_fini,
	.image_loaded = pipe_loaded,
	.image_fini = pipe_image_fini,
};
