/*
 * ev_pidfd: pidfds of processes of the tree.
 *   - fd 5: a pidfd of this process, opened before the fork, so the child
 *     shares its open file description (fd 5 there too);
 *   - fd 6: a pidfd of the child (created after it: restore must open it
 *     once the child exists), O_NONBLOCK, and fd 7 a dup of it;
 *   - the child holds a pidfd of its parent at fd 8;
 *   - fd 9: a pidfd of a second child that has exited with status 7 and
 *     is a zombie (not reaped).
 * WORKDIR/pids names the child.
 *
 * Check: fds 5-7 are pidfds naming this process and the child (fdinfo
 * Pid:), fd 7 shares fd 6's description (a flag set on one shows on the
 * other), the child is alive (no POLLIN), pidfd_send_signal(SIGTERM)
 * through fd 6 ends it, poll on the pidfd then reports its exit, and
 * waitid(P_PIDFD) gives SIGTERM as its end; fd 9 reports its zombie
 * as exited at once and waitid(P_PIDFD) on it gives exit status 7.
 */
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "scenario.h"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static pid_t child, zombie;

static int pidfd_open(pid_t pid, unsigned int flags)
{
	return syscall(SYS_pidfd_open, pid, flags);
}

/* The pid a pidfd names, as this process sees it (the last NSpid field). */
static long fdinfo_pid(int fd)
{
	char path[64], buf[512], *p, *end;
	long pid = -2;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (scn_read_small(path, buf, sizeof(buf)) || !(p = strstr(buf, "\nNSpid:")))
		return -2;
	for (p += 7; *p && *p != '\n'; p = end) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		pid = v;
	}
	return pid;
}

static void verify(void)
{
	struct pollfd p = { 6, POLLIN, 0 };
	siginfo_t si;

	SCN_CHECK(fdinfo_pid(5) == getpid(), "fd 5 names pid %ld, expected %d", fdinfo_pid(5),
		  (int)getpid());
	SCN_CHECK(fdinfo_pid(6) == child, "fd 6 names pid %ld, expected the child %d",
		  fdinfo_pid(6), (int)child);
	SCN_CHECK(fdinfo_pid(7) == child, "fd 7 names pid %ld", fdinfo_pid(7));
	SCN_CHECK(fcntl(6, F_GETFL) & O_NONBLOCK, "fd 6 lost O_NONBLOCK");
	SCN_CHECK(fcntl(7, F_SETFL, 0) == 0 && !(fcntl(6, F_GETFL) & O_NONBLOCK),
		  "fd 7 does not share fd 6's open file description");
	SCN_CHECK(fcntl(6, F_GETFD) & FD_CLOEXEC, "fd 6 lost FD_CLOEXEC");
	SCN_CHECK(poll(&p, 1, 0) == 0, "the child looks dead before the signal");
	SCN_CHECK(syscall(SYS_pidfd_send_signal, 6, SIGTERM, NULL, 0) == 0, "pidfd_send_signal: %s",
		  strerror(errno));
	SCN_CHECK(poll(&p, 1, 3000) == 1 && (p.revents & POLLIN),
		  "poll on the pidfd does not report the child's exit");
	memset(&si, 0, sizeof(si));
	SCN_CHECK(waitid(P_PIDFD, 6, &si, WEXITED) == 0, "waitid(P_PIDFD): %s", strerror(errno));
	SCN_CHECK(si.si_pid == child && si.si_code == CLD_KILLED && si.si_status == SIGTERM,
		  "child %d ended with code %d status %d", si.si_pid, si.si_code, si.si_status);
	SCN_CHECK(fdinfo_pid(9) == zombie, "fd 9 names pid %ld, expected the zombie %d",
		  fdinfo_pid(9), (int)zombie);
	p.fd = 9;
	SCN_CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLIN), "the zombie's pidfd is not ready");
	memset(&si, 0, sizeof(si));
	SCN_CHECK(waitid(P_PIDFD, 9, &si, WEXITED) == 0, "waitid(P_PIDFD) on the zombie: %s",
		  strerror(errno));
	SCN_CHECK(si.si_pid == zombie && si.si_code == CLD_EXITED && si.si_status == 7,
		  "zombie %d: code %d status %d", si.si_pid, si.si_code, si.si_status);
}

int main(int argc, char **argv)
{
	char buf[32];
	int fd;

	scn_init(argc, argv, 0);
	fd = pidfd_open(getpid(), 0);
	if (fd < 0 || dup2(fd, 5) < 0)
		scn_fail("pidfd_open: %s", strerror(errno));
	close(fd);
	child = fork();
	if (child < 0)
		scn_fail("fork: %s", strerror(errno));
	if (child == 0) {
		fd = pidfd_open(getppid(), 0);
		if (fd < 0 || dup2(fd, 8) < 0)
			_exit(3);
		close(fd);
		signal(SIGTERM, SIG_DFL);
		for (;;)
			pause();
	}
	fd = pidfd_open(child, PIDFD_NONBLOCK);
	if (fd < 0 || dup3(fd, 6, O_CLOEXEC) < 0 || dup2(6, 7) < 0)
		scn_fail("pidfd_open(child): %s", strerror(errno));
	fcntl(6, F_SETFL, O_NONBLOCK);
	close(fd);
	zombie = fork();
	if (zombie == 0)
		_exit(7);
	fd = pidfd_open(zombie, 0);
	if (zombie < 0 || fd < 0 || dup2(fd, 9) < 0)
		scn_fail("zombie pidfd: %s", strerror(errno));
	close(fd);
	/* wait until it is a zombie: the image must hold it as one */
	for (;;) {
		char st[128], path[64];

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)zombie);
		if (!scn_read_small(path, st, sizeof(st)) && strstr(st, ") Z "))
			break;
		scn_msleep(2);
	}
	snprintf(buf, sizeof(buf), "%d\n", (int)child);
	scn_write_file("pids", buf);
	while (fdinfo_pid(8) == -2) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/fd/8", (int)child);
		if (!access(path, F_OK))
			break;
		scn_msleep(5);
	}
	scn_ready_then_wait();
	verify();
	scn_pass();
}
