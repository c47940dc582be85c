// SPDX-License-Identifier: MIT
/*
 * sharedfd - one open file description shared by a parent and its children
 * at different fd numbers (as make passes its stdin pipe to a job):
 *
 *   root  WORKDIR/shared.dat opened O_RDWR at fd 5, 5 bytes written
 *    +- X  the same description at fd 0 (dup2(5, 0), 5 closed)
 *    +- Y  the same description at fds 5 and 7
 *    +- Z  fd 5 is its own open of shared.dat (not shared), position 0
 *
 * WORKDIR/pids lists X Y Z; they have parent-death signal SIGKILL.
 *
 * Check: the root writes 3 more bytes through its fd 5; the position of
 * X's fd 0 and Y's fds 5 and 7 (/proc/PID/fdinfo) follows it to 8, Z's
 * fd 5 stays at 0; every fd still names shared.dat.
 */
#include "scenario.h"

#include <sys/prctl.h>
#include <sys/wait.h>

enum { C_X, C_Y, C_Z, C_N };
static pid_t kid[C_N];

static void __attribute__((noreturn)) kid_loop(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	for (;;)
		pause();
}

static void kill_kids(void)
{
	int i;

	for (i = 0; i < C_N; i++)
		if (kid[i] > 0) {
			kill(kid[i], SIGKILL);
			waitpid(kid[i], NULL, 0);
		}
}

#define KCHECK(cond, ...)                      \
	do {                                   \
		if (!(cond)) {                 \
			kill_kids();           \
			scn_fail(__VA_ARGS__); \
		}                              \
	} while (0)

/* The position of fd of pid (from /proc/PID/fdinfo/FD), -1 if unknown. */
static long fd_pos(pid_t pid, int fd)
{
	char path[64], buf[512];
	long pos = -1;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)scn_proc_pid(pid), fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "pos: %ld", &pos) != 1)
		return -1;
	return pos;
}

/* fd of pid is WORKDIR/shared.dat. */
static int names_shared(pid_t pid, int fd)
{
	char path[64], target[PATH_MAX + 1], want[PATH_MAX + 16];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)scn_proc_pid(pid), fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return 0;
	target[n] = '\0';
	snprintf(want, sizeof(want), "%s/shared.dat", scn_dir);
	return !strcmp(target, want);
}

static void verify(void)
{
	static const struct {
		int kid, fd;
		long pos; /* expected after the write */
	} want[] = { { C_X, 0, 8 }, { C_Y, 5, 8 }, { C_Y, 7, 8 }, { C_Z, 5, 0 } };
	long pos;
	size_t i;

	pos = lseek(5, 0, SEEK_CUR);
	KCHECK(pos == 5, "root fd 5 at %ld, expected 5", pos);
	KCHECK(write(5, "abc", 3) == 3, "write to fd 5: %s", strerror(errno));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		pid_t p = kid[want[i].kid];

		KCHECK(names_shared(p, want[i].fd), "pid %d fd %d is not shared.dat", (int)p,
		       want[i].fd);
		pos = fd_pos(p, want[i].fd);
		KCHECK(pos == want[i].pos, "pid %d fd %d at position %ld, expected %ld (%s)",
		       (int)p, want[i].fd, pos, want[i].pos,
		       want[i].pos ? "shared with the root's fd 5" : "its own open file");
	}
	kill_kids();
}

int main(int argc, char **argv)
{
	char buf[64];
	pid_t me;
	int fd, i;

	scn_init(argc, argv, 1);
	me = getpid();
	fd = open("shared.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || dup2(fd, 5) != 5 || write(5, "hello", 5) != 5)
		scn_fail("cannot set up shared.dat: %s", strerror(errno));
	if (fd != 5)
		close(fd);

	kid[C_X] = fork();
	if (kid[C_X] == 0) {
		if (dup2(5, 0) != 0)
			_exit(4);
		close(5);
		kid_loop(me);
	}
	kid[C_Y] = fork();
	if (kid[C_Y] == 0) {
		if (dup2(5, 7) != 7)
			_exit(4);
		kid_loop(me);
	}
	kid[C_Z] = fork();
	if (kid[C_Z] == 0) {
		fd = open("shared.dat", O_RDWR);
		if (fd < 0 || dup2(fd, 5) != 5)
			_exit(4);
		close(fd);
		kid_loop(me);
	}
	for (i = 0; i < C_N; i++)
		if (kid[i] < 0) {
			kill_kids();
			scn_fail("fork failed");
		}
	/* wait until the children have their fds in place */
	for (i = 0; i < 500; i++) {
		if (names_shared(kid[C_X], 0) && !names_shared(kid[C_X], 5) &&
		    names_shared(kid[C_Y], 7) && names_shared(kid[C_Z], 5) &&
		    fd_pos(kid[C_Z], 5) == 0)
			break;
		scn_msleep(10);
	}
	if (i == 500) {
		kill_kids();
		scn_fail("the children did not set up their fds within 5 s");
	}
	snprintf(buf, sizeof(buf), "%d %d %d\n", (int)kid[C_X], (int)kid[C_Y], (int)kid[C_Z]);
	scn_write_file("pids", buf);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);
	verify();
	scn_pass();
}
