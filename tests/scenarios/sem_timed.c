// SPDX-License-Identifier: MIT
/*
 * sem_timed - a single-threaded process (no SysV undo list) in an IPC
 * namespace of its own, looping in semtimedop() with a 1 s relative
 * timeout on a semaphore that stays 0: every call must end with EAGAIN
 * after its timeout.  An EINTR before the check signal can only come from
 * a checkpoint and is counted; the lateness of each wakeup (measured on
 * CLOCK_MONOTONIC from just before the call) is recorded.
 *
 * Check (SIGUSR2): after one more wakeup, no EINTR, and every wakeup
 * within 100 ms of its deadline.
 */
#include <sched.h>
#include <sys/ipc.h>
#include <sys/sem.h>

#include "scenario.h"

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	struct timespec timeout = { 1, 0 };
	struct sembuf op = { 0, -1, 0 };
	unsigned long wakes = 0, eintr = 0, at_check = 0;
	long long t0, late, worst = 0;
	int id, checking = 0;

	scn_init(argc, argv, 0);
	if (unshare(CLONE_NEWIPC)) {
		scn_log("unshare(CLONE_NEWIPC): %s", strerror(errno));
		return 2;
	}
	id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	if (id < 0) {
		scn_log("semget: %s", strerror(errno));
		return 2;
	}
	scn_ready();
	for (;;) {
		if (scn_check && !checking) {
			checking = 1;
			at_check = wakes;
		}
		if (checking && wakes > at_check + 1)
			break;
		t0 = now_us();
		if (semtimedop(id, &op, 1, &timeout) == 0)
			scn_fail("the semaphore was decremented");
		if (errno == EINTR) {
			if (!scn_check)
				eintr++;
			continue;
		}
		if (errno != EAGAIN)
			scn_fail("semtimedop: %s", strerror(errno));
		late = now_us() - t0 - 1000000;
		if (late < 0)
			late = -late;
		if (late > worst)
			worst = late;
		wakes++;
		scn_log("wake semtimedop %lld", late);
	}
	SCN_CHECK(!eintr, "semtimedop returned EINTR %lu times", eintr);
	SCN_CHECK(worst <= 100000, "a wakeup was %lld us off its deadline", worst);
	scn_pass();
}
