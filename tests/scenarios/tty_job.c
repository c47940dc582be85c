/*
 * tty_job: a shell job.  Started from an interactive shell on a terminal
 * (its session and terminal are outside the dumped tree); it reads lines
 * typed on the terminal and remembers the last one.
 *
 * The check: fds 0-2 are a terminal, which is our controlling terminal,
 * our group has it in the foreground, our session is our parent's (the
 * shell before the dump, the restoring stasis after), and the last line
 * typed is "after" (typed on the restorer's terminal after the restore).
 */
#include <poll.h>
#include <sys/ioctl.h>

#include "scenario.h"

int main(int argc, char **argv)
{
	char line[256], buf[128];
	int fd;

	scn_init(argc, argv, 1);
	line[0] = '\0';
	scn_ready();
	while (!scn_check) {
		struct pollfd p = { 0, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 50) != 1 || !(p.revents & POLLIN))
			continue;
		n = read(0, buf, sizeof(buf) - 1);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		snprintf(line, sizeof(line), "%s", buf);
		scn_log("got: %s", line);
	}
	for (fd = 0; fd < 3; fd++)
		SCN_CHECK(isatty(fd), "fd %d is not a terminal", fd);
	fd = open("/dev/tty", O_RDWR | O_NOCTTY);
	SCN_CHECK(fd >= 0, "no controlling terminal: %s", strerror(errno));
	close(fd);
	SCN_CHECK(tcgetpgrp(0) == getpgrp(), "our group %d is not in the foreground (%d)",
		  getpgrp(), tcgetpgrp(0));
	SCN_CHECK(getsid(0) == getppid(), "session %d is not our parent's (%d)", getsid(0),
		  getppid());
	SCN_CHECK(!strcmp(line, "after"), "last line typed: '%s', expected 'after'", line);
	scn_pass();
}
