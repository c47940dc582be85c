// SPDX-License-Identifier: MIT
/*
 * userns_tree - a tree in a user namespace of its own, as a rootless
 * container's:
 *
 *   launcher   outside the tree: `unshare --user --map-root-user --fork
 *              --pid` (USERNS_MODE=unshare, the default), or clone3 with
 *              CLONE_NEWUSER | CLONE_NEWPID and maps of two ranges written
 *              from outside, setgroups allowed (USERNS_MODE=multi)
 *    +- I      PID 1 of the new PID namespace, uid 0 inside, session
 *       |      leader, a second thread counting: the scenario
 *       +- A   pid 2: drops to other credentials (multi: uid/gid 1000 and
 *              groups 1000 2000 inside, i.e. 101000... outside; unshare:
 *              uid 0 with fewer capabilities), keeps CAP_KILL and
 *              CAP_NET_BIND_SERVICE; on SIGUSR1 writes how it sees itself
 *              to a pipe I reads
 *
 * What each sees of itself ("report": ids, groups, capability sets,
 * uid_map, gid_map, setgroups, and whether the PID namespace is owned by
 * its user namespace) is taken before ready and again at check, and must
 * be the same; I is 1 and A is 2 with parent 1; the thread still counts.
 * WORKDIR/ready names I by its PID as the runner sees it.
 *
 * USERNS_MODE=uts adds --uts (I names it "userns-tree").  For the
 * refusals: USERNS_MODE=utsfirst makes that UTS namespace before the user
 * namespace (owned by the runner's), USERNS_MODE=nopid runs `unshare
 * --user --map-root-user` without a PID namespace (I is not PID 1 then),
 * USERNS_NEST=1 makes A unshare a user namespace nested in the tree's.
 */
#include "scenario.h"

#include <linux/capability.h>
#include <linux/nsfs.h>
#include <pthread.h>
#include <sched.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static volatile unsigned long counted;
static volatile sig_atomic_t asked;
static int rep_pipe[2];

static void *count_thread(void *arg)
{
	for (;;) {
		usleep(2000);
		counted++;
	}
	return NULL;
}

static size_t add_file(char *buf, size_t len, size_t cap, const char *label, const char *path)
{
	char tmp[1024];
	int n = scn_read_small(path, tmp, sizeof(tmp));

	if (n < 0)
		snprintf(tmp, sizeof(tmp), "(cannot read: %s)", strerror(errno));
	return len + snprintf(buf + len, cap - len, "%s: %s\n", label, tmp);
}

/* The status lines of a set of fields. */
static size_t add_status(char *buf, size_t len, size_t cap)
{
	static const char *const keys[] = { "Uid:",    "Gid:",	  "Groups:",
					    "CapInh:", "CapPrm:", "CapEff:",
					    "CapBnd:", "CapAmb:", "NoNewPrivs:" };
	char st[4096], *line, *save = NULL;
	size_t k;

	if (scn_read_small("/proc/thread-self/status", st, sizeof(st)) < 0)
		return len + snprintf(buf + len, cap - len, "status: unreadable\n");
	for (line = strtok_r(st, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!strncmp(line, keys[k], strlen(keys[k])))
				len += snprintf(buf + len, cap - len, "%s\n", line);
	return len;
}

/* Is the PID namespace owned by our user namespace? */
static const char *pidns_owner(void)
{
	struct stat a, b;
	int fd = open("/proc/thread-self/ns/pid", O_RDONLY), o;

	if (fd < 0)
		return "unreadable";
	o = ioctl(fd, NS_GET_USERNS);
	close(fd);
	if (o < 0)
		return "no owner";
	fstat(o, &a);
	close(o);
	if (stat("/proc/thread-self/ns/user", &b))
		return "unreadable";
	return a.st_ino == b.st_ino ? "ours" : "another";
}

/* How this task sees itself (its pid and parent inside included). */
static void report(char *buf, size_t cap)
{
	uid_t r, e, s;
	gid_t g[3], groups[64];
	size_t len;
	int n, i;

	getresuid(&r, &e, &s);
	getresgid(&g[0], &g[1], &g[2]);
	len = snprintf(buf, cap, "pid %d ppid %d uids %u %u %u gids %u %u %u groups", getpid(),
		       getppid(), r, e, s, g[0], g[1], g[2]);
	n = getgroups(64, groups);
	for (i = 0; i < n; i++)
		len += snprintf(buf + len, cap - len, " %u", groups[i]);
	len += snprintf(buf + len, cap - len, "\npidns owner: %s\n", pidns_owner());
	len = add_file(buf, len, cap, "uid_map", "/proc/self/uid_map");
	len = add_file(buf, len, cap, "gid_map", "/proc/self/gid_map");
	len = add_file(buf, len, cap, "setgroups", "/proc/self/setgroups");
	add_status(buf, len, cap);
}

static void on_usr1(int sig)
{
	asked = 1;
}

static int set_caps(uint64_t caps)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { (uint32_t)caps, (uint32_t)caps, 0 },
					       { (uint32_t)(caps >> 32), (uint32_t)(caps >> 32),
						 0 } };

	return syscall(SYS_capset, &h, d);
}

