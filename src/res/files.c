/*
 * Open files: the fd table of each task and the open file descriptions
 * behind it.  Each description is saved once (a file_entry with an id) and
 * every fd that refers to it names that id, so fds that shared an offset
 * share it again after restore.  Sameness is decided with kcmp(KCMP_FILE).
 *
 * Every kind of file is one entry of the fd ops table: how to recognise it,
 * what to save, how to open it again.  Adding a kind means adding an entry.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "compat.h"
#include "files.h"
#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

static bool is_tty(const struct stat *st)
{
	unsigned int maj = major(st->st_rdev);

	/* 4: vt/serial, 5: /dev/tty, console, ptmx; 136-143: pts */
	return S_ISCHR(st->st_mode) && (maj == 4 || maj == 5 || (maj >= 136 && maj <= 143));
}

static bool path_is_plain(const struct fd_dump *d)
{
	return d->link[0] == '/' && !strstr(d->link, " (deleted)");
}

/* ----- regular files */

static bool reg_match(const struct fd_dump *d)
{
	return S_ISREG(d->st.st_mode) && path_is_plain(d);
}

static int reg_dump(const struct fd_dump *d, FileEntry *fe)
{
	fe->has_pos = true;
	fe->pos = d->fi.pos;
	/* a log opened O_WRONLY|O_APPEND may grow between dump and restore */
	if ((d->fi.flags & O_ACCMODE) != O_WRONLY || !(d->fi.flags & O_APPEND)) {
		fe->has_size = true;
		fe->size = d->st.st_size;
	}
	return 0;
}

/*
 * The file must be the one of the dump: same inode and, for a regular
 * file, same size.  --skip-file-check restores anyway (with a warning).
 */
static int check_same_file(struct rst_ctx *c, const FileEntry *fe, const struct stat *st)
{
	bool force = c->opts->skip_file_check;

	if (fe->has_ino && (st->st_ino != fe->ino || st->st_dev != fe->dev)) {
		if (!force) {
			pr_err("pid %u: %s was replaced by another file since the dump (restore "
			       "--skip-file-check to use it anyway)\n",
			       c->t->te->pid, fe->path);
			return -1;
		}
		pr_warn("pid %u: %s was replaced since the dump; using it anyway\n", c->t->te->pid,
			fe->path);
	}
	if (fe->has_size && S_ISREG(st->st_mode) && (uint64_t)st->st_size != fe->size) {
		if (!force) {
			pr_err("pid %u: %s changed size since the dump (%llu bytes, now %llu; "
			       "restore --skip-file-check to use it anyway)\n",
			       c->t->te->pid, fe->path, (unsigned long long)fe->size,
			       (unsigned long long)st->st_size);
			return -1;
		}
		pr_warn("pid %u: %s changed size since the dump; using it anyway\n", c->t->te->pid,
			fe->path);
	}
	return 0;
}

static int open_checked(struct rst_ctx *c, const FileEntry *fe, int flags)
{
	struct stat st;
	int fd;

	fd = open(fe->path, flags);
	if (fd < 0) {
		pr_perror("pid %u: cannot open %s", c->t->te->pid, fe->path);
		return -1;
	}
	if (fstat(fd, &st)) {
		pr_perror("pid %u: cannot stat %s", c->t->te->pid, fe->path);
		close(fd);
		return -1;
	}
	if (check_same_file(c, fe, &st)) {
		close(fd);
		return -1;
	}
	if (fe->has_rdev && st.st_rdev != fe->rdev) {
		pr_err("pid %u: device %s is not the same device as at dump time\n", c->t->te->pid,
		       fe->path);
		close(fd);
		return -1;
	}
	return fd;
}

static int reg_open(struct rst_ctx *c, const FileEntry *fe)
{
	int flags = fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC), fd;

	/* a memfd or deleted file: another open file description of its inode */
	fd = fe->has_inode_file ? fsobj_reopen(c, fe, flags) : open_checked(c, fe, flags);

	if (fd >= 0 && fe->has_pos && lseek(fd, fe->pos, SEEK_SET) != (off_t)fe->pos) {
		pr_perror("pid %u: cannot seek %s to %llu", c->t->te->pid, fe->path,
			  (unsigned long long)fe->pos);
		close(fd);
		return -1;
	}
	return fd;
}

