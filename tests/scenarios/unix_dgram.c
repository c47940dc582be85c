// SPDX-License-Identifier: MIT
/*
 * unix_dgram - datagram unix sockets with messages waiting:
 *   - a socketpair: 10 messages of different sizes (0..9 * 37 bytes, one of
 *     them empty) queued from end A to end B, 2 from B to A; end B is
 *     O_NONBLOCK and has SO_RCVBUF 65536;
 *   - a socket bound to an abstract name, with 3 messages sent by an
 *     unbound, unconnected socket (which stays open).
 *
 * Check: B receives the 10 messages in order with their exact sizes and
 * bytes, then nothing (EAGAIN, it is non-blocking); A gets its 2; the
 * abstract socket still has its name and its 3 messages, sent from an
 * unnamed socket; the sender can still send to it.
 */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "scenario.h"

static int sv[2], ab, snd;
static struct sockaddr_un ab_addr;
static socklen_t ab_len;

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
	for (i = 0; i < 3; i++) {
		fl = sizeof(from);
		n = recvfrom(ab, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		SCN_CHECK(n == 6 && !memcmp(buf, "dgram", 5) && buf[5] == '0' + i,
			  "abstract message %d: %zd", i, n);
		SCN_CHECK(fl <= sizeof(sa_family_t), "message %d has a sender name", i);
	}
	SCN_CHECK(recv(ab, buf, sizeof(buf), MSG_DONTWAIT) < 0, "a 4th abstract message");
	SCN_CHECK(sendto(snd, "x", 1, 0, (struct sockaddr *)&ab_addr, ab_len) == 1,
		  "sender cannot send any more: %s", strerror(errno));
	SCN_CHECK(recv(ab, buf, sizeof(buf), MSG_DONTWAIT) == 1, "new message not received");
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
	memset(&ab_addr, 0, sizeof(ab_addr));
	ab_addr.sun_family = AF_UNIX;
	ab_len = offsetof(struct sockaddr_un, sun_path) + 1 +
		 snprintf(ab_addr.sun_path + 1, sizeof(ab_addr.sun_path) - 1, "stasis-test-%d",
			  (int)getpid());
	if (bind(ab, (struct sockaddr *)&ab_addr, ab_len))
		scn_fail("bind: %s", strerror(errno));
	for (i = 0; i < 3; i++) {
		snprintf(msg, sizeof(msg), "dgram%d", i);
		if (sendto(snd, msg, 6, 0, (struct sockaddr *)&ab_addr, ab_len) != 6)
			scn_fail("sendto: %s", strerror(errno));
	}
	scn_ready();
	while (!scn_check)
		scn_msleep(10);
	verify();
	scn_pass();
}
