// SPDX-License-Identifier: MIT
/*
 * nl_sock - netlink sockets as daemons hold them:
 *   fd 3  NETLINK_ROUTE, bound, in groups RTNLGRP_LINK (1), RTNLGRP_IPV4_IFADDR (5)
 *         and RTNLGRP_BRVLAN (33, beyond bind's 32-bit mask), NETLINK_EXT_ACK
 *         on, O_NONBLOCK, SO_RCVBUF set
 *   fd 4  NETLINK_KOBJECT_UEVENT, bound to group 1 (what udev monitors hold)
 *   fd 5  NETLINK_GENERIC, never bound (no port id yet)
 *   fd 6  NETLINK_SOCK_DIAG, bound by its first request (autobind)
 * With $NL_MODE=unread, fd 3 also has an unread answer waiting (the dump
 * must refuse it).
 *
 * Check: every socket is bound to the same port id and groups, options
 * and flags are the same, and each still talks to the kernel: a link dump
 * on fd 3 lists lo, the generic family "nlctrl" is found on fd 5, a
 * sock_diag request is answered on fd 6.
 */
#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>

#include "scenario.h"

struct nl_state {
	uint32_t portid;
	uint32_t groups[4];
	int ext_ack, flags, rcvbuf;
};

static struct nl_state saved[7];

static int nl_open(int want_fd, int proto)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);

	if (fd < 0)
		scn_fail("netlink socket %d: %s", proto, strerror(errno));
	if (fd != want_fd) {
		if (dup2(fd, want_fd) < 0)
			scn_fail("dup2: %s", strerror(errno));
		close(fd);
	}
	return want_fd;
}

static void nl_bind(int fd, uint32_t groups)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = groups };

	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		scn_fail("bind fd %d: %s", fd, strerror(errno));
}

static void nl_join(int fd, int group)
{
	if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)))
		scn_fail("join group %d on fd %d: %s", group, fd, strerror(errno));
}

static void nl_send(int fd, void *msg, size_t len)
{
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };

	if (sendto(fd, msg, len, 0, (struct sockaddr *)&k, sizeof(k)) != (ssize_t)len)
		scn_fail("send on fd %d: %s", fd, strerror(errno));
}

static void link_dump_request(int fd)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = { .h = { .nlmsg_len = sizeof(req),
			 .nlmsg_type = RTM_GETLINK,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			 .nlmsg_seq = 1 },
		  .i = { .ifi_family = AF_UNSPEC } };

	nl_send(fd, &req, sizeof(req));
}

/* Read answers until NLMSG_DONE (or one non-multipart answer); how many of type. */
static int nl_answers(int fd, int type)
{
	static char buf[65536];
	int found = 0, tries = 0;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n < 0 && errno == EAGAIN && tries++ < 200) {
			scn_msleep(5);
			continue;
		}
		if (n <= 0)
			scn_fail("recv on fd %d: %s", fd, n ? strerror(errno) : "end");
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return found;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				if (e->error)
					scn_fail("fd %d: netlink error %d", fd, e->error);
				return found;
			}
			found += h->nlmsg_type == type;
			if (!(h->nlmsg_flags & NLM_F_MULTI))
				return found;
		}
	}
}

static void take_state(int fd, struct nl_state *st)
{
	struct sockaddr_nl sa;
	socklen_t len = sizeof(sa);
	int v = 0;

	memset(st, 0, sizeof(*st));
	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		scn_fail("getsockname fd %d: %s", fd, strerror(errno));
	st->portid = sa.nl_pid;
	len = sizeof(st->groups);
	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, st->groups, &len))
		scn_fail("list memberships fd %d: %s", fd, strerror(errno));
	len = sizeof(v);
	getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &len);
	st->ext_ack = v;
	len = sizeof(v);
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len);
	st->rcvbuf = v;
	st->flags = fcntl(fd, F_GETFL);
}

