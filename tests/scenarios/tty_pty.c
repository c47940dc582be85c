/*
 * tty_pty: pseudo-terminal pairs owned by the tree.
 *
 * Pair A: canonical mode without echo, a changed ^C character, a window
 * size, packet mode on the master; "line one\npartial" typed into the
 * master and not read yet, "out: hello\n" written to the slave and not read
 * from the master.  Pair B: raw mode, locked again after its slave was
 * opened, "raw\x03bytes" typed ahead.  A child C is a session leader with
 * pair A as its controlling terminal and its child G's group in the
 * foreground.
 *
 * The check verifies the index, termios, window size, packet and lock
 * state, that each pending byte arrives once and in order (the partial
 * line is still partial), and C's and G's terminal, session and
 * foreground group.
 *
 * With WORKDIR/partial-only, pair A has only "partial" typed ahead (no
 * complete line: what a normal user's dump can put back without TIOCSTI).
 *
 * With WORKDIR/fail-dump present it also holds a userfaultfd, which
 * the dump refuses after it has taken the ptys' bytes in flight: they must
 * all still be there.  With WORKDIR/flood, a third pair C (raw) has more
 * output waiting than stasis takes: the dump refuses it before it takes
 * anything, and every byte is still there.
 */
#include <poll.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>

#include "scenario.h"

struct pair {
	int m, s;
	char name[64];
	struct termios t;
};

/*
 * Take a few low pty indices while ours are made, and give them back: a
 * pty opened meanwhile elsewhere on the machine (another test run) then
 * gets one of those, not one of ours once a dump has freed them.
 */
static int *hold_low_ptys(int *n)
{
	int *fds, i;

	*n = 4 + getpid() % 28;
	fds = calloc(*n, sizeof(*fds));
	for (i = 0; fds && i < *n; i++)
		fds[i] = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	return fds;
}

static void release_low_ptys(int *fds, int n)
{
	int i;

	for (i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

static int open_pair(struct pair *p)
{
	p->m = posix_openpt(O_RDWR | O_NOCTTY);
	if (p->m < 0 || grantpt(p->m) || unlockpt(p->m) ||
	    ptsname_r(p->m, p->name, sizeof(p->name)))
		return -1;
	p->s = open(p->name, O_RDWR | O_NOCTTY);
	return p->s < 0 ? -1 : 0;
}

static void die(const char *what)
{
	scn_log("setup: %s: %s", what, strerror(errno));
	exit(2);
}

/* Read exactly n bytes (waits up to 2 s). */
static int read_n(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, 2000) != 1)
			return -1;
		r = read(fd, buf + got, n - got);
		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

static bool readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, 50) == 1;
}

static void session_child(const char *slave, int sync)
{
	pid_t g;
	int fd;

	setsid();
	fd = open(slave, O_RDWR); /* becomes the controlling terminal */
	if (fd < 0)
		_exit(3);
	g = fork();
	if (g == 0) {
		setpgid(0, 0);
		for (;;)
			pause();
	}
	setpgid(g, g);
	signal(SIGTTOU, SIG_IGN);
	if (tcsetpgrp(fd, g))
		_exit(4);
	if (write(sync, &g, sizeof(g)) != sizeof(g))
		_exit(5);
	for (;;)
		pause();
}

static struct pair a, b, c;
static size_t flood;	  /* bytes written to pair C's slave, unread */
static bool partial_only; /* WORKDIR/partial-only: no complete line on pair A */

static char flood_byte(size_t i)
{
	return 'a' + i % 23;
}
static pid_t c_pid, g_pid;

static const char *check_stat(pid_t pid, dev_t tty, pid_t sid, pid_t pgid, pid_t tpgid)
{
	static char why[256];
	char path[64], buf[512], *p;
	int spgid, ssid, stty, stpgid;

	/* /proc/PID/stat numbers as /proc's namespace has them (see scn_proc_pid) */
	pid = scn_proc_pid(pid);
	sid = scn_proc_pid(sid);
	pgid = scn_proc_pid(pgid);
	tpgid = scn_proc_pid(tpgid);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (scn_read_small(path, buf, sizeof(buf)))
		return "gone";
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %d %d %d %d", &spgid, &ssid, &stty, &stpgid) != 4)
		return "unreadable stat";
	snprintf(why, sizeof(why), "pgid %d sid %d tty %#x tpgid %d, expected %d %d %#x %d", spgid,
		 ssid, stty, stpgid, pgid, sid, (unsigned)tty, tpgid);
	if (spgid != pgid || ssid != sid || (dev_t)stty != tty || stpgid != tpgid)
		return why;
	return NULL;
}

