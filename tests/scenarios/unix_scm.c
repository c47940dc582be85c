// SPDX-License-Identifier: MIT
/*
 * unix_scm - a stream socketpair with a file descriptor in flight: "fd"
 * was sent from A to B with SCM_RIGHTS carrying the read end of a pipe
 * holding "pipe!" (the sender closed its copies).  stasis refuses this
 * state; the suite checks that the failed dump left the message in place.
 *
 * Check: B receives "fd" with one descriptor, which reads "pipe!".
 */
#include <sys/socket.h>

#include "scenario.h"

static int sv[2];

static void verify(void)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	char data[8] = { 0 }, pb[8] = { 0 };
	struct iovec iov = { data, sizeof(data) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl)
	};
	struct cmsghdr *cm;
	int fd;

	SCN_CHECK(recvmsg(sv[1], &mh, MSG_DONTWAIT) == 2 && !memcmp(data, "fd", 2),
		  "the message is gone");
	cm = CMSG_FIRSTHDR(&mh);
	SCN_CHECK(cm && cm->cmsg_type == SCM_RIGHTS, "no descriptor came with the message");
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	SCN_CHECK(read(fd, pb, sizeof(pb)) == 5 && !memcmp(pb, "pipe!", 5),
		  "the passed pipe lost its data");
}

int main(int argc, char **argv)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { "fd", 2 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl)
	};
	struct cmsghdr *cm;
	int p[2];

	scn_init(argc, argv, 1);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(p) || write(p[1], "pipe!", 5) != 5)
		scn_fail("setup: %s", strerror(errno));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p[0], sizeof(int));
	if (sendmsg(sv[0], &mh, 0) != 2)
		scn_fail("sendmsg: %s", strerror(errno));
	close(p[0]);
	close(p[1]);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
