// SPDX-License-Identifier: MIT
/*
 * share_tables - a root and a child made by clone() with SHARE_MODE's
 * flag and no CLONE_THREAD: "files" (CLONE_FILES), "fs" (CLONE_FS),
 * "sighand" (CLONE_SIGHAND|CLONE_VM, which the kernel requires together)
 * or "vm" (CLONE_VM).  Both count in memory; the dump must refuse the tree.
 *
 * Check: the child still runs (its counter, in a pipe, advances) and the
 * shared object is still shared: a fd the root opens after the check
 * starts is seen by the child (files), a chdir by the root is the child's
 * (fs), or the child's counter is the root's memory (vm, sighand).
 */
#include "scenario.h"

#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static volatile unsigned long kid_count;
static int pipefd[2];
static char stack[65536] __attribute__((aligned(16)));

static int kid_main(void *arg)
{
	unsigned long n = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		usleep(2000);
		kid_count = ++n; /* visible to the root only with CLONE_VM */
		if (write(pipefd[1], "x", 1) < 0 && errno != EAGAIN)
			_exit(1);
	}
	return 0;
}

static unsigned long drain(void)
{
	char buf[512];
	unsigned long n = 0;
	ssize_t r;

	while ((r = read(pipefd[0], buf, sizeof(buf))) > 0)
		n += r;
	return n;
}

int main(int argc, char **argv)
{
	const char *mode = getenv("SHARE_MODE");
	int flags = 0;
	char buf[32];
	pid_t kid;

	scn_init(argc, argv, 0);
	if (!mode)
		mode = "files";
	if (!strcmp(mode, "files"))
		flags = CLONE_FILES;
	else if (!strcmp(mode, "fs"))
		flags = CLONE_FS;
	else if (!strcmp(mode, "sighand"))
		flags = CLONE_SIGHAND | CLONE_VM;
	else if (!strcmp(mode, "vm"))
		flags = CLONE_VM;
	if (pipe2(pipefd, O_NONBLOCK)) {
		scn_log("pipe: %s", strerror(errno));
		return 2;
	}
	kid = clone(kid_main, stack + sizeof(stack), flags | SIGCHLD, NULL);
	if (kid < 0) {
		scn_log("clone: %s", strerror(errno));
		return 2;
	}
	snprintf(buf, sizeof(buf), "%d\n", kid);
	scn_write_file("pids", buf);
	usleep(20000);
	scn_ready();
	while (!scn_check)
		pause();
	drain();
	usleep(50000);
	SCN_CHECK(drain() > 0, "the child stopped counting");
	SCN_CHECK(waitpid(kid, NULL, WNOHANG) == 0, "the child exited");
	if (flags & CLONE_VM) {
		unsigned long a = kid_count;

		usleep(20000);
		SCN_CHECK(kid_count > a, "the child's counter is no longer in our memory");
	}
	scn_pass();
}
