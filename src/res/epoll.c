/*
 * epoll: every watched fd with its events and data, from fdinfo.  The
 * instance is created like any file (so tasks sharing it share it again);
 * its watches are added back by the task whose fd numbers they name, once
 * that task's fd table is complete.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "res.h"
#include "util.h"

static bool epoll_match(const struct fd_dump *d)
{
	return !strcmp(d->link, "anon_inode:[eventpoll]");
}

/* The watched fd must still be the file the watch was made on. */
static int check_target(const struct fd_dump *d, int tfd, unsigned long ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->pid, tfd);
	if (stat(path, &st) || st.st_ino != ino) {
		pr_err("pid %d fd %d (epoll): it watches fd %d, which the task has closed or "
		       "replaced since; not supported\n",
		       d->pid, d->fd, tfd);
		return -1;
	}
	return 0;
}

static int epoll_dump(const struct fd_dump *d, FileEntry *fe)
{
	char name[32], *info, *line;
	EpollEntry *e;
	int ret = 0;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	info = read_proc(d->pid, name, NULL);
	if (!info) {
		pr_perror("pid %d fd %d: cannot read its epoll watches", d->pid, d->fd);
		return -1;
	}
	e = fe->epoll = xmalloc(sizeof(*e));
	epoll_entry__init(e);
	e->owner = d->pid;
	for (line = strstr(info, "tfd:"); line && !ret; line = strstr(line + 1, "\ntfd:")) {
		unsigned long long data;
		unsigned long ino;
		unsigned int events;
		EpollTarget *t;
		int tfd;

		if (*line == '\n')
			line++;
		if (sscanf(line, "tfd: %d events: %x data: %llx pos:%*d ino:%lx", &tfd, &events,
			   &data, &ino) != 4) {
			pr_err("pid %d fd %d: cannot parse an epoll watch\n", d->pid, d->fd);
			ret = -1;
			break;
		}
		ret = check_target(d, tfd, ino);
		t = xmalloc(sizeof(*t));
		epoll_target__init(t);
		t->tfd = tfd;
		t->events = events;
		t->data = data;
		e->targets = xrealloc(e->targets, (e->n_targets + 1) * sizeof(*e->targets));
		e->targets[e->n_targets++] = t;
	}
	free(info);
	return ret;
}

static int epoll_open(struct rst_ctx *c, const FileEntry *fe)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		pr_perror("pid %u: cannot create an epoll instance", c->t->te->pid);
	return fd;
}

/* In the child, its fd table complete: add the watches of an instance it owns. */
static int epoll_after_install(struct rst_ctx *c, const FdEntry *f, const FileEntry *fe)
{
	const EpollEntry *e = fe->epoll;
	size_t k;

	if (e->owner != c->t->te->pid)
		return 0;
	for (k = 0; k < e->n_targets; k++) {
		struct epoll_event ev = { .events = e->targets[k]->events,
					  .data.u64 = e->targets[k]->data };

		if (epoll_ctl(f->fd, EPOLL_CTL_ADD, e->targets[k]->tfd, &ev) && errno != EEXIST) {
			pr_perror("pid %u: cannot watch fd %u with epoll fd %u", c->t->te->pid,
				  e->targets[k]->tfd, f->fd);
			return -1;
		}
	}
	return 0;
}

const struct fd_ops epoll_fd_ops = {
	.type = FILE_TYPE__FILE_EPOLL,
	.kind = FILE_ENTRY__KIND_EPOLL,
	.name = "epoll instance",
	.match = epoll_match,
	.dump = epoll_dump,
	.lock = &flock_fd_lock,
	.open = epoll_open,
	.after_install = epoll_after_install,
};
