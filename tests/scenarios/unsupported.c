// SPDX-License-Identifier: MIT
/*
 * unsupported - like counter, but also holds an AF_PACKET socket bound to
 * the loopback device (protocol 0: it receives nothing), a resource stasis
 * cannot dump yet: the runner expects the dump to fail cleanly and this
 * process to keep running unharmed.
 *
 * Check: the counter went past its ready value and still advances, heap
 * and stack copies agree, and the socket is still bound to the loopback.
 */
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include "scenario.h"

static unsigned long *heap_counter;
static unsigned long ready_value;
static int sock;
static unsigned int port;

static unsigned int bound_port(void)
{
	struct sockaddr_ll sll;
	socklen_t len = sizeof(sll);

	if (getsockname(sock, (struct sockaddr *)&sll, &len) < 0)
		return 0;
	return sll.sll_ifindex;
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
	struct sockaddr_ll sll;
	unsigned long c0;
	int i;

	scn_init(argc, argv, 1);
	heap_counter = calloc(1, sizeof(*heap_counter));
	if (!heap_counter)
		scn_fail("malloc failed");
	sock = socket(AF_PACKET, SOCK_DGRAM, 0);
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = if_nametoindex("lo");
	if (sock < 0 || bind(sock, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		scn_fail("packet socket: %s", strerror(errno));
	port = bound_port();
	scn_log("packet socket fd %d bound to ifindex %u", sock, port);
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
				  "socket bound to ifindex %u, expected %u", bound_port(), port);
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
