// SPDX-License-Identifier: MIT
/*
 * sched_dl - a thread under SCHED_DEADLINE (runtime 2 ms every 20 ms, with
 * SCHED_FLAG_RESET_ON_FORK) that wakes every 5 ms; sched_getscheduler alone
 * says only "6", the reservation is in sched_getattr.
 * Check: the thread's policy and reservation are the ones it set, and it
 * still runs (its wakeup count moves).
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "scenario.h"

#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif

struct dl_attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
	uint32_t util_min, util_max;
};

static const struct dl_attr want = {
	.size = sizeof(want),
	.policy = SCHED_DEADLINE,
	.flags = 1, /* SCHED_FLAG_RESET_ON_FORK */
	.runtime = 2000000,
	.deadline = 20000000,
	.period = 20000000,
};
static volatile pid_t dl_tid;
static volatile unsigned long wakes;

static void *worker(void *arg)
{
	struct timespec ts = { 0, 5000000 };

	(void)arg;
	if (syscall(SYS_sched_setattr, 0, &want, 0))
		scn_fail("sched_setattr SCHED_DEADLINE: %s", strerror(errno));
	dl_tid = syscall(SYS_gettid);
	for (;;) {
		nanosleep(&ts, NULL);
		wakes++;
	}
	return NULL;
}

static void verify(void)
{
	struct dl_attr got = { .size = sizeof(got) };
	unsigned long before = wakes;

	SCN_CHECK(!syscall(SYS_sched_getattr, dl_tid, &got, sizeof(got), 0), "sched_getattr: %s",
		  strerror(errno));
	SCN_CHECK(got.policy == SCHED_DEADLINE && got.runtime == want.runtime &&
		      got.deadline == want.deadline && got.period == want.period && (got.flags & 1),
		  "thread %d: policy %u runtime %llu deadline %llu period %llu flags %#llx", dl_tid,
		  got.policy, (unsigned long long)got.runtime, (unsigned long long)got.deadline,
		  (unsigned long long)got.period, (unsigned long long)got.flags);
	usleep(100000);
	SCN_CHECK(wakes > before, "the deadline thread does not run (%lu wakeups)", wakes);
}

int main(int argc, char **argv)
{
	pthread_t t;

	scn_init(argc, argv, 1);
	if (pthread_create(&t, NULL, worker, NULL))
		scn_fail("pthread_create failed");
	while (!dl_tid)
		usleep(1000);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
