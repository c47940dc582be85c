// SPDX-License-Identifier: MIT
/*
 * inet_pingpong - a TCP connection inside the process that is busy when
 * it is frozen (dumped with --tcp-established): C and S (over 127.0.0.1,
 * the listener closed) exchange a numbered 64-byte message every
 * millisecond, each side answering the other's, so the queues are mostly
 * empty and a killed original leaves a TIME_WAIT behind it (after dump -R)
 * that the restored connection must take over.
 *
 * Check: the exchange went on after the restore (the round counter passed
 * its ready value), each message carried the number expected, and a
 * last round trip works.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "scenario.h"

static int C, S;
static unsigned long rounds, ready_rounds;

static int xfer(int from, int to, unsigned long n)
{
	char buf[64], got[64];
	size_t have = 0;

	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf), "round %lu", n);
	if (write(from, buf, sizeof(buf)) != sizeof(buf))
		return -1;
	while (have < sizeof(got)) {
		struct pollfd p = { to, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, 5000) != 1)
			return -1;
		r = read(to, got + have, sizeof(got) - have);
		if (r <= 0)
			return -1;
		have += r;
	}
	return memcmp(buf, got, sizeof(buf)) ? -1 : 0;
}

static void step(void)
{
	if (xfer(C, S, rounds) || xfer(S, C, rounds))
		scn_fail("round %lu failed: %s", rounds, strerror(errno));
	rounds++;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int L;

	scn_init(argc, argv, 1);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	L = socket(AF_INET, SOCK_STREAM, 0);
	if (L < 0 || bind(L, (struct sockaddr *)&a, sizeof(a)) || listen(L, 1) ||
	    getsockname(L, (struct sockaddr *)&a, &len))
		scn_fail("listener: %s", strerror(errno));
	C = socket(AF_INET, SOCK_STREAM, 0);
	if (C < 0 || connect(C, (struct sockaddr *)&a, sizeof(a)))
		scn_fail("connect: %s", strerror(errno));
	S = accept(L, NULL, NULL);
	if (S < 0)
		scn_fail("accept: %s", strerror(errno));
	close(L);
	while (rounds < 20)
		step();
	ready_rounds = rounds;
	scn_ready();
	while (!scn_check) {
		step();
		scn_msleep(1);
	}
	step();
	SCN_CHECK(rounds > ready_rounds + 5, "only %lu rounds since ready", rounds - ready_rounds);
	scn_pass();
}