/* ----- directories */

static bool dir_match(const struct fd_dump *d)
{
	return S_ISDIR(d->st.st_mode) && path_is_plain(d);
}

static int dir_dump(const struct fd_dump *d, FileEntry *fe)
{
	fe->has_pos = true;
	fe->pos = d->fi.pos;
	return 0;
}

static int dir_open(struct rst_ctx *c, const FileEntry *fe)
{
	return reg_open(c, fe);
}

/* ----- character devices without state: /dev/null, zero, random, ... */

static bool chr_match(const struct fd_dump *d)
{
	return S_ISCHR(d->st.st_mode) && !is_tty(&d->st) && path_is_plain(d) &&
	       major(d->st.st_rdev) == 1; /* mem class: null zero full random urandom kmsg */
}

static int chr_dump(const struct fd_dump *d, FileEntry *fe)
{
	fe->has_rdev = true;
	fe->rdev = d->st.st_rdev;
	return 0;
}

static int chr_open(struct rst_ctx *c, const FileEntry *fe)
{
	return open_checked(c, fe, fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC));
}

/* ----- objects outside the tree: the caller's terminal, a pipe from a parent */

static bool ext_match(const struct fd_dump *d)
{
	return is_tty(&d->st) || S_ISFIFO(d->st.st_mode);
}

static int ext_dump(const struct fd_dump *d, FileEntry *fe)
{
	if (is_tty(&d->st))
		fe->ext_key = xsprintf("tty:%s", d->link);
	else if (d->link[0] == '/')
		fe->ext_key = xsprintf("fifo:%s", d->link);
	else
		fe->ext_key = xstrdup(d->link);
	return 0;
}

int inherited_fd(struct rst_ctx *c, const char *key)
{
	const struct restore_opts *o = c->opts;
	int k;

	for (k = 0; k < o->n_inherit; k++)
		if (!strcmp(o->inherit[k].key, key))
			return fcntl(svc_fd(c, SVC_FILES) + c->t->mm->n_files + k, F_DUPFD_CLOEXEC,
				     0);
	return -1;
}

static int ext_open(struct rst_ctx *c, const FileEntry *fe)
{
	const struct restore_opts *o = c->opts;
	size_t i;
	int fd = inherited_fd(c, fe->ext_key);

	if (fd >= 0)
		return fd;
	if (o->detached)
		return open("/dev/null", (fe->flags & O_ACCMODE) | O_CLOEXEC);
	/* reconnect to our stdin/stdout/stderr by the fd it had among 0..2 */
	for (i = 0; i < c->t->nfds; i++) {
		const FdEntry *f = c->t->fds[i];

		if (f->file_id == fe->id && f->fd <= 2)
			return fcntl(svc_fd(c, SVC_STDIN) + f->fd, F_DUPFD_CLOEXEC, 0);
	}
	pr_err("pid %u: %s is outside the tree and not one of fds 0-2; pass --inherit-fd "
	       "fd[N]:%s\n",
	       c->t->te->pid, fe->ext_key, fe->ext_key);
	return -1;
}

/* ----- O_PATH fds: a place in the file system, no I/O */

static bool opath_match(const struct fd_dump *d)
{
	return (d->fi.flags & O_PATH) && path_is_plain(d);
}

static int opath_dump(const struct fd_dump *d, FileEntry *fe)
{
	return 0;
}

static int opath_open(struct rst_ctx *c, const FileEntry *fe)
{
	/* an O_PATH fd on a symlink (O_NOFOLLOW) shows the link itself */
	int flags =
	    O_PATH | O_CLOEXEC | (S_ISLNK(fe->mode) ? O_NOFOLLOW : 0) | (fe->flags & O_DIRECTORY);

	return open_checked(c, fe, flags);
}

static const struct fd_ops opath_fd_ops = { FILE_TYPE__FILE_OPATH, "O_PATH fd", opath_match,
					    opath_dump, opath_open };
static const struct fd_ops reg_fd_ops = { FILE_TYPE__FILE_REG, "file", reg_match, reg_dump,
					  reg_open };
