// SPDX-License-Identifier: MIT
/*
 * subreaper - an orphan adopted by a child subreaper:
 *
 *   root   PR_SET_CHILD_SUBREAPER (session and group leader: the runner
 *    |     starts it with setsid)
 *    +- A  forks B, then exits; the root reaps it
 *        +- B  same session and group; orphaned when A exits, so the
 *              kernel hands it to the root (the nearest subreaper)
 *
 * B counts in memory (every 5 ms) and appends "COUNTER TOKEN PPID WRITER"
 * to WORKDIR/B.cnt every 10 steps (TOKEN: random, in B's memory; PPID:
 * getppid(); WRITER: B's PID as /proc names it, read at each write, which
 * tells an original's lines from those of a copy restored next to it in a
 * new PID namespace).  B.pid holds its PID; WORKDIR/pids lists B.
 *
 * Check (in the root): the root is still a child subreaper; B is the
 * root's child (waitid WNOWAIT finds it), in the root's group and session;
 * B's own lines say its parent is the root, keep its token and grow within
 * 300 ms with strictly increasing values past those of 'ready'.  Then the
 * subreaper must still work: a new child A2 forks B2 and exits, and B2
 * must become the root's child.  B and B2 are killed and reaped.
 */
#include "scenario.h"

#include <sys/prctl.h>
#include <sys/wait.h>

#define STEP_MS	  5
#define WRITE_DIV 10

static pid_t b_pid;

/* Our PID in the namespace of /proc (differs from getpid() in a new PID ns). */
static pid_t proc_self_pid(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return atoi(buf);
}

/* B: count forever, append the counter to B.cnt. */
static void __attribute__((noreturn)) b_loop(void)
{
	volatile unsigned long count = 0;
	unsigned long long token;
	char buf[96];
	int fd;

	fd = open("B.cnt", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 || getrandom(&token, sizeof(token), 0) != sizeof(token))
		_exit(4);
	token |= 1;
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	scn_write_file("B.pid", buf);
	for (;;) {
		count++;
		if (count % WRITE_DIV == 0) {
			snprintf(buf, sizeof(buf), "%lu %016llx %d %d\n", count, token,
				 (int)getppid(), (int)proc_self_pid());
			if (scn_write_all(fd, buf, strlen(buf)) < 0)
				_exit(5);
		}
		scn_msleep(STEP_MS);
	}
}

static void kill_b(void)
{
	if (b_pid > 0) {
		kill(b_pid, SIGKILL);
		waitpid(b_pid, NULL, 0);
	}
}

#define BCHECK(cond, ...)                      \
	do {                                   \
		if (!(cond)) {                 \
			kill_b();              \
			scn_fail(__VA_ARGS__); \
		}                              \
	} while (0)

/*
 * B.cnt from byte offset 'from': every line carries the token; the lines
 * of 'writer' (all if 0) are counted and, if 'strict', strictly increasing
 * (not so across a dump -R: the original counts on, its copy counts again
 * from the dump); they must name 'ppid' as B's parent (unless 0: B's first
 * lines may come before A exits).
 */
struct cnt {
	unsigned long long token;
	unsigned long first, last, lines;
	off_t size;
};

static void read_counts(off_t from, int strict, pid_t writer, pid_t ppid, struct cnt *c)
{
	char line[128];
	unsigned long long token;
	unsigned long v;
	int pp, who;
	FILE *f = fopen("B.cnt", "re");

	BCHECK(f, "cannot open B.cnt: %s", strerror(errno));
	BCHECK(fseeko(f, from, SEEK_SET) == 0, "B.cnt: cannot seek");
	c->first = c->last = c->lines = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lu %llx %d %d", &v, &token, &pp, &who) != 4) {
			fclose(f);
			BCHECK(0, "B.cnt: bad line '%.40s'", line);
		}
		if (!c->token)
			c->token = token;
		if (token != c->token) {
			fclose(f);
			BCHECK(0, "B.cnt: line '%lu %016llx' has not the token %016llx", v, token,
			       c->token);
		}
		if (writer && who != writer)
			continue;
		if (strict && c->lines && v <= c->last) {
			fclose(f);
			BCHECK(0, "B.cnt: %lu after %lu: not the same process memory", v, c->last);
		}
		if (ppid && pp != ppid) {
			fclose(f);
			BCHECK(0, "B.cnt: at count %lu B's parent is %d, expected %d", v, pp,
			       (int)ppid);
		}
		if (!c->lines++)
			c->first = v;
		c->last = v;
	}
	c->size = ftello(f);
	fclose(f);
}

/* PID as /proc names it of our child 'pid' (its last NSpid field is pid). */
static pid_t proc_pid_of_child(pid_t pid)
{
	char path[96], kids[1024], status[4096], *tok, *save, *p, *e;
	pid_t self = proc_self_pid();
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)self, (int)self);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, kids, sizeof(kids) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	kids[n] = '\0';
	for (tok = strtok_r(kids, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		snprintf(path, sizeof(path), "/proc/%s/status", tok);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, status, sizeof(status) - 1);
		close(fd);
		if (n <= 0)
			continue;
		status[n] = '\0';
		if (!(p = strstr(status, "\nNSpid:")) || !(e = strchr(p + 1, '\n')))
			continue;
		while (e > p && (e[-1] < '0' || e[-1] > '9'))
			e--;
		while (e > p && e[-1] >= '0' && e[-1] <= '9')
			e--;
		if (atoi(e) == pid)
			return atoi(tok);
	}
	return -1;
}

