/*
 * ev_ptimer: POSIX timers (raw timer_create, so ids are the kernel's):
 *   A  CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN, sigev_value 0x5eed1234,
 *      every 250 ms (rarely, so that the runner seldom sees its signal
 *      pending when it compares /proc/PID/status);
 *   X  created and deleted again, so the live ids are not contiguous;
 *   B  CLOCK_REALTIME, SIGEV_NONE, 100 s left, 7 s interval;
 *   C  CLOCK_BOOTTIME, SIGEV_SIGNAL SIGUSR1, never armed;
 *   D  CLOCK_MONOTONIC, SIGEV_THREAD_ID to a second thread, SIGRTMIN+1,
 *      sigev_value 77, every 30 ms.
 *
 * Check: each timer still exists with its id and X's id does not; A keeps
 * firing into the process with its si_value and timer id; B keeps its
 * interval and has 90-100 s left; C is still disarmed; D keeps firing in
 * the second thread (and only there) with its si_value; a new timer
 * gets an id none of the others has.
 */
#include <pthread.h>
#include <sys/syscall.h>

#include "scenario.h"

static int ta, tx, tb, tc, td;
static volatile int a_hits, a_bad, d_hits, d_bad;
static volatile pid_t d_tid;

static int tcreate(clockid_t clk, int notify, int sig, long val, pid_t tid)
{
	struct sigevent sev;
	int id = -1;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = notify;
	sev.sigev_signo = sig;
	sev.sigev_value.sival_ptr = (void *)val;
	sev._sigev_un._tid = tid;
	if (syscall(SYS_timer_create, clk, &sev, &id))
		scn_fail("timer_create: %s", strerror(errno));
	return id;
}

static void tset(int id, long val_ms, long int_ms)
{
	struct itimerspec its = { { int_ms / 1000, (int_ms % 1000) * 1000000 },
				  { val_ms / 1000, (val_ms % 1000) * 1000000 } };

	if (syscall(SYS_timer_settime, id, 0, &its, NULL))
		scn_fail("timer_settime: %s", strerror(errno));
}

static int tget(int id, struct itimerspec *its)
{
	return syscall(SYS_timer_gettime, id, its);
}

static void on_a(int sig, siginfo_t *si, void *uc)
{
	if (si->si_code != SI_TIMER || si->si_value.sival_int != 0x5eed1234 || si->si_timerid != ta)
		a_bad++;
	a_hits++;
}

static void on_d(int sig, siginfo_t *si, void *uc)
{
	if (si->si_value.sival_int != 77 || syscall(SYS_gettid) != d_tid)
		d_bad++;
	d_hits++;
}

static void *d_thread(void *arg)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	d_tid = syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

static void verify(void)
{
	struct itimerspec its;
	int a0 = a_hits, d0 = d_hits, i, tn;

	SCN_CHECK(tget(tx, &its) < 0 && errno == EINVAL, "deleted timer %d exists again", tx);
	for (i = 0; i < 200 && (a_hits < a0 + 3 || d_hits < d0 + 3); i++)
		scn_msleep(10);
	SCN_CHECK(a_hits >= a0 + 3, "timer A (id %d) fired %d times in 2 s", ta, a_hits - a0);
	SCN_CHECK(!a_bad, "timer A: %d signals with a wrong si_value/si_timerid", a_bad);
	SCN_CHECK(d_hits >= d0 + 3, "timer D (id %d) fired %d times in 2 s", td, d_hits - d0);
	SCN_CHECK(!d_bad, "timer D: %d signals in the wrong thread or with a wrong value", d_bad);
	SCN_CHECK(tget(ta, &its) == 0 && its.it_interval.tv_nsec == 250000000,
		  "timer A interval %ld ns", its.it_interval.tv_nsec);
	SCN_CHECK(tget(tb, &its) == 0 && its.it_interval.tv_sec == 7 && its.it_value.tv_sec >= 90 &&
		      its.it_value.tv_sec < 100,
		  "timer B: %ld s left, interval %ld s", (long)its.it_value.tv_sec,
		  (long)its.it_interval.tv_sec);
	SCN_CHECK(tget(tc, &its) == 0 && !its.it_value.tv_sec && !its.it_value.tv_nsec,
		  "timer C is armed");
	tn = tcreate(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
	SCN_CHECK(tn != ta && tn != tb && tn != tc && tn != td, "a new timer got a taken id %d",
		  tn);
	scn_log("timers a=%d b=%d c=%d d=%d; a new one got id %d", ta, tb, tc, td, tn);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	pthread_t th;
	sigset_t set;

	scn_init(argc, argv, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sa.sa_sigaction = on_a;
	sigaction(SIGRTMIN, &sa, NULL);
	sa.sa_sigaction = on_d;
	sigaction(SIGRTMIN + 1, &sa, NULL);
	/* only the second thread takes D's signal */
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&th, NULL, d_thread, NULL))
		scn_fail("pthread_create");
	while (!d_tid)
		scn_msleep(1);
	ta = tcreate(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, 0x5eed1234, 0);
	tx = tcreate(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 0, 0);
	tb = tcreate(CLOCK_REALTIME, SIGEV_NONE, 0, 0, 0);
	tc = tcreate(CLOCK_BOOTTIME, SIGEV_SIGNAL, SIGUSR1, 0, 0);
	td = tcreate(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 1, 77, d_tid);
	if (syscall(SYS_timer_delete, tx))
		scn_fail("timer_delete: %s", strerror(errno));
	tset(ta, 250, 250);
	tset(tb, 100000, 7000);
	tset(td, 30, 30);
	scn_log("timers a=%d b=%d c=%d d=%d (x=%d deleted)", ta, tb, tc, td, tx);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