static const struct fd_ops dir_fd_ops = { FILE_TYPE__FILE_DIR, "directory", dir_match, dir_dump,
					  dir_open };
static const struct fd_ops chr_fd_ops = { FILE_TYPE__FILE_CHR, "device", chr_match, chr_dump,
					  chr_open };
static const struct fd_ops ext_fd_ops = { FILE_TYPE__FILE_EXT, "external", ext_match, ext_dump,
					  ext_open };

/* First match wins: objects inside the tree before "external". */
static const struct fd_ops *const fd_ops_table[] = {
	&opath_fd_ops,	  &reg_fd_ops,	   &ghost_fd_fd_ops, &memfd_fd_ops, &ghost_fd_ops,
	&dir_fd_ops,	  &chr_fd_ops,	   &pipe_fd_ops,     &fifo_fd_ops,  &eventfd_fd_ops,
	&signalfd_fd_ops, &timerfd_fd_ops, &epoll_fd_ops,    &unix_fd_ops,  &inotify_fd_ops,
	&fanotify_fd_ops, &pidfd_fd_ops,   &ptmx_fd_ops,     &tty_fd_ops,   &ext_fd_ops,
};

const char *fdinfo_field(const struct fd_dump *d, const char *key, char *buf, size_t size)
{
	const char *v = d->fdinfo ? status_field(d->fdinfo, key) : NULL;

	if (v)
		snprintf(buf, size, "%.*s", (int)strcspn(v, "\n"), v);
	return v ? buf : NULL;
}

static const struct fd_ops *ops_by_type(FileType t)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fd_ops_table); i++)
		if (fd_ops_table[i]->type == t)
			return fd_ops_table[i];
	return NULL;
}

/* ----------------------------------------------------------------- dump */

/* Why an fd cannot be saved, for the error line. */
static const char *unsupported_reason(const struct fd_dump *d)
{
	if (d->fi.flags & O_PATH)
		return "O_PATH fds are supported only on files reachable by their path";
	if (!strncmp(d->link, "socket:", 7))
		return "sockets other than unix sockets are not supported yet";
	if (!strncmp(d->link, "anon_inode:", 11))
		return "this kind of fd is not supported yet";
	if (strstr(d->link, " (deleted)"))
		return "deleted files other than regular files are not supported";
	if (S_ISFIFO(d->st.st_mode))
		return "FIFOs are not supported yet";
	if (S_ISCHR(d->st.st_mode) || S_ISBLK(d->st.st_mode))
		return "this device is not supported";
	return "this kind of file is not supported";
}

/*
 * Files saved so far, for sameness: grouped by (dev, ino), and inside a
 * group kept in kcmp order (KCMP_FILE orders open file descriptions
 * consistently), so that an fd is matched with O(log n) kcmp calls even
 * when thousands of descriptions share one inode (every eventfd does).
 */
struct file_seen {
	uint32_t id;
	pid_t pid;
	int fd;
};

struct file_group {
	dev_t dev;
	ino_t ino;
	struct file_seen *v;
	size_t n;
};

struct file_index {
	struct file_group *g; /* open addressing; dev == 0 && ino == 0: free */
	size_t cap, used;
};

static size_t group_hash(dev_t dev, ino_t ino, size_t cap)
{
	uint64_t h =
	    ((uint64_t)ino * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)dev * 0xc2b2ae3d27d4eb4fULL);

	return (size_t)(h >> 17) & (cap - 1);
}

static struct file_group *group_slot(struct file_group *g, size_t cap, dev_t dev, ino_t ino)
{
	size_t i = group_hash(dev, ino, cap);

	while ((g[i].dev || g[i].ino) && (g[i].dev != dev || g[i].ino != ino))
		i = (i + 1) & (cap - 1);
	return &g[i];
}

static struct file_group *group_get(struct file_index *x, dev_t dev, ino_t ino)
{
	struct file_group *s;
	size_t i;