static void __attribute__((noreturn)) a_main(int multi)
{
	static char buf[8192];
	gid_t groups[2] = { 1000, 2000 };

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close(rep_pipe[0]);
	prctl(PR_SET_KEEPCAPS, 1);
	if (multi &&
	    (setgroups(2, groups) || setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)))
		_exit(3);
	if (set_caps(1ULL << CAP_KILL | 1ULL << CAP_NET_BIND_SERVICE))
		_exit(4);
	/* USERNS_NEST: A goes on in a user namespace nested in the tree's */
	if (getenv("USERNS_NEST") && unshare(CLONE_NEWUSER))
		_exit(6);
	for (;;) {
		while (!asked)
			pause();
		asked = 0;
		report(buf, sizeof(buf));
		if (scn_write_all(rep_pipe[1], buf, strlen(buf) + 1))
			_exit(5);
	}
}

/* A's report: ask it and read up to the NUL. */
static int ask_a(pid_t a, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	if (kill(a, SIGUSR1))
		return -1;
	while (len < cap - 1) {
		n = read(rep_pipe[0], buf + len, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (!buf[len])
			return 0;
		len++;
	}
	return -1;
}

static void __attribute__((noreturn)) init_main(int multi, int nopid)
{
	static char i_before[8192], i_after[8192], a_before[8192], a_after[8192];
	unsigned long c0;
	pthread_t th;
	int i;
	pid_t a;

	if (!nopid)
		setsid();
	if (getenv("USERNS_MODE") && !strncmp(getenv("USERNS_MODE"), "uts", 3))
		sethostname("userns-tree", 11);
	scn_pid = getpid();
	scn_proc_view = 1; /* the runner dumps us by the number it sees */
	struct sigaction sa = { .sa_handler = on_usr1 };

	if (pipe(rep_pipe))
		_exit(2);
	sigaction(SIGUSR1, &sa, NULL); /* A's, from its first instruction */
	a = fork();
	if (a == 0)
		a_main(multi);
	close(rep_pipe[1]);
	pthread_create(&th, NULL, count_thread, NULL);
	report(i_before, sizeof(i_before));
	if (ask_a(a, a_before, sizeof(a_before))) {
		int st = 0;

		waitpid(a, &st, 0);
		scn_log("A does not report (status %#x)", st);
		_exit(2);
	}
	scn_log("I before:\n%s", i_before);
	scn_log("A before:\n%s", a_before);
	scn_ready();
	while (!scn_check)
		pause();
	report(i_after, sizeof(i_after));
	SCN_CHECK(!strcmp(i_before, i_after), "I sees itself otherwise: before\n%s\nafter\n%s",
		  i_before, i_after);
	SCN_CHECK(!ask_a(a, a_after, sizeof(a_after)), "A does not report");
	SCN_CHECK(!strcmp(a_before, a_after), "A sees itself otherwise: before\n%s\nafter\n%s",
		  a_before, a_after);
	SCN_CHECK(nopid || (getpid() == 1 && a == 2), "I is pid %d, A %d", (int)getpid(), (int)a);
	c0 = counted;
	for (i = 0; i < 200 && counted == c0; i++) /* up to 2 s on a busy machine */
		usleep(10000);
	SCN_CHECK(counted > c0, "the thread does not count (%lu)", c0);
	SCN_CHECK(waitpid(-1, NULL, WNOHANG) == 0, "A has exited");
	scn_pass();
}

/* Write a map file of pid from outside. */
static int write_proc(pid_t pid, const char *name, const char *text)
{
	char path[64];
	int fd, ok;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok ? 0 : -1;
}

/* USERNS_MODE=multi: clone3 into new user and PID namespaces, maps from here. */
static int launch_multi(void)
{
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	} args = { .flags = CLONE_NEWUSER | CLONE_NEWPID, .exit_signal = SIGCHLD };
	const char *map = "0 0 1\n1 100001 65535\n";
	int go[2];
	pid_t init;
	char b;

	if (pipe(go))
		return 2;
	init = syscall(SYS_clone3, &args, sizeof(args));
	if (init < 0) {
		scn_log("cannot create user and PID namespaces: %s", strerror(errno));
		return 2;
	}
	if (init == 0) {
		close(go[1]);
		if (read(go[0], &b, 1) != 1)
			_exit(2);
		close(go[0]);
		init_main(1, 0);
	}
	close(go[0]);
	if (write_proc(init, "uid_map", map) || write_proc(init, "gid_map", map)) {
		scn_log("cannot write the maps: %s", strerror(errno));
		kill(init, SIGKILL);
		return 2;
	}
	if (write(go[1], "g", 1) != 1)
		return 2;
	close(go[1]);
	while (waitpid(init, NULL, 0) < 0 && errno == EINTR)
		;
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = getenv("USERNS_MODE");

	if (mode && !strcmp(mode, "multi")) {
		scn_init(argc, argv, 0);
		return launch_multi();
	}
	if (mode && !strcmp(mode, "nopid")) {
		/* USERNS_MODE=nopid: unshare(1) execs us in a user namespace only */
		if (!getenv("USERNS_INNER")) {
			setenv("USERNS_INNER", "1", 1);
			execlp("unshare", "unshare", "--user", "--map-root-user", argv[0],
			       argc > 1 ? argv[1] : ".", (char *)NULL);
			fprintf(stderr, "cannot run unshare: %s\n", strerror(errno));
			return 2;
		}
		scn_init(argc, argv, 0);
		init_main(0, 1);
	}
	if (!getenv("USERNS_INNER")) {
		/* the launcher: unshare(1) forks us as PID 1 of its namespaces */
		setenv("USERNS_INNER", "1", 1);
		if (mode && !strcmp(mode, "uts")) /* and a UTS namespace it owns */
			execlp("unshare", "unshare", "--user", "--map-root-user", "--fork", "--pid",
			       "--uts", argv[0], argc > 1 ? argv[1] : ".", (char *)NULL);
		else if (mode && !strcmp(mode, "utsfirst")) /* a UTS namespace made before */
			execlp("unshare", "unshare", "--uts", "unshare", "--user",
			       "--map-root-user", "--fork", "--pid", argv[0],
			       argc > 1 ? argv[1] : ".", (char *)NULL);
		else
			execlp("unshare", "unshare", "--user", "--map-root-user", "--fork", "--pid",
			       argv[0], argc > 1 ? argv[1] : ".", (char *)NULL);
		fprintf(stderr, "cannot run unshare: %s\n", strerror(errno));
		return 2;
	}
	scn_init(argc, argv, 0);
	init_main(0, 0);
}
