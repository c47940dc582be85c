/*
 * threads - benchmark target: one process with N threads.
 *
 *   threads N [READY_FILE]
 *
 * The main thread starts N-1 more threads (N threads in all, main
 * included), each with glibc's default stack (8 MiB reserved, a few pages
 * touched, plus a guard page).  Every thread announces that it runs by
 * incrementing an atomic counter, then blocks in pause().  When the counter
 * reaches N-1 the main thread announces readiness, either by printing
 * "ready" on stdout or, when READY_FILE is given, by creating that file,
 * and pause()s too, until the process is killed.  N=1 is a plain
 * single-threaded process.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static atomic_long started;

static void *worker(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	struct timespec ms = { 0, 1000000L };
	pthread_t t;
	long n, i, waited;
	char *end;
	int err;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: threads N [READY_FILE]\n");
		return 2;
	}
	n = strtol(argv[1], &end, 10);
	if (*end || n < 1 || n > 100000) {
		fprintf(stderr, "threads: bad thread count '%s'\n", argv[1]);
		return 2;
	}
	for (i = 0; i < n - 1; i++) {
		err = pthread_create(&t, NULL, worker, NULL);
		if (err) {
			fprintf(stderr, "threads: pthread_create %ld: %s\n", i + 1, strerror(err));
			return 1;
		}
		pthread_detach(t);
	}
	for (waited = 0; atomic_load(&started) < n - 1; waited++) {
		if (waited == 30000) {
			fprintf(stderr, "threads: only %ld of %ld threads started after 30 s\n",
				atomic_load(&started), n - 1);
			return 1;
		}
		nanosleep(&ms, NULL);
	}
	if (bench_ready("threads", argc == 3 ? argv[2] : NULL))
		return 1;
	for (;;)
		pause();
}
