/*
 * evfds: an eventfd in semaphore mode with a count, a second eventfd dup'ed
 * to a high fd, a signalfd for SIGUSR1 with one SIGUSR1 pending, an armed
 * interval timerfd (CLOCK_MONOTONIC, 50 ms) and a disarmed one.
 *
 * Check: the eventfd count and semaphore mode (reads of 1 until it is
 * empty), the dup shares its counter, the signalfd still has its mask and
 * delivers the pending SIGUSR1, the interval timer keeps firing with its
 * interval, the disarmed timer stays disarmed, O_NONBLOCK flags kept.
 */
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include "scenario.h"

static int efd, efd2, sfd, tfd, tfd_off;

static void verify(void)
{
	struct signalfd_siginfo si;
	struct itimerspec its;
	uint64_t v, ticks;
	struct pollfd p;
	int i;

	SCN_CHECK(fcntl(efd, F_GETFL) & O_NONBLOCK, "eventfd lost O_NONBLOCK");
	for (i = 0; i < 3; i++) {
		SCN_CHECK(read(efd, &v, 8) == 8 && v == 1, "semaphore read %d gave %llu", i,
			  (unsigned long long)v);
	}
	SCN_CHECK(read(efd, &v, 8) < 0 && errno == EAGAIN, "eventfd count was more than 3");
	v = 7;
	SCN_CHECK(write(efd2, &v, 8) == 8, "write to the second eventfd");
	SCN_CHECK(read(200, &v, 8) == 8 && v == 7, "dup of the second eventfd does not share it");
	p.fd = sfd;
	p.events = POLLIN;
	SCN_CHECK(poll(&p, 1, 0) == 1, "signalfd not readable: SIGUSR1 no longer pending");
	SCN_CHECK(read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1,
		  "signalfd gave signal %u", si.ssi_signo);
	SCN_CHECK(timerfd_gettime(tfd, &its) == 0 && its.it_interval.tv_nsec == 50000000 &&
		      its.it_interval.tv_sec == 0,
		  "timerfd interval %ld.%09ld", (long)its.it_interval.tv_sec,
		  its.it_interval.tv_nsec);
	SCN_CHECK(read(tfd, &ticks, 8) == 8 && ticks >= 1, "timerfd does not fire");
	SCN_CHECK(timerfd_gettime(tfd_off, &its) == 0 && !its.it_value.tv_sec &&
		      !its.it_value.tv_nsec,
		  "the disarmed timerfd is armed");
}

int main(int argc, char **argv)
{
	struct itimerspec its = { { 0, 50000000 }, { 0, 50000000 } };
	sigset_t set;

	scn_init(argc, argv, 0);
	efd = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
	efd2 = eventfd(0, 0);
	if (efd < 0 || efd2 < 0 || dup2(efd2, 200) < 0)
		scn_fail("eventfd: %s", strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	tfd_off = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	if (sfd < 0 || tfd < 0 || tfd_off < 0 || timerfd_settime(tfd, 0, &its, NULL))
		scn_fail("signalfd/timerfd: %s", strerror(errno));
	raise(SIGUSR1);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