	if ((x->used + 1) * 2 > x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 256;
		struct file_group *g = xzalloc(cap * sizeof(*g));

		for (i = 0; i < x->cap; i++)
			if (x->g[i].dev || x->g[i].ino)
				*group_slot(g, cap, x->g[i].dev, x->g[i].ino) = x->g[i];
		free(x->g);
		x->g = g;
		x->cap = cap;
	}
	s = group_slot(x->g, x->cap, dev, ino);
	if (!s->dev && !s->ino) {
		s->dev = dev;
		s->ino = ino;
		x->used++;
	}
	return s;
}

/*
 * The saved file this fd is an fd of (its id), or 0 with *pos set to
 * where it belongs in its group; -1 if kcmp fails.
 */
static long group_find(const struct file_group *g, const struct fd_dump *d, size_t *pos)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		long r = syscall(SYS_kcmp, d->pid, g->v[mid].pid, KCMP_FILE, d->fd, g->v[mid].fd);

		if (r == 0)
			return g->v[mid].id;
		if (r == 1)
			hi = mid;
		else if (r == 2)
			lo = mid + 1;
		else {
			pr_perror("pid %d fd %d: kcmp", d->pid, d->fd);
			return -1;
		}
	}
	*pos = lo;
	return 0;
}

static void group_insert(struct file_group *g, size_t pos, const struct fd_dump *d, uint32_t id)
{
	g->v = xrealloc(g->v, (g->n + 1) * sizeof(*g->v));
	memmove(&g->v[pos + 1], &g->v[pos], (g->n - pos) * sizeof(*g->v));
	g->v[pos] = (struct file_seen){ id, d->pid, d->fd };
	g->n++;
}

static void files_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct file_index *x = ctx->seen;
	size_t i;

	free(ctx->pipes);
	free(ctx->ttys);
	unix_table_free(ctx);
	free(ctx->fsobjs);
	free(ctx->locks);
	ctx->fsobjs = NULL;
	ctx->locks = NULL;
	ctx->nfsobjs = ctx->nlocks = 0;
	if (!x)
		return;
	for (i = 0; i < x->cap; i++)
		free(x->g[i].v);
	free(x->g);
	free(x);
	ctx->seen = NULL;
}

static int dump_one_fd(struct dump_ctx *ctx, struct fd_dump *d)
{
	FdEntry fde = FD_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	const struct fd_ops *ops = NULL;
	struct file_group *g;
	size_t i, pos = 0;
	long id;
	int ret;

	if (!ctx->seen)
		ctx->seen = xzalloc(sizeof(*ctx->seen));
	if (proc_fdinfo_parse_text(d->fdinfo, &d->fi) || fstat(d->lfd, &d->st))
		return -1;
	fde.pid = d->pid;
	fde.fd = d->fd;
	fde.cloexec = !!(d->fi.flags & O_CLOEXEC);
	g = group_get(ctx->seen, d->st.st_dev, d->st.st_ino);
	id = group_find(g, d, &pos);
	if (id < 0)
		return -1;
	if (!id) {
		for (i = 0; i < ARRAY_SIZE(fd_ops_table) && !ops; i++)
			if ((!(d->fi.flags & O_PATH) || fd_ops_table[i] == &opath_fd_ops) &&
			    fd_ops_table[i]->match(d))
				ops = fd_ops_table[i];
		if (ctx->pipes_scanned < 0) {
			pr_err("pid %d fd %d (%s): cannot tell whether this pipe's other end is in "
			       "the tree\n",
			       d->pid, d->fd, d->link);
			return -1;
		}
		if (!ops) {
			pr_err("pid %d fd %d (%s): %s\n", d->pid, d->fd, d->link,
			       unsupported_reason(d));
			return -1;
		}
		id = ++ctx->next_file_id;
		fe.id = id;
		fe.type = ops->type;
		fe.flags = d->fi.flags & ~O_CLOEXEC;
		fe.path = d->link;
		fe.has_dev = fe.has_ino = fe.has_mode = true;
		fe.dev = d->st.st_dev;
		fe.ino = d->st.st_ino;
		fe.mode = d->st.st_mode;
		if (ops->type == FILE_TYPE__FILE_EXT)
			fe.has_dev = fe.has_ino = false;
		ret = ops->dump(d, &fe) || img_write_msg(&ctx->w, IMG_FILE, &fe.base) ? -1 : 0;
		if (ops->release)
			ops->release(&fe);
		free(fe.ext_key);
		free(fe.timerfd);
		for (i = 0; i < fe.n_epoll; i++)
			free(fe.epoll[i]);
		free(fe.epoll);
		for (i = 0; i < fe.n_inotify; i++)
			inotify_watch__free_unpacked(fe.inotify[i], NULL);
		free(fe.inotify);
		if (fe.fanotify)
			fanotify_entry__free_unpacked(fe.fanotify, NULL);
		if (ret)
			return -1;
		group_insert(g, pos, d, (uint32_t)id);
		if (flock_dump_fd(d, id, true))
			return -1;
	} else if (flock_dump_fd(d, id, false)) {
		return -1;
	}
	fde.file_id = id;
	return img_write_msg(&ctx->w, IMG_FD, &fde.base);
}

