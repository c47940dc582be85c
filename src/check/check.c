/*
 * `stasis check`: probe each kernel interface stasis relies on, the way it
 * will use it, and report feature by feature.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "res.h"
#include "rtask.h"
#include "stasis.h"
#include "util.h"

struct probe {
	const char *name;
	bool required;
	const char *(*run)(void); /* NULL if fine, else why not */
};

/* what a probe that passed adds to its "ok", or NULL */
static const char *ok_note;

/*
 * A normal user: no CAP_CHECKPOINT_RESTORE over our PID namespace.  Then
 * restore goes into a new user and PID namespace (restore/root.c).
 */
static bool unprivileged(void)
{
	return !can_choose_pids();
}

static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static const char *probe_ptrace(void)
{
	struct rtask t;
	pid_t pid = spawn_sleeper();
	const char *err = NULL;
	long ret;

	if (pid < 0)
		return "fork failed";
	if (rtask_freeze(&t, pid)) {
		reap(pid);
		return "PTRACE_SEIZE/INTERRUPT failed";
	}
	if (rtask_inject(&t, 1))
		err = "remote mmap failed";
	else if (remote_syscall(&t, &ret, __NR_getpid, 0, 0, 0, 0, 0, 0) || ret != pid)
		err = "remote getpid returned the wrong value";
	rtask_uninject(&t);
	rtask_release(&t);
	reap(pid);
	return err;
}

/*
 * A normal user's restore: in a new user namespace (mapping our ids) the
 * first task of a new PID namespace forks a child at a chosen PID.
 */
static const char *probe_set_tid_userns(void)
{
	static char why[160];
	struct stasis_clone_args args = { .flags = CLONE_NEWUSER | CLONE_NEWPID,
					  .exit_signal = SIGCHLD };
	int status = 0;
	pid_t pid;

	pid = syscall(__NR_clone3, &args, sizeof(args));
	if (pid == 0) {
		struct stasis_clone_args a = { .exit_signal = SIGCHLD };
		pid_t want = 4242, kid;

		a.set_tid = (uintptr_t)&want;
		a.set_tid_size = 1;
		kid = syscall(__NR_clone3, &a, sizeof(a));
		if (kid == 0)
			_exit(getpid() == want ? 0 : 1);
		if (kid < 0)
			_exit(10 + (errno == EPERM));
		waitpid(kid, &status, 0);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	}
	if (pid < 0) {
		snprintf(why, sizeof(why),
			 "cannot create a user and PID namespace (%s): see "
			 "/proc/sys/user/max_user_namespaces",
			 strerror(errno));
		return why;
	}
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return NULL;
	return WIFEXITED(status) && WEXITSTATUS(status) == 11
		   ? "set_tid refused even in a user namespace of our own"
		   : "set_tid does not work in a new user and PID namespace";
}

static const char *probe_clone3_set_tid(void)
{
	struct stasis_clone_args args = { .exit_signal = SIGCHLD };
	pid_t want = 0, pid;
	int status;

	/* ask for a pid that cannot be free (our own): EEXIST proves support */
	want = getpid();
	args.set_tid = (uintptr_t)&want;
	args.set_tid_size = 1;
	pid = syscall(__NR_clone3, &args, sizeof(args));
	if (pid == 0)
		_exit(0);
	if (pid > 0) {
		waitpid(pid, &status, 0);
		return "set_tid was ignored";
	}
	if (errno == EEXIST)
		return NULL;
	if (errno == EPERM && unprivileged()) {
		const char *why = probe_set_tid_userns();

		if (!why)
			ok_note = "in a new user and PID namespace (the same PIDs inside, new ones "
				  "outside); not in ours, which needs CAP_CHECKPOINT_RESTORE";
		return why;
	}
	if (errno == EPERM)
		return "needs root or CAP_CHECKPOINT_RESTORE";
	return strerror(errno);
}

/*
 * Yama: a normal user may trace only its own descendants at ptrace_scope
 * 1 (the dump then reaches only trees that allow stasis with
 * PR_SET_PTRACER), nobody but root at 2, nobody at 3.
 */
