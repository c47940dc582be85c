// SPDX-License-Identifier: MIT
/*
 * pgrpdead - a process group whose leader is gone:
 *
 *   root (session leader) forks L, which leads its own group, and M, which
 *   it moves into L's group (setpgid(M, L)); then it kills L and reaps it.
 *   Group L lives on with M as its only member; no process has PID L.
 *
 * M has parent-death signal SIGKILL, counts in memory (every 5 ms) and
 * appends "COUNTER TOKEN" to WORKDIR/M.cnt every 10 steps (TOKEN: random,
 * in M's memory).  WORKDIR/pids lists M.
 *
 * Check: getpgid(M) is still L and M is still the child of the root in its
 * session, running; no process has PID L, and M is the only process of
 * group L; M's counter goes on (same token, past its value at 'ready').
 */
#include "scenario.h"

#include <dirent.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static pid_t pid_l, pid_m;
static unsigned long long m_token;
static unsigned long m_ready_count;

static void __attribute__((noreturn)) m_loop(pid_t parent)
{
	volatile unsigned long count = 0;
	unsigned long long token;
	char buf[64];
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	if (getrandom(&token, sizeof(token), 0) != sizeof(token))
		_exit(4);
	token |= 1;
	fd = open("M.cnt", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(4);
	for (;;) {
		count++;
		if (count % 10 == 0) {
			snprintf(buf, sizeof(buf), "%lu %016llx\n", count, token);
			if (scn_write_all(fd, buf, strlen(buf)) < 0)
				_exit(5);
		}
		scn_msleep(5);
	}
}

static void kill_m(void)
{
	if (pid_m > 0) {
		kill(pid_m, SIGKILL);
		waitpid(pid_m, NULL, 0);
	}
}

#define MCHECK(cond, ...)                      \
	do {                                   \
		if (!(cond)) {                 \
			kill_m();              \
			scn_fail(__VA_ARGS__); \
		}                              \
	} while (0)

/* Lines of M.cnt from offset 'from': same token, strictly increasing. */
static off_t read_counts(off_t from, unsigned long *first, unsigned long *last, int *lines)
{
	unsigned long long token;
	unsigned long v;
	char line[128];
	off_t size;
	FILE *f = fopen("M.cnt", "re");

	MCHECK(f, "cannot open M.cnt: %s", strerror(errno));
	fseeko(f, from, SEEK_SET);
	*lines = 0;
	*first = *last = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lu %llx", &v, &token) != 2 || (m_token && token != m_token) ||
		    (*lines && v <= *last)) {
			fclose(f);
			MCHECK(0, "M.cnt: line '%.40s' after %lu (token %016llx): not M's memory",
			       line, *last, m_token);
		}
		m_token = token;
		if (!(*lines)++)
			*first = v;
		*last = v;
	}
	size = ftello(f);
	fclose(f);
	return size;
}

/* /proc/PID/stat: state, ppid, pgrp, session. */
static int read_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgid, pid_t *sid)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%c %d %d %d", state, ppid, pgid, sid) != 4)
		return -1;
	return 0;
}

/* The processes of group pgid (up to max of them, in pids); their count. */
static int group_members(pid_t pgid, pid_t *pids, int max)
{
	struct dirent *de;
	pid_t ppid, pg, sid;
	char state;
	int n = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		pid_t pid = atoi(de->d_name);

		if (pid <= 0 || read_stat(pid, &state, &ppid, &pg, &sid) < 0 || pg != pgid)
			continue;
		if (n < max)
			pids[n] = pid;
		n++;
	}
	closedir(d);
	return n;
}

static void verify(void)
{
	unsigned long first, last;
	pid_t ppid, pgid, sid, members[4];
	char state;
	struct stat sb;
	off_t size;
	int lines, n;

	MCHECK(read_stat(pid_m, &state, &ppid, &pgid, &sid) == 0, "M (pid %d) is gone", (int)pid_m);
	MCHECK(pgid == pid_l && getpgid(pid_m) == pid_l, "M is in group %d, expected %d", (int)pgid,
	       (int)pid_l);
	MCHECK(ppid == getpid() && sid == getpid(), "M: ppid %d sid %d, expected %d for both",
	       (int)ppid, (int)sid, (int)getpid());
	MCHECK(!strchr("TtZX", state), "M: state %c, expected running or sleeping", state);
	errno = 0;
	MCHECK(kill(pid_l, 0) < 0 && errno == ESRCH, "a process has PID %d (the dead leader): %s",
	       (int)pid_l, errno ? strerror(errno) : "kill(L, 0) succeeded");
	MCHECK(kill(-pid_l, 0) == 0, "group %d cannot be signalled: %s", (int)pid_l,
	       strerror(errno));
	n = group_members(pid_l, members, 4);
	MCHECK(n == 1 && members[0] == pid_m,
	       "group %d has %d members (first %d), expected only M %d", (int)pid_l, n,
	       n > 0 ? (int)members[0] : 0, (int)pid_m);

	/* (from the current end: after a dump -R the original counted on) */
	MCHECK(stat("M.cnt", &sb) == 0, "cannot stat M.cnt: %s", strerror(errno));
	size = sb.st_size;
	scn_msleep(300);
	read_counts(size, &first, &last, &lines);
	MCHECK(lines > 0, "M's counter is stuck");
	MCHECK(first > m_ready_count, "M's counter at %lu, not past its value %lu at ready", first,
	       m_ready_count);
	kill_m();
}

int main(int argc, char **argv)
{
	unsigned long first;
	pid_t me, pgid;
	char buf[64];
	int lines, tries, st;

	scn_init(argc, argv, 1);
	setsid(); /* already a session leader when the runner started us */
	me = getpid();

	pid_l = fork();
	if (pid_l == 0) {
		setpgid(0, 0);
		for (;;)
			pause();
	}
	if (pid_l < 0)
		scn_fail("fork failed");
	setpgid(pid_l, pid_l);
	pid_m = fork();
	if (pid_m == 0)
		m_loop(me);
	if (pid_m < 0 || setpgid(pid_m, pid_l) < 0) {
		kill(pid_l, SIGKILL);
		kill_m();
		scn_fail("cannot put M into group %d: %s", (int)pid_l, strerror(errno));
	}
	kill(pid_l, SIGKILL);
	if (waitpid(pid_l, &st, 0) != pid_l) {
		kill_m();
		scn_fail("cannot reap L: %s", strerror(errno));
	}
	pgid = getpgid(pid_m);
	if (pgid != pid_l || kill(pid_l, 0) == 0) {
		kill_m();
		scn_fail("setup: M in group %d, L %d gone: %s", (int)pgid, (int)pid_l,
			 kill(pid_l, 0) ? "yes" : "no");
	}
	for (tries = 0; tries < 300; tries++) {
		/* M may not have created its file yet on a busy machine */
		if (access("M.cnt", F_OK)) {
			scn_msleep(10);
			continue;
		}
		read_counts(0, &first, &m_ready_count, &lines);
		if (lines >= 2)
			break;
		scn_msleep(10);
	}
	if (lines < 2) {
		kill_m();
		scn_fail("M does not count");
	}
	snprintf(buf, sizeof(buf), "%d\n", (int)pid_m);
	scn_write_file("pids", buf);
	scn_log("root %d, L %d (dead), M %d in group %d", (int)me, (int)pid_l, (int)pid_m,
		(int)pgid);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);
	verify();
	scn_pass();
}