/* One fd: its link, a duplicate of it in stasis, its fdinfo; then save it. */
static int dump_fd_at(struct dump_ctx *ctx, pid_t pid, int pidfd, int fd_dir, int info_dir,
		      const char *name)
{
	struct fd_dump d = { .ctx = ctx, .pid = pid, .fd = atoi(name), .lfd = -1 };
	char *info = NULL;
	ssize_t n;
	int ret = -1;

	n = readlinkat(fd_dir, name, d.link, sizeof(d.link) - 1);
	if (n < 0) {
		pr_perror("pid %d: cannot read fd %d", pid, d.fd);
		return -1;
	}
	d.link[n] = '\0';
	d.lfd = syscall(__NR_pidfd_getfd, pidfd, d.fd, 0);
	if (d.lfd < 0) {
		pr_perror("pid %d fd %d: pidfd_getfd", pid, d.fd);
		return -1;
	}
	info = read_file_at(info_dir, name, NULL);
	if (!info) {
		pr_perror("cannot read /proc/%d/fdinfo/%d", pid, d.fd);
		goto out;
	}
	d.fdinfo = info;
	ret = dump_one_fd(ctx, &d);
out:
	free(info);
	close(d.lfd);
	return ret;
}

static int files_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	int pidfd, info_dir = -1, ret = -1;
	struct dirent *de;
	char path[64];
	DIR *dir = NULL;

	pidfd = syscall(__NR_pidfd_open, dt->pid, 0);
	if (pidfd < 0) {
		pr_perror("pid %d: pidfd_open", dt->pid);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", dt->pid);
	info_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/fd", dt->pid);
	dir = info_dir < 0 ? NULL : opendir(path);
	if (!dir) {
		pr_perror("cannot open %s", path);
		goto out;
	}
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.' &&
		    dump_fd_at(ctx, dt->pid, pidfd, dirfd(dir), info_dir, de->d_name))
			goto out;
	ret = 0;
out:
	if (dir)
		closedir(dir);
	if (info_dir >= 0)
		close(info_dir);
	close(pidfd);
	return ret;
}

/*
 * Call fn(ctx, pid, fd, path of /proc/PID/fd/FD) for every fd of every
 * live task of the tree: the pre-scans that must see all ends of an
 * object (pipes, pty masters) before the first one is saved.  fn returns
 * 0 to go on, -1 to stop with an error.
 */
int files_for_each_tree_fd(struct dump_ctx *ctx, tree_fd_fn fn)
{
	size_t i;

	for (i = 0; i < ctx->ntasks; i++) {
		pid_t pid = ctx->tasks[i].pid;
		char path[64], fd_path[64 + 256];
		struct dirent *de;
		int ret = 0;
		DIR *d;

		if (ctx->tasks[i].zombie)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		d = opendir(path);
		if (!d) {
			pr_perror("cannot list the fds of %d", pid);
			return -1;
		}
		while (!ret && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(fd_path, sizeof(fd_path), "%s/%s", path, de->d_name);
			ret = fn(ctx, pid, atoi(de->d_name), fd_path);
		}
		closedir(d);
		if (ret)
			return -1;
	}
	return 0;
}

/* -------------------------------------------------------------- restore */

int files_max_fd(struct rst_task *t)
{
	int m = 2;
	size_t i;

	for (i = 0; i < t->nfds; i++)
		m = max(m, (int)t->fds[i]->fd);
	return m;
}

