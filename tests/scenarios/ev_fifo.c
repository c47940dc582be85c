/*
 * ev_fifo: a named FIFO WORKDIR/fifo (mkfifo) between this process (the
 * read end, O_NONBLOCK, plus a read-write fd of the same FIFO) and a child
 * (the write end), with a capacity of 128 KiB and 100000 bytes in flight
 * that nobody has read.  WORKDIR/pids names the child.
 *
 * Check: the read end is still WORKDIR/fifo with O_NONBLOCK, the capacity
 * is kept, the 100000 bytes come back byte for byte and then the pipe is
 * empty (EAGAIN); bytes written through the read-write fd come out of the
 * read end (one pipe); the child's write end still feeds the same pipe
 * (it writes one more byte on SIGUSR1).  The child exits when no reader
 * is left.
 */
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "scenario.h"

#define CAP   (128 << 10)
#define BYTES 100000

static int rfd, rwfd;
static pid_t child;
static volatile sig_atomic_t poke;

static unsigned char pattern(size_t i)
{
	return scn_hash(i) & 0xff;
}

static void on_usr1(int sig)
{
	poke = 1;
}

static void __attribute__((noreturn)) child_main(void)
{
	static unsigned char buf[BYTES];
	struct pollfd p;
	int wfd;
	size_t i;

	signal(SIGUSR1, on_usr1);
	close(rfd);
	close(rwfd);
	wfd = open("fifo", O_WRONLY);
	if (wfd < 0)
		_exit(3);
	for (i = 0; i < BYTES; i++)
		buf[i] = pattern(i);
	if (scn_write_all(wfd, (char *)buf, BYTES))
		_exit(4);
	for (;;) {
		p.fd = wfd;
		p.events = 0;
		poll(&p, 1, 100);
		if (p.revents & POLLERR)
			_exit(0);
		if (poke) {
			poke = 0;
			if (write(wfd, "!", 1) != 1)
				_exit(5);
		}
	}
}

static void verify(void)
{
	static unsigned char buf[BYTES + 16];
	char link[PATH_MAX], want[PATH_MAX + 8];
	struct pollfd p = { 0 };
	ssize_t n, got = 0;
	size_t i;
	char c;

	n = readlink("/proc/self/fd/3", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	snprintf(want, sizeof(want), "%s/fifo", scn_dir);
	SCN_CHECK(!strcmp(link, want), "read end is '%s', expected '%s'", link, want);
	SCN_CHECK(fcntl(rfd, F_GETFL) & O_NONBLOCK, "read end lost O_NONBLOCK");
	SCN_CHECK((fcntl(rwfd, F_GETFL) & O_ACCMODE) == O_RDWR, "read-write fd lost O_RDWR");
	SCN_CHECK(fcntl(rfd, F_GETPIPE_SZ) == CAP, "capacity %d, expected %d",
		  fcntl(rfd, F_GETPIPE_SZ), CAP);
	while (got < BYTES) {
		n = read(rfd, buf + got, sizeof(buf) - got);
		SCN_CHECK(n > 0, "read %zd bytes of %d, then: %s", got, BYTES,
			  n ? strerror(errno) : "EOF");
		got += n;
	}
	SCN_CHECK(got == BYTES, "read %zd bytes, expected %d", got, BYTES);
	for (i = 0; i < BYTES; i++)
		SCN_CHECK(buf[i] == pattern(i), "byte %zu differs", i);
	SCN_CHECK(read(rfd, &c, 1) < 0 && errno == EAGAIN, "more bytes than were in flight");
	SCN_CHECK(write(rwfd, "R", 1) == 1 && read(rfd, &c, 1) == 1 && c == 'R',
		  "the read-write fd is not the same FIFO");
	SCN_CHECK(kill(child, SIGUSR1) == 0, "child %d is gone", (int)child);
	p.fd = rfd;
	p.events = POLLIN;
	SCN_CHECK(poll(&p, 1, 2000) == 1 && read(rfd, &c, 1) == 1 && c == '!',
		  "the child's write end does not feed the FIFO any more");
}

int main(int argc, char **argv)
{
	char buf[32];
	int avail = 0, i;

	scn_init(argc, argv, 0);
	unlink("fifo");
	if (mkfifo("fifo", 0600))
		scn_fail("mkfifo: %s", strerror(errno));
	rfd = open("fifo", O_RDONLY | O_NONBLOCK);
	if (rfd != 3)
		scn_fail("read end at fd %d, expected 3: %s", rfd, strerror(errno));
	rwfd = open("fifo", O_RDWR);
	if (rwfd < 0 || fcntl(rfd, F_SETPIPE_SZ, CAP) < 0)
		scn_fail("fifo: %s", strerror(errno));
	child = fork();
	if (child < 0)
		scn_fail("fork: %s", strerror(errno));
	if (child == 0)
		child_main();
	for (i = 0; i < 500 && avail < BYTES; i++) {
		scn_msleep(10);
		ioctl(rfd, FIONREAD, &avail);
	}
	if (avail != BYTES)
		scn_fail("only %d bytes arrived", avail);
	snprintf(buf, sizeof(buf), "%d\n", (int)child);
	scn_write_file("pids", buf);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
