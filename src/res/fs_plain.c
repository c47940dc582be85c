/*
 * The plain fd kinds: files reached by their path (regular files,
 * directories, stateless character devices such as /dev/null, O_PATH
 * fds) and objects outside the tree (the caller's terminal, a pipe from a
 * parent), reconnected at restore to the restorer's fds 0-2 or to one
 * passed with --inherit-fd.
 *
 * A file must be the one of the dump when it is opened again: same inode,
 * and for a regular file the same size; --skip-file-check restores anyway
 * (with a warning).
 */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "proc.h"
#include "ns.h"
#include "util.h"

#define OPEN_FLAGS_DROP (O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC)

static bool path_is_plain(const struct fd_dump *d)
{
	return d->link[0] == '/' && !strstr(d->link, " (deleted)");
}

/* A file of the tree's own /proc: refused (see proc_path_of_tree). */
static int refuse_tree_proc(const struct fd_dump *d)
{
	pid_t of = proc_path_of_tree(d->ctx, d->link);

	if (!of)
		return 0;
	pr_err("pid %d fd %d: %s is a /proc file of pid %d of the tree; not supported\n", d->pid,
	       d->fd, d->link, of);
	return -1;
}

/* The kind's path_file_entry, with what every file by path records. */
static PathFileEntry *path_entry(const struct fd_dump *d, FileEntry *fe, PathFileEntry **slot)
{
	PathFileEntry *pf = xmalloc(sizeof(*pf));

	path_file_entry__init(pf);
	/* on a file system the restore makes anew (the tree's tmpfs): other numbers */
	pf->has_dev = pf->has_ino = !mnt_dump_dev_rebuilt(d->st.st_dev);
	pf->has_mode = true;
	pf->dev = d->st.st_dev;
	pf->ino = d->st.st_ino;
	pf->mode = d->st.st_mode;
	*slot = pf;
	return pf;
}

static int check_same_file(struct rst_ctx *c, const FileEntry *fe, const PathFileEntry *pf,
			   const struct stat *st)
{
	bool force = c->opts->skip_file_check;

	if (pf->has_ino && (st->st_ino != pf->ino || st->st_dev != pf->dev)) {
		if (!force) {
			pr_err("pid %u: %s was replaced by another file since the dump (restore "
			       "--skip-file-check to use it anyway)\n",
			       c->t->te->pid, fe->path);
			return -1;
		}
		pr_warn("pid %u: %s was replaced since the dump; using it anyway\n", c->t->te->pid,
			fe->path);
	}
	if (pf->has_size && S_ISREG(st->st_mode) && (uint64_t)st->st_size != pf->size) {
		if (!force) {
			pr_err("pid %u: %s changed size since the dump (%llu bytes, now %llu; "
			       "restore --skip-file-check to use it anyway)\n",
			       c->t->te->pid, fe->path, (unsigned long long)pf->size,
			       (unsigned long long)st->st_size);
			return -1;
		}
		pr_warn("pid %u: %s changed size since the dump; using it anyway\n", c->t->te->pid,
			fe->path);
	}
	return 0;
}

static int open_checked(struct rst_ctx *c, const FileEntry *fe, const PathFileEntry *pf, int flags)
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
		goto err;
	}
	if (check_same_file(c, fe, pf, &st))
		goto err;
	if (pf->has_rdev && st.st_rdev != pf->rdev) {
		pr_err("pid %u: device %s is not the same device as at dump time\n", c->t->te->pid,
		       fe->path);
		goto err;
	}
	return fd;
err:
	close(fd);
	return -1;
}

/* Open by path, then seek to the saved offset. */
static int open_at_pos(struct rst_ctx *c, const FileEntry *fe, const PathFileEntry *pf)
{
	int fd = open_checked(c, fe, pf, fe->flags & ~OPEN_FLAGS_DROP);

	if (fd >= 0 && pf->has_pos && lseek(fd, pf->pos, SEEK_SET) != (off_t)pf->pos) {
		pr_perror("pid %u: cannot seek %s to %llu", c->t->te->pid, fe->path,
			  (unsigned long long)pf->pos);
		close(fd);
		return -1;
	}
	return fd;
}

/* ----- regular files */

static bool reg_match(const struct fd_dump *d)
{
	return S_ISREG(d->st.st_mode) && path_is_plain(d);
}

