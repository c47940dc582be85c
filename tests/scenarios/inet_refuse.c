// SPDX-License-Identifier: MIT
/*
 * inet_refuse - holds, at fd 3 (so that it is the first socket a dump
 * meets), one socket stasis refuses, chosen by $INET_REFUSE:
 *   accept-queue  a TCP listener with a connection waiting to be accepted
 *   syn-sent      a TCP socket connecting (SYN_SENT: the listener's accept
 *                 queue is full, so its SYN is dropped)
 *   closing       shut down for writing, its FIN stuck behind data the
 *                 peer has no room for (it never reads), when the peer's
 *                 FIN arrives
 *   close-wait    (saved: inet_tcp/pair-close-wait) a TCP connection whose
 *                 peer shut down for writing (the peer, in FIN_WAIT2, at a
 *                 higher fd)
 *   last-ack      (saved: inet_tcp/pair-last-ack) in CLOSE_WAIT, then shut
 *                 down, its FIN stuck behind data as for closing
 *   raw           a raw IPv4 socket with a socket filter (raw sockets are
 *                 saved, filters on them refused)
 *   packet        an AF_PACKET socket with an mmap'able receive ring
 *   multicast     a UDP socket with IP_MULTICAST_TTL set
 *   urgent        a TCP connection with an urgent byte (MSG_OOB) unread
 *   netns         an unbound TCP socket of a network namespace of its own
 *                 (the process unshares one, makes the socket there and
 *                 goes back to its first one: the socket alone keeps the
 *                 namespace, which goes away with the process)
 *   shared        an established connection held by this process and by
 *                 its child K (listed in WORKDIR/pids), which the runner
 *                 dumps alone: the socket is also held outside K's tree
 * The other sockets it needs live at higher fds.
 *
 * Check (after the refused dump): the socket at fd 3 is still of the same
 * kind and, for TCP, in the same state as at start, and not left in
 * repair mode (a peek is not refused).
 */
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "scenario.h"

static int state_of(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ? -1 : ti.tcpi_state;
}

static int listener(struct sockaddr_in *a, int backlog)
{
	socklen_t len = sizeof(*a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof(*a)) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)a, &len))
		scn_fail("listener: %s", strerror(errno));
	return fd;
}

static int client(const struct sockaddr_in *a, int nonblock)
{
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0 || (connect(fd, (const struct sockaddr *)a, sizeof(*a)) && errno != EINPROGRESS))
		scn_fail("connect: %s", strerror(errno));
	return fd;
}

/* Send until the peer (which never reads) has no room: what follows waits. */
static void stuff(int c)
{
	static char buf[65536];
	int fl = fcntl(c, F_GETFL);

	fcntl(c, F_SETFL, fl | O_NONBLOCK);
	while (send(c, buf, sizeof(buf), MSG_NOSIGNAL) > 0)
		;
	if (errno != EAGAIN)
		scn_fail("stuff: %s", strerror(errno));
	scn_msleep(50);
	while (send(c, buf, sizeof(buf), MSG_NOSIGNAL) > 0)
		;
	fcntl(c, F_SETFL, fl);
}

/* A connection c (returned) to its accepted end *s, shut down as kind says. */
static int half_closed(const char *kind, int *s)
{
	struct sockaddr_in a;
	int l = listener(&a, 4), c = client(&a, 0);

	*s = accept(l, NULL, NULL);
	if (*s < 0)
		scn_fail("accept: %s", strerror(errno));
	if (!strcmp(kind, "close-wait") || !strcmp(kind, "last-ack"))
		shutdown(*s, SHUT_WR);
	scn_msleep(20);
	if (strcmp(kind, "close-wait")) {
		stuff(c);
		shutdown(c, SHUT_WR);
	}
	if (!strcmp(kind, "closing"))
		shutdown(*s, SHUT_WR);
	scn_msleep(20);
	return c;
}

