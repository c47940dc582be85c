/*
 * epollset: an epoll instance watching a pipe's read end (with 5 bytes in
 * flight), an eventfd (count 0), an interval timerfd and one end of a unix
 * stream socketpair (3 bytes queued), each with its own data value, one of
 * them edge-triggered.
 *
 * Check: epoll_wait reports the pipe, the timer and the socket with their
 * data values, not the eventfd until it is written to; the pipe and the
 * socket still hold their bytes; after writing the eventfd it is reported
 * too.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include "scenario.h"

#define D_PIPE	0x1111222233334444ULL
#define D_EVENT 0x5555ULL
#define D_TIMER 0x7777ULL
#define D_SOCK	0x9999ULL

static int ep, pfd[2], efd, tfd, sk[2];

static unsigned int ready_mask(void)
{
	struct epoll_event ev[8];
	unsigned int mask = 0;
	int n, i;

	n = epoll_wait(ep, ev, 8, 200);
	for (i = 0; i < n; i++) {
		if (ev[i].data.u64 == D_PIPE)
			mask |= 1;
		else if (ev[i].data.u64 == D_EVENT)
			mask |= 2;
		else if (ev[i].data.u64 == D_TIMER)
			mask |= 4;
		else if (ev[i].data.u64 == D_SOCK)
			mask |= 16;
		else
			mask |= 8;
	}
	return mask;
}

static void verify(void)
{
	unsigned int m = ready_mask();
	uint64_t one = 1;
	char buf[8] = { 0 };

	SCN_CHECK((m & 21) == 21 && !(m & 10), "epoll reported %#x, expected pipe, timer, socket",
		  m);
	SCN_CHECK(write(efd, &one, 8) == 8, "eventfd write");
	m = ready_mask();
	SCN_CHECK(m & 2, "eventfd not reported after a write (%#x)", m);
	SCN_CHECK(read(pfd[0], buf, 5) == 5 && !memcmp(buf, "hello", 5), "pipe bytes lost");
	SCN_CHECK(read(sk[0], buf, 3) == 3 && !memcmp(buf, "sok", 3), "socket bytes lost");
}

int main(int argc, char **argv)
{
	struct itimerspec its = { { 0, 20000000 }, { 0, 20000000 } };
	struct epoll_event ev;

	scn_init(argc, argv, 0);
	ep = epoll_create1(0);
	efd = eventfd(0, EFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (ep < 0 || efd < 0 || tfd < 0 || pipe(pfd) || timerfd_settime(tfd, 0, &its, NULL))
		scn_fail("setup: %s", strerror(errno));
	if (write(pfd[1], "hello", 5) != 5)
		scn_fail("pipe write");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sk) || write(sk[1], "sok", 3) != 3)
		scn_fail("socketpair: %s", strerror(errno));
	ev.events = EPOLLIN;
	ev.data.u64 = D_PIPE;
	epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev);
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = D_EVENT;
	epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
	ev.events = EPOLLIN;
	ev.data.u64 = D_SOCK;
	epoll_ctl(ep, EPOLL_CTL_ADD, sk[0], &ev);
	ev.events = EPOLLIN;
	ev.data.u64 = D_TIMER;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev))
		scn_fail("epoll_ctl: %s", strerror(errno));
	scn_ready_then_wait();
	verify();
	scn_pass();
}
