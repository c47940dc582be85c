// SPDX-License-Identifier: MIT
/*
 * unix_stream - a stream socketpair shared by a parent and its child, with
 * data queued both ways and one direction shut down, and a seqpacket pair
 * with records queued:
 *   - stream pair A/B, both fds open in the parent and in its child K
 *     (forked after the pair was made): 100000 bytes written into A (waiting
 *     in B), "pong" written into B (waiting in A), then A shut down for
 *     writing (B reads end-of-stream after the data);
 *   - seqpacket pair S/T: records "one", "three", "seventeen" queued in T,
 *     T using a peek offset (SO_PEEK_OFF), "one" peeked already (offset 3);
 *   - stream socket O whose peer wrote "bye" into it and was closed.
 * WORKDIR/pids lists K, which has parent-death signal SIGKILL.
 *
 * Check (in the parent): the parent's A and K's A are one open file
 * (kcmp); B yields the 100000 bytes then end-of-stream; A yields "pong";
 * writing to A fails with EPIPE; T's peek offset is 3 and a peek now sees
 * "three"; T yields the three records with their
 * boundaries; a new record goes through S to T; O yields "bye", then
 * end-of-stream, and writing to it fails with EPIPE.
 */
#include <linux/kcmp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "scenario.h"

#define BIG 100000

static int sp[2], sq[2], orph;
static pid_t kid;

static unsigned char pat(int i)
{
	return (unsigned char)(i * 7 + (i >> 8));
}

static void verify(void)
{
	static unsigned char buf[BIG + 16];
	size_t got = 0;
	ssize_t n;
	char rec[32];
	int i;

	SCN_CHECK(syscall(SYS_kcmp, getpid(), kid, KCMP_FILE, sp[0], sp[0]) == 0,
		  "the child's end A is not the parent's");
	SCN_CHECK(syscall(SYS_kcmp, getpid(), kid, KCMP_FILE, sp[1], sp[1]) == 0,
		  "the child's end B is not the parent's");
	while ((n = read(sp[1], buf + got, sizeof(buf) - got)) > 0)
		got += n;
	SCN_CHECK(n == 0, "B: read failed: %s", strerror(errno));
	SCN_CHECK(got == BIG, "B held %zu bytes, expected %d", got, BIG);
	for (i = 0; i < BIG; i++)
		SCN_CHECK(buf[i] == pat(i), "B: byte %d differs", i);
	n = recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT);
	SCN_CHECK(n == 4 && !memcmp(buf, "pong", 4), "A: got %zd bytes", n);
	signal(SIGPIPE, SIG_IGN);
	SCN_CHECK(write(sp[0], "x", 1) < 0 && errno == EPIPE, "A is not shut down for writing");
	SCN_CHECK(!getsockopt(sq[1], SOL_SOCKET, SO_PEEK_OFF, &i, &(socklen_t){ sizeof(i) }) &&
		      i == 3,
		  "T's peek offset is %d, expected 3", i);
	SCN_CHECK(recv(sq[1], rec, sizeof(rec), MSG_PEEK | MSG_DONTWAIT) == 5 &&
		      !memcmp(rec, "three", 5),
		  "a peek at offset 3 does not see the second record");
	SCN_CHECK(recv(sq[1], rec, sizeof(rec), MSG_DONTWAIT) == 3 && !memcmp(rec, "one", 3),
		  "record 1");
	SCN_CHECK(recv(sq[1], rec, sizeof(rec), MSG_DONTWAIT) == 5 && !memcmp(rec, "three", 5),
		  "record 2");
	SCN_CHECK(recv(sq[1], rec, sizeof(rec), MSG_DONTWAIT) == 9 && !memcmp(rec, "seventeen", 9),
		  "record 3");
	SCN_CHECK(recv(sq[1], rec, sizeof(rec), MSG_DONTWAIT) < 0, "a 4th record");
	SCN_CHECK(send(sq[0], "new", 3, 0) == 3 && recv(sq[1], rec, sizeof(rec), 0) == 3,
		  "seqpacket pair broken");
	SCN_CHECK(read(orph, rec, sizeof(rec)) == 3 && !memcmp(rec, "bye", 3), "O lost its data");
	SCN_CHECK(read(orph, rec, sizeof(rec)) == 0, "O: no end-of-stream");
	SCN_CHECK(write(orph, "x", 1) < 0 && errno == EPIPE, "O: writing did not fail with EPIPE");
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
}

int main(int argc, char **argv)
{
	static unsigned char buf[BIG];
	char pids[32];
	pid_t parent = getpid();
	int i, v = 1 << 20;

	scn_init(argc, argv, 1);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq))
		scn_fail("socketpair: %s", strerror(errno));
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	for (i = 0; i < BIG; i++)
		buf[i] = pat(i);
	if (write(sp[0], buf, BIG) != BIG || write(sp[1], "pong", 4) != 4)
		scn_fail("write: %s", strerror(errno));
	shutdown(sp[0], SHUT_WR);
	send(sq[0], "one", 3, 0);
	send(sq[0], "three", 5, 0);
	send(sq[0], "seventeen", 9, 0);
	{
		char pk[8];
		int zero = 0;

		if (setsockopt(sq[1], SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) ||
		    recv(sq[1], pk, sizeof(pk), MSG_PEEK) != 3)
			scn_fail("peek offset: %s", strerror(errno));
	}
	{
		int op[2];

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, op) || write(op[1], "bye", 3) != 3)
			scn_fail("orphan pair: %s", strerror(errno));
		close(op[1]);
		orph = op[0];
	}
	kid = fork();
	if (kid < 0)
		scn_fail("fork: %s", strerror(errno));
	if (!kid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(3);
		for (;;)
			pause();
	}
	snprintf(pids, sizeof(pids), "%d\n", (int)kid);
	scn_write_file("pids", pids);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
