/*
 * devpts_pty: ptys of a devpts instance of the tree's own, as in a
 * container: a tree in a PID and a mount namespace of its own (every mount
 * private) mounts a devpts (newinstance, ptmxmode=0666, mode=620) at
 * WORKDIR/pts and opens two pairs through its ptmx node:
 *   pair 0: canonical, no echo, ^C changed to ^A, window 33x77;
 *           "line one\npartial" typed into the master and not read,
 *           "out: hello\n" written to the slave and not read;
 *   pair 1: raw, "raw bytes" typed ahead; its slave node chmod 0600.
 *
 *   launcher   clone(CLONE_NEWPID | CLONE_NEWNS), waits (outside the tree)
 *    +- I      PID 1: both masters, the slave of pair 0
 *        +- K  the slave of pair 1 (answers a byte on it with "k")
 *
 * Check (in I): both masters have their index, their slaves are of the
 * devpts at pts (the same st_dev, pts/0 and pts/1 there), termios and
 * window size as set, every byte in flight arrives once and in order,
 * pair 1's node mode; K answers through its slave.
 *
 * With "mix" in WORKDIR/mode, I also holds a pair of the host's /dev/pts
 * (through /dev/ptmx): ptys of two instances, which the dump refuses.
 */
#include "scenario.h"

#include <sched.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>

static void must(int bad, const char *what)
{
	if (bad) {
		scn_log("%s: %s", what, strerror(errno));
		_exit(2);
	}
}

static int pair(int *slave, unsigned int want)
{
	unsigned int idx = ~0u;
	int m = open("pts/ptmx", O_RDWR | O_NOCTTY);

	must(m < 0 || unlockpt(m), "open pts/ptmx");
	must(ioctl(m, TIOCGPTN, &idx) || idx != want, "pty index");
	*slave = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	must(*slave < 0, "open the slave");
	return m;
}

/* read exactly what is expected from fd within a second */
static bool reads(int fd, const char *text)
{
	size_t len = strlen(text), got = 0;
	char buf[128];
	int tries;

	for (tries = 0; tries < 100 && got < len; tries++) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n > 0)
			got += n;
		else
			usleep(10000);
	}
	return got == len && !memcmp(buf, text, len);
}

static void __attribute__((noreturn)) init_main(void)
{
	struct winsize ws = { .ws_row = 33, .ws_col = 77 };
	int m0, s0, m1, s1, kid_pipe[2];
	struct termios t;
	struct stat st, pts, s0st;
	unsigned int idx;
	char buf[64];
	ssize_t n;
	pid_t k;

	setsid();
	scn_pid = getpid();
	scn_proc_view = 1;
	must(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "private /");
	must(mount("devpts", "pts", "devpts", 0, "newinstance,ptmxmode=0666,mode=620"),
	     "mount pts");
	m0 = pair(&s0, 0);
	m1 = pair(&s1, 1);
	must(tcgetattr(s0, &t), "tcgetattr");
	t.c_lflag &= ~(ECHO | ECHOE | ECHOK);
	t.c_cc[VINTR] = 1;
	must(tcsetattr(s0, TCSANOW, &t) || ioctl(m0, TIOCSWINSZ, &ws), "pair 0 termios");
	must(tcgetattr(s1, &t), "tcgetattr");
	cfmakeraw(&t);
	must(tcsetattr(s1, TCSANOW, &t), "pair 1 termios");
	must(fchmod(s1, 0600), "chmod pts/1");
	must(write(m0, "line one\npartial", 16) != 16, "type into pair 0");
	must(write(s0, "out: hello\n", 11) != 11, "write to pair 0");
	must(write(m1, "raw bytes", 9) != 9, "type into pair 1");
	must(pipe(kid_pipe), "pipe");
	k = fork();
	if (k == 0) {
		char c;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(m0);
		close(m1);
		close(s0);
		close(kid_pipe[1]);
		while (read(kid_pipe[0], &c, 1) == 1)
			if (write(s1, "k", 1) != 1)
				_exit(3);
		_exit(0);
	}
	close(kid_pipe[0]);
	if (scn_read_small("mode", buf, sizeof(buf)) == 0 && !strcmp(buf, "mix")) {
		int hm = open("/dev/ptmx", O_RDWR | O_NOCTTY);

		must(hm < 0 || unlockpt(hm), "open /dev/ptmx");
	}
	usleep(20000);
	scn_ready();
	while (!scn_check)
		pause();
	SCN_CHECK(!stat("pts", &pts) && !fstat(s0, &s0st) && s0st.st_dev == pts.st_dev,
		  "the slave of pair 0 is not of the devpts at pts");
	SCN_CHECK(!stat("pts/0", &st) && !stat("pts/1", &st) && (st.st_mode & 0777) == 0600,
		  "pts/0 or pts/1 missing, or pts/1 mode %o", st.st_mode & 0777);
	SCN_CHECK(!stat("/dev/pts", &st) && st.st_dev != pts.st_dev, "pts is the host's devpts");
	SCN_CHECK(!ioctl(m0, TIOCGPTN, &idx) && idx == 0, "pair 0 index %u", idx);
	SCN_CHECK(!ioctl(m1, TIOCGPTN, &idx) && idx == 1, "pair 1 index %u", idx);
	SCN_CHECK(!tcgetattr(s0, &t) && !(t.c_lflag & ECHO) && (t.c_lflag & ICANON) &&
		      t.c_cc[VINTR] == 1,
		  "pair 0 termios lflag %o intr %d", t.c_lflag, t.c_cc[VINTR]);
	memset(&ws, 0, sizeof(ws));
	SCN_CHECK(!ioctl(s0, TIOCGWINSZ, &ws) && ws.ws_row == 33 && ws.ws_col == 77,
		  "pair 0 window %ux%u", ws.ws_row, ws.ws_col);
	SCN_CHECK(!tcgetattr(s1, &t) && !(t.c_lflag & ICANON), "pair 1 is not raw");
	fcntl(s0, F_SETFL, O_NONBLOCK);
	fcntl(m0, F_SETFL, O_NONBLOCK);
	fcntl(m1, F_SETFL, O_NONBLOCK);
	fcntl(s1, F_SETFL, O_NONBLOCK);
	n = read(s0, buf, sizeof(buf));
	SCN_CHECK(n == 9 && !memcmp(buf, "line one\n", 9), "pair 0 line: %zd", n);
	n = read(s0, buf, sizeof(buf));
	SCN_CHECK(n < 0 && errno == EAGAIN, "the partial line of pair 0 is complete (%zd)", n);
	SCN_CHECK(reads(m0, "out: hello\r\n"), "pair 0 output lost");
	SCN_CHECK(reads(s1, "raw bytes"), "pair 1 input lost");
	SCN_CHECK(write(kid_pipe[1], "x", 1) == 1 && reads(m1, "k"), "K does not answer");
	SCN_CHECK(waitpid(-1, NULL, WNOHANG) == 0, "K has exited");
	scn_pass();
}

int main(int argc, char **argv)
{
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	} args = { .flags = CLONE_NEWPID | CLONE_NEWNS, .exit_signal = SIGCHLD };
	pid_t init;

	scn_init(argc, argv, 0);
	mkdir("pts", 0755);
	init = syscall(SYS_clone3, &args, sizeof(args));
	if (init < 0) {
		scn_log("cannot create the namespaces: %s", strerror(errno));
		return 2;
	}
	if (init == 0)
		init_main();
	while (waitpid(init, NULL, 0) < 0 && errno == EINTR)
		;
	return 0;
}
