/*
 * tty_stop: stopped jobs.  Child J leads its own group (as a shell job
 * would) and is stopped by SIGTSTP; child K, in our group, by SIGSTOP.
 * Both have a SIGCONT handler that says who it is (by its group).  The parent has
 * seen both stops with waitpid(WUNTRACED).
 *
 * The check: both are still stopped (and stay so for a moment), then
 * SIGCONT continues each of them: the parent sees WIFCONTINUED, the
 * child's handler runs in the right group.
 */
#include <sys/wait.h>

#include "scenario.h"

static int report = -1;

static void on_cont(int sig)
{
	char c = getpgrp() == getpid() ? 'j' : 'k';

	if (write(report, &c, 1) != 1)
		_exit(9);
}

static pid_t child(int pgrp_leader)
{
	int sync[2];
	pid_t pid;
	char c;

	if (pipe(sync))
		exit(2);
	pid = fork();
	if (pid == 0) {
		if (pgrp_leader)
			setpgid(0, 0);
		signal(SIGCONT, on_cont);
		if (write(sync[1], "r", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	if (pgrp_leader)
		setpgid(pid, pid);
	/* stop it only once its handler is in place */
	if (read(sync[0], &c, 1) != 1)
		exit(2);
	close(sync[0]);
	close(sync[1]);
	return pid;
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (scn_read_small(path, buf, sizeof(buf)))
		return '?';
	p = strrchr(buf, ')');
	return p ? p[2] : '?';
}

static const char *cont_one(pid_t pid, int want)
{
	static char why[128];
	int st, i;
	char c;

	if (proc_state(pid) != 'T') {
		snprintf(why, sizeof(why), "pid %d is in state %c, not stopped", pid,
			 proc_state(pid));
		return why;
	}
	/* a stop report after restore is fine; a continue or an exit is not */
	if (waitpid(pid, &st, WUNTRACED | WCONTINUED | WNOHANG) == pid && !WIFSTOPPED(st)) {
		snprintf(why, sizeof(why), "pid %d: unexpected wait status %#x", pid, st);
		return why;
	}
	if (kill(pid, SIGCONT))
		return "SIGCONT failed";
	if (waitpid(pid, &st, WCONTINUED | WUNTRACED) != pid || !WIFCONTINUED(st)) {
		snprintf(why, sizeof(why), "pid %d: no WIFCONTINUED (status %#x)", pid, st);
		return why;
	}
	for (i = 0; i < 100 && read(report, &c, 1) != 1; i++)
		scn_msleep(20);
	if (i == 100)
		return "the continued job did not run its SIGCONT handler";
	if (c != want) {
		snprintf(why, sizeof(why), "pid %d: says '%c', expected '%c'", pid, c, want);
		return why;
	}
	kill(pid, SIGKILL);
	if (waitpid(pid, &st, 0) != pid || !WIFSIGNALED(st)) {
		snprintf(why, sizeof(why), "pid %d: wait status %#x", pid, st);
		return why;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int p[2], st;
	pid_t j, k;
	const char *why;
	char buf[64];

	scn_init(argc, argv, 1);
	if (pipe2(p, O_NONBLOCK))
		return 2;
	report = p[1];
	j = child(1);
	k = child(0);
	report = p[0];
	close(p[1]);
	kill(j, SIGTSTP);
	kill(k, SIGSTOP);
	if (waitpid(j, &st, WUNTRACED) != j || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGTSTP ||
	    waitpid(k, &st, WUNTRACED) != k || !WIFSTOPPED(st)) {
		scn_log("setup: children did not stop");
		return 2;
	}
	snprintf(buf, sizeof(buf), "%d %d\n", j, k);
	scn_write_file("pids", buf);
	scn_write_file("stopped", buf); /* the runner expects these stopped */
	scn_ready();
	while (!scn_check)
		scn_msleep(20);
	scn_msleep(100); /* a restored job must not run on by itself */
	why = cont_one(j, 'j');
	if (!why)
		why = cont_one(k, 'k');
	if (why) {
		kill(j, SIGKILL);
		kill(k, SIGKILL);
		scn_fail("%s", why);
	}
	scn_pass();
}
