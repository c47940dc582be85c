/*
 * File locks held by the tree: flock(2) locks, POSIX record locks
 * (fcntl F_SETLK) and open-file-description locks (F_OFD_SETLK).
 *
 * Dump: the "lock:" lines of /proc/PID/fdinfo/FD list the locks taken
 * through that open file description (POSIX ones only for the process
 * that owns them).  Without --file-locks a tree holding a lock is refused;
 * with it every lock becomes an IMG_FLOCK record.
 *
 * Restore: flock and OFD locks belong to the open file description, so
 * the task that opens the description takes them right away (the tasks
 * that inherit it share them).  POSIX locks belong to the process: the
 * restore child, which is the restored process, takes them on its own fd
 * once its fd table is final, since closing any fd of a file drops the
 * process's POSIX locks on it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "files.h"
#include "res.h"
#include "log.h"
#include "util.h"

#ifndef F_OFD_SETLK
#define F_OFD_SETLK 37
#endif

struct flock_seen {
	pid_t pid;
	uint32_t file_id;
	uint64_t start, len;
	bool write;
};

/* flock_res's state for one dump: the POSIX locks saved so far */
struct flock_dump {
	struct flock_seen *v;
	size_t n;
};

/* flock_res's state for one image: its lock records */
struct flock_image {
	FlockEntry **v;
	size_t n;
};

static const char *const kind_names[] = {
	[FLOCK_KIND__FLOCK_POSIX] = "POSIX",
	[FLOCK_KIND__FLOCK_FLOCK] = "flock",
	[FLOCK_KIND__FLOCK_OFD] = "OFD",
};

/* ---------------------------------------------------------------- dump */

/* One "lock:" line: "1: POSIX  ADVISORY  WRITE 412 00:1f:1234 0 EOF". */
static int parse_lock(const char *line, FlockEntry *fl, char *kind, size_t ksize)
{
	char k[16], adv[16], type[16], end[32];
	unsigned long long start;
	int id, pid;

	if (sscanf(line, "%d: %15s %15s %15s %d %*s %llu %31s", &id, k, adv, type, &pid, &start,
		   end) != 7)
		return -1;
	snprintf(kind, ksize, "%s", k);
	if (!strcmp(k, "POSIX"))
		fl->kind = FLOCK_KIND__FLOCK_POSIX;
	else if (!strcmp(k, "FLOCK"))
		fl->kind = FLOCK_KIND__FLOCK_FLOCK;
	else if (!strcmp(k, "OFDLCK"))
		fl->kind = FLOCK_KIND__FLOCK_OFD;
	else
		return 1; /* a lease, a delegation, ...: not supported */
	if (strcmp(adv, "ADVISORY") || (strcmp(type, "READ") && strcmp(type, "WRITE")))
		return 1;
	fl->write = !strcmp(type, "WRITE");
	fl->start = start;
	fl->len = !strcmp(end, "EOF") ? 0 : strtoull(end, NULL, 10) - start + 1;
	return 0;
}

static bool posix_seen(struct dump_ctx *ctx, const FlockEntry *fl)
{
	struct flock_dump *fd = res_dump_state(ctx, &flock_res);
	size_t i;

	for (i = 0; i < fd->n; i++) {
		const struct flock_seen *s = &fd->v[i];

		if (s->pid == (pid_t)fl->pid && s->file_id == fl->file_id &&
		    s->start == fl->start && s->len == fl->len && s->write == fl->write)
			return true;
	}
	return false;
}

/* A POSIX lock is dropped when the process closes any fd of the file. */
static bool mapped_by_owner(const struct fd_dump *d)
{
	struct dump_ctx *ctx = d->ctx;
	size_t i;

	for (i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].pid == d->pid)
			return mm_maps_file(&ctx->tasks[i], d->st.st_dev, d->st.st_ino);
	return false;
}

/* POSIX locks belong to the fd table, which restore fills once per group. */
static bool shares_table(const struct fd_dump *d)
{
	struct dump_ctx *ctx = d->ctx;
	size_t i;

	for (i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].pid == d->pid)
			return ctx->tasks[i].te && ctx->tasks[i].te->has_files_leader;
	return false;
}

static int save_lock(const struct fd_dump *d, FlockEntry *fl, const char *kind)
{
	struct dump_ctx *ctx = d->ctx;

	if (!ctx->opts->file_locks) {
		pr_err("pid %d fd %d (%s): holds a %s lock; dump with --file-locks to save file "
		       "locks\n",
		       d->pid, d->fd, d->link, kind);
		return -1;
	}
	if (fl->kind == FLOCK_KIND__FLOCK_POSIX) {
		if (posix_seen(ctx, fl))
			return 0;
		if (shares_table(d)) {
			pr_err("pid %d fd %d (%s): a POSIX lock of a process that shares its fd "
			       "table (CLONE_FILES) is not supported\n",
			       d->pid, d->fd, d->link);
			return -1;
		}
		if (mapped_by_owner(d)) {
			pr_err("pid %d fd %d (%s): a POSIX lock on a file the process also maps is "
			       "not supported\n",
			       d->pid, d->fd, d->link);
			return -1;
		}
		struct flock_dump *fd = res_dump_state(ctx, &flock_res);

		fd->v = xrealloc(fd->v, (fd->n + 1) * sizeof(*fd->v));
		fd->v[fd->n++] =
		    (struct flock_seen){ fl->pid, fl->file_id, fl->start, fl->len, fl->write };
	}
	return img_write_msg(&ctx->w, IMG_FLOCK, &fl->base);
}

