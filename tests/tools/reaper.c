/*
 * reaper - run a command as a child subreaper (PR_SET_CHILD_SUBREAPER).
 *
 *   reaper COMMAND [ARG...]
 *
 * tests/run.sh runs itself under it: the trees the tests restore with -d
 * are orphans, and PID 1 of this machine reaps orphans only after a second
 * or two, so every dump/restore cycle waited that long for the PIDs to be
 * free again.  Orphans now come to the runner's bash, which reaps them at
 * once.
 */
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: reaper COMMAND [ARG...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		perror("reaper: PR_SET_CHILD_SUBREAPER"); /* slower, not wrong */
	execvp(argv[1], argv + 1);
	perror("reaper: exec");
	return 127;
}