static void check(void)
{
	struct termios t;
	struct winsize ws;
	char name[64], buf[64];
	const char *why;
	struct stat st;
	int v;

	SCN_CHECK(!ptsname_r(a.m, name, sizeof(name)) && !strcmp(name, a.name),
		  "pair A is %s, was %s", name, a.name);
	SCN_CHECK(!tcgetattr(a.s, &t), "tcgetattr: %s", strerror(errno));
	SCN_CHECK(t.c_lflag == a.t.c_lflag && t.c_iflag == a.t.c_iflag &&
		      t.c_oflag == a.t.c_oflag && t.c_cflag == a.t.c_cflag &&
		      !memcmp(t.c_cc, a.t.c_cc, sizeof(t.c_cc)),
		  "termios of A changed (lflag %#x, was %#x)", t.c_lflag, a.t.c_lflag);
	SCN_CHECK(!ioctl(a.s, TIOCGWINSZ, &ws) && ws.ws_row == 37 && ws.ws_col == 123 &&
		      ws.ws_xpixel == 5 && ws.ws_ypixel == 7,
		  "window size %dx%d", ws.ws_row, ws.ws_col);
	SCN_CHECK(!ioctl(a.m, TIOCGPKT, &v) && v == 1, "packet mode lost");
	/* to the slave: one complete line, then the partial one continues */
	memset(buf, 0, sizeof(buf));
	SCN_CHECK(partial_only || (read(a.s, buf, sizeof(buf)) == 9 && !strcmp(buf, "line one\n")),
		  "slave read '%s'", buf);
	SCN_CHECK(!readable(a.s), "the partial line became readable before its end");
	SCN_CHECK(write(a.m, " rest\n", 6) == 6, "write master");
	memset(buf, 0, sizeof(buf));
	SCN_CHECK(read_n(a.s, buf, 13) == 0 && !strcmp(buf, "partial rest\n"),
		  "slave read '%s', expected 'partial rest\\n'", buf);
	/* to the master, in packet mode: a 0 byte, then the data */
	memset(buf, 0, sizeof(buf));
	SCN_CHECK(readable(a.m) && read(a.m, buf, sizeof(buf)) == 13 && buf[0] == 0 &&
		      !memcmp(buf + 1, "out: hello\r\n", 12),
		  "master read '%s'", buf + 1);
	SCN_CHECK(!readable(a.m), "more data on the master");
	/* pair B: raw, locked, typed-ahead bytes */
	SCN_CHECK(!ptsname_r(b.m, name, sizeof(name)) && !strcmp(name, b.name),
		  "pair B is %s, was %s", name, b.name);
	SCN_CHECK(!ioctl(b.m, TIOCGPTLCK, &v) && v == 1, "pair B is no longer locked");
	SCN_CHECK(!tcgetattr(b.s, &t) && !(t.c_lflag & (ICANON | ISIG)) && t.c_cc[VMIN] == 1,
		  "termios of B changed");
	memset(buf, 0, sizeof(buf));
	SCN_CHECK(read_n(b.s, buf, 10) == 0 && !memcmp(buf,
						       "raw\x03"
						       "bytes!",
						       10),
		  "B slave read '%s'", buf);
	SCN_CHECK(write(b.s, "x", 1) == 1 && read_n(b.m, buf, 1) == 0 && buf[0] == 'x',
		  "B slave to master");
	/* last: a failed open of a locked slave leaves it in an I/O error state */
	SCN_CHECK(open(b.name, O_RDWR | O_NOCTTY) < 0 && errno == EIO,
		  "locked slave could be opened");
	/* pair C: every byte of the flood, in order */
	for (size_t i = 0; i < flood; i++) {
		char ch;

		SCN_CHECK(read_n(c.m, &ch, 1) == 0, "flood: only %zu of %zu bytes", i, flood);
		SCN_CHECK(ch == flood_byte(i), "flood: byte %zu differs", i);
	}
	/* the session with its terminal */
	SCN_CHECK(!fstat(a.s, &st), "fstat");
	why = check_stat(c_pid, st.st_rdev, c_pid, c_pid, g_pid);
	SCN_CHECK(!why, "session leader %d: %s", c_pid, why);
	why = check_stat(g_pid, st.st_rdev, c_pid, g_pid, g_pid);
	SCN_CHECK(!why, "foreground member %d: %s", g_pid, why);
	kill(g_pid, SIGKILL);
	kill(c_pid, SIGKILL);
	waitpid(c_pid, NULL, 0);
	scn_pass();
}

