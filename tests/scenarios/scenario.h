/* SPDX-License-Identifier: MIT */
/*
 * scenario.h - tiny header-only helper shared by the test scenarios.
 *
 * Protocol (driven by tests/run.sh):
 *   - started as `build/tests/NAME WORKDIR`, cwd = WORKDIR, stdin from
 *     /dev/null (or a pipe), stdout+stderr appended to WORKDIR/log, in
 *     its own session;
 *   - builds its state, then creates WORKDIR/ready (tmp + rename), which
 *     holds "PID TOKEN\n";
 *   - keeps running its normal activity;
 *   - on SIGUSR2 (the handler only sets scn_check) the main loop verifies
 *     the scenario's own state, logs "result: ... token=TOKEN pid=PID",
 *     writes "PASS" or "FAIL: reason" to WORKDIR/result (tmp + rename)
 *     and exits 0 or 1.
 *
 * TOKEN is random and lives only in memory: the runner compares the token
 * of the ready file with the one logged at check time, which proves the
 * checked process carries the memory of the original (and is not a fresh
 * exec of the binary).  Scenarios never look at their parent.
 */
#ifndef SCENARIO_H
#define SCENARIO_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/stat.h>

static char scn_dir[PATH_MAX];		/* absolute WORKDIR */
static pid_t scn_pid;			/* getpid() at start */
static int scn_proc_view;		/* name ourselves by /proc/self (a PID namespace) */
static unsigned long long scn_token;	/* random, memory only */
static volatile sig_atomic_t scn_check; /* set by the SIGUSR2 handler */

static void scn_on_check(int sig)
{
	scn_check = 1;
}

/* write(2) all of buf, retrying on EINTR and short writes. */
static int scn_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One line to stdout (the runner appends it to WORKDIR/log); unbuffered. */
static void __attribute__((format(printf, 1, 2))) scn_log(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	scn_write_all(1, buf, (size_t)n);
}

/* Atomically create WORKDIR/name with the given text (tmp + rename). */
static void scn_write_file(const char *name, const char *text)
{
	char tmp[PATH_MAX + 64], dst[PATH_MAX + 64];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", scn_dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", scn_dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || scn_write_all(fd, text, strlen(text)) < 0 || close(fd) < 0 ||
	    rename(tmp, dst) < 0) {
		scn_log("cannot write %s: %s", dst, strerror(errno));
		exit(2);
	}
}

/*
 * Our PID as the runner sees it: getpid(), or in a PID namespace of our own
 * (scn_proc_view set) the number /proc/self names, /proc being the runner's.
 */
static pid_t scn_seen_pid(void)
{
	char buf[32];
	ssize_t n;

	if (!scn_proc_view)
		return getpid();
	n = readlink("/proc/self", buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return atoi(buf);
}

/* Write the result, log it and exit: reason == NULL means PASS. */
static void __attribute__((noreturn)) scn_finish(const char *reason)
{
	char line[1024], buf[1100];
	size_t i, n = 0;

	if (!reason && getpid() != scn_pid)
		reason = "pid changed";
	/* the reason must stay on one line: escape newlines */
	for (i = 0; reason && reason[i] && n < sizeof(line) - 3; i++) {
		if (reason[i] == '\n') {
			line[n++] = '\\';
			line[n++] = 'n';
		} else {
			line[n++] = reason[i];
		}
	}
	line[n] = '\0';
	scn_log("result: %s%s token=%016llx pid=%d", reason ? "FAIL: " : "PASS", line, scn_token,
		(int)scn_seen_pid());
	if (reason)
		snprintf(buf, sizeof(buf), "FAIL: %s\n", line);
	else
		snprintf(buf, sizeof(buf), "PASS\n");
	scn_write_file("result", buf);
	exit(reason ? 1 : 0);
}

static void __attribute__((noreturn)) scn_pass(void)
{
	scn_finish(NULL);
}

static void __attribute__((noreturn, format(printf, 1, 2))) scn_fail(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	scn_finish(buf);
}

/* Fail the check (and exit) unless cond holds. */
#define SCN_CHECK(cond, ...)                   \
	do {                                   \
		if (!(cond))                   \
			scn_fail(__VA_ARGS__); \
	} while (0)

/*
 * Parse WORKDIR, chdir there and install the SIGUSR2 handler.  restart
 * selects SA_RESTART: scenarios that must see EINTR from a blocking call
 * on check pass 0.
 */
static void scn_init(int argc, char **argv, int restart)
{
	struct sigaction sa;
	int sig;

	if (argc < 2) {
		fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
		exit(2);
	}
	if (!realpath(argv[1], scn_dir) || chdir(scn_dir) < 0) {
		fprintf(stderr, "%s: bad WORKDIR %s: %s\n", argv[0], argv[1], strerror(errno));
		exit(2);
	}
	scn_pid = getpid();

	/* start from a known signal state, whatever the runner inherited */
	sigemptyset(&sa.sa_mask);
	sigprocmask(SIG_SETMASK, &sa.sa_mask, NULL);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL); /* fails harmlessly for glibc's own */

	if (getrandom(&scn_token, sizeof(scn_token), 0) != sizeof(scn_token))
		scn_token = ((unsigned long long)time(NULL) << 20) ^ (unsigned long long)scn_pid;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = scn_on_check;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) < 0) {
		perror("sigaction(SIGUSR2)");
		exit(2);
	}
	scn_log("start %s pid=%d", argv[0], (int)scn_pid);
}

