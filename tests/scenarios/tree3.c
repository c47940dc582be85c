// SPDX-License-Identifier: MIT
/*
 * tree3 - a three-level process tree with sessions, groups and a zombie:
 *
 *   root (session and group leader: the runner starts it with setsid)
 *    +- A   setpgid(0, 0): leader of its own group, same session
 *    |   +- B   stays in A's group
 *    +- C   _exit(7): a zombie the root does not reap before the check;
 *           before it exits it catches SIGUSR1, ignores SIGUSR2, blocks
 *           SIGHUP (pending for the process) and SIGRTMIN+1 (pending for
 *           the thread), lowers RLIMIT_NOFILE and takes other ids
 *    +- D   setsid(): leader of its own session
 *
 * A, B and D have parent-death signal SIGKILL, count in memory (every 5 ms)
 * and append "COUNTER TOKEN PDEATHSIG WRITER" to WORKDIR/NAME.cnt every 10
 * steps (TOKEN: random, in the child's memory; WRITER: the child's PID in
 * the namespace of /proc, read from /proc/self at each write); NAME.pid
 * holds their PID.  WORKDIR/pids lists A B C D for the runner (so that it
 * kills them in the end).
 *
 * Check (in the root): every PID still exists with the ppid, pgid and sid
 * recorded at 'ready'; C is a zombie and waitpid() gives exit status 7; A,
 * B and D are neither stopped nor traced; each counter file keeps its
 * token, grows within 300 ms with strictly increasing values past those of
 * 'ready', and still shows SIGKILL as the parent-death signal.
 *
 * The tree is also checked when it is restored into a new PID namespace
 * (stasis restore --pidns) next to the original, which still runs: /proc
 * is then the host's, where our PIDs are not ours.  So the members are
 * found from /proc/self down the children files, and recognised by the
 * last field of NSpid (their PID in our namespace); pgid and sid come from
 * NSpgid and NSsid.  The original's and the copy's members append to the
 * same counter files: the window check only counts the lines written by
 * the member's current process (WRITER).
 */
#include "scenario.h"

#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define STEP_MS	  5
#define WRITE_DIV 10

struct member {
	const char *name;
	pid_t pid;
	char state;
	pid_t ppid, pgid, sid;
	pid_t proc_pid; /* its PID in /proc (not pid in a new PID namespace) */
};

enum { M_A, M_B, M_C, M_D, M_N };

static struct member m[M_N] = {
	{ .name = "A" }, { .name = "B" }, { .name = "C" }, { .name = "D" }
};

static void on_usr1(int sig)
{
}

/* C: leave state in the zombie that /proc still shows, then exit 7. */
static void __attribute__((noreturn)) zombie_exit(void)
{
	struct rlimit nofile = { 200, 300 };
	gid_t groups[] = { 4000, 4001 };
	sigset_t set;

	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGRTMIN + 1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kill(getpid(), SIGHUP);
	raise(SIGRTMIN + 1);
	setrlimit(RLIMIT_NOFILE, &nofile);
	if (getuid() == 0) {
		setgroups(2, groups);
		setresgid(3000, 3001, 3002);
		setresuid(2000, 2001, 2002);
	}
	_exit(7);
}

/* Read a small /proc file into buf (NUL-terminated); -1 if it is gone. */
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

/* The last number of the status line "KEY:\t..." (our namespace's view). */
static int status_last(const char *status, const char *key, pid_t *out)
{
	const char *p = strstr(status, key), *e;

	if (!p)
		return -1;
	e = strchr(p + 1, '\n');
	if (!e)
		e = p + strlen(p);
	while (e > p && (e[-1] < '0' || e[-1] > '9'))
		e--;
	while (e > p && e[-1] >= '0' && e[-1] <= '9')
		e--;
	if (e == p)
		return -1;
	*out = atoi(e);
	return 0;
}

/*
 * Find our descendant with PID 'pid' (as we see it) by walking the tree
 * from /proc/self down the children files; fill in its state, ppid, pgrp,
 * session (as we see them) and its PID in the namespace of /proc.
 */
static int find_member(pid_t pid, char *state, pid_t *ppid, pid_t *pgid, pid_t *sid,
		       pid_t *proc_pid)
{
	pid_t qh[64], qn[64], host, ns; /* queue: PID in /proc and in our namespace */
	char path[96], kids[1024], status[4096], *tok, *save, *st;
	size_t head = 0, tail = 0;

	qh[tail] = proc_self_pid();
	qn[tail++] = getpid();
	if (qh[0] <= 0)
		return -1;
	while (head < tail) {
		host = qh[head];
		ns = qn[head++];
		/* single-threaded members: the children are the main thread's */
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)host, (int)host);
		if (scn_read_small(path, kids, sizeof(kids)) < 0)
			continue;
		for (tok = strtok_r(kids, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
			pid_t kid = atoi(tok), kid_ns;

			snprintf(path, sizeof(path), "/proc/%d/status", (int)kid);
			if (scn_read_small(path, status, sizeof(status)) < 0 ||
			    status_last(status, "\nNSpid:", &kid_ns) < 0)
				continue;
			if (kid_ns == pid) {
				st = strstr(status, "\nState:\t");
				if (!st || status_last(status, "\nNSpgid:", pgid) < 0 ||
				    status_last(status, "\nNSsid:", sid) < 0)
					return -1;
				*state = st[strlen("\nState:\t")];
				*ppid = ns;
				*proc_pid = kid;
				return 0;
			}
			if (tail < sizeof(qh) / sizeof(qh[0])) {
				qh[tail] = kid;
				qn[tail++] = kid_ns;
			}
		}
	}
	return -1;
}

