/*
 * Netlink sockets (NETLINK_ROUTE, NETLINK_KOBJECT_UEVENT, NETLINK_GENERIC,
 * NETLINK_SOCK_DIAG, NETLINK_AUDIT ...): what a program's socket to the
 * kernel is bound to and listens to.
 *
 * Dump, from stasis's duplicate of the fd: type and protocol, the bound
 * port id (getsockname; 0 if never bound), every multicast group it
 * joined (NETLINK_LIST_MEMBERSHIPS, beyond the 32 that bind's mask
 * holds), the port or group it is connected to (getpeername), the
 * options of the table below that differ from a fresh socket's, and the
 * buffer sizes as set.  A message waiting to be read cannot be saved (it
 * is the kernel's answer or event, and cannot be put back): such a socket
 * is refused by name, as is one with a socket filter attached or one of
 * another network namespace.  Messages the kernel sends after the dump
 * (events of a group) are the kernel's, as with any event source.
 *
 * Restore, in the task that opens it: socket, options, buffer sizes, bind
 * to the same port id, join each group, connect.  A port id someone else
 * holds by then is an error naming it.  NETLINK_GENERIC family ids are
 * the kernel's: the same kernel gives the same ones; on another kernel a
 * program's cached id may name another family (say so in the docs).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "files.h"
#include "sk.h"
#include "log.h"
#include "util.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

#define NL_MAX_GROUP_WORDS 64 /* 2048 groups: more than any protocol has */

static const struct nl_opt {
	int level, name;
} nl_opts[] = {
	{ SOL_NETLINK, NETLINK_PKTINFO },
	{ SOL_NETLINK, NETLINK_BROADCAST_ERROR },
	{ SOL_NETLINK, NETLINK_NO_ENOBUFS },
	{ SOL_NETLINK, NETLINK_LISTEN_ALL_NSID },
	{ SOL_NETLINK, NETLINK_CAP_ACK },
	{ SOL_NETLINK, NETLINK_EXT_ACK },
	{ SOL_NETLINK, NETLINK_GET_STRICT_CHK },
	{ SOL_SOCKET, SO_PASSCRED },
	{ SOL_SOCKET, SO_PRIORITY },
	{ SOL_SOCKET, SO_MARK },
	{ SOL_SOCKET, SO_RCVLOWAT },
	{ SOL_SOCKET, SO_TIMESTAMP },
};

static const char *proto_name(int proto)
{
	static const char *const names[] = {
		[NETLINK_ROUTE] = "NETLINK_ROUTE",
		[NETLINK_USERSOCK] = "NETLINK_USERSOCK",
		[NETLINK_SOCK_DIAG] = "NETLINK_SOCK_DIAG",
		[NETLINK_NFLOG] = "NETLINK_NFLOG",
		[NETLINK_XFRM] = "NETLINK_XFRM",
		[NETLINK_SELINUX] = "NETLINK_SELINUX",
		[NETLINK_ISCSI] = "NETLINK_ISCSI",
		[NETLINK_AUDIT] = "NETLINK_AUDIT",
		[NETLINK_FIB_LOOKUP] = "NETLINK_FIB_LOOKUP",
		[NETLINK_CONNECTOR] = "NETLINK_CONNECTOR",
		[NETLINK_NETFILTER] = "NETLINK_NETFILTER",
		[NETLINK_IP6_FW] = "NETLINK_IP6_FW",
		[NETLINK_DNRTMSG] = "NETLINK_DNRTMSG",
		[NETLINK_KOBJECT_UEVENT] = "NETLINK_KOBJECT_UEVENT",
		[NETLINK_GENERIC] = "NETLINK_GENERIC",
		[NETLINK_SCSITRANSPORT] = "NETLINK_SCSITRANSPORT",
		[NETLINK_ECRYPTFS] = "NETLINK_ECRYPTFS",
		[NETLINK_RDMA] = "NETLINK_RDMA",
		[NETLINK_CRYPTO] = "NETLINK_CRYPTO",
	};

	if (proto >= 0 && (size_t)proto < ARRAY_SIZE(names) && names[proto])
		return names[proto];
	return "netlink";
}

