/*
 * inotify: every watch of an inotify instance with its mask and its watch
 * descriptor.  /proc/PID/fdinfo lists each watch with the inode's file
 * handle; the dump opens the handle (open_by_handle_at on the watch's
 * filesystem) to learn a path.  Restore creates a new instance and adds
 * the watches in wd order, each after INOTIFY_IOC_SETNEXTWD, so every
 * watch gets its original wd (the kernel hands wds out cyclically from
 * that cursor).  Unread events cannot be read back without consuming
 * them: an instance with a non-empty queue is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

#ifndef INOTIFY_IOC_SETNEXTWD
#define INOTIFY_IOC_SETNEXTWD _IOW('I', 0, int)
#endif

struct watch_info {
	unsigned int wd, mask;
	struct fs_handle fh;
};

static bool inotify_match(const struct fd_dump *d)
{
	return !strcmp(d->link, "anon_inode:inotify");
}

int fs_mount_path(unsigned int sdev, char *buf, size_t size)
{
	char *mi = read_proc(getpid(), "mountinfo", NULL), *line, *save = NULL;
	char root[PATH_MAX], mnt[PATH_MAX];
	unsigned int maj, min;

	buf[0] = '\0';
	for (line = mi ? strtok_r(mi, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%*u %*u %u:%u %4095s %4095s", &maj, &min, root, mnt) != 4 ||
		    maj != (sdev >> 20) || min != (sdev & 0xfffff))
			continue;
		if (!buf[0] || !strcmp(root, "/"))
			snprintf(buf, size, "%s", mnt);
		if (!strcmp(root, "/"))
			break;
	}
	free(mi);
	return buf[0] ? 0 : -1;
}

char *fs_handle_path(const struct fs_handle *h, struct stat *st)
{
	struct file_handle *fh = xzalloc(sizeof(*fh) + MAX_HANDLE_SZ);
	char link[64], path[PATH_MAX], *ret = NULL;
	int mfd = -1, fd = -1;
	unsigned int i;
	ssize_t n;

	if (fs_mount_path(h->sdev, path, sizeof(path)) || h->hbytes > MAX_HANDLE_SZ ||
	    strlen(h->handle) < 2 * h->hbytes)
		goto out;
	/* open_by_handle_at wants a real fd of the filesystem, not O_PATH */
	mfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		goto out;
	fh->handle_bytes = h->hbytes;
	fh->handle_type = h->htype;
	for (i = 0; i < h->hbytes; i++)
		sscanf(h->handle + 2 * i, "%2hhx", &fh->f_handle[i]);
	fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st) || st->st_ino != h->ino)
		goto out;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0 || path[0] != '/')
		goto out;
	path[n] = '\0';
	if (!strstr(path, " (deleted)"))
		ret = xstrdup(path);
out:
	if (fd >= 0)
		close(fd);
	if (mfd >= 0)
		close(mfd);
	free(fh);
	return ret;
}

/* Does path name the very inode of h (its handle, generation and all)? */
static bool handle_is(const char *path, const struct fs_handle *h, struct stat *st)
{
	struct file_handle *fh;
	char hex[sizeof(h->handle)];
	unsigned int i;
	int mnt;
	bool ok;

	if (lstat(path, st) || st->st_ino != h->ino || major(st->st_dev) != (h->sdev >> 20) ||
	    minor(st->st_dev) != (h->sdev & 0xfffff))
		return false;
	fh = xzalloc(sizeof(*fh) + MAX_HANDLE_SZ);
	fh->handle_bytes = MAX_HANDLE_SZ;
	ok = !name_to_handle_at(AT_FDCWD, path, fh, &mnt, 0) && fh->handle_type == (int)h->htype &&
	     fh->handle_bytes == h->hbytes;
	for (i = 0; ok && i < fh->handle_bytes; i++)
		snprintf(hex + 2 * i, 3, "%02x", fh->f_handle[i]);
	ok = ok && !strncasecmp(hex, h->handle, 2 * h->hbytes);
	free(fh);
	return ok;
}