/*
 * A normal user restores what it dumps: a file it could not open again
 * (its mode or a directory on the way keeps the user out; the task got
 * the fd from elsewhere, or the mode changed since) is refused now, while
 * the original runs.  A file of the user's own uid and gid is not checked:
 * the restore opens it with CAP_DAC_OVERRIDE in the user namespace it
 * makes, which covers the ids it maps.
 */
static int check_reopen(const struct fd_dump *d)
{
	static const int want[] = { [O_RDONLY] = R_OK, [O_WRONLY] = W_OK, [O_RDWR] = R_OK | W_OK };
	int acc = d->fi.flags & O_ACCMODE;
	char buf[PATH_MAX];

	if (geteuid() == 0 || acc > O_RDWR ||
	    (d->st.st_uid == geteuid() && d->st.st_gid == getegid()))
		return 0;
	if (!faccessat(AT_FDCWD, mnt_dump_path(d->link, buf, sizeof(buf)), want[acc], AT_EACCESS))
		return 0;
	pr_perror("pid %d fd %d: %s cannot be opened again by uid %u for the restore", d->pid,
		  d->fd, d->link, (unsigned int)geteuid());
	return -1;
}

static int reg_dump(const struct fd_dump *d, FileEntry *fe)
{
	PathFileEntry *pf;

	if (refuse_tree_proc(d) || check_reopen(d))
		return -1;
	pf = path_entry(d, fe, &fe->reg);

	pf->has_pos = true;
	pf->pos = d->fi.pos;
	/* a log opened O_WRONLY|O_APPEND may grow between dump and restore */
	if ((d->fi.flags & O_ACCMODE) != O_WRONLY || !(d->fi.flags & O_APPEND)) {
		pf->has_size = true;
		pf->size = d->st.st_size;
	}
	return 0;
}

static int reg_open(struct rst_ctx *c, const FileEntry *fe)
{
	return open_at_pos(c, fe, fe->reg);
}

const struct fd_ops reg_fd_ops = {
	.type = FILE_TYPE__FILE_REG,
	.kind = FILE_ENTRY__KIND_REG,
	.name = "file",
	.match = reg_match,
	.dump = reg_dump,
	.lock = &flock_fd_lock,
	.open = reg_open,
};

/* ----- directories */

static bool dir_match(const struct fd_dump *d)
{
	return S_ISDIR(d->st.st_mode) && path_is_plain(d);
}

static int dir_dump(const struct fd_dump *d, FileEntry *fe)
{
	PathFileEntry *pf;

	if (refuse_tree_proc(d) || check_reopen(d))
		return -1;
	pf = path_entry(d, fe, &fe->dir);

	pf->has_pos = true;
	pf->pos = d->fi.pos;
	return 0;
}

static int dir_open(struct rst_ctx *c, const FileEntry *fe)
{
	return open_at_pos(c, fe, fe->dir);
}

const struct fd_ops dir_fd_ops = {
	.type = FILE_TYPE__FILE_DIR,
	.kind = FILE_ENTRY__KIND_DIR,
	.name = "directory",
	.match = dir_match,
	.dump = dir_dump,
	.lock = &flock_fd_lock,
	.open = dir_open,
};

/* ----- character devices without state: /dev/null, zero, random, ... */

static bool chr_match(const struct fd_dump *d)
{
	/* the mem class: null zero full random urandom kmsg */
	return S_ISCHR(d->st.st_mode) && path_is_plain(d) && major(d->st.st_rdev) == 1;
}

static int chr_dump(const struct fd_dump *d, FileEntry *fe)
{
	PathFileEntry *pf = path_entry(d, fe, &fe->chr);

	pf->has_rdev = true;
	pf->rdev = d->st.st_rdev;
	return 0;
}

static int chr_open(struct rst_ctx *c, const FileEntry *fe)
{
	return open_checked(c, fe, fe->chr, fe->flags & ~OPEN_FLAGS_DROP);
}

const struct fd_ops chr_fd_ops = {
	.type = FILE_TYPE__FILE_CHR,
	.kind = FILE_ENTRY__KIND_CHR,
	.name = "device",
	.match = chr_match,
	.dump = chr_dump,
	.lock = &flock_fd_lock,
	.open = chr_open,
};

/* ----- O_PATH fds: a place in the file system, no I/O */

static bool opath_match(const struct fd_dump *d)
{
	return (d->fi.flags & O_PATH) && path_is_plain(d);
}

