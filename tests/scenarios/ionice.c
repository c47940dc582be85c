// SPDX-License-Identifier: MIT
/*
 * ionice - I/O priorities per thread (ioprio_set, what ionice sets):
 *   - the main thread in the idle class (ionice -c3);
 *   - a second thread best-effort at level 7 (ionice -c2 -n7);
 *   - a third thread with none set but nice 5, so the kernel derives
 *     best-effort level 6 from its nice.
 * /proc shows none of them: the check reads each thread's ioprio_get.
 */
#include <linux/ioprio.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "scenario.h"

static pid_t tids[3];
static long want[3];

static long ioprio_of(pid_t tid)
{
	return syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid);
}

static void *worker(void *arg)
{
	long i = (long)arg;

	tids[i] = syscall(SYS_gettid);
	if (i == 1 &&
	    syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7)))
		scn_fail("ioprio_set: %s", strerror(errno));
	if (i == 2 && setpriority(PRIO_PROCESS, 0, 5))
		scn_fail("setpriority: %s", strerror(errno));
	want[i] = ioprio_of(0);
	for (;;)
		pause();
	return NULL;
}

static void verify(void)
{
	long i, got;

	for (i = 0; i < 3; i++) {
		got = ioprio_of(tids[i]);
		SCN_CHECK(got == want[i],
			  "thread %ld (TID %d): I/O priority class %ld level %ld, expected class "
			  "%ld level %ld",
			  i, tids[i], got >> 13, got & 0x1fff, want[i] >> 13, want[i] & 0x1fff);
	}
}

int main(int argc, char **argv)
{
	pthread_t t;
	long i;

	scn_init(argc, argv, 1);
	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0)))
		scn_fail("ioprio_set: %s", strerror(errno));
	tids[0] = syscall(SYS_gettid);
	want[0] = ioprio_of(0);
	for (i = 1; i < 3; i++)
		if (pthread_create(&t, NULL, worker, (void *)i))
			scn_fail("pthread_create failed");
	while (!__atomic_load_n(&want[1], __ATOMIC_ACQUIRE) ||
	       !__atomic_load_n(&want[2], __ATOMIC_ACQUIRE))
		usleep(1000);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
