/*
 * bench.h - what the benchmark targets share: announcing readiness and
 * reading a child's state without wait().
 */
#ifndef STASIS_BENCH_H
#define STASIS_BENCH_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* state: the third field of /proc/PID/stat, or 0 when it cannot be read */
static inline char bench_proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* comm may hold spaces and ')' */
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * Ready: create READY_FILE (when given) or print "ready"; -1 (with a
 * message naming WHO) if the file cannot be created.
 */
static inline int bench_ready(const char *who, const char *ready_file)
{
	int fd;

	if (!ready_file) {
		printf("ready\n");
		fflush(stdout);
		return 0;
	}
	fd = open(ready_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "%s: ready file %s: %s\n", who, ready_file, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

#endif
