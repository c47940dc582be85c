/*
 * Files that no path leads to: memfds and deleted-but-open files (a POSIX
 * shared memory object or semaphore unlinked while still mapped is one).
 * Their inode is saved once per dump, with its data, as a FILE_MEMFD or
 * FILE_GHOST file_entry (the memfd_fd_ops and ghost_fd_ops kinds, never
 * matched on an fd: fsobj_get() makes them).  Every open description of
 * it (a FILE_FSOBJ_FD entry, fsobj_fd_fd_ops, naming it in fsobj_fd.inode)
 * and every mapping of it (mapped_file.fsobj_file), in any task, refers to
 * that one entry.
 *
 * Dump: the data runs are found with SEEK_DATA/SEEK_HOLE on an open file
 * description of our own (the target's offsets do not move) and written
 * as IMG_FSOBJ_DATA records just before the entry.
 *
 * Restore: the task that opens the entry for its subtree (fd_plan.c: the
 * lowest common ancestor of every task that uses it, by fd or by mapping:
 * the kinds' .plan hooks)
 * recreates the inode -- memfd_create, or create + unlink in the original
 * directory -- fills it from the image and sets size, mode, owner and,
 * last, the seals.  Its fds are reopened through /proc/self/fd and its
 * mappings map it, so the tree shares one inode again.
 */
#include <fcntl.h>
#include <libgen.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "files.h"
#include "log.h"
#include "res.h"
#include "util.h"

#ifndef F_GET_SEALS
#define F_ADD_SEALS (1024 + 9)
#define F_GET_SEALS (1024 + 10)
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

#define CHUNK_MAX      (1UL << 20)
#define DELETED_SUFFIX " (deleted)"
#define MEMFD_PREFIX   "/memfd:"

struct fsobj_seen {
	dev_t dev;
	ino_t ino;
	uint32_t id;
};

/* fsobj_res's state for one dump: the inodes saved so far */
struct fsobj_dump {
	struct fsobj_seen *v;
	size_t n;
};

/* fsobj_res's state for one image: where each chunk of contents lies in it */
struct fsobj_image {
	struct fsobj_data {
		uint32_t file_id; /* 0 while its file_entry has not been read yet */
		uint64_t off, len, hash;
	} * v;
	size_t n;
};

bool fsobj_link_is_ghost(const char *link)
{
	size_t n = strlen(link), s = strlen(DELETED_SUFFIX);

	return link[0] == '/' && n > s && !strcmp(link + n - s, DELETED_SUFFIX);
}

/* ---------------------------------------------------------------- dump */

static int save_chunk(struct dump_ctx *ctx, int fd, void *buf, FsobjEntry *fo, off_t off,
		      size_t len)
{
	FsobjChunk *ch;

	if (pread(fd, buf, len, off) != (ssize_t)len) {
		pr_perror("cannot read %zu bytes at %lld of a saved file", len, (long long)off);
		return -1;
	}
	if (img_write_raw(&ctx->w, IMG_FSOBJ_DATA, buf, len))
		return -1;
	ch = xmalloc(sizeof(*ch));
	fsobj_chunk__init(ch);
	ch->off = off;
	ch->len = len;
	fo->chunks = xrealloc(fo->chunks, (fo->n_chunks + 1) * sizeof(*fo->chunks));
	fo->chunks[fo->n_chunks++] = ch;
	return 0;
}

/* Only the data runs: holes stay holes. */
static int save_data(struct dump_ctx *ctx, int fd, FsobjEntry *fo)
{
	off_t data, hole, size = fo->size;
	void *buf = xmalloc(CHUNK_MAX);
	int ret = -1;

	for (data = 0; data < size; data = hole) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break;
			pr_perror("SEEK_DATA in a saved file");
			goto out;
		}
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		while (data < hole) {
			size_t len = min((size_t)(hole - data), CHUNK_MAX);

			if (save_chunk(ctx, fd, buf, fo, data, len))
				goto out;
			data += len;
		}
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

static uint32_t fsobj_find(struct dump_ctx *ctx, const struct stat *st)
{
	struct fsobj_dump *fd = res_dump_state(ctx, &fsobj_res);
	size_t i;

	for (i = 0; i < fd->n; i++)
		if (fd->v[i].dev == st->st_dev && fd->v[i].ino == st->st_ino)
			return fd->v[i].id;
	return 0;
}

