/*
 * forktree - benchmark target: a tree of N small processes.
 *
 *   forktree N [READY_FILE]
 *
 * The root forks N-1 children directly (a flat tree: every child's parent
 * is the root); each child only pause()s.  The children share nothing with
 * each other but what fork() copies (no pipes: the fds are whatever the
 * caller gave the root, normally /dev/null).  The root learns that they are
 * all ready without any IPC: it polls /proc/CHILD/stat until every child
 * is sleeping ('S', i.e. in pause()), never calling wait*().  It then
 * announces readiness, either by printing "ready" on stdout or, when
 * READY_FILE is given, by creating that file, and pause()s itself until it
 * is killed.  N=1 is a single process (the one-process baseline).
 *
 * If the root cannot fork all children, it kills those it made and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	pid_t *kids;
	long n, i, done, tries;
	char *end;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: forktree N [READY_FILE]\n");
		return 2;
	}
	n = strtol(argv[1], &end, 10);
	if (*end || n < 1 || n > 100000) {
		fprintf(stderr, "forktree: bad process count '%s'\n", argv[1]);
		return 2;
	}
	kids = calloc(n, sizeof(*kids));
	if (!kids) {
		perror("forktree: calloc");
		return 1;
	}
	for (i = 0; i < n - 1; i++) {
		kids[i] = fork();
		if (kids[i] < 0) {
			perror("forktree: fork");
			while (i-- > 0)
				kill(kids[i], SIGKILL);
			return 1;
		}
		if (kids[i] == 0) {
			/* a child outlives a root killed by anything but a
			 * dump; do not let it linger then */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
	}

	/* ready when every child sleeps in pause() (30 s at most) */
	for (tries = 0, done = 0; done < n - 1; tries++) {
		if (tries == 30000) {
			fprintf(stderr, "forktree: children not ready after 30 s\n");
			for (i = 0; i < n - 1; i++)
				kill(kids[i], SIGKILL);
			return 1;
		}
		while (done < n - 1 && bench_proc_state(kids[done]) == 'S')
			done++;
		if (done < n - 1)
			nap_ms(1);
	}

	if (bench_ready("forktree", argc == 3 ? argv[2] : NULL)) {
		for (i = 0; i < n - 1; i++)
			kill(kids[i], SIGKILL);
		return 1;
	}
	for (;;)
		pause();
}
