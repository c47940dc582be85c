/*
 * fanotify: a notification-class group with its init flags and every
 * mark (on an inode, a mount or a whole filesystem) with its mask,
 * ignore mask and mark flags, as /proc/PID/fdinfo lists them.  Inode
 * marks are found by their file handle (as inotify watches), mount marks
 * by the mount's path, filesystem marks by a mount of that filesystem.
 * Restore makes a new group and marks the same objects again.
 *
 * Refused: groups of the permission classes (an event being decided
 * cannot be carried over), groups with unread events (reading them would
 * take them), and marks of kinds this code does not know (mount namespace
 * marks).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

enum { MARK_INODE = 1, MARK_MOUNT = 2, MARK_FS = 3 };

#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x200
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x400
#endif

static bool fanotify_match(const struct fd_dump *d)
{
	return !strcmp(d->link, "anon_inode:[fanotify]");
}

/* The mount point of mount id, and the device it shows. */
static int mount_by_id(unsigned int id, char *buf, size_t size, dev_t *dev)
{
	char *mi = read_proc(getpid(), "mountinfo", NULL), *line, *save = NULL;
	char mnt[PATH_MAX];
	unsigned int mid, maj, min;
	int ret = -1;

	for (line = mi ? strtok_r(mi, "\n", &save) : NULL; line && ret;
	     line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "%u %*u %u:%u %*s %4095s", &mid, &maj, &min, mnt) == 4 &&
		    mid == id) {
			snprintf(buf, size, "%s", mnt);
			*dev = makedev(maj, min);
			ret = 0;
		}
	free(mi);
	return ret;
}

/* Parse one mark line into m; a message says why not. */
static int parse_mark(const struct fd_dump *d, const char *line, FanotifyMark *m)
{
	char path[PATH_MAX];
	struct fs_handle h = { 0 };
	struct stat st;
	unsigned int id;
	dev_t dev;

	if (sscanf(line,
		   "fanotify ino:%lx sdev:%x mflags:%x mask:%x ignored_mask:%x "
		   "fhandle-bytes:%x fhandle-type:%x f_handle:%256s",
		   &h.ino, &h.sdev, &m->mflags, &m->mask, &m->ignored_mask, &h.hbytes, &h.htype,
		   h.handle) == 8) {
		m->kind = MARK_INODE;
		m->path = fs_handle_path(&h, &st);
		if (!m->path) {
			pr_err("pid %d fd %d: cannot find the path of the inode of a fanotify mark "
			       "(inode %lu)\n",
			       d->pid, d->fd, h.ino);
			return -1;
		}
		m->has_ino = true;
		m->ino = st.st_ino;
		m->dev = st.st_dev;
		return 0;
	}
	if (sscanf(line, "fanotify mnt_id:%x mflags:%x mask:%x ignored_mask:%x", &id, &m->mflags,
		   &m->mask, &m->ignored_mask) == 4) {
		m->kind = MARK_MOUNT;
		if (mount_by_id(id, path, sizeof(path), &dev) || stat(path, &st) ||
		    st.st_dev != dev) {
			pr_err(
			    "pid %d fd %d: fanotify mark on mount %u, which cannot be reached by "
			    "a path\n",
			    d->pid, d->fd, id);
			return -1;
		}
		m->path = xstrdup(path);
		m->dev = dev;
		return 0;
	}
	if (sscanf(line, "fanotify sdev:%x mflags:%x mask:%x ignored_mask:%x", &h.sdev, &m->mflags,
		   &m->mask, &m->ignored_mask) == 4) {
		m->kind = MARK_FS;
		m->dev = makedev(h.sdev >> 20, h.sdev & 0xfffff);
		if (fs_mount_path(h.sdev, path, sizeof(path)) || stat(path, &st) ||
		    st.st_dev != m->dev) {
			pr_err("pid %d fd %d: fanotify mark on filesystem %u:%u, which is not "
			       "mounted where stasis can see it\n",
			       d->pid, d->fd, major(m->dev), minor(m->dev));
			return -1;
		}
		m->path = xstrdup(path);
		return 0;
	}
	pr_err("pid %d fd %d: fanotify mark of an unknown kind: '%s'\n", d->pid, d->fd, line);
	return -1;
}