static int opath_dump(const struct fd_dump *d, FileEntry *fe)
{
	if (refuse_tree_proc(d))
		return -1;
	path_entry(d, fe, &fe->opath);
	return 0;
}

static int opath_open(struct rst_ctx *c, const FileEntry *fe)
{
	/* an O_PATH fd on a symlink (O_NOFOLLOW) shows the link itself */
	int flags = O_PATH | O_CLOEXEC | (S_ISLNK(fe->opath->mode) ? O_NOFOLLOW : 0) |
		    (fe->flags & O_DIRECTORY);

	return open_checked(c, fe, fe->opath, flags);
}

const struct fd_ops opath_fd_ops = {
	.type = FILE_TYPE__FILE_OPATH,
	.kind = FILE_ENTRY__KIND_OPATH,
	.name = "O_PATH fd",
	.o_path = true,
	.match = opath_match,
	.dump = opath_dump,
	.open = opath_open,
};

/* ----- objects outside the tree */

static bool ext_match(const struct fd_dump *d)
{
	return tty_is_terminal(&d->st) || S_ISFIFO(d->st.st_mode);
}

/* Does task pid hold the open file description of its fd at one of fds 0-2? */
static bool at_stdio(pid_t pid, int fd)
{
	int k;

	if (fd <= 2)
		return true;
	for (k = 0; k <= 2; k++)
		if (syscall(SYS_kcmp, pid, pid, KCMP_FILE, fd, k) == 0)
			return true;
	return false;
}

/*
 * An end of a pipe or a terminal outside the tree comes back as the
 * restorer's fd 0-2 (or /dev/null with -d), with a warning, only at fds
 * 0-2; anywhere else only what --inherit-fd gives, which the user says at
 * dump with --ext-files.
 */
static int ext_dump(const struct fd_dump *d, FileEntry *fe)
{
	ExtFileEntry *e = xmalloc(sizeof(*e));

	ext_file_entry__init(e);
	if (tty_is_terminal(&d->st))
		e->key = xsprintf("tty:%s", d->link);
	else if (d->link[0] == '/')
		e->key = xsprintf("fifo:%s", d->link);
	else
		e->key = xstrdup(d->link);
	fe->ext = e;
	if (!d->ctx->opts->ext_files && !at_stdio(d->pid, d->fd)) {
		pr_err("pid %d fd %d: %s has its other end outside the tree (or is a terminal "
		       "outside it); dump with --ext-files and restore with --inherit-fd "
		       "fd[N]:%s\n",
		       d->pid, d->fd, e->key, e->key);
		return -1;
	}
	return 0;
}

static const char *ext_key(const FileEntry *fe, char *buf, size_t size)
{
	return fe->ext->key;
}

static int ext_open(struct rst_ctx *c, const FileEntry *fe)
{
	const char *key = fe->ext->key;
	size_t i;
	int fd = inherited_fd(c, key);

	if (fd >= 0)
		return fd;
	/* reconnect to our stdin/stdout/stderr by the fd it had among 0..2 */
	for (i = 0; i < c->t->nfds; i++) {
		const FdEntry *f = c->t->fds[i];

		if (f->file_id != fe->id || f->fd > 2)
			continue;
		if (c->opts->detached) {
			pr_warn("pid %u fd %u: %s is outside the tree: now /dev/null\n",
				c->t->te->pid, f->fd, key);
			return open("/dev/null", (fe->flags & O_ACCMODE) | O_CLOEXEC);
		}
		pr_warn("pid %u fd %u: %s is outside the tree: now stasis's fd %u\n", c->t->te->pid,
			f->fd, key, f->fd);
		return fcntl(svc_fd(c, SVC_STDIN) + f->fd, F_DUPFD_CLOEXEC, 0);
	}
	pr_err("pid %u: %s is outside the tree and not one of fds 0-2; pass --inherit-fd "
	       "fd[N]:%s\n",
	       c->t->te->pid, key, key);
	return -1;
}

const struct fd_ops ext_fd_ops = {
	.type = FILE_TYPE__FILE_EXT,
	.kind = FILE_ENTRY__KIND_EXT,
	.name = "external",
	.match = ext_match,
	.dump = ext_dump,
	.lock = &flock_fd_lock,
	.open = ext_open,
	.inherit_key = ext_key,
};
