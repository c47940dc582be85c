// SPDX-License-Identifier: MIT
/*
 * procattr - per-process attributes of /proc and membarrier:
 *   - oom_score_adj raised to 300 (children inherit it: a child checks too);
 *   - coredump_filter 0x3f instead of the default 0x33 (also file-backed
 *     private and shared mappings in a core dump);
 *   - membarrier PRIVATE_EXPEDITED registered (issuing the expedited command
 *     fails with EPERM without the registration).
 * Check: the expedited membarrier works and GET_REGISTRATIONS lists the
 * registration; oom_score_adj reads 300 in the process (the runner compares
 * /proc/PID/oom_score_adj too).
 */
#include <linux/membarrier.h>
#include <sys/syscall.h>

#include "scenario.h"

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

static void verify(void)
{
	char buf[32];
	long regs;

	SCN_CHECK(!scn_read_small("/proc/self/oom_score_adj", buf, sizeof(buf)) && atoi(buf) == 300,
		  "oom_score_adj is %s, expected 300", buf);
	SCN_CHECK(!scn_read_small("/proc/self/coredump_filter", buf, sizeof(buf)) &&
		      strtoul(buf, NULL, 16) == 0x3f,
		  "coredump_filter is %s, expected 0x3f", buf);
	SCN_CHECK(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0,
		  "expedited membarrier fails: %s", strerror(errno));
	regs = syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0);
	SCN_CHECK(regs >= 0 && (regs & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED),
		  "registrations %#lx lack PRIVATE_EXPEDITED", regs);
}

int main(int argc, char **argv)
{
	int fd;

	scn_init(argc, argv, 1);
	fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd < 0 || write(fd, "300", 3) != 3)
		scn_fail("cannot raise oom_score_adj: %s", strerror(errno));
	close(fd);
	fd = open("/proc/self/coredump_filter", O_WRONLY);
	if (fd < 0 || write(fd, "0x3f", 4) != 4)
		scn_fail("cannot set coredump_filter: %s", strerror(errno));
	close(fd);
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0))
		scn_fail("membarrier register: %s", strerror(errno));
	scn_ready_then_wait();
	verify();
	scn_pass();
}
