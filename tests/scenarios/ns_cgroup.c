// SPDX-License-Identifier: MIT
/*
 * ns_cgroup - a cgroup namespace rooted in a cgroup of the test's:
 *
 *   root   moves into each directory of CG_DIRS (cgroup directories the
 *          test made, one per hierarchy, each with a "kid" below), then
 *          unshare(CLONE_NEWCGROUP): those are the namespace's roots
 *    +- K  moves into DIR/kid of each, and counts into K.cnt
 *
 * Check (root): in its own /proc/self/cgroup every path is "/" (the roots),
 * in K's there are as many "/kid" as directories and the rest "/"; K counts.
 */
#include "scenario.h"

#include <sched.h>
#include <sys/prctl.h>

static int join(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, "0", 1) != 1)
		return -1;
	close(fd);
	return 0;
}

/* Lines of a cgroup file whose path is exactly 'want'; -1 if another shows. */
static int count_paths(const char *file, const char *want, const char *other)
{
	char buf[4096], *line, *save = NULL, *p;
	int n = 0;

	if (scn_read_small(file, buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		p = strrchr(line, ':');
		if (!p)
			return -1;
		if (!strcmp(p + 1, want))
			n++;
		else if (!other || strcmp(p + 1, other))
			return -1;
	}
	return n;
}

int main(int argc, char **argv)
{
	char *dirs = getenv("CG_DIRS"), *list, *d, *save = NULL, path[PATH_MAX], buf[64];
	unsigned long c0, c1;
	int ndirs = 0, i;
	pid_t k;

	scn_init(argc, argv, 0);
	if (!dirs) {
		scn_log("CG_DIRS not set");
		return 2;
	}
	list = strdup(dirs);
	for (d = strtok_r(list, " ", &save); d; d = strtok_r(NULL, " ", &save), ndirs++)
		if (join(d)) {
			scn_log("cannot join %s: %s", d, strerror(errno));
			return 2;
		}
	if (unshare(CLONE_NEWCGROUP)) {
		scn_log("cannot make a cgroup namespace: %s", strerror(errno));
		return 2;
	}
	k = fork();
	if (k == 0) {
		unsigned long n = 0;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		save = NULL;
		list = strdup(dirs);
		for (d = strtok_r(list, " ", &save); d; d = strtok_r(NULL, " ", &save)) {
			snprintf(path, sizeof(path), "%s/kid", d);
			if (join(path))
				_exit(1);
		}
		for (;;) {
			usleep(5000);
			snprintf(buf, sizeof(buf), "%lu", ++n);
			scn_write_file("K.cnt", buf);
		}
	}
	snprintf(buf, sizeof(buf), "%d\n", k);
	scn_write_file("pids", buf);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", k);
	for (i = 0; i < 300 && count_paths(path, "/kid", "/") != ndirs; i++)
		usleep(10000);
	scn_ready();
	while (!scn_check)
		pause();
	c0 = scn_read_small("K.cnt", buf, sizeof(buf)) < 0 ? 0 : strtoul(buf, NULL, 10);
	usleep(100000);
	c1 = scn_read_small("K.cnt", buf, sizeof(buf)) < 0 ? 0 : strtoul(buf, NULL, 10);
	SCN_CHECK(count_paths("/proc/self/cgroup", "/", NULL) > 0,
		  "its own cgroups are not the namespace's roots");
	SCN_CHECK(count_paths(path, "/kid", "/") == ndirs, "K's cgroups as seen inside changed");
	SCN_CHECK(c1 > c0, "K stopped counting");
	scn_pass();
}
