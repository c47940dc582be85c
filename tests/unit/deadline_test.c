/*
 * Unit tests of src/ptrace/deadline.c: which calls have a relative
 * timeout and where, and, on real children, the deadline of a sleeper
 * found around its freeze and its release into the call with the time
 * it had left (needs root for /proc/timer_list: skipped without).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rtask.h"

static int failed;

#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (!(cond)) {                                        \
			printf("  FAIL %s:%d: ", __func__, __LINE__); \
			printf(__VA_ARGS__);                          \
			printf("\n");                                 \
			failed++;                                     \
		}                                                     \
	} while (0)

static struct user_regs_struct call(long nr, unsigned long a1, unsigned long a2, unsigned long a3,
				    unsigned long a4, unsigned long a5)
{
	struct user_regs_struct r = { 0 };

	r.orig_rax = nr;
	r.rdi = a1;
	r.rsi = a2;
	r.rdx = a3;
	r.r10 = a4;
	r.r8 = a5;
	return r;
}

static void test_timed_call(void)
{
	struct user_regs_struct r;
	struct timed_arg a;

	r = call(__NR_epoll_wait, 3, 0x1000, 1, 5000, 0);
	CHECK(timed_call(&r, &a) && a.kind == TA_MS && a.eintr && a.value == 5000,
	      "epoll_wait(5000)");
	r = call(__NR_epoll_wait, 3, 0x1000, 1, (unsigned int)-1, 0);
	CHECK(!timed_call(&r, &a), "epoll_wait(-1) has no timeout");
	r = call(__NR_epoll_pwait, 3, 0x1000, 1, 5000, 0x2000);
	CHECK(timed_call(&r, &a) && a.kind == TA_MS && a.eintr && a.value == 5000,
	      "epoll_pwait with a mask keeps its timeout (re-issued with the mask)");
	r = call(__NR_rt_sigtimedwait, 0x1000, 0, 0x2000, 8, 0);
	CHECK(timed_call(&r, &a) && a.kind == TA_TS && a.eintr && a.value == 0x2000,
	      "sigtimedwait");
	r = call(__NR_rt_sigtimedwait, 0x1000, 0, 0, 8, 0);
	CHECK(!timed_call(&r, &a), "sigwaitinfo has no timeout");
	r = call(__NR_poll, 0x1000, 1, 250, 0, 0);
	CHECK(timed_call(&r, &a) && a.kind == TA_MS && !a.eintr, "poll(250)");
	r = call(__NR_nanosleep, 0x1000, 0, 0, 0, 0);
	CHECK(timed_call(&r, &a) && a.kind == TA_TS && !a.eintr && a.value == 0x1000, "nanosleep");
	r = call(__NR_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, 0x1000, 0, 0);
	CHECK(!timed_call(&r, &a), "absolute clock_nanosleep is re-issued unchanged");
	r = call(__NR_futex, 0x1000, FUTEX_WAIT_PRIVATE, 0, 0x2000, 0);
	CHECK(timed_call(&r, &a) && a.value == 0x2000, "FUTEX_WAIT with a timeout");
	r = call(__NR_ppoll, 0x1000, 1, 0x2000, 0, 8);
	CHECK(timed_call(&r, &a) && a.user && a.value == 0x2000, "ppoll without a mask");
	r = call(__NR_ppoll, 0x1000, 1, 0x2000, 0x3000, 8);
	CHECK(timed_call(&r, &a) && a.user && a.value == 0x2000,
	      "ppoll with a mask keeps its timeout (re-issued with the mask)");
	r = call(__NR_select, 4, 0x1000, 0, 0, 0x2000);
	CHECK(timed_call(&r, &a) && a.user && a.kind == TA_TV, "select");
	r = call(__NR_futex, 0x1000, FUTEX_WAIT_BITSET_PRIVATE, 0, 0x2000, 0);
	CHECK(!timed_call(&r, &a), "FUTEX_WAIT_BITSET is absolute");
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * A child in sigtimedwait(1 s) (a call that fails with EINTR after a stop) reports
 * through its exit status how it ended: 0 timed out, 1 EINTR.  Frozen
 * 300 ms in and held 200 ms, it must time out at its original deadline.
 */
static void test_freeze_release(void)
{
	struct timespec nap = { 0, 300000000 }, hold = { 0, 200000000 };
	struct rtask t;
	long long t0, took;
	int status;
	pid_t pid;

	if (access("/proc/timer_list", R_OK)) {
		printf("  skip %s: /proc/timer_list not readable\n", __func__);
		return;
	}
	t0 = mono_ms();
	pid = fork();
	if (pid == 0) {
		struct timespec ts = { 1, 0 };
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		_exit(sigtimedwait(&set, NULL, &ts) < 0 && errno == EINTR);
	}
	nanosleep(&nap, NULL);
	CHECK(!rtask_freeze(&t, pid), "freeze");
	CHECK(t.deadline_mono, "no deadline found for the sleeper");
	CHECK(t.reissue, "not marked for re-issue");
	nanosleep(&hold, NULL);
	CHECK(!rtask_release(&t), "release");
	waitpid(pid, &status, 0);
	took = mono_ms() - t0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw EINTR");
	CHECK(took > 950 && took < 1100, "woke after %lld ms, expected 1000", took);
}

int main(void)
{
	test_timed_call();
	if (geteuid() == 0)
		test_freeze_release();
	if (failed) {
		printf("%d check(s) failed\n", failed);
		return 1;
	}
	printf("deadline_test: all passed\n");
	return 0;
}
