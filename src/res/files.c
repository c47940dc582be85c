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
	fe->has_size = true;
	fe->size = d->st.st_size;
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
	if (fstat(fd, &st) || (fe->has_ino && (st.st_ino != fe->ino || st.st_dev != fe->dev))) {
		pr_err("pid %u: %s was replaced by another file since the dump\n", c->t->te->pid,
		       fe->path);
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
	int fd = open_checked(c, fe, fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC));

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

static int ext_open(struct rst_ctx *c, const FileEntry *fe)
{
	const struct restore_opts *o = c->opts;
	size_t i;
	int k;

	for (k = 0; k < o->n_inherit; k++)
		if (!strcmp(o->inherit[k].key, fe->ext_key))
			return fcntl(svc_fd(c, SVC_FILES) + c->t->mm->n_files + k, F_DUPFD_CLOEXEC,
				     0);
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
	&reg_fd_ops,	  &dir_fd_ops,	   &chr_fd_ops,	  &pipe_fd_ops, &eventfd_fd_ops,
	&signalfd_fd_ops, &timerfd_fd_ops, &epoll_fd_ops, &ext_fd_ops,
};

const char *fdinfo_field(const struct fd_dump *d, const char *key, char *buf, size_t size)
{
	char name[32], *info;
	const char *v;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	info = read_proc(d->pid, name, NULL);
	v = info ? status_field(info, key) : NULL;
	if (v)
		snprintf(buf, size, "%.*s", (int)strcspn(v, "\n"), v);
	free(info);
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
		return "O_PATH fds are not supported yet";
	if (!strncmp(d->link, "socket:", 7))
		return "sockets are not supported yet";
	if (!strncmp(d->link, "anon_inode:", 11))
		return "this kind of fd is not supported yet";
	if (strstr(d->link, " (deleted)"))
		return "deleted files are not supported yet";
	if (S_ISFIFO(d->st.st_mode))
		return "FIFOs are not supported yet";
	if (S_ISCHR(d->st.st_mode) || S_ISBLK(d->st.st_mode))
		return "this device is not supported";
	return "this kind of file is not supported";
}

struct file_seen {
	uint32_t id;
	pid_t pid;
	int fd;
	dev_t dev;
	ino_t ino;
	unsigned int accmode;
};

static uint32_t find_shared(const struct file_seen *seen, size_t n, const struct fd_dump *d)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (seen[i].dev == d->st.st_dev && seen[i].ino == d->st.st_ino &&
		    syscall(SYS_kcmp, seen[i].pid, d->pid, KCMP_FILE, seen[i].fd, d->fd) == 0)
			return seen[i].id;
	return 0;
}

static int dump_one_fd(struct dump_ctx *ctx, struct fd_dump *d)
{
	int ret;
	struct file_seen **seen = &ctx->seen;
	size_t *nseen = &ctx->nseen;
	FdEntry fde = FD_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	const struct fd_ops *ops = NULL;
	size_t i;
	uint32_t id;

	if (proc_parse_fdinfo(d->pid, d->fd, &d->fi) || fstat(d->lfd, &d->st))
		return -1;
	fde.pid = d->pid;
	fde.fd = d->fd;
	fde.cloexec = !!(d->fi.flags & O_CLOEXEC);
	id = find_shared(*seen, *nseen, d);
	if (!id) {
		for (i = 0; i < ARRAY_SIZE(fd_ops_table) && !ops; i++)
			if (!(d->fi.flags & O_PATH) && fd_ops_table[i]->match(d))
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
		free(fe.ext_key);
		free(fe.timerfd);
		for (i = 0; i < fe.n_epoll; i++)
			free(fe.epoll[i]);
		free(fe.epoll);
		if (ret)
			return -1;
		*seen = xrealloc(*seen, (*nseen + 1) * sizeof(**seen));
		(*seen)[(*nseen)++] =
		    (struct file_seen){ id,	      d->pid,	    d->fd,
					d->st.st_dev, d->st.st_ino, d->fi.flags & O_ACCMODE };
	}
	fde.file_id = id;
	return img_write_msg(&ctx->w, IMG_FD, &fde.base);
}

