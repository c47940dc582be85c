/*
 * eventfd: the counter and semaphore mode, from fdinfo; restored by
 * creating a new eventfd and writing the count into it.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

static bool eventfd_match(const struct fd_dump *d)
{
	return !strcmp(d->link, "anon_inode:[eventfd]");
}

static int eventfd_dump(const struct fd_dump *d, FileEntry *fe)
{
	char buf[64];

	if (!fdinfo_field(d, "eventfd-count", buf, sizeof(buf))) {
		pr_err("pid %d fd %d: cannot read the eventfd counter\n", d->pid, d->fd);
		return -1;
	}
	fe->has_eventfd_count = true;
	fe->eventfd_count = strtoull(buf, NULL, 16);
	fe->has_eventfd_semaphore = true;
	fe->eventfd_semaphore =
	    fdinfo_field(d, "eventfd-semaphore", buf, sizeof(buf)) && buf[0] == '1';
	fe->has_dev = fe->has_ino = false;
	return 0;
}

static int eventfd_open(struct rst_ctx *c, const FileEntry *fe)
{
	int fd = eventfd(0, EFD_CLOEXEC | (fe->flags & O_NONBLOCK ? EFD_NONBLOCK : 0) |
				(fe->eventfd_semaphore ? EFD_SEMAPHORE : 0));
	uint64_t count = fe->eventfd_count;

	if (fd < 0) {
		pr_perror("pid %u: cannot create an eventfd", c->t->te->pid);
		return -1;
	}
	if (count && write(fd, &count, sizeof(count)) != sizeof(count)) {
		pr_perror("pid %u: cannot set an eventfd's counter", c->t->te->pid);
		close(fd);
		return -1;
	}
	return fd;
}

const struct fd_ops eventfd_fd_ops = {
	FILE_TYPE__FILE_EVENTFD, "eventfd", eventfd_match, eventfd_dump, eventfd_open,
};