static void fsobj_seen_add(struct dump_ctx *ctx, const struct stat *st, uint32_t id)
{
	struct fsobj_dump *fd = res_dump_state(ctx, &fsobj_res);

	fd->v = xrealloc(fd->v, (fd->n + 1) * sizeof(*fd->v));
	fd->v[fd->n++] = (struct fsobj_seen){ st->st_dev, st->st_ino, id };
}

static void fsobj_dump_fini(struct dump_ctx *ctx, void *state)
{
	free(((struct fsobj_dump *)state)->v);
}

/* Why this inode cannot be saved, or NULL. */
static const char *fsobj_refusal(int fd, const struct stat *st, bool memfd)
{
	struct statfs sfs;

	if (!S_ISREG(st->st_mode))
		return "deleted non-regular files are not supported";
	if (fstatfs(fd, &sfs) == 0 && (unsigned long)sfs.f_type == HUGETLBFS_MAGIC)
		return "hugetlbfs files are not supported";
	if (!memfd && st->st_nlink)
		return "the file is deleted under this name but linked under another; not "
		       "supported";
	return NULL;
}

/*
 * A memfd sealed with F_SEAL_FUTURE_WRITE after a writable shared mapping
 * was made: restore seals before it maps, and could not map it writable.
 */
int fsobj_check_shared_write(pid_t pid, const char *what, const char *src, const char *link)
{
	int fd, seals;

	if (strncmp(link, MEMFD_PREFIX, strlen(MEMFD_PREFIX)))
		return 0;
	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("pid %d %s: cannot open %s", pid, what, link);
		return -1;
	}
	seals = fcntl(fd, F_GET_SEALS);
	close(fd);
	if (seals > 0 && (seals & F_SEAL_FUTURE_WRITE)) {
		pr_err("pid %d %s (%s): a writable shared mapping of a memfd sealed with "
		       "F_SEAL_FUTURE_WRITE is not supported\n",
		       pid, what, link);
		return -1;
	}
	return 0;
}

/*
 * The FILE_MEMFD/FILE_GHOST entry of the inode that 'src' (a /proc path to
 * an fd or a mapping of task pid) leads to: saved with its data the first
 * time, its id after.  'what' names the fd or mapping for errors; 'st'
 * gets the inode's stat.
 */
int fsobj_get(struct dump_ctx *ctx, pid_t pid, const char *what, const char *src, const char *link,
	      uint32_t *id, struct stat *st)
{
	FileEntry fe = FILE_ENTRY__INIT;
	FsobjEntry fo = FSOBJ_ENTRY__INIT;
	const char *why;
	bool memfd;
	int fd, seals = -1, ret = -1;
	size_t i;

	/* reading the contents must not touch the original's atime */
	fd = open(src, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st)) {
		pr_perror("pid %d %s: cannot open %s", pid, what, link);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*id = fsobj_find(ctx, st);
	if (*id) {
		close(fd);
		return 0;
	}
	memfd = !strncmp(link, MEMFD_PREFIX, strlen(MEMFD_PREFIX)) &&
		(seals = fcntl(fd, F_GET_SEALS)) >= 0;
	why = fsobj_refusal(fd, st, memfd);
	if (why) {
		pr_err("pid %d %s (%s): %s\n", pid, what, link, why);
		goto out;
	}
	fo.size = st->st_size;
	fo.mode = st->st_mode;
	fo.uid = st->st_uid;
	fo.gid = st->st_gid;
	fo.has_atime_ns = fo.has_mtime_ns = true;
	fo.atime_ns = (uint64_t)st->st_atim.tv_sec * 1000000000ULL + st->st_atim.tv_nsec;
	fo.mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000ULL + st->st_mtim.tv_nsec;
	if (memfd) {
		size_t n = strlen(link) - strlen(MEMFD_PREFIX) - strlen(DELETED_SUFFIX);

		fo.name = xsprintf("%.*s", (int)n, link + strlen(MEMFD_PREFIX));
		fo.has_seals = true;
		fo.seals = seals;
	}
	if (save_data(ctx, fd, &fo))
		goto out;
	fe.id = ++ctx->next_file_id;
	fe.type = memfd ? memfd_fd_ops.type : ghost_fd_ops.type;
	fe.kind_case = memfd ? memfd_fd_ops.kind : ghost_fd_ops.kind;
	fe.flags = O_RDWR;
	fe.path = (char *)link;
	fe.memfd = &fo; /* or fe.ghost: one member of the union */
	if (img_write_msg(&ctx->w, IMG_FILE, &fe.base))
		goto out;
	fsobj_seen_add(ctx, st, fe.id);
	*id = fe.id;
	pr_debug("pid %d %s: saved %s as file %u (%zu data chunks)\n", pid, what, link, fe.id,
		 fo.n_chunks);
	ret = 0;
out:
	for (i = 0; i < fo.n_chunks; i++)
		free(fo.chunks[i]);
	free(fo.chunks);
	free(fo.name);
	close(fd);
	return ret;
}

