/*
 * maxrss - run a command, then report its wall-clock time and peak memory.
 *
 *   maxrss OUT COMMAND [ARG...]
 *
 * Runs COMMAND (stdin, stdout and stderr inherited), waits for it with
 * wait4() and writes one line to the file OUT:
 *
 *   WALL_NS MAXRSS_KIB STATUS CPU_NS
 *
 * WALL_NS is CLOCK_MONOTONIC nanoseconds from just before the fork to the
 * moment wait4() returned (so it includes exec and process teardown: what a
 * caller of COMMAND waits for); MAXRSS_KIB is ru_maxrss of COMMAND itself
 * (plus any of its descendants that it waited for; a process that
 * `stasis restore -d` leaves running is not one of them); STATUS is the exit
 * status, or 128+N when killed by signal N.  The exit status of maxrss is
 * STATUS too.  CPU_NS is
 * its user + system time (ru_utime + ru_stime), all threads.  A replacement for `/usr/bin/time -f
 * %M` that needs no package.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	long long t0, t1;
	int status, ret;
	FILE *out;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: maxrss OUT COMMAND [ARG...]\n");
		return 125;
	}
	out = fopen(argv[1], "w");
	if (!out) {
		perror("maxrss: OUT");
		return 125;
	}
	t0 = now_ns();
	pid = fork();
	if (pid < 0) {
		perror("maxrss: fork");
		return 125;
	}
	if (pid == 0) {
		fclose(out);
		execvp(argv[2], argv + 2);
		fprintf(stderr, "maxrss: cannot run %s: %m\n", argv[2]);
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("maxrss: wait4");
			return 125;
		}
	}
	t1 = now_ns();
	ret = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	fprintf(out, "%lld %ld %d %lld\n", t1 - t0, ru.ru_maxrss, ret,
		(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL);
	if (fclose(out)) {
		perror("maxrss: OUT");
		return 125;
	}
	return ret;
}