/* dir, and 'depth' levels below it (at most *budget entries looked at) */
static char *search_below(const char *dir, int depth, const struct fs_handle *h, struct stat *st,
			  int *budget)
{
	char path[PATH_MAX], *found = NULL;
	struct dirent *e;
	DIR *dp;

	if (handle_is(dir, h, st))
		return xstrdup(dir);
	if (depth <= 0 || !(dp = opendir(dir)))
		return NULL;
	while (!found && --*budget > 0 && (e = readdir(dp))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", e->d_name) >=
		    (int)sizeof(path))
			continue;
		if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)
			found = search_below(path, depth - 1, h, st, budget);
		else if (handle_is(path, h, st))
			found = xstrdup(path);
	}
	closedir(dp);
	return found;
}

/* The directory a /proc/PID link names (for a file: its directory), or NULL. */
static bool link_dir(pid_t pid, const char *name, char *buf, size_t size)
{
	ssize_t n = readlink_proc(pid, name, buf, size);
	struct stat st;
	char *slash;

	if (n <= 0 || buf[0] != '/' || strstr(buf, " (deleted)"))
		return false;
	if (!stat(buf, &st) && S_ISDIR(st.st_mode))
		return true;
	slash = strrchr(buf, '/');
	if (slash == buf)
		slash[1] = '\0';
	else
		*slash = '\0';
	return true;
}

/*
 * Without CAP_DAC_READ_SEARCH open_by_handle_at is refused (a normal
 * user).  The inode is then looked for where the task names files: its
 * cwd and the directories of its open files, two levels below each, and
 * the cwd's ancestors; a match must give the very handle.  NULL if not
 * found there.
 */