/* An fd on a memfd or deleted file: a description naming the inode entry. */
static bool fsobj_fd_match(const struct fd_dump *d)
{
	return S_ISREG(d->st.st_mode) && fsobj_link_is_ghost(d->link);
}

static int fsobj_fd_dump(const struct fd_dump *d, FileEntry *fe)
{
	FsobjFdEntry *ff = xmalloc(sizeof(*ff));
	char src[64], what[32];
	struct stat st;

	fsobj_fd_entry__init(ff);
	fe->fsobj_fd = ff;
	ff->pos = d->fi.pos;
	snprintf(src, sizeof(src), "/proc/%d/fd/%d", d->pid, d->fd);
	snprintf(what, sizeof(what), "fd %d", d->fd);
	return fsobj_get(d->ctx, d->pid, what, src, d->link, &ff->inode, &st);
}

/* ------------------------------------------------------------- loading */

/* IMG_FSOBJ_DATA: located only; the file_entry that owns it follows. */
int fsobj_data_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct fsobj_image *fi = res_image_state(img, &fsobj_res);
	struct fsobj_data *d;

	fi->v = xrealloc(fi->v, (fi->n + 1) * sizeof(*fi->v));
	d = &fi->v[fi->n++];
	*d = (struct fsobj_data){ .len = h->len, .hash = h->hash };
	return img_skip_payload(&img->r, h, &d->off);
}

/*
 * The data chunks of a memfd or deleted file come just before its
 * file_entry: they are the ones not attached to a file yet.
 */
static int fsobj_attach(struct image *img, FileEntry *fe)
{
	struct fsobj_image *fi = res_image_state(img, &fsobj_res);
	const FsobjEntry *fo = fe->memfd; /* or fe->ghost */
	size_t pending = 0, i, first;

	while (pending < fi->n && !fi->v[fi->n - 1 - pending].file_id)
		pending++;
	first = fi->n - pending;
	if (fo->n_chunks != pending)
		goto bad;
	for (i = 0; i < pending; i++) {
		if (fi->v[first + i].len != fo->chunks[i]->len)
			goto bad;
		fi->v[first + i].file_id = fe->id;
	}
	return 0;
bad:
	pr_err("image %s is corrupt: the saved contents of file %u do not match it\n", img->r.path,
	       fe->id);
	return -1;
}

static int fsobj_loaded(struct image *img)
{
	struct fsobj_image *fi = res_image_state(img, &fsobj_res);

	if (fi->n && !fi->v[fi->n - 1].file_id) {
		pr_err("image %s is corrupt: file contents without their file\n", img->r.path);
		return -1;
	}
	return 0;
}

static void fsobj_image_fini(struct image *img, void *state)
{
	free(((struct fsobj_image *)state)->v);
}

/* ------------------------------------------------------------- restore */

/* Who uses a description of the inode uses the inode entry it is reopened from. */
static void fsobj_fd_plan(struct fd_plan *p, const FileEntry *fe)
{
	fd_plan_join(p, fe->fsobj_fd->inode, fe->id);
}

/* The inode entry is also used by every task that maps it. */
static void fsobj_plan(struct fd_plan *p, const FileEntry *fe)
{
	struct image *img = fd_plan_image(p);
	size_t i, j;

	for (i = 0; i < img->ntasks; i++) {
		const MmEntry *mm = img->tasks[i].mm;

		for (j = 0; mm && j < mm->n_files; j++)
			if (mm->files[j]->has_fsobj_file && mm->files[j]->fsobj_file == fe->id)
				fd_plan_use(p, fe->id, &img->tasks[i]);
	}
}