/* Announce that the state is built: WORKDIR/ready = "PID TOKEN". */
static void scn_ready(void)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%d %016llx\n", (int)scn_seen_pid(), scn_token);
	scn_write_file("ready", buf);
	scn_log("ready");
}

/* Sleep for ms milliseconds; returns early (without error) on a signal. */
static inline void scn_msleep(long ms);

/*
 * For scenarios whose state just sits there: announce it, then wait for the
 * runner's check signal.
 */
static void __attribute__((unused)) scn_ready_then_wait(void)
{
	scn_ready();
	while (!scn_check)
		scn_msleep(10);
}

/* Sleep for ms milliseconds; returns early (without error) on a signal. */
static inline void scn_msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* splitmix64: a cheap, well-mixed 64-bit hash used for memory patterns. */
/*
 * Read a small file (a /proc entry) into buf, NUL-terminated, without its
 * trailing newline; -1 if it is absent or empty.
 */
static int __attribute__((unused)) scn_read_small(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return 0;
}

/*
 * The number /proc (the runner's) names a task of our PID namespace by:
 * pid itself when /proc is ours, else the task whose NSpid ends in pid, in
 * our namespace (a restore into a new PID namespace, as a normal user's
 * is, brings the PIDs back inside only).  pid if none is found.
 */
static pid_t __attribute__((unused)) scn_proc_pid(pid_t pid)
{
	char path[300], buf[4096], *p;
	struct stat ours, theirs;
	struct dirent *d;
	pid_t found = pid;
	DIR *dp;

	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

	if (n <= 0 || (buf[n] = '\0', atoi(buf) == getpid()) || stat("/proc/self/ns/pid", &ours))
		return pid;
	dp = opendir("/proc");
	while (dp && (d = readdir(dp))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", d->d_name);
		if (scn_read_small(path, buf, sizeof(buf)) || !(p = strstr(buf, "\nNSpid:")))
			continue;
		p = strchr(p + 1, '\n');
		if (p)
			*p = '\0';
		p = strrchr(buf, '\t');
		snprintf(path, sizeof(path), "/proc/%s/ns/pid", d->d_name);
		if (p && atoi(p + 1) == pid && !stat(path, &theirs) &&
		    theirs.st_ino == ours.st_ino) {
			found = atoi(d->d_name);
			break;
		}
	}
	if (dp)
		closedir(dp);
	return found;
}

/*
 * Read one line from fd into buf (the '\n' kept, NUL-terminated), byte by
 * byte so that nothing after it is consumed; -1 on EOF, error, a full
 * buffer, or no byte within timeout_ms.
 */
static int __attribute__((unused)) scn_read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t n = 0;

	while (n + 1 < size) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, timeout_ms) != 1)
			return -1;
		r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			return -1;
		if (buf[n++] == '\n') {
			buf[n] = '\0';
			return 0;
		}
	}
	return -1;
}

/* Fork a child that runs loop() (it never returns); fail if fork does. */
static pid_t __attribute__((unused)) scn_fork(void (*loop)(void))
{
	pid_t pid = fork();

	if (pid == 0) {
		loop();
		_exit(1);
	}
	if (pid < 0)
		scn_fail("fork: %s", strerror(errno));
	return pid;
}

/* Publish the pids of the tree's other processes in WORKDIR/pids. */
static void __attribute__((unused)) scn_write_pids(const pid_t *pids, int n)
{
	char buf[16 * 64] = "";
	int i;

	for (i = 0; i < n && i < 64; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%d\n", (int)pids[i]);
	scn_write_file("pids", buf);
}

static inline uint64_t scn_hash(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

#endif /* SCENARIO_H */
