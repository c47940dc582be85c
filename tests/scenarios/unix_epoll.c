// SPDX-License-Identifier: MIT
/*
 * unix_epoll - an epoll set watching unix sockets: the receiving end of a
 * datagram socketpair with one message queued (level-triggered, data
 * 0xd1) and one end of a stream socketpair with nothing queued
 * (edge-triggered, data 0x51).  Socket options on the stream pair: the
 * watched end has SO_PASSCRED and SO_SNDBUF 300000; the other end has
 * SO_PASSPIDFD and SO_PASSRIGHTS off (when the kernel has them).
 *
 * Check: epoll_wait reports the datagram end only; after a write into the
 * stream pair it reports the stream end too; the message is intact; the
 * options are as set.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include "scenario.h"

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

static int ep, dg[2], st[2], has_pidfd, has_rights;

static int opt(int fd, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, name, &v, &l) ? -1 : v;
}

static unsigned int ready_mask(void)
{
	struct epoll_event ev[4];
	unsigned int m = 0;
	int i, n = epoll_wait(ep, ev, 4, 200);

	for (i = 0; i < n; i++)
		m |= ev[i].data.u64 == 0xd1 ? 1 : ev[i].data.u64 == 0x51 ? 2 : 4;
	return m;
}

static void verify(void)
{
	unsigned int m = ready_mask();
	char buf[16];

	SCN_CHECK(m == 1, "epoll reported %#x, expected the datagram end only", m);
	SCN_CHECK(write(st[0], "s", 1) == 1, "stream write");
	m = ready_mask();
	SCN_CHECK(m == 3, "epoll reported %#x after a stream write, expected both", m);
	SCN_CHECK(recv(dg[1], buf, sizeof(buf), MSG_DONTWAIT) == 4 && !memcmp(buf, "ping", 4),
		  "datagram lost");
	SCN_CHECK(opt(st[1], SO_PASSCRED) == 1, "SO_PASSCRED lost");
	SCN_CHECK(opt(st[1], SO_SNDBUF) == 600000, "SO_SNDBUF is %d", opt(st[1], SO_SNDBUF));
	SCN_CHECK(opt(st[0], SO_PASSCRED) == 0, "SO_PASSCRED set on the other end");
	SCN_CHECK(!has_pidfd || opt(st[0], SO_PASSPIDFD) == 1, "SO_PASSPIDFD lost");
	SCN_CHECK(!has_rights || opt(st[0], SO_PASSRIGHTS) == 0, "SO_PASSRIGHTS is back on");
}

int main(int argc, char **argv)
{
	struct epoll_event ev;

	scn_init(argc, argv, 1);
	ep = epoll_create1(0);
	if (ep < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, st) || send(dg[0], "ping", 4, 0) != 4)
		scn_fail("setup: %s", strerror(errno));
	{
		int one = 1, zero = 0, sb = 300000;

		if (setsockopt(st[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) ||
		    setsockopt(st[1], SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb)))
			scn_fail("setsockopt: %s", strerror(errno));
		has_pidfd = !setsockopt(st[0], SOL_SOCKET, SO_PASSPIDFD, &one, sizeof(one));
		has_rights = !setsockopt(st[0], SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero));
	}
	ev.events = EPOLLIN;
	ev.data.u64 = 0xd1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, dg[1], &ev))
		scn_fail("epoll_ctl: %s", strerror(errno));
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = 0x51;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, st[1], &ev))
		scn_fail("epoll_ctl: %s", strerror(errno));
	scn_ready_then_wait();
	verify();
	scn_pass();
}