/* Another open file description of the inode, at its offset. */
static int fsobj_fd_open(struct rst_ctx *c, const FileEntry *fe)
{
	int flags = fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC), fd;
	const FsobjFdEntry *ff = fe->fsobj_fd;
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", c->shared_base + ff->inode);
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("pid %u: cannot reopen %s", c->t->te->pid, fe->path);
		return -1;
	}
	if (lseek(fd, ff->pos, SEEK_SET) != (off_t)ff->pos) {
		pr_perror("pid %u: cannot seek %s to %llu", c->t->te->pid, fe->path,
			  (unsigned long long)ff->pos);
		close(fd);
		return -1;
	}
	return fd;
}

/* Access and modification times, last: writing the contents moved them. */
static int fsobj_times(int fd, const FsobjEntry *fo)
{
	struct timespec ts[2];

	if (!fo->has_atime_ns || !fo->has_mtime_ns)
		return 0;
	ts[0].tv_sec = fo->atime_ns / 1000000000ULL;
	ts[0].tv_nsec = fo->atime_ns % 1000000000ULL;
	ts[1].tv_sec = fo->mtime_ns / 1000000000ULL;
	ts[1].tv_nsec = fo->mtime_ns % 1000000000ULL;
	return futimens(fd, ts);
}

/* Contents, size, owner, mode, times, then seals: the inode as it was. */
static int fsobj_fill(struct rst_ctx *c, const FileEntry *fe, int fd)
{
	struct fsobj_image *fi = res_image_state(c->img, &fsobj_res);
	const FsobjEntry *fo = fe->memfd; /* or fe->ghost */
	struct image *img = c->img;
	void *buf = NULL;
	size_t i, k = 0;
	int ret = -1;

	if (ftruncate(fd, fo->size)) {
		pr_perror("pid %u: cannot size %s", c->t->te->pid, fe->path);
		return -1;
	}
	for (i = 0; i < fi->n; i++) {
		const struct fsobj_data *d = &fi->v[i];
		const FsobjChunk *ch;

		if (d->file_id != fe->id)
			continue;
		ch = fo->chunks[k++];
		if (!buf)
			buf = xmalloc(CHUNK_MAX);
		if (pread(svc_fd(c, SVC_IMAGE), buf, d->len, d->off) != (ssize_t)d->len) {
			pr_err("image %s is truncated inside the contents of %s\n", img->r.path,
			       fe->path);
			goto out;
		}
		if (XXH64(buf, d->len, 0) != d->hash) {
			pr_err(
			    "image %s is corrupt: the saved contents of %s fail their checksum\n",
			    img->r.path, fe->path);
			goto out;
		}
		if (pwrite(fd, buf, d->len, ch->off) != (ssize_t)d->len) {
			pr_perror("pid %u: cannot write the contents of %s", c->t->te->pid,
				  fe->path);
			goto out;
		}
	}
	/* the owner first: chown clears the set-user-ID and set-group-ID bits */
	if (fchown(fd, fo->uid, fo->gid) || fchmod(fd, fo->mode & 07777)) {
		pr_perror("pid %u: cannot set the mode and owner of %s", c->t->te->pid, fe->path);
		goto out;
	}
	if (fsobj_times(fd, fo)) {
		pr_perror("pid %u: cannot set the times of %s", c->t->te->pid, fe->path);
		goto out;
	}
	if (fo->has_seals && fo->seals && fcntl(fd, F_ADD_SEALS, fo->seals)) {
		pr_perror("pid %u: cannot seal %s", c->t->te->pid, fe->path);
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

static int memfd_open(struct rst_ctx *c, const FileEntry *fe)
{
	const FsobjEntry *fo = fe->memfd;
	int fd;

	if (!fo->name) {
		pr_err("image %s is corrupt: memfd %u has no name\n", c->img->r.path, fe->id);
		return -1;
	}
	/* say that it may be executable (as before 6.3); the saved mode follows */
	fd = memfd_create(fo->name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create(fo->name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		pr_perror("pid %u: cannot create memfd %s", c->t->te->pid, fo->name);
		return -1;
	}
	if (fsobj_fill(c, fe, fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The name is taken again: create the file under a temporary name,
 * exchange it with the file at the name, and move that file back over
 * it.  The new file's last name is then the old one, and the file at the
 * name was never gone (only replaced, for a moment, by the new one).
 */
static int ghost_create_swapped(struct rst_ctx *c, const char *path)
{
	uint64_t salt = 0;
	char *tmp;
	int fd;

	/* not our pid alone: a restore killed here left its own behind */
	if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != sizeof(salt))
		salt = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&salt;
	tmp = xsprintf("%s.stasis-%d-%016llx", path, (int)getpid(), (unsigned long long)salt);

	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE)) {
		unlink(tmp);
		close(fd);
		fd = -1;
		goto out;
	}
	if (rename(tmp, path)) {
		pr_perror("pid %u: cannot move %s back to %s", c->t->te->pid, tmp, path);
		close(fd);
		fd = -2;
	}
out:
	free(tmp);
	return fd;
}

/*
 * Create the file under its old name and unlink it at once, so that it
 * looks as it did ("/dir/name (deleted)"); if the name is taken again,
 * swapped with the file there (above), or else an unnamed O_TMPFILE in the
 * same directory.
 */
static int ghost_create(struct rst_ctx *c, const char *path)
{
	char *dir;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (unlink(path)) {
			pr_perror("pid %u: cannot unlink the recreated %s", c->t->te->pid, path);
			close(fd);
			return -1;
		}
		return fd;
	}
	if (errno != EEXIST) {
		pr_perror("pid %u: cannot recreate deleted file %s", c->t->te->pid, path);
		return -1;
	}
	fd = ghost_create_swapped(c, path);
	if (fd >= 0 || fd == -2)
		return fd < 0 ? -1 : fd;
	dir = xstrdup(path);
	fd = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		pr_perror("pid %u: cannot recreate deleted file %s (its name is taken)",
			  c->t->te->pid, path);
	else
		pr_warn("pid %u: %s exists again; the deleted file is recreated without a name\n",
			c->t->te->pid, path);
	free(dir);
	return fd;
}

static int ghost_open(struct rst_ctx *c, const FileEntry *fe)
{
	size_t n = fe->path ? strlen(fe->path) : 0, s = strlen(DELETED_SUFFIX);
	char *path;
	int fd;

	if (n <= s) {
		pr_err("image %s is corrupt: deleted file %u has no inode\n", c->img->r.path,
		       fe->id);
		return -1;
	}
	path = xsprintf("%.*s", (int)(n - s), fe->path);
	fd = ghost_create(c, path);
	free(path);
	if (fd >= 0 && fsobj_fill(c, fe, fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

const struct fd_ops fsobj_fd_fd_ops = {
	.type = FILE_TYPE__FILE_FSOBJ_FD,
	.kind = FILE_ENTRY__KIND_FSOBJ_FD,
	.name = "deleted file or memfd",
	.match = fsobj_fd_match,
	.dump = fsobj_fd_dump,
	.lock = &flock_fd_lock,
	.plan = fsobj_fd_plan,
	.open = fsobj_fd_open,
};

/* Inode entries: written by fsobj_get() (from an fd or a mapping), never matched. */
const struct fd_ops memfd_fd_ops = {
	.type = FILE_TYPE__FILE_MEMFD,
	.kind = FILE_ENTRY__KIND_MEMFD,
	.name = "memfd inode",
	.load = fsobj_attach,
	.plan = fsobj_plan,
	.open_first = true,
	.open = memfd_open,
};

const struct fd_ops ghost_fd_ops = {
	.type = FILE_TYPE__FILE_GHOST,
	.kind = FILE_ENTRY__KIND_GHOST,
	.name = "deleted file inode",
	.load = fsobj_attach,
	.plan = fsobj_plan,
	.open_first = true,
	.open = ghost_open,
};

const struct res_ops fsobj_res = {
	.name = "fsobj",
	.dump_state_size = sizeof(struct fsobj_dump),
	.image_state_size = sizeof(struct fsobj_image),
	.dump_fini = fsobj_dump_fini,
	.image_loaded = fsobj_loaded,
	.image_fini = fsobj_image_fini,
};
