/*
 * fid_sig: signal state that must come back exactly.  Child T leads its
 * own process group (a shell job) and is stopped by SIGTSTP; the parent
 * has seen that stop.  The parent has a SIGTRAP handler.
 *
 * The check: T is still stopped and, if the parent gets a new stop report
 * (a restore stops it again), that report names SIGTSTP, not SIGSTOP;
 * the parent's own SIGTRAP (raise and int3) runs its handler.  Then T is
 * continued and killed.
 */
#include <sys/wait.h>

#include "scenario.h"

static volatile sig_atomic_t traps;

static void on_trap(int sig)
{
	traps++;
}

static pid_t stopped_child(void)
{
	int st;
	pid_t pid = fork();

	if (pid < 0)
		exit(2);
	if (pid == 0) {
		setpgid(0, 0);
		for (;;)
			pause();
	}
	setpgid(pid, pid);
	if (kill(pid, SIGTSTP) || waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st) ||
	    WSTOPSIG(st) != SIGTSTP) {
		fprintf(stderr, "cannot stop the child with SIGTSTP\n");
		exit(2);
	}
	return pid;
}

static char state_of(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (scn_read_small(path, buf, sizeof(buf)))
		return '?';
	p = strrchr(buf, ')');
	return p ? p[2] : '?';
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	char buf[32];
	pid_t t;
	int st, i;

	scn_init(argc, argv, 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_trap;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTRAP, &sa, NULL))
		exit(2);
	t = stopped_child();
	snprintf(buf, sizeof(buf), "%d\n", t);
	scn_write_file("pids", buf);
	scn_write_file("stopped", buf); /* the runner expects it stopped */
	scn_ready_then_wait();

	for (i = 0; i < 100; i++) {
		pid_t r = waitpid(t, &st, WUNTRACED | WCONTINUED | WNOHANG);

		if (r == t) {
			SCN_CHECK(WIFSTOPPED(st), "child %d: wait status %#x, not a stop", t, st);
			SCN_CHECK(WSTOPSIG(st) == SIGTSTP,
				  "child %d: stopped by signal %d, not SIGTSTP", t, WSTOPSIG(st));
			break;
		}
		scn_msleep(10);
	}
	SCN_CHECK(state_of(t) == 'T', "child %d is in state %c, not stopped", t, state_of(t));
	raise(SIGTRAP);
	SCN_CHECK(traps == 1, "raise(SIGTRAP) ran the handler %d times", (int)traps);
	__asm__ volatile("int3");
	SCN_CHECK(traps == 2, "int3 ran the handler %d times in all", (int)traps);
	kill(t, SIGKILL);
	waitpid(t, &st, 0);
	scn_pass();
}
