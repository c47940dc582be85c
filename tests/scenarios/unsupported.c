// SPDX-License-Identifier: MIT
/*
 * unsupported - like counter, but also holds a bound AF_NETLINK socket
 * (NETLINK_ROUTE), a resource stasis cannot dump yet: the runner expects
 * the dump to fail cleanly and this process to keep running unharmed.
 *
 * Check: the counter went past its ready value and still advances, heap
 * and stack copies agree, and the socket still has its netlink port id.
 */
#include <linux/netlink.h>
#include <sys/socket.h>
#include "scenario.h"

static unsigned long *heap_counter;
static unsigned long ready_value;
static int sock;
static unsigned int port;

static unsigned int bound_port(void)
{
	struct sockaddr_nl snl;
	socklen_t len = sizeof(snl);

	if (getsockname(sock, (struct sockaddr *)&snl, &len) < 0)
		return 0;
	return snl.nl_pid;
}

static void step(volatile unsigned long *stack_counter)
{
	unsigned long c = ++*heap_counter;

	++*stack_counter;
	if (c % 500 == 0)
		scn_log("count %lu", c);
}

int main(int argc, char **argv)
{
	volatile unsigned long stack_counter = 0;
	struct sockaddr_nl snl;
	unsigned long c0;
	int i;

	scn_init(argc, argv, 1);
	heap_counter = calloc(1, sizeof(*heap_counter));
	if (!heap_counter)
		scn_fail("malloc failed");
	sock = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	memset(&snl, 0, sizeof(snl));
	snl.nl_family = AF_NETLINK;
	if (sock < 0 || bind(sock, (struct sockaddr *)&snl, sizeof(snl)) < 0)
		scn_fail("netlink socket: %s", strerror(errno));
	port = bound_port();
	scn_log("netlink socket fd %d bound to port id %u", sock, port);
	for (i = 0; i < 100; i++)
		step(&stack_counter);
	ready_value = *heap_counter;
	scn_ready();

	for (;;) {
		step(&stack_counter);
		if (scn_check) {
			c0 = *heap_counter;
			SCN_CHECK(c0 == stack_counter, "heap counter %lu != stack counter %lu", c0,
				  stack_counter);
			SCN_CHECK(c0 > ready_value, "counter %lu not past its ready value %lu", c0,
				  ready_value);
			SCN_CHECK(port != 0 && bound_port() == port,
				  "socket port id is %u, expected %u", bound_port(), port);
			for (i = 0; i < 10; i++) {
				step(&stack_counter);
				scn_msleep(1);
			}
			SCN_CHECK(*heap_counter == c0 + 10, "counter did not advance");
			scn_pass();
		}
		scn_msleep(1);
	}
}