static const char *probe_yama(void)
{
	char *s = read_file("/proc/sys/kernel/yama/ptrace_scope", NULL);
	int scope = s ? atoi(s) : 0;
	bool yama = s != NULL;

	free(s);
	if (!yama || scope == 0) {
		ok_note = !yama ? "no Yama here: a user may trace every process of its own"
				: "ptrace_scope 0: a user may trace every process of its own";
		return NULL;
	}
	if (scope == 1 && unprivileged()) {
		ok_note = "ptrace_scope 1: a normal user can dump only its processes that allow it "
			  "(PR_SET_PTRACER); restore works";
		return NULL;
	}
	if (scope == 2 && unprivileged())
		return "ptrace_scope 2: only CAP_SYS_PTRACE may trace; a normal user cannot dump";
	if (scope >= 3)
		return "ptrace_scope 3: ptrace is off; nothing can be dumped";
	return NULL;
}

static const char *probe_pagemap_scan(void)
{
	struct page_region r[4];
	char *p =
	    mmap(NULL, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct pm_scan_arg a = { .size = sizeof(a),
				 .start = (uintptr_t)p,
				 .end = (uintptr_t)p + 4 * PAGE_SIZE,
				 .vec = (uintptr_t)r,
				 .vec_len = 4,
				 .category_anyof_mask = PAGE_IS_PRESENT,
				 .return_mask = PAGE_IS_PRESENT };
	int fd = open("/proc/self/pagemap", O_RDONLY);
	long n;

	p[PAGE_SIZE] = 1;
	n = fd < 0 ? -1 : ioctl(fd, PAGEMAP_SCAN, &a);
	if (fd >= 0)
		close(fd);
	munmap(p, 4 * PAGE_SIZE);
	if (n != 1)
		return "not available (falls back to reading /proc/PID/pagemap)";
	return NULL;
}

static const char *probe_uffd_wp_async(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	const char *err = NULL;

	if (fd < 0)
		return "userfaultfd unavailable";
	if (ioctl(fd, UFFDIO_API, &api))
		err = "no UFFD_FEATURE_WP_ASYNC (iterative dumps need it)";
	close(fd);
	return err;
}

/* A page written after clear_refs must show bit 55 in pagemap. */
static const char *probe_soft_dirty(void)
{
	volatile char *p =
	    mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int cfd = open("/proc/self/clear_refs", O_WRONLY);
	int pfd = open("/proc/self/pagemap", O_RDONLY);
	const char *err = "not in this kernel (userfaultfd write-protect is used instead)";
	uint64_t ent = 0;

	p[0] = 1;
	if (cfd >= 0 && pfd >= 0 && write(cfd, "4", 1) == 1) {
		p[0] = 2;
		if (pread(pfd, &ent, sizeof(ent), (uintptr_t)p / PAGE_SIZE * 8) == sizeof(ent) &&
		    (ent >> 55 & 1))
			err = NULL;
	}
	if (cfd >= 0)
		close(cfd);
	if (pfd >= 0)
		close(pfd);
	munmap((void *)p, PAGE_SIZE);
	return err;
}

static const char *probe_pidfd_getfd(void)
{
	int pidfd = syscall(__NR_pidfd_open, getpid(), 0), fd;

	if (pidfd < 0)
		return "pidfd_open unavailable";
	fd = syscall(__NR_pidfd_getfd, pidfd, 0, 0);
	close(pidfd);
	if (fd < 0)
		return "pidfd_getfd unavailable";
	close(fd);
	return NULL;
}

static const char *probe_kcmp(void)
{
	return syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 1, 1) == 0
		   ? NULL
		   : "kcmp unavailable (CONFIG_KCMP)";
}

static const char *probe_rseq(void)
{
	struct stasis_rseq_configuration c;
	pid_t pid = spawn_sleeper();
	const char *err = NULL;

	if (ptrace(PTRACE_SEIZE, pid, 0, 0) || ptrace(PTRACE_INTERRUPT, pid, 0, 0) ||
	    waitpid(pid, NULL, __WALL) < 0)
		err = "cannot trace";
	else if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof(c), &c) < 0)
		err = "PTRACE_GET_RSEQ_CONFIGURATION unavailable";
	reap(pid);
	return err;
}

