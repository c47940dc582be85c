/*
 * Small helpers shared by every part of stasis: allocation, /proc readers,
 * string and number parsing, time.
 */
#ifndef STASIS_UTIL_H
#define STASIS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif
#define PAGE_ALIGN(x) (((x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
#define min(a, b)     ((a) < (b) ? (a) : (b))
#define max(a, b)     ((a) > (b) ? (a) : (b))

void *xmalloc(size_t size);
void *xzalloc(size_t size);
/* qsort that accepts an empty (NULL) array, which qsort itself does not. */
static inline void sort_array(void *base, size_t n, size_t size,
			      int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xsprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Read a whole (small) file into a NUL-terminated malloc'ed buffer. */
char *read_file(const char *path, size_t *len);
/* The same, relative to a directory fd (AT_FDCWD: the cwd). */
char *read_file_at(int dirfd, const char *path, size_t *lenp);
/* Grow our fd table to n fds now, in one step (see util.c). */
void fd_table_reserve(unsigned long n);
char *read_proc(pid_t pid, const char *name, size_t *len);
/* readlink("/proc/PID/NAME") into buf; returns length or -1. */
ssize_t readlink_proc(pid_t pid, const char *name, char *buf, size_t size);
/* Value of a "Key:\tvalue" line of /proc/PID/status, or NULL. */
const char *status_field(const char *status, const char *key);

int write_all(int fd, const void *buf, size_t len);
/*
 * Move fd to number 'to' (close-on-exec): fd is consumed, 'to' is returned,
 * or -1.  Safe when fd already is 'to'.
 */
int move_fd(int fd, int to);
int read_all(int fd, void *buf, size_t len);
uint64_t now_ns(void);

/*
 * A remote syscall is a ping-pong between two tasks; on different CPUs each
 * hop costs a cross-CPU wakeup (about 4x slower here).  stasis pins the
 * thread that drives a task to the task's CPU, and lets go afterwards.
 */
void affinity_save(void); /* remember our own mask, at start */
int pin_to_cpu(int cpu);  /* this thread only */
void unpin(void);	  /* back to the saved mask, this thread only */
/* The saved mask (what restored tasks inherit); false if unknown. */
bool affinity_saved(void *mask, size_t size);
int last_cpu_of(pid_t pid); /* the CPU a task last ran on, -1 if unknown */

bool pid_exists(pid_t pid);
/* The innermost PID namespace's number of a task we see as host_pid. */
pid_t innermost_pid(pid_t host_pid);
/* Our number for thread inner_tid (innermost namespace) of process host_pid. */
pid_t host_tid(pid_t host_pid, pid_t inner_tid);
/* comm of a task into buf ("?" if unknown). */
void proc_comm(pid_t pid, char *buf, size_t size);

/* Is capability 'cap' in our effective set? */
bool cap_effective(int cap);
int sk_send_with_fd(int sk, const void *data, size_t len, int fd, int flags);
/*
 * Is our namespace /proc/self/ns/NAME owned by our user namespace, so that
 * our capabilities count over it (not so for a normal user's namespaces,
 * nor for those of a rootless container it did not make)?
 */
bool owned_by_our_userns(const char *name);

#endif