/* Close everything the child inherited that is neither a target fd nor ours. */
static int close_strays(struct rst_ctx *c)
{
	int max_fd = files_max_fd(c->t);
	unsigned char *target = xzalloc(max_fd + 1);
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	size_t i;
	int dfd;

	if (!dir) {
		pr_perror("cannot list my fds");
		free(target);
		return -1;
	}
	for (i = 0; i < c->t->nfds; i++)
		target[c->t->fds[i]->fd] = 1;
	dfd = dirfd(dir);
	while ((de = readdir(dir))) {
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd == dfd || (fd <= max_fd && target[fd]) ||
		    (fd >= c->svc_base && fd < c->svc_end))
			continue;
		close(fd);
	}
	closedir(dir);
	free(target);
	return 0;
}

/*
 * In the child, before it forks its own children: open every description
 * this task uses at shared_base + file id, unless its parent left it there
 * already.  Children forked next inherit them, so a description shared
 * between processes stays one description.  Inodes of memfds and deleted
 * files go first: the descriptions on them are reopened from them.
 */
static bool is_inode_entry(const FileEntry *fe)
{
	return fe && (fe->type == FILE_TYPE__FILE_MEMFD || fe->type == FILE_TYPE__FILE_GHOST);
}

static int open_shared_one(struct rst_ctx *c, uint32_t id)
{
	const FileEntry *fe = image_file(c->img, id);
	const struct fd_ops *ops = fe ? ops_by_type(fe->type) : NULL;
	int slot = c->shared_base + id, fd;

	if (!ops) {
		pr_err("pid %u: image names an unknown file %u\n", c->t->te->pid, id);
		return -1;
	}
	if (fcntl(slot, F_GETFD) >= 0 || tty_open_later(c, fe))
		return 0; /* placed already (the other end of a pipe), or later */
	fd = ops->open(c, fe);
	if (fd < 0)
		return -1;
	if (move_fd(fd, slot) < 0) {
		pr_perror("cannot place file %u at fd %d", id, slot);
		close(fd);
		return -1;
	}
	return flock_restore_file(c, fe, slot);
}

static int files_open_shared(struct rst_ctx *c)
{
	struct rst_task *t = c->t;
	size_t i;
	int pass;

	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < t->n_open; i++)
			if (is_inode_entry(image_file(c->img, t->open_ids[i])) == (pass == 0) &&
			    open_shared_one(c, t->open_ids[i]))
				return -1;
	return 0;
}

/* An end of a pipe or FIFO: every end of one pipe is opened by one task. */
static bool is_pipe_end(const FileEntry *fe)
{
	return fe->type == FILE_TYPE__FILE_PIPE || fe->type == FILE_TYPE__FILE_FIFO;
}

struct plan_group {
	FileType type;
	uint64_t group;
	size_t file;
};

static int plan_group_cmp(const void *a, const void *b)
{
	const struct plan_group *x = a, *y = b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return x->group < y->group ? -1 : x->group > y->group;
}

static struct rst_task *lca(struct rst_task *a, struct rst_task *b)
{
	if (!a)
		return b;
	while (a->depth > b->depth)
		a = a->parent;
	while (b->depth > a->depth)
		b = b->parent;
	while (a != b) {
		a = a->parent;
		b = b->parent;
	}
	return a;
}

/*
 * Files opened together (ops->group, e.g. connected unix sockets; pipes
 * have their own table): every file of a group gets the lowest common
 * ancestor of the group's users.  Sorted by group, so O(n log n).
 */
static void plan_groups(struct image *img, struct rst_task **by_file)
{
	struct plan_group *g = xmalloc(img->nfiles * sizeof(*g) + 1);
	size_t i, j, k, n = 0;

	for (i = 0; i < img->nfiles; i++) {
		const FileEntry *fe = img->files[i];
		const struct fd_ops *ops = ops_by_type(fe->type);
		uint64_t id =
		    ops && ops->group && fe->type != FILE_TYPE__FILE_PIPE ? ops->group(fe) : 0;

		if (id)
			g[n++] = (struct plan_group){ fe->type, id, i };
	}
	sort_array(g, n, sizeof(*g), plan_group_cmp);
	for (i = 0; i < n; i = j) {
		struct rst_task *opener = NULL;

		for (j = i; j < n && !plan_group_cmp(&g[i], &g[j]); j++)
			if (by_file[g[j].file])
				opener = lca(opener, by_file[g[j].file]);
		for (k = i; k < j; k++)
			by_file[g[k].file] = opener;
	}
	free(g);
}

