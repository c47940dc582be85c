// SPDX-License-Identifier: MIT
/*
 * forker - forks a child about every millisecond; the child exits at once
 * with status (n & 0x7f), n being the fork's number, and the parent reaps
 * it with waitpid() and checks the status.  Every other fork, the parent
 * sleeps its millisecond before the waitpid() instead of after it, so a
 * dump finds a zombie child about half of the time (and now and then a
 * child that runs), which the restore must bring back so that the
 * waitpid() still gets it with its status.  Logs "count N" every 500 forks.
 *
 * Check: the loop went on past its count at 'ready' and after restore (the
 * runner watches the log), every reaped child had the right status, and
 * there is no other child left: nothing in /proc/self/task/TID/children,
 * and waitpid(-1, WNOHANG) fails with ECHILD.
 */
#include "scenario.h"

#include <dirent.h>
#include <sys/wait.h>

#define READY_AFTER 50

static unsigned long count;
static unsigned long ready_count;
static char bad[256]; /* the first wrong child, if any */

/* The children of every thread of this process, as listed by /proc. */
static int count_children(char *list, size_t size)
{
	char path[300], buf[256];
	struct dirent *de;
	int n = 0, fd;
	ssize_t len;
	DIR *d = opendir("/proc/self/task");

	list[0] = '\0';
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len > 0) {
			buf[len] = '\0';
			n++;
			snprintf(list + strlen(list), size - strlen(list), "%s", buf);
		}
	}
	closedir(d);
	return n;
}

static void verify(void)
{
	char kids[256];
	int n;

	SCN_CHECK(!bad[0], "%s", bad);
	SCN_CHECK(count > ready_count, "fork count %lu not past its value %lu at ready", count,
		  ready_count);
	n = count_children(kids, sizeof(kids));
	SCN_CHECK(n == 0, "children left after the last waitpid: %s", n < 0 ? "(no /proc)" : kids);
	errno = 0;
	n = waitpid(-1, NULL, WNOHANG);
	SCN_CHECK(n == -1 && errno == ECHILD, "waitpid(-1) gives %d (%s), expected ECHILD", n,
		  strerror(errno));
}

int main(int argc, char **argv)
{
	pid_t pid, got;
	int st;

	scn_init(argc, argv, 1);
	for (;;) {
		pid = fork();
		if (pid == 0)
			_exit((int)(count & 0x7f));
		if (pid < 0) {
			if (!bad[0])
				snprintf(bad, sizeof(bad), "fork %lu failed: %s", count,
					 strerror(errno));
			scn_msleep(10);
			continue;
		}
		if (count % 2)
			scn_msleep(1);
		do
			got = waitpid(pid, &st, 0);
		while (got < 0 && errno == EINTR);
		if (!bad[0] && got != pid)
			snprintf(bad, sizeof(bad), "fork %lu: waitpid(%d) gave %d (%s)", count,
				 (int)pid, (int)got, strerror(errno));
		else if (!bad[0] && (!WIFEXITED(st) || WEXITSTATUS(st) != (int)(count & 0x7f)))
			snprintf(bad, sizeof(bad),
				 "fork %lu: child %d wait status %#x, expected exit %lu", count,
				 (int)pid, st, count & 0x7f);
		count++;
		if (count % 500 == 0)
			scn_log("count %lu", count);
		if (count == READY_AFTER) {
			ready_count = count;
			scn_ready();
		}
		if (scn_check && count > READY_AFTER) {
			verify();
			scn_pass();
		}
		if (count % 2)
			scn_msleep(1);
	}
}
