/*
 * tty_term: a terminal for tests (not a scenario).
 *
 *   tty_term LOG COMMAND [ARGS...]
 *
 * Runs COMMAND as the session leader of a new pseudo-terminal (its
 * controlling terminal, on fds 0-2), appends everything the terminal shows
 * to LOG, and types what arrives on our stdin into it.  Exits when nothing
 * holds the terminal any more, with COMMAND's exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t child;

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

static void on_term(int sig)
{
	kill(child, SIGKILL);
	_exit(128 + sig);
}

int main(int argc, char **argv)
{
	struct winsize ws = { 24, 80, 0, 0 };
	struct pollfd p[2];
	char name[64], buf[4096];
	int m, log, status = 0, in_open = 1, *low, nlow;

	if (argc < 3) {
		fprintf(stderr, "usage: %s LOG COMMAND [ARGS...]\n", argv[0]);
		return 2;
	}
	low = hold_low_ptys(&nlow);
	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	release_low_ptys(low, nlow);
	if (m < 0 || grantpt(m) || unlockpt(m) || ptsname_r(m, name, sizeof(name)) ||
	    ioctl(m, TIOCSWINSZ, &ws)) {
		perror("pty");
		return 2;
	}
	log = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (log < 0) {
		perror(argv[1]);
		return 2;
	}
	child = fork();
	if (child == 0) {
		int s;

		setsid();
		s = open(name, O_RDWR); /* our controlling terminal */
		if (s < 0 || dup2(s, 0) < 0 || dup2(s, 1) < 0 || dup2(s, 2) < 0)
			_exit(127);
		syscall(SYS_close_range, 3, ~0U, 0);
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	for (;;) {
		ssize_t n;

		p[0] = (struct pollfd){ m, POLLIN, 0 };
		p[1] = (struct pollfd){ 0, POLLIN, 0 };
		if (poll(p, 1 + in_open, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			n = read(m, buf, sizeof(buf));
			if (n <= 0 && errno != EINTR && errno != EAGAIN)
				break; /* EIO: nothing holds the terminal any more */
			if (n > 0 && write(log, buf, n) != n)
				break;
		}
		if (in_open && p[1].revents) {
			n = read(0, buf, sizeof(buf));
			if (n <= 0)
				in_open = 0;
			else if (write(m, buf, n) != n)
				break;
		}
	}
	if (waitpid(child, &status, 0) != child)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