/* ------------------------------------------------------------- dump */

static bool netlink_match(const struct fd_dump *d)
{
	return S_ISSOCK(d->st.st_mode) && sk_kind(d)->family == AF_NETLINK;
}

static int refuse(const struct fd_dump *d, int proto, const char *why)
{
	pr_err("pid %d fd %d (%s): %s socket %s\n", d->pid, d->fd, d->link, proto_name(proto), why);
	return -1;
}

static void add_opt(NetlinkSkEntry *ne, int level, int name, int val)
{
	NetlinkSkOpt *o = xmalloc(sizeof(*o));

	netlink_sk_opt__init(o);
	o->level = level;
	o->name = name;
	o->val = val;
	ne->opts = xrealloc(ne->opts, (ne->n_opts + 1) * sizeof(*ne->opts));
	ne->opts[ne->n_opts++] = o;
}

static int dump_opts(const struct fd_dump *d, NetlinkSkEntry *ne)
{
	int fresh = socket(AF_NETLINK, ne->type | SOCK_CLOEXEC, ne->proto);
	size_t i;

	if (fresh < 0) {
		pr_perror("pid %d fd %d: cannot create a %s socket to compare options with", d->pid,
			  d->fd, proto_name(ne->proto));
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(nl_opts); i++) {
		int v = sk_get_int(d->lfd, nl_opts[i].level, nl_opts[i].name);

		if (v >= 0 && v != sk_get_int(fresh, nl_opts[i].level, nl_opts[i].name))
			add_opt(ne, nl_opts[i].level, nl_opts[i].name, v);
	}
	close(fresh);
	return 0;
}

static int dump_bufs(const struct fd_dump *d, NetlinkSkEntry *ne)
{
	int snd = sk_get_int(d->lfd, SOL_SOCKET, SO_SNDBUF);
	int rcv = sk_get_int(d->lfd, SOL_SOCKET, SO_RCVBUF);
	int lock = sk_get_int(d->lfd, SOL_SOCKET, SO_BUF_LOCK);

	if (snd < 0 || rcv < 0) {
		pr_perror("pid %d fd %d: cannot read the buffer sizes", d->pid, d->fd);
		return -1;
	}
	ne->has_sndbuf = ne->has_rcvbuf = ne->has_sndbuf_locked = ne->has_rcvbuf_locked = true;
	ne->sndbuf = snd / 2;
	ne->rcvbuf = rcv / 2;
	lock = lock < 0 ? 3 : lock; /* an old kernel: keep them as they are */
	ne->sndbuf_locked = lock & 1;
	ne->rcvbuf_locked = !!(lock & 2);
	return 0;
}

static int dump_groups(const struct fd_dump *d, NetlinkSkEntry *ne)
{
	uint32_t words[NL_MAX_GROUP_WORDS];
	socklen_t len = sizeof(words);
	size_t n;

	memset(words, 0, sizeof(words));
	if (getsockopt(d->lfd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words, &len)) {
		pr_perror("pid %d fd %d: cannot list the groups of its %s socket", d->pid, d->fd,
			  proto_name(ne->proto));
		return -1;
	}
	if (len > sizeof(words))
		return refuse(d, ne->proto, "is a member of more groups than stasis can save");
	for (n = len / sizeof(uint32_t); n && !words[n - 1]; n--)
		;
	if (!n)
		return 0;
	ne->groups = xmalloc(n * sizeof(*ne->groups));
	memcpy(ne->groups, words, n * sizeof(*ne->groups));
	ne->n_groups = n;
	return 0;
}

