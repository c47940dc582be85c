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
	EventfdEntry *e;
	char buf[64];

	if (!fdinfo_field(d, "eventfd-count", buf, sizeof(buf))) {
		pr_err("pid %d fd %d: cannot read the eventfd counter\n", d->pid, d->fd);
		return -1;
	}
	e = fe->eventfd = xmalloc(sizeof(*e));
	eventfd_entry__init(e);
	e->count = strtoull(buf, NULL, 16);
	e->semaphore = fdinfo_field(d, "eventfd-semaphore", buf, sizeof(buf)) && buf[0] == '1';
	return 0;
}

static int eventfd_open(struct rst_ctx *c, const FileEntry *fe)
{
	int fd = eventfd(0, EFD_CLOEXEC | (fe->flags & O_NONBLOCK ? EFD_NONBLOCK : 0) |
				(fe->eventfd->semaphore ? EFD_SEMAPHORE : 0));
	uint64_t count = fe->eventfd->count;

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
	.type = FILE_TYPE__FILE_EVENTFD,
	.kind = FILE_ENTRY__KIND_EVENTFD,
	.name = "eventfd",
	.match = eventfd_match,
	.dump = eventfd_dump,
	.lock = &flock_fd_lock,
	.open = eventfd_open,
};
