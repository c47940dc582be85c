/*
 * Logging: leveled messages to stderr or to the -o log file.  pr_err() is
 * the one line a user sees when something fails; the others appear with
 * -v.  A forked restore child keeps logging to the same place.
 */
#ifndef STASIS_LOG_H
#define STASIS_LOG_H

#include <errno.h>
#include <string.h>

enum log_level {
	LOG_MSG = 0, /* always shown, no prefix */
	LOG_ERR = 1,
	LOG_WARN = 2,
	LOG_INFO = 3,
	LOG_DEBUG = 4,
};

#include <stdbool.h>

extern int log_level;
/* This thread says nothing (work done ahead, redone by the dumper if it failed). */
extern __thread bool log_quiet;

int log_init(int level, const char *path);
int log_fd_get(void);
void log_fd_set(int fd);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_msg(fmt, ...)   log_msg(LOG_MSG, fmt, ##__VA_ARGS__)
#define pr_err(fmt, ...)   log_msg(LOG_ERR, "Error: " fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...)  log_msg(LOG_WARN, "Warn: " fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)  log_msg(LOG_INFO, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) log_msg(LOG_DEBUG, fmt, ##__VA_ARGS__)
/* Error with strerror(errno) appended. */
#define pr_perror(fmt, ...) pr_err(fmt ": %s\n", ##__VA_ARGS__, strerror(errno))

#endif
