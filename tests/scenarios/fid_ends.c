/*
 * fid_ends: ends of pipes whose other end is not in the tree.
 *
 *   fd 10  read end of a pipe whose writer wrote "writer gone" and closed
 *   fd 11  write end of a pipe whose reader closed (SIGPIPE ignored)
 *   fd 12  WORKDIR/fifo, the only end left (O_RDONLY|O_NONBLOCK): a writer
 *          opened it, wrote "fifo bytes" and closed
 *   fd 13  WORKDIR/wfifo (O_WRONLY), the only end left: its reader closed
 *
 * Check: fd 10 yields its bytes, then end-of-file; a write to fd 11 fails
 * with EPIPE; fd 12 yields its bytes, then end-of-file, and is still the
 * FIFO at its path; a write to fd 13 fails with EPIPE.
 *
 * With FID_ENDS_OFIFO=1 it also holds, at fd 16, the read end of
 * WORKDIR/ofifo, whose writer is a process outside the tree that wrote
 * "outside bytes" and keeps its end open until WORKDIR/result exists (at
 * most a minute): the pipe outlives the dumped tree, and the check reads
 * the bytes exactly once, then EAGAIN.
 *
 * With FID_ENDS_EXT=1 it also holds, at fd 14, the read end of a pipe
 * whose writer is a process outside the tree (a grandchild whose parent
 * exited: the runner's reaper adopts it), and, if it can be opened,
 * /dev/console at fd 15: the dump refuses both by fd.  The outsider exits
 * when the read end is closed.
 */
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "scenario.h"

static void at(int fd, int want)
{
	if (fd != want && (dup2(fd, want) < 0 || close(fd))) {
		scn_log("setup: dup2 %d: %s", want, strerror(errno));
		exit(2);
	}
}

static void gone_writer(void)
{
	int p[2];

	if (pipe(p) || write(p[1], "writer gone", 11) != 11)
		exit(2);
	close(p[1]);
	at(p[0], 10);
}

static void gone_reader(void)
{
	int p[2];

	if (pipe(p))
		exit(2);
	close(p[0]);
	at(p[1], 11);
}

static void half_fifos(void)
{
	int r, w;

	unlink("fifo");
	unlink("wfifo");
	if (mkfifo("fifo", 0600) || mkfifo("wfifo", 0600))
		exit(2);
	r = open("fifo", O_RDONLY | O_NONBLOCK);
	w = open("fifo", O_WRONLY);
	if (r < 0 || w < 0 || write(w, "fifo bytes", 10) != 10)
		exit(2);
	close(w);
	at(r, 12);
	r = open("wfifo", O_RDONLY | O_NONBLOCK);
	w = open("wfifo", O_WRONLY);
	if (r < 0 || w < 0)
		exit(2);
	close(r);
	at(w, 13);
}

/* fd 14: a pipe fed by a process outside the tree. */
static void outside_writer(void)
{
	int p[2], st;
	pid_t a;

	if (pipe(p))
		exit(2);
	a = fork();
	if (a == 0) {
		if (fork() == 0) {
			struct pollfd pfd = { .fd = p[1], .events = POLLOUT };

			setsid();
			close(p[0]);
			for (;;) { /* until the reader is gone */
				if (poll(&pfd, 1, -1) < 0 || (pfd.revents & POLLERR))
					_exit(0);
				if (pfd.revents & POLLOUT)
					pfd.events = 0;
				scn_msleep(50);
			}
		}
		_exit(0);
	}
	waitpid(a, &st, 0);
	close(p[1]);
	at(p[0], 14);
}

/* fd 16: WORKDIR/ofifo, fed by a process outside the tree. */
static void outside_fifo(void)
{
	int r, st, i;
	pid_t a;

	unlink("ofifo");
	if (mkfifo("ofifo", 0600))
		exit(2);
	r = open("ofifo", O_RDONLY | O_NONBLOCK);
	if (r < 0)
		exit(2);
	a = fork();
	if (a == 0) {
		if (fork() == 0) {
			int w;

			setsid(); /* nothing of the tree's: its pids must go free */
			w = open("ofifo", O_WRONLY);
			close(r);
			if (w < 0 || write(w, "outside bytes", 13) != 13)
				_exit(1);
			for (i = 0; i < 1200 && access("result", F_OK); i++)
				scn_msleep(50);
			_exit(0);
		}
		_exit(0);
	}
	waitpid(a, &st, 0);
	/* the bytes are there before the scenario says it is ready */
	for (i = 0; i < 500; i++) {
		struct pollfd pfd = { .fd = r, .events = POLLIN };

		if (poll(&pfd, 1, 10) == 1 && (pfd.revents & POLLIN))
			break;
	}
	at(r, 16);
}

static const char *drain(int fd, const char *want)
{
	static char why[128];
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n != (ssize_t)strlen(want) || memcmp(buf, want, n)) {
		snprintf(why, sizeof(why), "fd %d: read %zd bytes, not '%s'", fd, n, want);
		return why;
	}
	n = read(fd, buf, sizeof(buf));
	if (n != 0) {
		snprintf(why, sizeof(why), "fd %d: no end-of-file after its bytes (%zd, %s)", fd, n,
			 n < 0 ? strerror(errno) : "data");
		return why;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char link[PATH_MAX], want[PATH_MAX + 8];
	const char *why;
	ssize_t n;
	int c;

	scn_init(argc, argv, 1);
	signal(SIGPIPE, SIG_IGN);
	gone_writer();
	gone_reader();
	half_fifos();
	if (getenv("FID_ENDS_OFIFO"))
		outside_fifo();
	if (getenv("FID_ENDS_EXT")) {
		outside_writer();
		c = open("/dev/console", O_RDONLY | O_NOCTTY);
		if (c >= 0)
			at(c, 15);
	}
	scn_ready_then_wait();

	why = drain(10, "writer gone");
	SCN_CHECK(!why, "%s", why);
	SCN_CHECK(write(11, "x", 1) < 0 && errno == EPIPE,
		  "fd 11: a write did not fail with EPIPE");
	why = drain(12, "fifo bytes");
	SCN_CHECK(!why, "%s", why);
	n = readlink("/proc/self/fd/12", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	snprintf(want, sizeof(want), "%s/fifo", scn_dir);
	SCN_CHECK(!strcmp(link, want), "fd 12 is '%s', not '%s'", link, want);
	SCN_CHECK(write(13, "x", 1) < 0 && errno == EPIPE,
		  "fd 13: a write did not fail with EPIPE");
	if (getenv("FID_ENDS_OFIFO")) {
		char buf[64];
		ssize_t got = read(16, buf, sizeof(buf));

		SCN_CHECK(got == 13 && !memcmp(buf, "outside bytes", 13),
			  "fd 16: read %zd bytes, not 'outside bytes'", got);
		got = read(16, buf, sizeof(buf));
		SCN_CHECK(got < 0 && errno == EAGAIN,
			  "fd 16: after its bytes read gives %zd (%s), not EAGAIN", got,
			  got < 0 ? strerror(errno) : "data or end-of-file");
	}
	scn_pass();
}
