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
	int ret = 0;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	info = read_proc(d->pid, name, NULL);
	if (!info) {
		pr_perror("pid %d fd %d: cannot read its epoll watches", d->pid, d->fd);
		return -1;
	}
	fe->has_dev = fe->has_ino = false;
	fe->has_epoll_owner = true;
	fe->epoll_owner = d->pid;
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
		fe->epoll = xrealloc(fe->epoll, (fe->n_epoll + 1) * sizeof(*fe->epoll));
		fe->epoll[fe->n_epoll++] = t;
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

/* In the child, with its fd table complete: add the watches it owns. */
static int epoll_restore_watches(struct rst_ctx *c)
{
	struct rst_task *t = c->t;
	size_t i, k;

	for (i = 0; i < t->nfds; i++) {
		const FileEntry *fe = image_file(c->img, t->fds[i]->file_id);

		if (!fe || fe->type != FILE_TYPE__FILE_EPOLL || fe->epoll_owner != t->te->pid)
			continue;
		for (k = 0; k < fe->n_epoll; k++) {
			struct epoll_event ev = { .events = fe->epoll[k]->events,
						  .data.u64 = fe->epoll[k]->data };

			if (epoll_ctl(t->fds[i]->fd, EPOLL_CTL_ADD, fe->epoll[k]->tfd, &ev) &&
			    errno != EEXIST) {
				pr_perror("pid %u: cannot watch fd %u with epoll fd %u", t->te->pid,
					  fe->epoll[k]->tfd, t->fds[i]->fd);
				return -1;
			}
		}
	}
	return 0;
}

const struct fd_ops epoll_fd_ops = {
	FILE_TYPE__FILE_EPOLL, "epoll", epoll_match, epoll_dump, epoll_open,
};

const struct res_ops epoll_res = {
	.name = "epoll",
	.child = epoll_restore_watches,
};