static int netlink_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct sockaddr_nl self = { 0 }, peer = { 0 };
	socklen_t len = sizeof(self);
	int proto = sk_get_int(d->lfd, SOL_SOCKET, SO_PROTOCOL);
	socklen_t flen = 0;
	NetlinkSkEntry *ne;
	char byte;

	if (!sk_in_our_netns(d->lfd))
		return refuse(d, proto,
			      "of another network namespace; not supported (network "
			      "namespaces are not saved yet)");
	if (getsockopt(d->lfd, SOL_SOCKET, SO_GET_FILTER, NULL, &flen) || flen)
		return refuse(d, proto, "has a socket filter attached; not supported");
	if (recv(d->lfd, &byte, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) >= 0)
		return refuse(d, proto,
			      "has unread messages, which cannot be saved (the program "
			      "must read them first)");
	ne = fe->netlink_sk = xmalloc(sizeof(*ne));
	netlink_sk_entry__init(ne);
	ne->type = sk_get_int(d->lfd, SOL_SOCKET, SO_TYPE);
	ne->proto = proto;
	if (getsockname(d->lfd, (struct sockaddr *)&self, &len)) {
		pr_perror("pid %d fd %d: getsockname of its %s socket", d->pid, d->fd,
			  proto_name(proto));
		return -1;
	}
	ne->has_portid = self.nl_pid != 0;
	ne->portid = self.nl_pid;
	len = sizeof(peer);
	if (!getpeername(d->lfd, (struct sockaddr *)&peer, &len) &&
	    (peer.nl_pid || peer.nl_groups)) {
		ne->has_dst_portid = ne->has_dst_group = true;
		ne->dst_portid = peer.nl_pid;
		ne->dst_group = peer.nl_groups;
	}
	if (dump_groups(d, ne) || dump_opts(d, ne) || dump_bufs(d, ne))
		return -1;
	return 0;
}

/* ---------------------------------------------------------- restore */

static int build(int fd, const NetlinkSkEntry *ne, const char **step)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int lock = (ne->sndbuf_locked ? 1 : 0) | (ne->rcvbuf_locked ? 2 : 0);
	size_t i, w;
	int b;

	*step = "setting its options";
	for (i = 0; i < ne->n_opts; i++)
		if (sk_set_int(fd, ne->opts[i]->level, ne->opts[i]->name, ne->opts[i]->val))
			return -1;
	*step = "setting its buffer sizes";
	if ((ne->has_sndbuf && sk_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, ne->sndbuf)) ||
	    (ne->has_rcvbuf && sk_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, ne->rcvbuf)) ||
	    (ne->has_sndbuf_locked && sk_set_int(fd, SOL_SOCKET, SO_BUF_LOCK, lock) &&
	     errno != ENOPROTOOPT))
		return -1;
	if (ne->has_portid) {
		*step = "binding it to its port id";
		sa.nl_pid = ne->portid;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return -1;
	}
	*step = "joining its groups";
	for (w = 0; w < ne->n_groups; w++)
		for (b = 0; b < 32; b++)
			if ((ne->groups[w] >> b & 1) &&
			    sk_set_int(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, w * 32 + b + 1))
				return -1;
	if (ne->has_dst_portid) {
		*step = "connecting it";
		sa.nl_pid = ne->dst_portid;
		sa.nl_groups = ne->dst_group;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return -1;
	}
	return 0;
}

static int netlink_open(struct rst_ctx *c, const FileEntry *fe)
{
	const NetlinkSkEntry *ne = fe->netlink_sk;
	const char *step = "creating it";
	int fd;

	if (!ne) {
		pr_err("pid %u: netlink socket entry %u lacks its state\n", c->t->te->pid, fe->id);
		return -1;
	}
	fd = socket(AF_NETLINK, ne->type | SOCK_CLOEXEC, ne->proto);
	if (fd < 0 || build(fd, ne, &step) ||
	    (step = "setting its file flags",
	     fcntl(fd, F_SETFL, fe->flags & (O_NONBLOCK | O_ASYNC)))) {
		int err = errno;

		if (err == EADDRINUSE)
			pr_err("pid %u: %s socket: port id %u is taken by another socket\n",
			       c->t->te->pid, proto_name(ne->proto), ne->portid);
		else
			pr_err("pid %u: %s socket: %s failed: %s\n", c->t->te->pid,
			       proto_name(ne->proto), step, strerror(err));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

const struct fd_ops netlink_fd_ops = {
	.type = FILE_TYPE__FILE_NETLINK,
	.kind = FILE_ENTRY__KIND_NETLINK_SK,
	.name = "netlink socket",
	.match = netlink_match,
	.dump = netlink_dump,
	.open = netlink_open,
};