/* A (or A2): fork B (or B2), tell the parent B's PID through 'fd', exit. */
static void __attribute__((noreturn)) a_main(int fd, int keep_b)
{
	pid_t b = fork();

	if (b == 0) {
		close(fd);
		if (keep_b)
			b_loop();
		for (;;)
			pause();
	}
	if (b < 0 || write(fd, &b, sizeof(b)) != sizeof(b))
		_exit(3);
	_exit(0);
}

/*
 * Fork A, which forks B and exits; reap A.  Returns B's PID (now our child,
 * as we are a subreaper), or -1.
 */
static pid_t orphan(int keep_b, int *a_status)
{
	pid_t a, b = -1;
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	a = fork();
	if (a == 0) {
		close(fds[0]);
		a_main(fds[1], keep_b);
	}
	close(fds[1]);
	if (a < 0 || read(fds[0], &b, sizeof(b)) != sizeof(b))
		b = -1;
	close(fds[0]);
	if (a > 0 && waitpid(a, a_status, 0) != a)
		*a_status = -1;
	return b;
}

/* 'pid' is our child (alive or a zombie) and not yet reaped. */
static int is_our_child(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

static struct cnt at_ready;

static void verify(void)
{
	struct cnt now, win;
	pid_t me = getpid(), b2, b_proc;
	int sub = -1, st = 0;

	BCHECK(prctl(PR_GET_CHILD_SUBREAPER, &sub) == 0 && sub == 1,
	       "the root is no longer a child subreaper (flag %d)", sub);
	BCHECK(getsid(0) == me && getpgid(0) == me, "root: sid %d pgid %d, expected %d",
	       (int)getsid(0), (int)getpgid(0), (int)me);
	BCHECK(is_our_child(b_pid), "B (pid %d) is not the root's child: %s", (int)b_pid,
	       strerror(errno));
	BCHECK(getpgid(b_pid) == me && getsid(b_pid) == me, "B: pgid %d sid %d, expected %d",
	       (int)getpgid(b_pid), (int)getsid(b_pid), (int)me);
	b_proc = proc_pid_of_child(b_pid);
	BCHECK(b_proc > 0, "B (pid %d) is not in the root's children file", (int)b_pid);

	/* B counts on from where it was, in the same memory, with us as parent */
	now.token = at_ready.token;
	read_counts(0, 0, 0, 0, &now);
	scn_msleep(300);
	win.token = at_ready.token;
	read_counts(now.size, 1, b_proc, me, &win);
	BCHECK(win.lines > 0, "B: counter stuck at %lu for 300 ms", now.last);
	BCHECK(win.first > at_ready.last,
	       "B: counter at %lu, not past its value %lu at ready (memory not restored?)",
	       win.first, at_ready.last);

	/* the subreaper still adopts orphans */
	b2 = orphan(0, &st);
	BCHECK(b2 > 0 && st == 0, "a new orphan could not be made (B2 %d, A2 status %#x)", (int)b2,
	       st);
	if (!is_our_child(b2)) {
		kill(b2, SIGKILL);
		BCHECK(0, "the new orphan B2 (pid %d) was not handed to the root", (int)b2);
	}
	kill(b2, SIGKILL);
	waitpid(b2, NULL, 0);
	kill_b();
}

int main(int argc, char **argv)
{
	char buf[64];
	pid_t me;
	int tries, st = 0;

	scn_init(argc, argv, 1);
	setsid(); /* already a session leader when the runner started us */
	me = getpid();
	if (getsid(0) != me)
		scn_fail("root is not a session leader");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		scn_fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));

	b_pid = orphan(1, &st);
	if (b_pid <= 0 || st != 0) {
		kill_b();
		scn_fail("A did not fork B and exit cleanly (B %d, A status %#x)", (int)b_pid, st);
	}
	snprintf(buf, sizeof(buf), "%d\n", (int)b_pid);
	scn_write_file("pids", buf);
	/* B is ours now; wait until it has written a few counter lines */
	for (tries = 0; tries < 500; tries++) {
		at_ready.token = 0;
		if (access("B.pid", F_OK) < 0) {
			scn_msleep(10);
			continue;
		}
		read_counts(0, 1, 0, 0, &at_ready);
		if (at_ready.lines >= 3)
			break;
		scn_msleep(10);
	}
	if (tries == 500) {
		kill_b();
		scn_fail("B wrote no counter lines within 5 s");
	}
	if (!is_our_child(b_pid)) {
		kill_b();
		scn_fail("B (pid %d) was not handed to the root", (int)b_pid);
	}
	scn_log("tree: root %d (subreaper) B %d (orphan of A)", (int)me, (int)b_pid);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);
	verify();
	scn_pass();
}