/*
 * Decide which task opens each file: the lowest common ancestor of every
 * task that uses it (for a pipe, of both ends; for a group of files, such
 * as connected unix sockets, of every file of the group), so that all of
 * them inherit the one open file description.  One pass over every fd.
 */
static int files_plan(struct image *img, const struct restore_opts *o)
{
	struct rst_task **by_file = xzalloc(img->nfiles * sizeof(*by_file) + 1);
	struct rst_task **by_pipe = xzalloc(img->npipes * sizeof(*by_pipe) + 1);
	size_t i, j;

	for (i = 0; i < img->ntasks; i++) {
		struct rst_task *t = &img->tasks[i];

		for (j = 0; j < t->nfds; j++) {
			long f = image_file_index(img, t->fds[j]->file_id);
			const FileEntry *fe = f < 0 ? NULL : img->files[f];
			long p = fe && is_pipe_end(fe) ? image_pipe_index(img, fe->pipe_id) : -1;

			if (p >= 0)
				by_pipe[p] = lca(by_pipe[p], t);
			else if (f >= 0)
				by_file[f] = lca(by_file[f], t);
			/* an fd of a memfd or deleted file also uses its inode entry */
			f = fe && fe->has_inode_file ? image_file_index(img, fe->inode_file) : -1;
			if (f >= 0)
				by_file[f] = lca(by_file[f], t);
		}
		/* and so does a mapping of it */
		for (j = 0; t->mm && j < t->mm->n_files; j++) {
			const MappedFile *m = t->mm->files[j];
			long f = m->has_fsobj_file ? image_file_index(img, m->fsobj_file) : -1;

			if (f >= 0)
				by_file[f] = lca(by_file[f], t);
		}
	}
	/* a pty master is opened above every user of its slave and its session leader */
	for (i = 0; i < img->nfiles; i++) {
		long m = tty_master_index(img, img->files[i]);
		struct rst_task *leader = tty_session_leader(img, img->files[i]);

		if (m >= 0 && by_file[i])
			by_file[m] = lca(by_file[m], by_file[i]);
		if (leader)
			by_file[i] = lca(by_file[i], leader);
	}
	plan_groups(img, by_file);
	for (i = 0; i < img->nfiles; i++) {
		FileEntry *fe = img->files[i];
		long p = is_pipe_end(fe) ? image_pipe_index(img, fe->pipe_id) : -1;
		struct rst_task *opener = p >= 0 ? by_pipe[p] : by_file[i];

		if (!opener)
			continue;
		opener->open_ids =
		    xrealloc(opener->open_ids, (opener->n_open + 1) * sizeof(*opener->open_ids));
		opener->open_ids[opener->n_open++] = fe->id;
	}
	free(by_file);
	free(by_pipe);
	return 0;
}

/* In the child, after forking: install the fd table, drop everything else. */
static int files_restore_child(struct rst_ctx *c)
{
	struct rst_task *t = c->t;
	size_t i;

	for (i = 0; i < t->nfds; i++) {
		FdEntry *f = t->fds[i];

		if (dup3(c->shared_base + f->file_id, f->fd, f->cloexec ? O_CLOEXEC : 0) < 0) {
			pr_perror("pid %u: cannot install fd %u", t->te->pid, f->fd);
			return -1;
		}
	}
	return close_strays(c);
}

/* Service fds go above every fd of the task. */
static int files_restore_prepare(struct rst_ctx *c)
{
	c->svc_base = max(c->svc_base, files_max_fd(c->t) + 1);
	return 0;
}

const struct res_ops files_res = {
	.name = "files",
	.dump_write = files_dump,
	.dump_fini = files_dump_fini,
	.restore_check = files_plan,
	.restore_prepare = files_restore_prepare,
	.child_early = files_open_shared,
	.child = files_restore_child,
};
