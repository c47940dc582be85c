/*
 * Generic helpers: checked allocation, whole-file reads of /proc entries,
 * full reads/writes and a monotonic clock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p) {
		pr_err("out of memory (%zu bytes)\n", size);
		abort();
	}
	return p;
}

void *xzalloc(size_t size)
{
	void *p = xmalloc(size);

	memset(p, 0, size);
	return p;
}

void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (!p) {
		pr_err("out of memory (%zu bytes)\n", size);
		abort();
	}
	return p;
}

char *xstrdup(const char *s)
{
	return strcpy(xmalloc(strlen(s) + 1), s);
}

char *xsprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

char *read_file(const char *path, size_t *lenp)
{
	return read_file_at(AT_FDCWD, path, lenp);
}

char *read_file_at(int dirfd, const char *path, size_t *lenp)
{
	size_t len = 0, cap = 4096;
	char *buf;
	int fd;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = xmalloc(cap);
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
}

/* pid 0 is "self": in a new PID namespace our getpid() means another task here. */
char *read_proc(pid_t pid, const char *name, size_t *len)
{
	char path[64];

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	else
		snprintf(path, sizeof(path), "/proc/self/%s", name);
	return read_file(path, len);
}

ssize_t readlink_proc(pid_t pid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	n = readlink(path, buf, size - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

const char *status_field(const char *status, const char *key)
{
	size_t klen = strlen(key);
	const char *p = status;

	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			p += klen + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int move_fd(int fd, int to)
{
	if (fd == to)
		return fcntl(fd, F_SETFD, FD_CLOEXEC) ? -1 : to;
	if (dup3(fd, to, O_CLOEXEC) < 0)
		return -1;
	close(fd);
	return to;
}

/* Returns 0 on success, 1 on a short read (EOF), -1 on error. */
int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 1;
		p += n;
		len -= n;
	}
	return 0;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

bool pid_exists(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

void proc_comm(pid_t pid, char *buf, size_t size)
{
	char *s = read_proc(pid, "comm", NULL);

	snprintf(buf, size, "%s", s ? s : "?");
	if (s)
		free(s);
	buf[strcspn(buf, "\n")] = '\0';
}

pid_t innermost_pid(pid_t host_pid)
{
	char *status = read_proc(host_pid, "status", NULL);
	const char *v = status ? status_field(status, "NSpid") : NULL;
	pid_t last = -1;
	char *end;

	while (v && *v && *v != '\n') {
		long n = strtol(v, &end, 10);

		if (end == v)
			break;
		last = n;
		v = end;
	}
	free(status);
	return last;
}

pid_t host_tid(pid_t host_pid, pid_t inner_tid)
{
	char path[64], name[64];
	struct dirent *de;
	pid_t found = -1;
	DIR *d;

	if (innermost_pid(host_pid) == host_pid)
		return inner_tid; /* same namespace */
	snprintf(path, sizeof(path), "/proc/%d/task", host_pid);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		pid_t tid = atoi(de->d_name);

		snprintf(name, sizeof(name), "%d", tid);
		if (tid > 0 && innermost_pid(tid) == inner_tid) {
			found = tid;
			break;
		}
	}
	if (d)
		closedir(d);
	if (found < 0)
		pr_err("cannot find thread %d of pid %d\n", inner_tid, host_pid);
	return found;
}

static cpu_set_t saved_mask;
static bool saved_mask_valid;

void affinity_save(void)
{
	saved_mask_valid = !sched_getaffinity(0, sizeof(saved_mask), &saved_mask);
}

int pin_to_cpu(int cpu)
{
	cpu_set_t one;

	if (cpu < 0 || (saved_mask_valid && !CPU_ISSET(cpu, &saved_mask)))
		return -1;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return sched_setaffinity(0, sizeof(one), &one);
}

void unpin(void)
{
	if (saved_mask_valid)
		sched_setaffinity(0, sizeof(saved_mask), &saved_mask);
}

bool affinity_saved(void *mask, size_t size)
{
	if (!saved_mask_valid || size < sizeof(saved_mask))
		return false;
	memcpy(mask, &saved_mask, sizeof(saved_mask));
	return true;
}

int last_cpu_of(pid_t pid)
{
	char *buf = read_proc(pid, "stat", NULL), *p;
	int field = 3, cpu = -1;

	p = buf ? strrchr(buf, ')') : NULL;
	/* field 39 is "processor"; fields after the comm are space separated */
	while (p && *p) {
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
		if (field++ == 39) {
			cpu = atoi(p);
			break;
		}
	}
	free(buf);
	return cpu;
}

bool cap_effective(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { 0 };

	if (syscall(__NR_capget, &h, d))
		return false;
	return d[cap / 32].effective & (1U << (cap % 32));
}

bool owned_by_our_userns(const char *name)
{
	char path[64];
	struct stat self, owner;
	int ns, fd;
	bool ok;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return true; /* no such namespace here: the capability decides */
	fd = ioctl(ns, NS_GET_USERNS);
	if (fd < 0) {
		/* EPERM: the owner is an ancestor of our user namespace, not ours */
		ok = errno != EPERM;
		close(ns);
		return ok;
	}
	ok = !fstat(fd, &owner) && !stat("/proc/self/ns/user", &self) &&
	     owner.st_ino == self.st_ino && owner.st_dev == self.st_dev;
	close(fd);
	close(ns);
	return ok;
}

/*
 * Send len bytes of data over the unix socket sk, with fd attached
 * (SCM_RIGHTS) when fd >= 0.  0 if the whole message went.
 */
int sk_send_with_fd(int sk, const void *data, size_t len, int fd, int flags)
{
	char buf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { (void *)data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (fd >= 0) {
		mh.msg_control = buf;
		mh.msg_controllen = sizeof(buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sk, &mh, flags) == (ssize_t)len ? 0 : -1;
}

/*
 * Room for n fds in our fd table at once.  The kernel doubles the table
 * when it is full, and while another thread shares the table each
 * doubling waits for an RCU grace period (expand_fdtable): a dump that
 * takes a thousand sockets' duplicates, with its page writer or socket
 * reader running, lost some 30 ms that way, six doublings of 3-10 ms.
 * One growth to the final size, done before the threads start, costs none.
 */
void fd_table_reserve(unsigned long n)
{
	struct rlimit rl;
	int fd, high;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < 2)
		return;
	if (n >= rl.rlim_cur)
		n = rl.rlim_cur - 1;
	if (n <= 64)
		return;
	fd = open("/", O_PATH | O_CLOEXEC);
	if (fd < 0)
		return;
	high = fcntl(fd, F_DUPFD_CLOEXEC, (int)n - 1);
	if (high >= 0)
		close(high);
	close(fd);
}