static int fanotify_dump(const struct fd_dump *d, FileEntry *fe)
{
	char name[32], *info, *line, *save = NULL;
	FanotifyEntry *e;
	int queued = 0, ret = -1;

	if (ioctl(d->lfd, FIONREAD, &queued) || queued) {
		pr_err("pid %d fd %d: fanotify group has %d bytes of unread events; they cannot be "
		       "saved without consuming them\n",
		       d->pid, d->fd, queued);
		return -1;
	}
	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	info = read_proc(d->pid, name, NULL);
	if (!info) {
		pr_perror("pid %d fd %d: cannot read its fdinfo", d->pid, d->fd);
		return -1;
	}
	e = xmalloc(sizeof(*e));
	fanotify_entry__init(e);
	fe->fanotify = e;
	for (line = strtok_r(info, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		FanotifyMark *m;

		if (strncmp(line, "fanotify ", 9))
			continue;
		if (sscanf(line, "fanotify flags:%x event-flags:%x", &e->flags, &e->event_flags) ==
		    2) {
			if (e->flags & (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT)) {
				pr_err(
				    "pid %d fd %d: fanotify groups of the permission classes are "
				    "not supported (events being decided cannot be carried "
				    "over)\n",
				    d->pid, d->fd);
				goto out;
			}
			continue;
		}
		m = xmalloc(sizeof(*m));
		fanotify_mark__init(m);
		e->marks = xrealloc(e->marks, (e->n_marks + 1) * sizeof(*e->marks));
		e->marks[e->n_marks++] = m;
		if (parse_mark(d, line, m)) {
			if (!m->path)
				m->path = xstrdup("");
			goto out;
		}
	}
	ret = 0;
out:
	free(info);
	return ret;
}

static int add_mark(struct rst_ctx *c, int fd, const FanotifyMark *m)
{
	unsigned int how = m->kind == MARK_MOUNT ? FAN_MARK_MOUNT
			   : m->kind == MARK_FS	 ? FAN_MARK_FILESYSTEM
						 : 0;
	unsigned int ign = m->mflags & FAN_MARK_IGNORE ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;
	struct stat st;

	if (stat(m->path, &st) || st.st_dev != m->dev || (m->has_ino && st.st_ino != m->ino)) {
		pr_err("pid %u: fanotify mark: %s is gone or is another object than at dump "
		       "time\n",
		       c->t->te->pid, m->path);
		return -1;
	}
	how |= m->mflags & FAN_MARK_EVICTABLE;
	if (m->mask && fanotify_mark(fd, FAN_MARK_ADD | how, m->mask, AT_FDCWD, m->path))
		goto err;
	if (m->ignored_mask &&
	    fanotify_mark(fd, FAN_MARK_ADD | how | ign | (m->mflags & FAN_MARK_IGNORED_SURV_MODIFY),
			  m->ignored_mask, AT_FDCWD, m->path))
		goto err;
	return 0;
err:
	pr_perror("pid %u: cannot mark %s for fanotify", c->t->te->pid, m->path);
	return -1;
}

static int fanotify_open(struct rst_ctx *c, const FileEntry *fe)
{
	const FanotifyEntry *e = fe->fanotify;
	unsigned int flags;
	size_t i;
	int fd;

	flags = (e->flags & ~(FAN_NONBLOCK | FAN_CLOEXEC)) | FAN_CLOEXEC |
		(fe->flags & O_NONBLOCK ? FAN_NONBLOCK : 0);
	fd = fanotify_init(flags, e->event_flags);
	if (fd < 0) {
		pr_perror("pid %u: cannot create a fanotify group", c->t->te->pid);
		return -1;
	}
	for (i = 0; i < e->n_marks; i++)
		if (add_mark(c, fd, e->marks[i])) {
			close(fd);
			return -1;
		}
	return fd;
}

const struct fd_ops fanotify_fd_ops = {
	.type = FILE_TYPE__FILE_FANOTIFY,
	.kind = FILE_ENTRY__KIND_FANOTIFY,
	.name = "fanotify group",
	.match = fanotify_match,
	.dump = fanotify_dump,
	.lock = &flock_fd_lock,
	.open = fanotify_open,
};
