/*
 * The fd kind table: every kind of open file description stasis can save,
 * in the order the dump tries them on an fd (the first whose match says
 * yes saves it), and what an fd no kind takes is refused with.  Adding a
 * kind of fd is one line here (see files.h and docs/design.md).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "files.h"
#include "util.h"

const struct fd_ops *const fd_kinds[] = {
	/* O_PATH fds first: no other kind may see them */
	&opath_fd_ops,
	/* POSIX message queues: their inodes look like regular files */
	&mqueue_fd_ops,
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
	&inet_fd_ops,
	&netlink_fd_ops,
	&packet_fd_ops,
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

/* unix, inet (TCP, UDP), netlink and packet sockets are saved; say what this one is */
static const char *socket_reason(const struct fd_dump *d)
{
	static char buf[160];
	int family = -1, type = -1;
	socklen_t len = sizeof(int);
	const char *f, *t;

	getsockopt(d->lfd, SOL_SOCKET, SO_DOMAIN, &family, &len);
	len = sizeof(int);
	getsockopt(d->lfd, SOL_SOCKET, SO_TYPE, &type, &len);
	switch (family) {
	case AF_NETLINK:
		f = "AF_NETLINK";
		break;
	case AF_PACKET:
		f = "AF_PACKET";
		break;
	case AF_VSOCK:
		f = "AF_VSOCK";
		break;
	case AF_ALG:
		f = "AF_ALG";
		break;
	case AF_BLUETOOTH:
		f = "AF_BLUETOOTH";
		break;
	case AF_XDP:
		f = "AF_XDP";
		break;
	default:
		f = "unknown family";
	}
	t = type == SOCK_STREAM	     ? "stream"
	    : type == SOCK_DGRAM     ? "datagram"
	    : type == SOCK_RAW	     ? "raw"
	    : type == SOCK_SEQPACKET ? "seqpacket"
				     : "unknown type";
	snprintf(buf, sizeof(buf), "%s %s socket (family %d): %s", f, t, family,
		 family == AF_NETLINK || family == AF_PACKET
		     ? "netlink and packet sockets are not supported yet"
		     : "only unix and inet (TCP, UDP) sockets are supported");
	return buf;
}

const char *fd_unsupported_reason(const struct fd_dump *d)
{
	if (d->fi.flags & O_PATH)
		return "O_PATH fds are supported only on files reachable by their path";
	if (!strncmp(d->link, "socket:", 7))
		return socket_reason(d);
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