/* A live member: count forever, append the counter to NAME.cnt. */
static void __attribute__((noreturn)) child_loop(const char *name, pid_t parent)
{
	volatile unsigned long count = 0;
	unsigned long long token;
	char path[64], buf[80];
	int fd, pdeath;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	snprintf(path, sizeof(path), "%s.cnt", name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(4);
	/* this child's own token: proves its lines come from its own memory */
	if (getrandom(&token, sizeof(token), 0) != sizeof(token))
		_exit(4);
	token |= 1;
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	snprintf(path, sizeof(path), "%s.pid", name);
	scn_write_file(path, buf);
	for (;;) {
		count++;
		if (count % WRITE_DIV == 0) {
			pdeath = -1;
			prctl(PR_GET_PDEATHSIG, &pdeath);
			snprintf(buf, sizeof(buf), "%lu %016llx %d %d\n", count, token, pdeath,
				 (int)proc_self_pid());
			if (scn_write_all(fd, buf, strlen(buf)) < 0)
				_exit(5);
		}
		scn_msleep(STEP_MS);
	}
}

static pid_t read_pid_file(const char *name)
{
	char path[64];
	FILE *f;
	int pid = 0;

	snprintf(path, sizeof(path), "%s.pid", name);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	return pid;
}

static void kill_members(void)
{
	int i;

	for (i = 0; i < M_N; i++)
		if (i != M_C && m[i].pid > 0)
			kill(m[i].pid, SIGKILL);
	waitpid(m[M_A].pid, NULL, 0);
	waitpid(m[M_D].pid, NULL, 0);
}

/* Fail the check, but first kill the live members (and reap A and D). */
#define TCHECK(cond, ...)                      \
	do {                                   \
		if (!(cond)) {                 \
			kill_members();        \
			scn_fail(__VA_ARGS__); \
		}                              \
	} while (0)

/*
 * The counter file of a live member, from byte offset 'from': every line
 * carries the token; the lines of 'writer' (every line if 0) are counted
 * and, if 'strict', their values are strictly increasing (not so across a
 * dump -R: the original counts on after the dump, its restored copy counts
 * again from the dump).  Returns the number of counted lines, their first
 * and last value, and the file size.
 */
struct cnt {
	unsigned long long token;
	unsigned long first, last, lines;
	off_t size;
};

static void read_counts(const char *name, off_t from, int strict, pid_t writer, struct cnt *c)
{
	char path[64], line[128];
	unsigned long long token;
	unsigned long v;
	int pdeath, who;
	FILE *f;

	snprintf(path, sizeof(path), "%s.cnt", name);
	f = fopen(path, "re");
	TCHECK(f, "cannot open %s: %s", path, strerror(errno));
	TCHECK(fseeko(f, from, SEEK_SET) == 0, "%s: cannot seek", path);
	c->first = c->last = c->lines = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lu %llx %d %d", &v, &token, &pdeath, &who) != 4) {
			fclose(f);
			TCHECK(0, "%s: bad line '%.40s'", path, line);
		}
		if (!c->token)
			c->token = token;
		if (token != c->token) {
			fclose(f);
			TCHECK(0,
			       "%s: line '%lu %016llx' has not the token %016llx: not the same "
			       "process memory",
			       path, v, token, c->token);
		}
		if (writer && who != writer)
			continue;
		if (strict && c->lines && v <= c->last) {
			fclose(f);
			TCHECK(0,
			       "%s: line '%lu %016llx' after %lu (token %016llx): not the same "
			       "process memory",
			       path, v, token, c->last, c->token);
		}
		if (strict && pdeath != SIGKILL) {
			fclose(f);
			TCHECK(0, "%s: at count %lu the parent-death signal is %d, expected %d",
			       path, v, pdeath, SIGKILL);
		}
		if (!c->lines++)
			c->first = v;
		c->last = v;
	}
	c->size = ftello(f);
	fclose(f);
}

static struct cnt at_ready[M_N];