static const char *probe_mm_map(void)
{
	unsigned int size = 0;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0))
		return "PR_SET_MM_MAP unavailable (CONFIG_CHECKPOINT_RESTORE)";
	return NULL;
}

static const char *probe_map_vdso(void)
{
	/* EEXIST (a vDSO is mapped) proves the call exists */
	if (syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, 0x10000000UL) == 0 || errno == EEXIST)
		return NULL;
	return "arch_prctl(ARCH_MAP_VDSO_64) unavailable";
}

static const char *probe_process_vm(void)
{
	char a = 1, b = 0;
	struct iovec l = { &b, 1 }, r = { &a, 1 };

	return process_vm_readv(getpid(), &l, 1, &r, 1, 0) == 1 && b == 1
		   ? NULL
		   : "process_vm_readv unavailable";
}

/* inotify watches restored at their wd (CONFIG_CHECKPOINT_RESTORE) */
static const char *probe_inotify_nextwd(void)
{
	int fd = inotify_init1(IN_CLOEXEC), wd;

	if (fd < 0)
		return "inotify_init1 failed";
	wd = ioctl(fd, _IOW('I', 0, int), 5) ? -1 : inotify_add_watch(fd, "/", IN_ATTRIB);
	close(fd);
	return wd == 5 ? NULL : "INOTIFY_IOC_SETNEXTWD does not work";
}

/* POSIX timers restored with their ids (PR_TIMER_CREATE_RESTORE_IDS, get) */
static const char *probe_timer_ids(void)
{
	return prctl(77, 2, 0, 0, 0) < 0 ? "PR_TIMER_CREATE_RESTORE_IDS unknown" : NULL;
}

/* a call with a relative timeout resumed with the time it had left (deadline.c) */
static const char *probe_time_left(void)
{
	struct timespec ts = { 30, 0 }, nap = { 0, 20000000 };
	const char *err = NULL;
	struct rtask t;
	pid_t pid = fork();

	if (pid == 0) {
		for (;;)
			syscall(__NR_nanosleep, &ts, NULL);
	}
	if (pid < 0)
		return "fork failed";
	nanosleep(&nap, NULL); /* let it reach its sleep */
	if (rtask_freeze(&t, pid)) {
		reap(pid);
		return "PTRACE_SEIZE/INTERRUPT failed";
	}
	if (!t.deadline_mono)
		err = access("/proc/timer_list", R_OK)
			  ? "/proc/timer_list not readable, nor the sleeper's last run "
			    "(/proc/PID/sched): timed calls get EINTR"
			  : "the sleeper's timer not found in /proc/timer_list";
	else if (access("/proc/timer_list", R_OK))
		ok_note = "from the sleeper's last run (/proc/PID/sched) plus its timeout: "
			  "/proc/timer_list is root's";
	ptrace(PTRACE_DETACH, pid, 0, 0);
	reap(pid);
	return err;
}

/* established TCP connections saved and rebuilt (--tcp-established) */
static const char *probe_tcp_repair(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1, r;

	if (fd < 0)
		return "cannot create a TCP socket";
	r = setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on));
	close(fd);
	return r ? "TCP_REPAIR refused (needs CAP_NET_ADMIN)" : NULL;
}

/*
 * ping sockets can be restored: the restorer's group (root's 0, a normal
 * user's own) in net.ipv4.ping_group_range
 */
static const char *probe_ping_group(void)
{
	static char why[96];
	char *s = read_file("/proc/sys/net/ipv4/ping_group_range", NULL);
	long lo = 1, hi = 0, gid = (long)getegid();

	if (s)
		sscanf(s, "%ld %ld", &lo, &hi);
	free(s);
	if (lo <= gid && hi >= gid)
		return NULL;
	snprintf(why, sizeof(why), "group %ld is not in net.ipv4.ping_group_range", gid);
	return why;
}

