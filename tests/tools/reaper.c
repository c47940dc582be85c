/*
 * reaper - run a command under a child subreaper (PR_SET_CHILD_SUBREAPER).
 *
 *   reaper COMMAND [ARG...]
 *
 * tests/run.sh runs itself under it: the trees the tests restore with -d
 * are orphans, and PID 1 of this machine reaps orphans only after a second
 * or two, so every dump/restore cycle waited that long for the PIDs to be
 * free again.  Orphans now come to this process, which reaps them at once.
 *
 * The command runs as our child, not in our place: a bash that is itself
 * the subreaper gets the restored trees as children it never forked, and
 * twice a runner hung for good in wait4(-1) inside a command substitution,
 * with only such a child left.  Signals that end a run (SIGTERM from
 * timeout(1), SIGINT, SIGHUP, and the runner's SIGUSR1) are passed on to
 * the command; we exit with its status once it is gone.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t command_pid;

static void pass_on(int sig)
{
	if (command_pid > 0)
		kill(command_pid, sig);
}

int main(int argc, char **argv)
{
	static const int passed[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 };
	struct sigaction sa = { .sa_handler = pass_on };
	size_t i;
	int status;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: reaper COMMAND [ARG...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		perror("reaper: PR_SET_CHILD_SUBREAPER"); /* slower, not wrong */
	pid = fork();
	if (pid < 0) {
		perror("reaper: fork");
		return 127;
	}
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		perror("reaper: exec");
		_exit(127);
	}
	command_pid = pid;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < sizeof(passed) / sizeof(passed[0]); i++)
		sigaction(passed[i], &sa, NULL);
	for (;;) {
		pid_t r = waitpid(-1, &status, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			perror("reaper: waitpid");
			return 127;
		}
		if (r != pid)
			continue; /* an orphan: reaped, nothing more */
		if (WIFSIGNALED(status)) {
			signal(WTERMSIG(status), SIG_DFL);
			raise(WTERMSIG(status));
			return 128 + WTERMSIG(status);
		}
		return WEXITSTATUS(status);
	}
}