static int make(const char *kind)
{
	struct sockaddr_in a;
	int l, c, s, ttl = 5;

	if (!strcmp(kind, "accept-queue")) {
		l = listener(&a, 4);
		client(&a, 0);
		scn_msleep(20);
		return l;
	}
	if (!strcmp(kind, "syn-sent")) {
		l = listener(&a, 0);
		client(&a, 0); /* fills the queue */
		scn_msleep(20);
		return client(&a, 1);
	}
	if (!strcmp(kind, "close-wait") || !strcmp(kind, "last-ack") || !strcmp(kind, "closing"))
		return half_closed(kind, &s);
	if (!strcmp(kind, "urgent")) {
		l = listener(&a, 4);
		c = client(&a, 0);
		s = accept(l, NULL, NULL);
		if (s < 0 || send(c, "u", 1, MSG_OOB) != 1)
			scn_fail("urgent: %s", strerror(errno));
		scn_msleep(20);
		return s;
	}
	if (!strcmp(kind, "netns")) {
		/* the socket stays in the new namespace, the process goes back */
		int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

		if (home < 0 || unshare(CLONE_NEWNET))
			scn_fail("unshare: %s", strerror(errno));
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (setns(home, CLONE_NEWNET))
			scn_fail("setns: %s", strerror(errno));
		close(home);
		return s;
	}
	if (!strcmp(kind, "shared")) {
		l = listener(&a, 4);
		c = client(&a, 0);
		s = accept(l, NULL, NULL);
		if (s < 0)
			scn_fail("accept: %s", strerror(errno));
		return c;
	}
	if (!strcmp(kind, "raw")) {
		struct sock_filter accept_all = BPF_STMT(BPF_RET | BPF_K, 0xffff);
		struct sock_fprog prog = { 1, &accept_all };

		c = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
		if (c < 0 || setsockopt(c, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
			scn_fail("raw filter: %s", strerror(errno));
		return c;
	}
	if (!strcmp(kind, "packet")) {
		struct tpacket_req req = { .tp_block_size = 4096,
					   .tp_block_nr = 1,
					   .tp_frame_size = 2048,
					   .tp_frame_nr = 2 };

		c = socket(AF_PACKET, SOCK_RAW, 0);
		if (c < 0 || setsockopt(c, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)))
			scn_fail("packet ring: %s", strerror(errno));
		return c;
	}
	if (!strcmp(kind, "multicast")) {
		c = socket(AF_INET, SOCK_DGRAM, 0);
		if (c < 0 || setsockopt(c, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)))
			scn_fail("multicast: %s", strerror(errno));
		return c;
	}
	scn_fail("unknown INET_REFUSE '%s'", kind);
}

/* A child holding fd 3 too, until the parent exits (WORKDIR/pids). */
static void fork_holder(void)
{
	char buf[32];
	pid_t k = fork();

	if (k < 0)
		scn_fail("fork: %s", strerror(errno));
	if (!k) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	snprintf(buf, sizeof(buf), "%d\n", (int)k);
	scn_write_file("pids", buf);
}

int main(int argc, char **argv)
{
	const char *kind = getenv("INET_REFUSE");
	int fd, type, st;
	socklen_t len = sizeof(type);

	scn_init(argc, argv, 1);
	if (!kind)
		scn_fail("INET_REFUSE is not set");
	/* fds 3-5 held by /dev/null, so the sockets made next land above */
	open("/dev/null", O_RDONLY);
	open("/dev/null", O_RDONLY);
	open("/dev/null", O_RDONLY);
	fd = make(kind);
	if (fd < 0 || dup2(fd, 3) != 3)
		scn_fail("%s: %s", kind, strerror(errno));
	close(fd);
	getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len);
	st = state_of(3);
	scn_log("fd 3: %s, type %d, TCP state %d", kind, type, st);
	if (!strcmp(kind, "shared"))
		fork_holder();
	scn_ready_then_wait();
	len = sizeof(fd);
	SCN_CHECK(!getsockopt(3, SOL_SOCKET, SO_TYPE, &fd, &len) && fd == type,
		  "fd 3 is no longer the %s socket", kind);
	SCN_CHECK(state_of(3) == st, "fd 3: TCP state %d, was %d", state_of(3), st);
	if (st == 1) {
		char b;

		SCN_CHECK(recv(3, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 || errno == EAGAIN,
			  "fd 3: peek fails (%s): left in repair mode?", strerror(errno));
	}
	scn_pass();
}