/*
 * /proc/PID/map_files: how the dump reaches the file behind each mapping.
 * The kernel lets only a holder of CAP_CHECKPOINT_RESTORE (or
 * CAP_SYS_ADMIN) in the initial user namespace follow it: root in a user
 * namespace of its own is not enough.
 */
static const char *probe_map_files(void)
{
	char maps[256], path[96];
	unsigned long start, end, ino = 0;
	struct stat st;
	FILE *f;

	/* the first mapping of a file (a sanitizer's build starts with anonymous ones) */
	f = fopen("/proc/self/maps", "r");
	while (f && !ino && fgets(maps, sizeof(maps), f))
		if (sscanf(maps, "%lx-%lx %*s %*s %*s %lu", &start, &end, &ino) != 3)
			ino = 0;
	if (f)
		fclose(f);
	if (!ino)
		return "cannot read /proc/self/maps";
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", start, end);
	if (stat(path, &st))
		return errno == EPERM ? "closed to us (needs CAP_CHECKPOINT_RESTORE in the initial "
					"user namespace): mapped files are found by path, device "
					"and inode; shared anonymous memory and mapped deleted "
					"files no fd holds are refused"
				      : "cannot follow /proc/self/map_files";
	return NULL;
}

static const struct probe probes[] = {
	{ "ptrace seize, interrupt and remote syscalls", true, probe_ptrace },
	{ "Yama ptrace restrictions", true, probe_yama },
	{ "clone3 with set_tid (restore at the same PID)", true, probe_clone3_set_tid },
	{ "process_vm_readv (memory dump)", true, probe_process_vm },
	{ "pidfd_getfd (fd inspection)", true, probe_pidfd_getfd },
	{ "kcmp (shared open files)", true, probe_kcmp },
	{ "PR_SET_MM_MAP (mm fields)", true, probe_mm_map },
	{ "/proc/PID/map_files (files behind mappings)", false, probe_map_files },
	{ "arch_prctl(ARCH_MAP_VDSO_64)", true, probe_map_vdso },
	{ "PTRACE_GET_RSEQ_CONFIGURATION", true, probe_rseq },
	{ "PAGEMAP_SCAN ioctl (fast memory scan)", false, probe_pagemap_scan },
	{ "userfaultfd write-protect, async mode", false, probe_uffd_wp_async },
	{ "soft-dirty page tracking", false, probe_soft_dirty },
	{ "inotify watch ids (INOTIFY_IOC_SETNEXTWD)", false, probe_inotify_nextwd },
	{ "POSIX timer ids (PR_TIMER_CREATE_RESTORE_IDS)", false, probe_timer_ids },
	{ "TCP repair mode (--tcp-established)", false, probe_tcp_repair },
	{ "time left of timed calls", false, probe_time_left },
	{ "nftables network lock (--network-lock nftables)", false, netlock_probe },
	{ "ICMP ping sockets (restore makes them)", false, probe_ping_group },
};

int cmd_check(void)
{
	bool unpriv = unprivileged();
	struct utsname u;
	size_t i;
	int missing = 0;

	uname(&u);
	printf("stasis %s on Linux %s (%s)\n", STASIS_VERSION, u.release, u.machine);
	if (unpriv)
		printf("note: as a normal user (uid %u): your own processes only; restore goes "
		       "into a new user and PID namespace by itself (see docs/user-guide.md, "
		       "\"As a normal user\")\n",
		       (unsigned int)geteuid());
	for (i = 0; i < ARRAY_SIZE(probes); i++) {
		const char *why, *note;
		bool required = probes[i].required;

		ok_note = NULL;
		why = probes[i].run();
		note = why ? why : ok_note;
		printf("  %-48s %s%s%s\n", probes[i].name,
		       why ? (required ? "MISSING" : "no") : "ok", note ? ": " : "",
		       note ? note : "");
		if (why && required)
			missing++;
	}
	if (missing) {
		printf("%d required feature(s) missing: stasis cannot work here\n", missing);
		return -1;
	}
	printf("all required features present\n");
	return 0;
}
