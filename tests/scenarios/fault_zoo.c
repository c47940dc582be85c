/*
 * fault_zoo: many kinds of state at once, for the fault-injection loop
 * (tests/suites/fault.sh), which dumps and restores it once per fault
 * point and wants as many points as possible reached.
 *
 * The parent holds two more threads (one waiting on a condition, one
 * sleeping), a pipe with "pipe bytes" in flight (its child holds the
 * other end too), a unix stream pair with "stream bytes" and a datagram
 * pair with one datagram queued, a pty pair in raw mode with "typed"
 * pending on the slave, an interval timerfd, a POSIX timer and an
 * ITIMER_REAL (neither due soon), a flock on WORKDIR/lock, an eventfd
 * with count 5 that an epoll instance watches,
 * a memfd with "memfd data", a regular file at offset 3, a SIGUSR1
 * handler and a blocked SIGWINCH; also an O_PATH fd, a directory fd, a
 * FIFO with "fifo" in it, a signalfd for SIGWINCH, an inotify watch, a
 * pidfd of its child, a bound UDP socket, a listening TCP socket (both on
 * 127.0.0.1), a netlink route socket and a deleted file with "ghost";
 * and 6 MiB of a pattern, enough for the image's page writer thread.  Its child (listed in
 * WORKDIR/pids) waits with the pipe's ends and the stream pair inherited.
 *
 * The check reads every byte back once, in order, and looks at the
 * timers, lock, counts and handlers.
 */
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>

#include "scenario.h"

static int pfd[2], st[2], dg[2], ptm, pts, tfd, lockfd, efd, epfd, mfd, regfd;
static int opathfd, dirfd_, fifo_r, fifo_w, sigfd, inofd, pidfd, udpfd, tcpfd, nlfd, ghostfd;
static timer_t ptimer;
static uint64_t *big; /* BIG_WORDS words of a pattern: pages written through the page pipe */
#define BIG_WORDS (6UL << 17) /* 6 MiB */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile int usr1_seen;

static void on_usr1(int sig)
{
	usr1_seen = 1;
}

static void *waiter(void *arg)
{
	pthread_mutex_lock(&mu);
	while (!scn_check)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *sleeper(void *arg)
{
	while (!scn_check)
		scn_msleep(20);
	return NULL;
}

static void expect_read(int fd, const char *want, const char *what)
{
	char buf[64] = "";
	size_t n = strlen(want);
	struct pollfd p = { .fd = fd, .events = POLLIN };

	SCN_CHECK(poll(&p, 1, 1000) == 1, "%s: nothing to read", what);
	SCN_CHECK(read(fd, buf, sizeof(buf) - 1) == (ssize_t)n && !memcmp(buf, want, n),
		  "%s: read '%s', expected '%s'", what, buf, want);
}

static void verify(void)
{
	struct itimerspec its;
	struct itimerval itv;
	struct epoll_event ev[4];
	struct sigaction sa;
	sigset_t mask;
	uint64_t v;
	char buf[16] = "";

	for (size_t i = 0; i < BIG_WORDS; i += 509)
		SCN_CHECK(big[i] == scn_hash(i), "the 6 MiB pattern differs at word %zu", i);
	expect_read(pfd[0], "pipe bytes", "pipe");
	expect_read(st[1], "stream bytes", "unix stream");
	expect_read(dg[1], "datagram", "unix dgram");
	expect_read(pts, "typed", "pty slave");
	SCN_CHECK(timerfd_gettime(tfd, &its) == 0 && its.it_interval.tv_nsec == 100000000,
		  "timerfd interval lost");
	SCN_CHECK(timer_gettime(ptimer, &its) == 0 && its.it_interval.tv_sec == 60 &&
		      its.it_value.tv_sec > 0,
		  "POSIX timer lost");
	SCN_CHECK(getitimer(ITIMER_REAL, &itv) == 0 && itv.it_interval.tv_sec == 50 &&
		      itv.it_value.tv_sec > 0,
		  "ITIMER_REAL lost");
	SCN_CHECK(flock(open("lock", O_RDONLY | O_CLOEXEC), LOCK_EX | LOCK_NB) < 0 &&
		      errno == EWOULDBLOCK,
		  "the flock on WORKDIR/lock is not held");
	SCN_CHECK(epoll_wait(epfd, ev, 4, 0) == 1 && ev[0].data.u32 == 77,
		  "epoll: only the eventfd should be ready");
	SCN_CHECK(read(efd, &v, 8) == 8 && v == 5, "eventfd count %llu, expected 5",
		  (unsigned long long)v);
	SCN_CHECK(pread(mfd, buf, 10, 0) == 10 && !memcmp(buf, "memfd data", 10),
		  "memfd content lost");
	SCN_CHECK(lseek(regfd, 0, SEEK_CUR) == 3, "regular file offset lost");
	expect_read(fifo_r, "fifo", "FIFO");
	SCN_CHECK(pread(ghostfd, buf, 5, 0) == 5 && !memcmp(buf, "ghost", 5),
		  "deleted file content lost");
	SCN_CHECK(fcntl(opathfd, F_GETFL) & O_PATH, "O_PATH fd lost");
	SCN_CHECK(lseek(dirfd_, 0, SEEK_CUR) >= 0, "directory fd lost");
	SCN_CHECK(fcntl(sigfd, F_GETFD) >= 0 && fcntl(inofd, F_GETFD) >= 0 &&
		      fcntl(pidfd, F_GETFD) >= 0 && fcntl(nlfd, F_GETFD) >= 0,
		  "signalfd, inotify, pidfd or netlink fd lost");
	SCN_CHECK(listen(tcpfd, 4) == 0 && fcntl(udpfd, F_GETFD) >= 0, "inet sockets lost");
	SCN_CHECK(sigaction(SIGUSR1, NULL, &sa) == 0 && sa.sa_handler == on_usr1,
		  "SIGUSR1 handler lost");
	SCN_CHECK(sigprocmask(SIG_BLOCK, NULL, &mask) == 0 && sigismember(&mask, SIGWINCH),
		  "SIGWINCH no longer blocked");
	raise(SIGUSR1);
	SCN_CHECK(usr1_seen, "SIGUSR1 handler did not run");
}

static void make_pty(void)
{
	struct termios t;

	ptm = posix_openpt(O_RDWR | O_NOCTTY);
	if (ptm < 0 || grantpt(ptm) || unlockpt(ptm))
		scn_fail("ptmx: %s", strerror(errno));
	pts = open(ptsname(ptm), O_RDWR | O_NOCTTY);
	if (pts < 0 || tcgetattr(pts, &t))
		scn_fail("pty slave: %s", strerror(errno));
	cfmakeraw(&t);
	if (tcsetattr(pts, TCSANOW, &t) || write(ptm, "typed", 5) != 5)
		scn_fail("pty setup: %s", strerror(errno));
}

static void make_timers(void)
{
	struct itimerspec its = { { 0, 100000000 }, { 0, 100000000 } };
	struct itimerspec pits = { { 60, 0 }, { 600, 0 } };
	struct itimerval itv = { { 50, 0 }, { 500, 0 } };
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };

	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) ||
	    timer_create(CLOCK_MONOTONIC, &sev, &ptimer) || timer_settime(ptimer, 0, &pits, NULL) ||
	    setitimer(ITIMER_REAL, &itv, NULL))
		scn_fail("timers: %s", strerror(errno));
}

