/*
 * Logging backend: one fd (stderr or the -o file) and a verbosity level.
 * Messages are formatted into one buffer and written with one write(2), so
 * lines from a restore child and its controller never interleave mid-line.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

int log_level = LOG_WARN;
__thread bool log_quiet;
static int log_fd = STDERR_FILENO;
static bool log_to_file; /* -o given: errors go to stderr as well */

int log_init(int level, const char *path)
{
	log_level = level;
	if (path) {
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0) {
			fprintf(stderr, "Error: cannot open log file %s: %s\n", path,
				strerror(errno));
			return -1;
		}
		log_fd = fd;
		log_to_file = true;
	}
	return 0;
}

int log_fd_get(void)
{
	return log_fd;
}

void log_fd_set(int fd)
{
	log_fd = fd;
}

void log_msg(int level, const char *fmt, ...)
{
	char buf[4096];
	int saved = errno;
	va_list ap;
	int n;

	if ((level > log_level && level != LOG_ERR) || log_quiet)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	if (n > 0 && write(log_fd, buf, n) < 0) {
		/* nowhere left to report it */
	}
	/* With -o FILE, errors still reach the user's terminal too. */
	if (level == LOG_ERR && log_to_file && n > 0 && write(STDERR_FILENO, buf, n) < 0) {
	}
	errno = saved;
}