static void genl_find_nlctrl(int fd)
{
	struct {
		struct nlmsghdr h;
		struct genlmsghdr g;
		struct nlattr a;
		char name[8];
	} req = { .h = { .nlmsg_len = sizeof(req),
			 .nlmsg_type = GENL_ID_CTRL,
			 .nlmsg_flags = NLM_F_REQUEST,
			 .nlmsg_seq = 2 },
		  .g = { .cmd = CTRL_CMD_GETFAMILY, .version = 1 },
		  .a = { .nla_len = NLA_HDRLEN + 7, .nla_type = CTRL_ATTR_FAMILY_NAME },
		  .name = "nlctrl" };

	nl_send(fd, &req, sizeof(req));
	SCN_CHECK(nl_answers(fd, GENL_ID_CTRL) == 1, "fd 5: no answer for the nlctrl family");
}

static void diag_request(int fd)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req = { .h = { .nlmsg_len = sizeof(req),
			 .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			 .nlmsg_seq = 3 },
		  .r = { .sdiag_family = AF_UNIX, .udiag_states = ~0U } };

	nl_send(fd, &req, sizeof(req));
	nl_answers(fd, SOCK_DIAG_BY_FAMILY);
}

int main(int argc, char **argv)
{
	const char *mode = getenv("NL_MODE");
	int fd, rcvbuf = 65536;

	scn_init(argc, argv, 1);
	fd = nl_open(3, NETLINK_ROUTE);
	nl_bind(fd, RTMGRP_LINK);
	nl_join(fd, RTNLGRP_IPV4_IFADDR);
	nl_join(fd, 33);
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &(int){ 1 }, sizeof(int));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	link_dump_request(fd);
	SCN_CHECK(nl_answers(fd, RTM_NEWLINK) > 0, "no link in the first dump");
	nl_bind(nl_open(4, NETLINK_KOBJECT_UEVENT), 1);
	nl_open(5, NETLINK_GENERIC);
	fd = nl_open(6, NETLINK_SOCK_DIAG);
	diag_request(fd);
	for (fd = 3; fd <= 6; fd++)
		take_state(fd, &saved[fd]);
	if (mode && !strcmp(mode, "unread"))
		link_dump_request(3); /* its answer stays unread */
	scn_log("netlink sockets ready (route port id %u)", saved[3].portid);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);

	for (fd = 3; fd <= 6; fd++) {
		struct nl_state now;

		take_state(fd, &now);
		SCN_CHECK(now.portid == saved[fd].portid, "fd %d: port id %u, was %u", fd,
			  now.portid, saved[fd].portid);
		SCN_CHECK(!memcmp(now.groups, saved[fd].groups, sizeof(now.groups)),
			  "fd %d: groups %#x %#x, were %#x %#x", fd, now.groups[0], now.groups[1],
			  saved[fd].groups[0], saved[fd].groups[1]);
		SCN_CHECK(now.ext_ack == saved[fd].ext_ack, "fd %d: NETLINK_EXT_ACK %d, was %d", fd,
			  now.ext_ack, saved[fd].ext_ack);
		SCN_CHECK(now.rcvbuf == saved[fd].rcvbuf, "fd %d: SO_RCVBUF %d, was %d", fd,
			  now.rcvbuf, saved[fd].rcvbuf);
		SCN_CHECK(now.flags == saved[fd].flags, "fd %d: flags %#x, were %#x", fd, now.flags,
			  saved[fd].flags);
	}
	SCN_CHECK(saved[3].groups[0] == (1U << 0 | 1U << 4) && saved[3].groups[1] == 1,
		  "fd 3: groups %#x %#x at start", saved[3].groups[0], saved[3].groups[1]);
	link_dump_request(3);
	SCN_CHECK(nl_answers(3, RTM_NEWLINK) > 0, "fd 3: no link in a dump after restore");
	genl_find_nlctrl(5);
	diag_request(6);
	scn_pass();
}