static void make_more_fds(pid_t kid)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	sigset_t set;

	opathfd = open(".", O_PATH | O_CLOEXEC);
	dirfd_ = open(".", O_RDONLY | O_DIRECTORY);
	if (mkfifo("fifo", 0600) && errno != EEXIST)
		scn_fail("mkfifo: %s", strerror(errno));
	fifo_r = open("fifo", O_RDONLY | O_NONBLOCK);
	fifo_w = open("fifo", O_WRONLY);
	if (opathfd < 0 || dirfd_ < 0 || fifo_r < 0 || fifo_w < 0 || write(fifo_w, "fifo", 4) != 4)
		scn_fail("O_PATH/dir/FIFO: %s", strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	sigfd = signalfd(-1, &set, SFD_NONBLOCK);
	inofd = inotify_init1(IN_NONBLOCK);
	pidfd = syscall(SYS_pidfd_open, kid, 0);
	if (sigfd < 0 || inofd < 0 || pidfd < 0 ||
	    inotify_add_watch(inofd, "data", IN_DELETE_SELF) < 0)
		scn_fail("signalfd/inotify/pidfd: %s", strerror(errno));
	udpfd = socket(AF_INET, SOCK_DGRAM, 0);
	tcpfd = socket(AF_INET, SOCK_STREAM, 0);
	nlfd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (udpfd < 0 || tcpfd < 0 || nlfd < 0 || bind(udpfd, (struct sockaddr *)&a, sizeof(a)) ||
	    bind(tcpfd, (struct sockaddr *)&a, sizeof(a)) || listen(tcpfd, 4))
		scn_fail("sockets: %s", strerror(errno));
	ghostfd = open("ghost", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (ghostfd < 0 || write(ghostfd, "ghost", 5) != 5 || unlink("ghost"))
		scn_fail("deleted file: %s", strerror(errno));
}

static void make_files(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fd;

	lockfd = open("lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lockfd < 0 || flock(lockfd, LOCK_EX))
		scn_fail("flock: %s", strerror(errno));
	efd = eventfd(5, EFD_NONBLOCK);
	epfd = epoll_create1(0);
	ev.data.u32 = 77;
	if (efd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev))
		scn_fail("eventfd/epoll: %s", strerror(errno));
	mfd = memfd_create("zoo", 0);
	if (mfd < 0 || write(mfd, "memfd data", 10) != 10)
		scn_fail("memfd: %s", strerror(errno));
	fd = open("data", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "0123456789", 10) != 10 || lseek(fd, 3, SEEK_SET) != 3)
		scn_fail("data file: %s", strerror(errno));
	regfd = fd;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	pthread_t t1, t2;
	sigset_t set;
	pid_t kid;
	char buf[32];

	scn_init(argc, argv, 1);
	if (pipe(pfd) || socketpair(AF_UNIX, SOCK_STREAM, 0, st) ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, dg))
		scn_fail("pipe/socketpair: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		scn_fail("fork: %s", strerror(errno));
	if (kid == 0) {
		for (;;)
			pause();
	}
	snprintf(buf, sizeof(buf), "%d\n", kid);
	scn_write_file("pids", buf);
	if (write(pfd[1], "pipe bytes", 10) != 10 || write(st[0], "stream bytes", 12) != 12 ||
	    write(dg[0], "datagram", 8) != 8)
		scn_fail("data in flight: %s", strerror(errno));
	make_pty();
	make_timers();
	make_files();
	make_more_fds(kid);
	big = mmap(NULL, BIG_WORDS * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	for (size_t i = 0; i < BIG_WORDS; i++)
		big[i] = scn_hash(i);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&t1, NULL, waiter, NULL) || pthread_create(&t2, NULL, sleeper, NULL))
		scn_fail("threads");
	scn_ready_then_wait();
	pthread_mutex_lock(&mu);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	verify();
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	scn_pass();
}
