// SPDX-License-Identifier: MIT
/*
 * fid_files: processes sharing one fd table (CLONE_FILES without
 * CLONE_THREAD).  The root clones a child into its table, the child
 * clones a grandchild into the same table, and the root forks a third
 * process that has a table of its own.  After the clones the root opens a
 * file and the child a pipe: one open each, seen by all three sharers.
 *
 * The check: kcmp says the three share one table and the third does not;
 * the fds opened after the clones are one open file description in each
 * sharer; and the table is still live: an fd the root installs now is
 * seen, and written to, by the child and the grandchild, never by the
 * third process.
 *
 * FID_FILES_SPLIT=1: the root also clones a second child into its table
 * and then leaves it (unshare): two children share a table their parent
 * no longer has, which restore cannot clone; the dump must refuse.  The
 * check then only asks that both children still share it.
 */
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/kcmp.h>

#include "scenario.h"

#define FD_LATE	 40 /* the root opens a file here after the clones */
#define FD_PIPE	 41 /* the child opens a pipe here after the clones */
#define FD_PROBE 77 /* the root installs it at the check */

static char stack1[65536] __attribute__((aligned(16)));
static char stack2[65536] __attribute__((aligned(16)));
static pid_t kid, kid2, grandkid, other;

/* Every sharer writes its letter once into FD_PROBE when it appears. */
static void __attribute__((noreturn)) watch(char letter)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		if (fcntl(FD_PROBE, F_GETFD) >= 0) {
			if (write(FD_PROBE, &letter, 1) != 1)
				_exit(1);
			for (;;)
				pause();
		}
		usleep(2000);
	}
}

static int grandkid_main(void *arg)
{
	watch('g');
}

static int kid_main(void *arg)
{
	int p[2];

	grandkid = clone(grandkid_main, stack2 + sizeof(stack2), CLONE_FILES | SIGCHLD, NULL);
	if (grandkid < 0)
		_exit(1);
	if (pipe(p) || dup2(p[0], FD_PIPE) < 0)
		_exit(1);
	close(p[0]);
	/* tell the root the grandchild's pid through the pipe, then watch */
	if (write(p[1], &grandkid, sizeof(grandkid)) != sizeof(grandkid))
		_exit(1);
	close(p[1]);
	watch('k');
}

static long kcmp(pid_t a, pid_t b, int type, long x, long y)
{
	return syscall(SYS_kcmp, a, b, type, x, y);
}

int main(int argc, char **argv)
{
	int p[2], fd, i;
	char buf[8];
	int seen[3] = { 0 };

	scn_init(argc, argv, 0);
	kid = clone(kid_main, stack1 + sizeof(stack1), CLONE_FILES | SIGCHLD, NULL);
	if (kid < 0) {
		scn_log("clone: %s", strerror(errno));
		return 2;
	}
	if (getenv("FID_FILES_SPLIT")) {
		kid2 = clone(grandkid_main, stack2 + sizeof(stack2), CLONE_FILES | SIGCHLD, NULL);
		if (kid2 < 0 || unshare(CLONE_FILES)) {
			scn_log("setup: split: %s", strerror(errno));
			return 2;
		}
		scn_ready();
		while (!scn_check)
			usleep(2000);
		SCN_CHECK(kcmp(kid, kid2, KCMP_FILES, 0, 0) == 0, "the children no longer share");
		SCN_CHECK(kcmp(getpid(), kid, KCMP_FILES, 0, 0) != 0, "we share the table again");
		scn_pass();
	}
	other = fork();
	if (other == 0)
		watch('o');
	fd = open("late", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || dup2(fd, FD_LATE) < 0 || write(FD_LATE, "late", 4) != 4) {
		scn_log("setup: %s", strerror(errno));
		return 2;
	}
	close(fd);
	for (i = 0; i < 500 && fcntl(FD_PIPE, F_GETFD) < 0; i++)
		usleep(2000);
	if (read(FD_PIPE, &grandkid, sizeof(grandkid)) != sizeof(grandkid)) {
		scn_log("setup: no pid from the child");
		return 2;
	}
	scn_ready();
	while (!scn_check)
		usleep(2000);

	SCN_CHECK(kcmp(getpid(), kid, KCMP_FILES, 0, 0) == 0,
		  "the child no longer shares our fd table");
	SCN_CHECK(kcmp(getpid(), grandkid, KCMP_FILES, 0, 0) == 0,
		  "the grandchild no longer shares our fd table");
	SCN_CHECK(kcmp(getpid(), other, KCMP_FILES, 0, 0) != 0,
		  "the forked process shares our fd table");
	SCN_CHECK(kcmp(getpid(), kid, KCMP_FILE, FD_LATE, FD_LATE) == 0,
		  "fd %d is another open file in the child", FD_LATE);
	SCN_CHECK(lseek(FD_LATE, 0, SEEK_CUR) == 4, "fd %d lost its offset", FD_LATE);
	SCN_CHECK(fcntl(FD_PIPE, F_GETFD) >= 0, "fd %d (the child's pipe) is gone", FD_PIPE);
	SCN_CHECK(fcntl(FD_PROBE, F_GETFD) < 0, "fd %d is open before the check", FD_PROBE);
	if (pipe(p) || dup2(p[1], FD_PROBE) < 0)
		scn_fail("pipe: %s", strerror(errno));
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (i = 0; i < 500 && !(seen[0] && seen[1]); i++) {
		ssize_t n = read(p[0], buf, sizeof(buf)), j;

		for (j = 0; j < n; j++)
			seen[buf[j] == 'k' ? 0 : buf[j] == 'g' ? 1 : 2] = 1;
		usleep(2000);
	}
	usleep(20000);
	if (read(p[0], buf, 1) == 1 && buf[0] == 'o')
		seen[2] = 1;
	SCN_CHECK(seen[0], "the child does not see the fd we opened");
	SCN_CHECK(seen[1], "the grandchild does not see the fd we opened");
	SCN_CHECK(!seen[2], "the forked process sees the fd we opened");
	scn_pass();
}
