// SPDX-License-Identifier: MIT
/*
 * unix_dgram - datagram unix sockets with messages waiting:
 *   - a socketpair: 10 messages of different sizes (0..9 * 37 bytes, one of
 *     them empty) queued from end A to end B, 2 from B to A; end B is
 *     O_NONBLOCK and has SO_RCVBUF 65536;
 *   - a socket AB bound to an abstract name, with 6 messages queued, in
 *     this order: "dgram0" from an unbound, unconnected socket SND (which
 *     stays open), "named0" from a socket NS bound to another abstract
 *     name, "dgram1" from SND, "cli0" from a socket CLI connected to AB
 *     (one way: AB is not connected to it), "named1" from NS, "dgram2"
 *     from SND;
 *   - a datagram socket OR whose socketpair peer was closed;
 *   - two sockets M1, M2 bound to abstract names and connected to each
 *     other, "m1-to-m2" queued in M2 and "m2-to-m1" in M1;
 *   - a datagram socket GONE bound to WORKDIR/gone.sock, whose socket file
 *     was then removed, with "lost+found" queued from SND.
 *
 * Check: B receives the 10 messages in order with their exact sizes and
 * bytes, then nothing (EAGAIN, it is non-blocking); A gets its 2; AB still
 * has its name and its 6 messages in order, NS's with NS's name as sender,
 * the others with none; SND and CLI can still send to it, CLI without an
 * address, and CLI's peer is AB; sending on OR fails with ECONNREFUSED;
 * GONE still has its name, the file is still absent, the message waits;
 * M1 and M2 get their message (from the other's name) and still talk.
 */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "scenario.h"

static int sv[2], ab, snd, ns, cli, orph, gone, m1, m2;
static struct sockaddr_un m1_addr, m2_addr;
static socklen_t m1_len, m2_len;
static char gone_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct sockaddr_un ab_addr, ns_addr;
static socklen_t ab_len, ns_len;

static socklen_t abstract(struct sockaddr_un *a, const char *what)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	return offsetof(struct sockaddr_un, sun_path) + 1 +
	       snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "stasis-test-%s-%d", what,
			(int)getpid());
}

static const char *const ab_msgs[] = { "dgram0", "named0", "dgram1", "cli0", "named1", "dgram2" };

static void fill(char *buf, int i, int len)
{
	int k;

	for (k = 0; k < len; k++)
		buf[k] = (char)(i * 31 + k);
}