static void verify(void)
{
	struct cnt now[M_N], win;
	char state;
	pid_t ppid, pgid, sid, me = getpid();
	int i, st;

	TCHECK(getsid(0) == me && getpgid(0) == me, "root: sid %d pgid %d, expected %d",
	       (int)getsid(0), (int)getpgid(0), (int)me);
	for (i = 0; i < M_N; i++) {
		const char *n = m[i].name;

		TCHECK(find_member(m[i].pid, &state, &ppid, &pgid, &sid, &m[i].proc_pid) == 0,
		       "%s (pid %d) is gone", n, (int)m[i].pid);
		TCHECK(ppid == m[i].ppid, "%s: ppid %d, expected %d", n, (int)ppid, (int)m[i].ppid);
		TCHECK(pgid == m[i].pgid, "%s: pgid %d, expected %d", n, (int)pgid, (int)m[i].pgid);
		TCHECK(sid == m[i].sid, "%s: sid %d, expected %d", n, (int)sid, (int)m[i].sid);
		if (i == M_C)
			TCHECK(state == 'Z', "C: state %c, expected a zombie (Z)", state);
		else
			TCHECK(!strchr("TtZX", state), "%s: state %c, expected running or sleeping",
			       n, state);
	}
	/* the counters go on from where they were, in the same memory */
	for (i = 0; i < M_N; i++) {
		if (i == M_C)
			continue;
		now[i].token = at_ready[i].token;
		read_counts(m[i].name, 0, 0, 0, &now[i]);
	}
	scn_msleep(300);
	for (i = 0; i < M_N; i++) {
		if (i == M_C)
			continue;
		win.token = at_ready[i].token;
		read_counts(m[i].name, now[i].size, 1, m[i].proc_pid, &win);
		TCHECK(win.lines > 0, "%s: counter stuck at %lu for 300 ms", m[i].name,
		       now[i].last);
		TCHECK(win.first > at_ready[i].last,
		       "%s: counter at %lu, not past its value %lu at ready (memory not restored?)",
		       m[i].name, win.first, at_ready[i].last);
	}
	TCHECK(waitpid(m[M_C].pid, &st, WNOHANG) == m[M_C].pid, "C: waitpid failed: %s",
	       errno ? strerror(errno) : "not a zombie");
	TCHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "C: wait status %#x, expected exit 7", st);
	kill_members();
}

int main(int argc, char **argv)
{
	siginfo_t si;
	pid_t me;
	char buf[128], state;
	int i, tries;

	scn_init(argc, argv, 1);
	setsid(); /* already a session leader when the runner started us */
	me = getpid();
	if (getsid(0) != me)
		scn_fail("root is not a session leader");

	m[M_A].pid = fork();
	if (m[M_A].pid == 0) {
		setpgid(0, 0);
		m[M_B].pid = fork();
		if (m[M_B].pid == 0)
			child_loop("B", getppid());
		if (m[M_B].pid < 0)
			_exit(6);
		child_loop("A", me);
	}
	setpgid(m[M_A].pid, m[M_A].pid); /* whichever of us comes first */
	m[M_C].pid = fork();
	if (m[M_C].pid == 0)
		zombie_exit();
	m[M_D].pid = fork();
	if (m[M_D].pid == 0) {
		setsid();
		child_loop("D", me);
	}
	if (m[M_A].pid < 0 || m[M_C].pid < 0 || m[M_D].pid < 0)
		scn_fail("fork failed");

	/* wait until every member is set up, and C is a zombie */
	for (tries = 0; tries < 500; tries++) {
		memset(&si, 0, sizeof(si));
		m[M_B].pid = read_pid_file("B");
		if (m[M_B].pid > 0 && read_pid_file("A") == m[M_A].pid &&
		    read_pid_file("D") == m[M_D].pid &&
		    waitid(P_PID, m[M_C].pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == m[M_C].pid)
			break;
		scn_msleep(10);
	}
	if (tries == 500) {
		kill_members();
		scn_fail("the tree was not set up within 5 s");
	}
	scn_msleep(100); /* let every counter write a line */
	for (i = 0; i < M_N; i++) {
		if (i == M_C)
			continue;
		read_counts(m[i].name, 0, 1, 0, &at_ready[i]);
		if (!at_ready[i].lines) {
			kill_members();
			scn_fail("%s wrote no counter within 100 ms", m[i].name);
		}
	}

	for (i = 0; i < M_N; i++)
		if (find_member(m[i].pid, &state, &m[i].ppid, &m[i].pgid, &m[i].sid,
				&m[i].proc_pid) < 0) {
			kill_members();
			scn_fail("cannot find %s (pid %d) in /proc", m[i].name, (int)m[i].pid);
		}
	/* the structure the scenario is about */
	if (m[M_A].ppid != me || m[M_A].pgid != m[M_A].pid || m[M_A].sid != me ||
	    m[M_B].ppid != m[M_A].pid || m[M_B].pgid != m[M_A].pid || m[M_B].sid != me ||
	    m[M_C].ppid != me || m[M_C].pgid != me || m[M_C].sid != me || m[M_D].ppid != me ||
	    m[M_D].pgid != m[M_D].pid || m[M_D].sid != m[M_D].pid) {
		kill_members();
		scn_fail("unexpected tree at setup");
	}
	snprintf(buf, sizeof(buf), "%d %d %d %d\n", (int)m[M_A].pid, (int)m[M_B].pid,
		 (int)m[M_C].pid, (int)m[M_D].pid);
	scn_write_file("pids", buf);
	scn_log("tree: root %d A %d B %d C %d (zombie) D %d", (int)me, (int)m[M_A].pid,
		(int)m[M_B].pid, (int)m[M_C].pid, (int)m[M_D].pid);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);
	verify();
	scn_pass();
}
