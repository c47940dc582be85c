// SPDX-License-Identifier: MIT
/*
 * sem_wait - untimed SysV semop() across checkpoints, in an IPC namespace
 * of the tree's own.  A child (forked: no undo list) posts semaphore 0
 * every 200 ms, counting its posts in semaphore 1; the waiter loops in
 * semop(-1) on semaphore 0, never retrying on EINTR (each is counted and
 * logged), logging "got N".  The waiter is the main thread, or with
 * WORKDIR/threads a second thread (glibc clones it with CLONE_SYSVSEM:
 * the process then has a SysV undo list, and a dump is refused).
 * WORKDIR/pids lists the child.
 *
 * Check (SIGUSR2): no EINTR, and no post left unconsumed but the last
 * one or two (a missed wakeup leaves the count growing).
 */
#include <pthread.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>

#include "scenario.h"

static int id;
static volatile unsigned long gets, eintr;

static void *waiter(void *arg)
{
	struct sembuf op = { 0, -1, 0 };
	sigset_t all;

	if (arg) { /* a thread: the check goes to the main thread */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, NULL);
	}
	while (!scn_check) {
		if (semop(id, &op, 1) == 0) {
			gets++;
			scn_log("got %lu", gets);
			continue;
		}
		if (errno != EINTR)
			scn_fail("semop: %s", strerror(errno));
		if (!scn_check) {
			eintr++;
			scn_log("eintr semop");
		}
	}
	return NULL;
}

static void poster(void)
{
	struct sembuf post[2] = { { 0, 1, 0 }, { 1, 1, 0 } };

	for (;;) {
		scn_msleep(200);
		if (semop(id, post, 2))
			_exit(3);
	}
}

int main(int argc, char **argv)
{
	char buf[32];
	pthread_t t;
	pid_t child;
	int threads, posts, left;

	scn_init(argc, argv, 0);
	threads = !scn_read_small("threads", buf, sizeof(buf));
	if (unshare(CLONE_NEWIPC)) {
		scn_log("unshare(CLONE_NEWIPC): %s", strerror(errno));
		return 2;
	}
	id = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
	if (id < 0)
		scn_fail("semget: %s", strerror(errno));
	child = fork();
	if (child < 0)
		scn_fail("fork: %s", strerror(errno));
	if (!child)
		poster();
	snprintf(buf, sizeof(buf), "%d\n", (int)child);
	scn_write_file("pids", buf);
	if (threads && pthread_create(&t, NULL, waiter, (void *)1))
		scn_fail("pthread_create");
	scn_ready();
	if (threads)
		while (!scn_check)
			pause();
	else
		waiter(NULL);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	posts = semctl(id, 1, GETVAL);
	left = semctl(id, 0, GETVAL);
	scn_log("posts %d, gets %lu, left %d", posts, gets, left);
	SCN_CHECK(!eintr, "semop returned EINTR %lu times", eintr);
	SCN_CHECK(left <= 2, "%d posts left unconsumed (of %d)", left, posts);
	/* a thread may be between its semop and its count */
	SCN_CHECK(gets + left == (unsigned long)posts ||
		      (threads && gets + left + 1 == (unsigned long)posts),
		  "%lu gets and %d left of %d posts", gets, left, posts);
	scn_pass();
}