int files_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct dirent *de;
	char path[64];
	int pidfd, ret = -1;
	DIR *dir;

	pidfd = syscall(__NR_pidfd_open, dt->pid, 0);
	if (pidfd < 0) {
		pr_perror("pid %d: pidfd_open", dt->pid);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", dt->pid);
	dir = opendir(path);
	if (!dir) {
		pr_perror("cannot open %s", path);
		close(pidfd);
		return -1;
	}
	while ((de = readdir(dir))) {
		struct fd_dump d = { .ctx = ctx, .pid = dt->pid };
		char name[32];

		if (de->d_name[0] == '.')
			continue;
		d.fd = atoi(de->d_name);
		snprintf(name, sizeof(name), "fd/%d", d.fd);
		if (readlink_proc(dt->pid, name, d.link, sizeof(d.link)) < 0) {
			pr_perror("pid %d: cannot read fd %d", dt->pid, d.fd);
			goto out;
		}
		d.lfd = syscall(__NR_pidfd_getfd, pidfd, d.fd, 0);
		if (d.lfd < 0) {
			pr_perror("pid %d fd %d: pidfd_getfd", dt->pid, d.fd);
			goto out;
		}
		if (dump_one_fd(ctx, &d)) {
			close(d.lfd);
			goto out;
		}
		/* keep the duplicate open: kcmp of later fds compares against it */
		close(d.lfd);
	}
	ret = 0;
out:
	closedir(dir);
	close(pidfd);
	return ret;
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

static bool fd_is_target(const struct rst_task *t, int fd)
{
	size_t i;

	for (i = 0; i < t->nfds; i++)
		if ((int)t->fds[i]->fd == fd)
			return true;
	return false;
}

/* Close everything the child inherited that is neither a target fd nor ours. */
static int close_strays(struct rst_ctx *c, int svc_end)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int dfd;

	if (!dir) {
		pr_perror("cannot list my fds");
		return -1;
	}
	dfd = dirfd(dir);
	while ((de = readdir(dir))) {
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd == dfd || fd_is_target(c->t, fd) || (fd >= c->svc_base && fd < svc_end))
			continue;
		close(fd);
	}
	closedir(dir);
	return 0;
}

/*
 * In the child, before it forks its own children: open every description
 * this task uses at shared_base + file id, unless its parent left it there
 * already.  Children forked next inherit them, so a description shared
 * between processes stays one description.
 */
int files_open_shared(struct rst_ctx *c)
{
	struct rst_task *t = c->t;
	size_t i;

	for (i = 0; i < t->n_open; i++) {
		const FileEntry *fe = image_file(c->img, t->open_ids[i]);
		const struct fd_ops *ops = fe ? ops_by_type(fe->type) : NULL;
		int slot = c->shared_base + t->open_ids[i], fd;

		if (!ops) {
			pr_err("pid %u: image names an unknown file %u\n", t->te->pid,
			       t->open_ids[i]);
			return -1;
		}
		if (fcntl(slot, F_GETFD) >= 0)
			continue; /* placed already (the other end of a pipe) */
		fd = ops->open(c, fe);
		if (fd < 0)
			return -1;
		if (move_fd(fd, slot) < 0) {
			pr_perror("cannot place file %u at fd %d", t->open_ids[i], slot);
			close(fd);
			return -1;
		}
	}
	return 0;
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
 * Decide which task opens each file: the lowest common ancestor of every
 * task that uses it (for a pipe, of both ends), so that all of them
 * inherit the one open file description.
 */
int files_plan(struct image *img)
{
	size_t i, j, k;

	for (i = 0; i < img->nfiles; i++) {
		FileEntry *fe = img->files[i];
		struct rst_task *opener = NULL;

		for (j = 0; j < img->ntasks; j++) {
			struct rst_task *t = &img->tasks[j];

			for (k = 0; k < t->nfds; k++) {
				FileEntry *u = image_file(img, t->fds[k]->file_id);

				if (u && (u == fe || (fe->type == FILE_TYPE__FILE_PIPE &&
						      u->type == FILE_TYPE__FILE_PIPE &&
						      u->pipe_id == fe->pipe_id))) {
					opener = lca(opener, t);
					break;
				}
			}
		}
		if (!opener)
			continue;
		opener->open_ids =
		    xrealloc(opener->open_ids, (opener->n_open + 1) * sizeof(*opener->open_ids));
		opener->open_ids[opener->n_open++] = fe->id;
	}
	return 0;
}

/* In the child, after forking: install the fd table, drop everything else. */
int files_restore_child(struct rst_ctx *c, int svc_end)
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
	return close_strays(c, svc_end);
}