static char *fs_handle_search(pid_t pid, const struct fs_handle *h, struct stat *st)
{
	char dir[PATH_MAX], name[64], *found = NULL, *slash;
	int budget = 20000;
	struct dirent *e;
	DIR *dp;

	if (link_dir(pid, "cwd", dir, sizeof(dir))) {
		found = search_below(dir, 2, h, st, &budget);
		while (!found && (slash = strrchr(dir, '/')) && slash != dir) {
			*slash = '\0';
			found = search_below(dir, 0, h, st, &budget);
		}
	}
	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	dp = found ? NULL : opendir(dir);
	while (dp && !found && budget > 0 && (e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(name, sizeof(name), "fd/%.16s", e->d_name);
		if (link_dir(pid, name, dir, sizeof(dir)))
			found = search_below(dir, 2, h, st, &budget);
	}
	if (dp)
		closedir(dp);
	return found;
}

/* The path of the watched inode, through its file handle. */
static int watch_path(const struct fd_dump *d, const struct watch_info *w, InotifyWatch *iw)
{
	struct stat st;
	int err;

	iw->path = fs_handle_path(&w->fh, &st);
	err = errno;
	if (!iw->path && err == EPERM)
		iw->path = fs_handle_search(d->pid, &w->fh, &st);
	if (!iw->path) {
		pr_err("pid %d fd %d: cannot find the path of inotify watch %u (inode %lu)%s\n",
		       d->pid, d->fd, w->wd, w->fh.ino,
		       err == EPERM ? ": open_by_handle_at needs CAP_DAC_READ_SEARCH, and it is "
				      "not near the task's cwd or its open files"
				    : "");
		return -1;
	}
	iw->ino = st.st_ino;
	iw->dev = st.st_dev;
	return 0;
}

static int watch_cmp(const void *a, const void *b)
{
	const InotifyWatch *x = *(InotifyWatch *const *)a, *y = *(InotifyWatch *const *)b;

	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

static int inotify_dump(const struct fd_dump *d, FileEntry *fe)
{
	char name[32], *info, *line, *save = NULL;
	int queued = 0, ret = 0;
	InotifyEntry *e;

	if (ioctl(d->lfd, FIONREAD, &queued) || queued) {
		pr_err("pid %d fd %d: inotify instance has %d bytes of unread events; they cannot "
		       "be saved without consuming them\n",
		       d->pid, d->fd, queued);
		return -1;
	}
	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	info = read_proc(d->pid, name, NULL);
	if (!info) {
		pr_perror("pid %d fd %d: cannot read its fdinfo", d->pid, d->fd);
		return -1;
	}
	e = fe->inotify = xmalloc(sizeof(*e));
	inotify_entry__init(e);
	for (line = strtok_r(info, "\n", &save); line && !ret; line = strtok_r(NULL, "\n", &save)) {
		struct watch_info w = { 0 };
		InotifyWatch *iw;

		if (strncmp(line, "inotify ", 8))
			continue;
		if (sscanf(line,
			   "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%*x "
			   "fhandle-bytes:%x fhandle-type:%x f_handle:%256s",
			   &w.wd, &w.fh.ino, &w.fh.sdev, &w.mask, &w.fh.hbytes, &w.fh.htype,
			   w.fh.handle) != 7) {
			pr_err("pid %d fd %d: cannot parse inotify watch '%s'\n", d->pid, d->fd,
			       line);
			ret = -1;
			break;
		}
		iw = xmalloc(sizeof(*iw));
		inotify_watch__init(iw);
		iw->wd = w.wd;
		iw->mask = w.mask;
		e->watches = xrealloc(e->watches, (e->n_watches + 1) * sizeof(*e->watches));
		e->watches[e->n_watches++] = iw;
		ret = watch_path(d, &w, iw);
		if (ret)
			iw->path = xstrdup(""); /* freed with the entry */
	}
	free(info);
	sort_array(e->watches, e->n_watches, sizeof(*e->watches), watch_cmp);
	return ret;
}

static int add_watch(struct rst_ctx *c, int fd, const InotifyWatch *iw)
{
	int wd = iw->wd, got;
	struct stat st;

	if (stat(iw->path, &st) || st.st_ino != iw->ino || st.st_dev != iw->dev) {
		pr_err("pid %u: inotify watch %u: %s is gone or was replaced since the dump\n",
		       c->t->te->pid, iw->wd, iw->path);
		return -1;
	}
	if (ioctl(fd, INOTIFY_IOC_SETNEXTWD, wd)) {
		pr_perror("pid %u: cannot choose inotify watch descriptor %d", c->t->te->pid, wd);
		return -1;
	}
	got = inotify_add_watch(fd, iw->path, iw->mask);
	if (got != wd) {
		if (got < 0)
			pr_perror("pid %u: cannot watch %s", c->t->te->pid, iw->path);
		else
			pr_err("pid %u: inotify watch on %s got wd %d instead of %d\n",
			       c->t->te->pid, iw->path, got, wd);
		return -1;
	}
	return 0;
}

static int inotify_open(struct rst_ctx *c, const FileEntry *fe)
{
	int fd = inotify_init1(IN_CLOEXEC | (fe->flags & O_NONBLOCK ? IN_NONBLOCK : 0));
	size_t i;

	if (fd < 0) {
		pr_perror("pid %u: cannot create an inotify instance", c->t->te->pid);
		return -1;
	}
	for (i = 0; i < fe->inotify->n_watches; i++)
		if (add_watch(c, fd, fe->inotify->watches[i])) {
			close(fd);
			return -1;
		}
	return fd;
}

const struct fd_ops inotify_fd_ops = {
	.type = FILE_TYPE__FILE_INOTIFY,
	.kind = FILE_ENTRY__KIND_INOTIFY,
	.name = "inotify instance",
	.match = inotify_match,
	.dump = inotify_dump,
	.lock = &flock_fd_lock,
	.open = inotify_open,
};