/*
 * The locks taken through fd d (file_id is its open file description;
 * first: the first fd of that description seen in the dump).  flock and
 * OFD locks are saved once per description, POSIX locks once per process.
 */
static int flock_dump_fd(const struct fd_dump *d, uint32_t file_id, bool first)
{
	const char *line;
	int ret = 0;

	for (line = strstr(d->fdinfo, "\nlock:"); line && !ret;
	     line = strstr(line + 1, "\nlock:")) {
		FlockEntry fl = FLOCK_ENTRY__INIT;
		char kind[16] = "?";
		int r = parse_lock(line + 6, &fl, kind, sizeof(kind));

		if (r) {
			pr_err("pid %d fd %d (%s): holds a %s lock, which is not supported\n",
			       d->pid, d->fd, d->link, r < 0 ? "malformed" : kind);
			ret = -1;
			break;
		}
		if (fl.kind != FLOCK_KIND__FLOCK_POSIX && !first)
			continue;
		fl.pid = d->pid;
		fl.fd = d->fd;
		fl.file_id = file_id;
		ret = save_lock(d, &fl, kind_names[fl.kind]);
	}
	return ret;
}

static void flock_dump_fini(struct dump_ctx *ctx, void *state)
{
	free(((struct flock_dump *)state)->v);
}

/* ------------------------------------------------------------- loading */

int flock_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct flock_image *fi = res_image_state(img, &flock_res);

	fi->v = xrealloc(fi->v, (fi->n + 1) * sizeof(*fi->v));
	fi->v[fi->n++] = msg;
	return 0;
}

static void flock_image_fini(struct image *img, void *state)
{
	struct flock_image *fi = state;
	size_t i;

	for (i = 0; i < fi->n; i++)
		flock_entry__free_unpacked(fi->v[i], NULL);
	free(fi->v);
}

/* ------------------------------------------------------------- restore */

static int take_lock(struct rst_ctx *c, const FlockEntry *fl, int fd, const char *path)
{
	struct flock f = {
		.l_type = fl->write ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = fl->start,
		.l_len = fl->len,
	};
	int r;

	switch (fl->kind) {
	case FLOCK_KIND__FLOCK_FLOCK:
		r = flock(fd, (fl->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
		break;
	case FLOCK_KIND__FLOCK_OFD:
		r = fcntl(fd, F_OFD_SETLK, &f);
		break;
	default:
		r = fcntl(fd, F_SETLK, &f);
		break;
	}
	if (r) {
		pr_perror("pid %u: cannot take its %s lock on %s again", c->t->te->pid,
			  kind_names[fl->kind], path);
		return -1;
	}
	return 0;
}

/* In the task that opens a description: its flock and OFD locks. */
static int flock_restore_file(struct rst_ctx *c, const FileEntry *fe, int fd)
{
	struct flock_image *fi = res_image_state(c->img, &flock_res);
	size_t i;

	for (i = 0; i < fi->n; i++) {
		const FlockEntry *fl = fi->v[i];

		if (fl->file_id == fe->id && fl->kind != FLOCK_KIND__FLOCK_POSIX &&
		    take_lock(c, fl, fd, fe->path ? fe->path : "?"))
			return -1;
	}
	return 0;
}

/* In the restore child, its fd table final: the process's POSIX locks. */
static int flock_restore_posix(struct rst_ctx *c)
{
	struct flock_image *fi = res_image_state(c->img, &flock_res);
	size_t i;

	for (i = 0; i < fi->n; i++) {
		const FlockEntry *fl = fi->v[i];
		const FileEntry *fe;

		if (fl->kind != FLOCK_KIND__FLOCK_POSIX || fl->pid != c->t->te->pid)
			continue;
		fe = image_file(c->img, fl->file_id);
		if (take_lock(c, fl, fl->fd, fe && fe->path ? fe->path : "?"))
			return -1;
	}
	return 0;
}

/*
 * POSIX locks go in last in the restore child: closing any fd of a file
 * drops the process's POSIX locks on it, and the steps before close fds.
 */
const struct res_ops flock_res = {
	.name = "flock",
	.dump_state_size = sizeof(struct flock_dump),
	.image_state_size = sizeof(struct flock_image),
	.dump_fini = flock_dump_fini,
	.image_fini = flock_image_fini,
	.child_late = flock_restore_posix,
};

/* The part of the fd kinds that can hold locks (files.h: fd_ops.lock). */
const struct fd_lock_ops flock_fd_lock = {
	.dump = flock_dump_fd,
	.restore = flock_restore_file,
};
