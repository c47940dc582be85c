/*
 * fdzoo - benchmark target: a tree of two processes holding N open fds
 * of mixed kinds between them.
 *
 *   fdzoo N [READY_FILE]
 *
 * The root opens N/2 fds, cycling through the kinds below, then forks one
 * child, which inherits all of them (so half of the tree's fds share an
 * open file description with an fd of the other process, and stasis must
 * find every pair with kcmp).  The kinds, per cycle of 14 fds: 3 regular
 * files (one of them a dup), a directory, /dev/null, both ends of a pipe
 * with a few bytes in flight, an eventfd, a timerfd (armed, 1 hour), a
 * signalfd, an epoll instance watching the pipe's read end and the eventfd,
 * a dup of the eventfd, and a unix stream socketpair with bytes queued.  The files live in WORKDIR
 * (the directory of READY_FILE, or the cwd).
 *
 * Ready (READY_FILE created, or "ready" printed) once the child sleeps;
 * both then pause() until killed.  The child dies with its root unless the
 * root is being dumped (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define CYCLE 14

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int open_file(const char *dir, long i)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/fdzoo.%ld", dir, i % 64);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		die("fdzoo: open");
	if (pwrite(fd, "fdzoo", 5, 0) != 5)
		die("fdzoo: pwrite");
	lseek(fd, i % 5, SEEK_SET);
	return fd;
}

/* One cycle of kinds; returns the number of fds opened (CYCLE). */
static int open_cycle(const char *dir, long i)
{
	struct itimerspec its = { { 0, 0 }, { 3600, 0 } };
	struct epoll_event ev = { .events = EPOLLIN };
	int p[2], efd, ep, tfd, sfd, f;
	sigset_t set;

	f = open_file(dir, i);
	open_file(dir, i + 1);
	if (dup(f) < 0)
		die("fdzoo: dup");
	if (open(dir, O_RDONLY | O_DIRECTORY) < 0 || open("/dev/null", O_RDWR) < 0)
		die("fdzoo: open dir or /dev/null");
	if (pipe(p) || write(p[1], "zoo", 3) != 3)
		die("fdzoo: pipe");
	efd = eventfd((unsigned int)i, EFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sfd = signalfd(-1, &set, 0);
	ep = epoll_create1(0);
	if (efd < 0 || tfd < 0 || sfd < 0 || ep < 0 || timerfd_settime(tfd, 0, &its, NULL))
		die("fdzoo: event fds");
	ev.data.fd = p[0];
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev))
		die("fdzoo: epoll_ctl");
	ev.data.fd = efd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev))
		die("fdzoo: epoll_ctl");
	if (dup(efd) < 0)
		die("fdzoo: dup");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) || write(p[0], "zoo", 3) != 3)
		die("fdzoo: socketpair");
	return CYCLE;
}

int main(int argc, char **argv)
{
	struct timespec nap = { 0, 1000000 };
	char dirbuf[4096], *dir = ".";
	struct rlimit rl;
	long n, i;
	pid_t kid;
	int tries;

	if (argc < 2 || argc > 3 || (n = strtol(argv[1], NULL, 10)) < 2 || n > 500000) {
		fprintf(stderr, "usage: fdzoo N [READY_FILE]\n");
		return 2;
	}
	if (argc == 3) {
		snprintf(dirbuf, sizeof(dirbuf), "%s", argv[2]);
		dir = dirname(dirbuf);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_max < (rlim_t)n / 2 + 64) {
		fprintf(stderr, "fdzoo: RLIMIT_NOFILE hard limit too low for %ld fds\n", n / 2);
		return 1;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	for (i = 0; i + CYCLE <= n / 2; i += open_cycle(dir, i))
		;
	kid = fork();
	if (kid < 0)
		die("fdzoo: fork");
	if (kid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	for (tries = 0; bench_proc_state(kid) != 'S'; tries++) {
		if (tries == 30000) {
			kill(kid, SIGKILL);
			fprintf(stderr, "fdzoo: child not ready\n");
			return 1;
		}
		nanosleep(&nap, NULL);
	}
	if (bench_ready("fdzoo", argc == 3 ? argv[2] : NULL)) {
		kill(kid, SIGKILL);
		return 1;
	}
	for (;;)
		pause();
}
