/*
 * signalfd: its signal mask, from fdinfo.  The signals it reads are the
 * task's pending signals, which are restored with the task.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

static bool signalfd_match(const struct fd_dump *d)
{
	return !strcmp(d->link, "anon_inode:[signalfd]");
}

static int signalfd_dump(const struct fd_dump *d, FileEntry *fe)
{
	char buf[64];

	if (!fdinfo_field(d, "sigmask", buf, sizeof(buf))) {
		pr_err("pid %d fd %d: cannot read the signalfd mask\n", d->pid, d->fd);
		return -1;
	}
	fe->signalfd = xmalloc(sizeof(*fe->signalfd));
	signalfd_entry__init(fe->signalfd);
	fe->signalfd->mask = strtoull(buf, NULL, 16);
	return 0;
}

static int signalfd_open(struct rst_ctx *c, const FileEntry *fe)
{
	uint64_t mask = fe->signalfd->mask;
	/* the raw syscall takes the kernel's 8-byte mask */
	int fd = syscall(SYS_signalfd4, -1, &mask, sizeof(mask),
			 SFD_CLOEXEC | (fe->flags & O_NONBLOCK ? SFD_NONBLOCK : 0));

	if (fd < 0)
		pr_perror("pid %u: cannot create a signalfd", c->t->te->pid);
	return fd;
}

const struct fd_ops signalfd_fd_ops = {
	.type = FILE_TYPE__FILE_SIGNALFD,
	.kind = FILE_ENTRY__KIND_SIGNALFD,
	.name = "signalfd",
	.match = signalfd_match,
	.dump = signalfd_dump,
	.lock = &flock_fd_lock,
	.open = signalfd_open,
};
