// SPDX-License-Identifier: MIT
/*
 * killat - run a command and SIGKILL it a random moment after it started.
 *
 *   killat MAX_US COMMAND [ARG...]
 *
 * Sleeps a uniformly random 0..MAX_US microseconds after the fork, then
 * sends SIGKILL (unless the command has exited already) and reaps it.
 * Prints "killed after N us" or "exited (status S) before N us" and exits 0,
 * or 2 on a usage or system error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned int r = 0;
	long max_us, us;
	struct timespec ts;
	int status;
	pid_t pid;

	if (argc < 3 || (max_us = atol(argv[1])) <= 0) {
		fprintf(stderr, "usage: killat MAX_US COMMAND [ARG...]\n");
		return 2;
	}
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (unsigned int)time(NULL) ^ (unsigned int)getpid();
	us = r % (max_us + 1);
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (us % 1000000) * 1000;
	nanosleep(&ts, NULL);
	if (waitpid(pid, &status, WNOHANG) == pid) {
		printf("exited (status %d) before %ld us\n", status, us);
		return 0;
	}
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		return 2;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		printf("killed after %ld us\n", us);
	else
		printf("exited (status %d) before %ld us\n", status, us);
	return 0;
}
