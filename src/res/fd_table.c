/*
 * The fd kind table: every kind of open file description stasis can save,
 * in the order the dump tries them on an fd (the first whose match says
 * yes saves it), and what an fd no kind takes is refused with.  Adding a
 * kind of fd is one line here (see files.h and docs/design.md).
 */
#include <fcntl.h>
#include <string.h>

#include "files.h"
#include "util.h"

const struct fd_ops *const fd_kinds[] = {
	/* O_PATH fds first: no other kind may see them */
	&opath_fd_ops,
	/* files by their path, and what no path reaches (memfds, deleted files) */
	&reg_fd_ops,
	&fsobj_fd_fd_ops,
	&dir_fd_ops,
	&chr_fd_ops,
	/* inode entries of memfds and deleted files: made by fsobj_get, never matched */
	&memfd_fd_ops,
	&ghost_fd_ops,
	/* pipes and FIFOs whose every end is in the tree (others are external) */
	&pipe_fd_ops,
	&fifo_fd_ops,
	/* anonymous inodes */
	&eventfd_fd_ops,
	&signalfd_fd_ops,
	&timerfd_fd_ops,
	&epoll_fd_ops,
	&inotify_fd_ops,
	&fanotify_fd_ops,
	&pidfd_fd_ops,
	/* sockets */
	&unix_fd_ops,
	/* ptys whose master is in the tree, and /dev/tty */
	&ptmx_fd_ops,
	&tty_fd_ops,
	/* last: objects outside the tree (the caller's terminal, a pipe from a parent) */
	&ext_fd_ops,
};

const size_t fd_kinds_len = ARRAY_SIZE(fd_kinds);

const struct fd_ops *fd_kind(FileType type)
{
	const struct fd_ops *ops;
	size_t i;

	for_each_fd_kind(i, ops) if (ops->type == type) return ops;
	return NULL;
}

const char *fd_unsupported_reason(const struct fd_dump *d)
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