static void verify(void)
{
	char buf[1024], want[1024];
	struct sockaddr_un from, name;
	socklen_t fl = sizeof(from), nl = sizeof(name);
	int i, v;
	socklen_t vl = sizeof(v);
	ssize_t n;

	for (i = 0; i < 10; i++) {
		n = recv(sv[1], buf, sizeof(buf), 0);
		fill(want, i, i * 37);
		SCN_CHECK(n == i * 37 && !memcmp(buf, want, n), "message %d: got %zd bytes", i, n);
	}
	n = recv(sv[1], buf, sizeof(buf), 0);
	SCN_CHECK(n < 0 && errno == EAGAIN, "an 11th message or not non-blocking (%zd)", n);
	SCN_CHECK(!getsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &v, &vl) && v == 131072,
		  "SO_RCVBUF is %d", v);
	for (i = 0; i < 2; i++) {
		n = recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT);
		SCN_CHECK(n == 5 && buf[0] == 'r' && buf[4] == '0' + i, "reply %d: %zd", i, n);
	}
	SCN_CHECK(!getsockname(ab, (struct sockaddr *)&name, &nl) && nl == ab_len &&
		      !memcmp(&name, &ab_addr, nl),
		  "abstract name lost");
	for (i = 0; i < 6; i++) {
		int named = ab_msgs[i][0] == 'n';

		fl = sizeof(from);
		n = recvfrom(ab, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		SCN_CHECK(n == (ssize_t)strlen(ab_msgs[i]) && !memcmp(buf, ab_msgs[i], n),
			  "abstract message %d: %zd bytes, expected %s", i, n, ab_msgs[i]);
		if (named)
			SCN_CHECK(fl == ns_len && !memcmp(&from, &ns_addr, fl),
				  "message %d lacks its sender's name", i);
		else
			SCN_CHECK(fl <= sizeof(sa_family_t), "message %d has a sender name", i);
	}
	SCN_CHECK(recv(ab, buf, sizeof(buf), MSG_DONTWAIT) < 0, "a 7th abstract message");
	SCN_CHECK(sendto(snd, "x", 1, 0, (struct sockaddr *)&ab_addr, ab_len) == 1,
		  "sender cannot send any more: %s", strerror(errno));
	SCN_CHECK(recv(ab, buf, sizeof(buf), MSG_DONTWAIT) == 1, "new message not received");
	nl = sizeof(name);
	SCN_CHECK(!getpeername(cli, (struct sockaddr *)&name, &nl) && nl == ab_len &&
		      !memcmp(&name, &ab_addr, nl),
		  "CLI is not connected to AB");
	SCN_CHECK(send(cli, "y", 1, 0) == 1 && recv(ab, buf, sizeof(buf), MSG_DONTWAIT) == 1,
		  "CLI cannot send to AB: %s", strerror(errno));
	nl = sizeof(name);
	SCN_CHECK(!getsockname(gone, (struct sockaddr *)&name, &nl) &&
		      !strcmp(name.sun_path, gone_path),
		  "GONE lost its name");
	SCN_CHECK(access(gone_path, F_OK) < 0, "GONE's socket file is back");
	SCN_CHECK(recv(gone, buf, sizeof(buf), MSG_DONTWAIT) == 10 &&
		      !memcmp(buf, "lost+found", 10),
		  "GONE lost its message");
	fl = sizeof(from);
	n = recvfrom(m2, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	SCN_CHECK(n == 8 && !memcmp(buf, "m1-to-m2", 8) && fl == m1_len &&
		      !memcmp(&from, &m1_addr, fl),
		  "M2 lost its message (%zd)", n);
	fl = sizeof(from);
	n = recvfrom(m1, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	SCN_CHECK(n == 8 && !memcmp(buf, "m2-to-m1", 8) && fl == m2_len &&
		      !memcmp(&from, &m2_addr, fl),
		  "M1 lost its message (%zd)", n);
	SCN_CHECK(send(m1, "1", 1, 0) == 1 && send(m2, "2", 1, 0) == 1 &&
		      recv(m2, buf, 1, MSG_DONTWAIT) == 1 && recv(m1, buf, 1, MSG_DONTWAIT) == 1,
		  "M1 and M2 are not connected any more");
	SCN_CHECK(send(orph, "z", 1, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED,
		  "sending to a closed peer: %s, expected ECONNREFUSED", strerror(errno));
}

int main(int argc, char **argv)
{
	char buf[1024], msg[8];
	int i, v = 65536;

	scn_init(argc, argv, 1);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
		scn_fail("socketpair: %s", strerror(errno));
	for (i = 0; i < 10; i++) {
		fill(buf, i, i * 37);
		if (send(sv[0], buf, i * 37, 0) != i * 37)
			scn_fail("send %d: %s", i, strerror(errno));
	}
	for (i = 0; i < 2; i++) {
		snprintf(msg, sizeof(msg), "rep%d", 0);
		msg[0] = 'r';
		msg[4] = '0' + i;
		send(sv[1], msg, 5, 0);
	}
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));

	ab = socket(AF_UNIX, SOCK_DGRAM, 0);
	snd = socket(AF_UNIX, SOCK_DGRAM, 0);
	ns = socket(AF_UNIX, SOCK_DGRAM, 0);
	cli = socket(AF_UNIX, SOCK_DGRAM, 0);
	ab_len = abstract(&ab_addr, "ab");
	ns_len = abstract(&ns_addr, "ns");
	if (bind(ab, (struct sockaddr *)&ab_addr, ab_len) ||
	    bind(ns, (struct sockaddr *)&ns_addr, ns_len) ||
	    connect(cli, (struct sockaddr *)&ab_addr, ab_len))
		scn_fail("bind: %s", strerror(errno));
	for (i = 0; i < 6; i++) {
		const char *m = ab_msgs[i];
		int from = m[0] == 'd' ? snd : m[0] == 'n' ? ns : cli;

		if (sendto(from, m, strlen(m), 0, from == cli ? NULL : (struct sockaddr *)&ab_addr,
			   from == cli ? 0 : ab_len) != (ssize_t)strlen(m))
			scn_fail("sendto: %s", strerror(errno));
	}
	{
		struct sockaddr_un g = { .sun_family = AF_UNIX };

		if (snprintf(gone_path, sizeof(gone_path), "%s/gone.sock", scn_dir) >=
		    (int)sizeof(gone_path))
			scn_fail("WORKDIR too long for a socket path");
		strcpy(g.sun_path, gone_path);
		unlink(gone_path);
		gone = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (bind(gone, (struct sockaddr *)&g, sizeof(g)) ||
		    sendto(snd, "lost+found", 10, 0, (struct sockaddr *)&g, sizeof(g)) != 10 ||
		    unlink(gone_path))
			scn_fail("gone.sock: %s", strerror(errno));
	}
	m1 = socket(AF_UNIX, SOCK_DGRAM, 0);
	m2 = socket(AF_UNIX, SOCK_DGRAM, 0);
	m1_len = abstract(&m1_addr, "m1");
	m2_len = abstract(&m2_addr, "m2");
	if (bind(m1, (struct sockaddr *)&m1_addr, m1_len) ||
	    bind(m2, (struct sockaddr *)&m2_addr, m2_len) ||
	    connect(m1, (struct sockaddr *)&m2_addr, m2_len) ||
	    connect(m2, (struct sockaddr *)&m1_addr, m1_len) || send(m1, "m1-to-m2", 8, 0) != 8 ||
	    send(m2, "m2-to-m1", 8, 0) != 8)
		scn_fail("m1/m2: %s", strerror(errno));
	{
		int op[2];

		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, op))
			scn_fail("socketpair: %s", strerror(errno));
		orph = op[0];
		close(op[1]);
	}
	scn_ready_then_wait();
	verify();
	scn_pass();
}
