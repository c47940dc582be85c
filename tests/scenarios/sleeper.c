// SPDX-License-Identifier: MIT
/*
 * sleeper - blocked in nanosleep(1000 s) in its main loop.  SIGUSR2 is
 * installed without SA_RESTART, so the check signal makes nanosleep return
 * -1/EINTR.
 *
 * Check: nanosleep returned exactly once (so it was asleep across
 * checkpoint/restore and did not wake up spuriously), with EINTR, because
 * of the check signal, with a sane remaining time; the globals are intact.
 */
#include "scenario.h"

#define SLEEP_SEC 1000

static char banner[64] = "sleeper state";
static unsigned long table[256];
static int returns; /* times nanosleep returned */
static int last_ret, last_errno;
static struct timespec rem;
static struct timespec before; /* CLOCK_MONOTONIC before sleeping */

static void verify(void)
{
	struct timespec now;
	int i;

	SCN_CHECK(returns == 1, "nanosleep returned %d times, expected exactly once", returns);
	SCN_CHECK(last_ret == -1 && last_errno == EINTR,
		  "nanosleep returned %d (%s), expected EINTR", last_ret, strerror(last_errno));
	SCN_CHECK(rem.tv_sec >= 0 && rem.tv_sec <= SLEEP_SEC && rem.tv_nsec >= 0 &&
		      rem.tv_nsec < 1000000000L && (rem.tv_sec > 0 || rem.tv_nsec > 0),
		  "odd remaining time %ld.%09ld", (long)rem.tv_sec, rem.tv_nsec);
	clock_gettime(CLOCK_MONOTONIC, &now);
	SCN_CHECK(now.tv_sec >= before.tv_sec && now.tv_sec - before.tv_sec < SLEEP_SEC,
		  "monotonic clock went from %ld to %ld", (long)before.tv_sec, (long)now.tv_sec);
	SCN_CHECK(!strcmp(banner, "sleeper state"), "banner changed");
	for (i = 0; i < 256; i++)
		SCN_CHECK(table[i] == scn_hash(i), "table[%d] changed", i);
}

int main(int argc, char **argv)
{
	struct timespec req = { SLEEP_SEC, 0 };
	int i;

	scn_init(argc, argv, 0);
	for (i = 0; i < 256; i++)
		table[i] = scn_hash(i);
	scn_ready();

	for (;;) {
		if (scn_check) {
			verify();
			scn_pass();
		}
		clock_gettime(CLOCK_MONOTONIC, &before);
		last_ret = nanosleep(&req, &rem);
		last_errno = errno;
		returns++;
		scn_log("nanosleep returned %d (%s), remaining %ld s", last_ret,
			last_ret ? strerror(last_errno) : "ok", (long)rem.tv_sec);
	}
}