int main(int argc, char **argv)
{
	struct winsize ws = { 37, 123, 5, 7 };
	int *low, nlow;
	int on = 1, sync[2];
	char buf[64];

	scn_init(argc, argv, 1);
	low = hold_low_ptys(&nlow);
	if (open_pair(&a) || open_pair(&b))
		die("open pty pairs");
	tcgetattr(a.s, &a.t);
	a.t.c_lflag &= ~ECHO;
	a.t.c_cc[VINTR] = 5;
	if (tcsetattr(a.s, TCSANOW, &a.t) || tcgetattr(a.s, &a.t) || ioctl(a.m, TIOCSWINSZ, &ws))
		die("termios A");
	tcgetattr(b.s, &b.t);
	cfmakeraw(&b.t);
	if (tcsetattr(b.s, TCSANOW, &b.t) || ioctl(b.m, TIOCSPTLCK, &on))
		die("termios B");
	if (pipe(sync))
		die("pipe");
	c_pid = fork();
	if (c_pid == 0)
		session_child(a.name, sync[1]);
	if (read(sync[0], &g_pid, sizeof(g_pid)) != sizeof(g_pid))
		die("session child");
	snprintf(buf, sizeof(buf), "%d %d\n", c_pid, g_pid);
	scn_write_file("pids", buf);
	if (ioctl(a.m, TIOCPKT, &on))
		die("packet mode");
	partial_only = !access("partial-only", F_OK);
	if (write(a.m, partial_only ? "partial" : "line one\npartial", partial_only ? 7 : 16) !=
		(partial_only ? 7 : 16) ||
	    write(a.s, "out: hello\n", 11) != 11 ||
	    write(b.m,
		  "raw\x03"
		  "bytes!",
		  10) != 10)
		die("write");
	scn_msleep(50);
	/* WORKDIR/flood: more output than a line discipline holds waits on pair C */
	if (!access("flood", F_OK)) {
		char chunk[512];

		if (open_pair(&c) || tcgetattr(c.s, &c.t))
			die("pair C");
		cfmakeraw(&c.t);
		if (tcsetattr(c.s, TCSANOW, &c.t) || fcntl(c.s, F_SETFL, O_NONBLOCK))
			die("pair C raw");
		for (;;) {
			ssize_t n;
			size_t i;

			for (i = 0; i < sizeof(chunk); i++)
				chunk[i] = flood_byte(flood + i);
			n = write(c.s, chunk, sizeof(chunk));
			if (n <= 0)
				break;
			flood += n;
		}
		scn_log("flood: %zu bytes wait on pair C", flood);
	}
	release_low_ptys(low, nlow);
	/* WORKDIR/fail-dump: an fd stasis refuses, after the ptys (the dump fails late) */
	if (!access("fail-dump", F_OK)) {
		int nl = syscall(SYS_userfaultfd, O_CLOEXEC);

		/* fds are dumped in order: put it above the ptys */
		if (nl < 0 || fcntl(nl, F_DUPFD, 100) < 0)
			die("userfaultfd");
		close(nl);
	}
	scn_ready();
	while (!scn_check)
		scn_msleep(20);
	check();
}
