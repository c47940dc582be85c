// SPDX-License-Identifier: MIT
/*
 * unsupported - like counter, but also holds a userfaultfd, a resource
 * stasis cannot dump: the runner expects the dump to fail cleanly and this
 * process to keep running unharmed.
 *
 * Check: the counter went past its ready value and still advances, heap
 * and stack copies agree, and the fd is still the userfaultfd.
 */
#include <fcntl.h>
#include <sys/syscall.h>
#include "scenario.h"

static unsigned long *heap_counter;
static unsigned long ready_value;
static int sock;
static unsigned int port;

/* 1 if sock is still a userfaultfd */
static unsigned int bound_port(void)
{
	char path[64], link[64] = "";

	snprintf(path, sizeof(path), "/proc/self/fd/%d", sock);
	if (readlink(path, link, sizeof(link) - 1) < 0)
		return 0;
	return !strcmp(link, "anon_inode:[userfaultfd]");
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
	unsigned long c0;
	int i;

	scn_init(argc, argv, 1);
	heap_counter = calloc(1, sizeof(*heap_counter));
	if (!heap_counter)
		scn_fail("malloc failed");
	sock = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (sock < 0)
		scn_fail("userfaultfd: %s", strerror(errno));
	port = bound_port();
	scn_log("userfaultfd at fd %d", sock);
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
				  "fd %d is no longer the userfaultfd (%u, expected %u)", sock,
				  bound_port(), port);
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
