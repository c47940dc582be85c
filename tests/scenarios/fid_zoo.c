// SPDX-License-Identifier: MIT
/*
 * fid_zoo: one small case of issue 10's list per run, chosen by FID_ZOO:
 *
 *   chroot     the process lives in a chroot (its work directory);
 *   deldir     its cwd and an fd are a directory deleted since;
 *   deldirfd   only an fd is a directory deleted since;
 *   procfd     fds on /proc files of the tree: a child's stat, its own
 *              cgroup file;
 *   proccwd    its cwd is the /proc directory of its child;
 *   beyondeof  a shared file mapping whose second page lies beyond the
 *              file's end since it was truncated (reading it faults);
 *   unixdel    a bound unix socket whose file was deleted;
 *   unixfifo   a bound unix socket whose file was replaced by a FIFO;
 *   unixzero   zero-length messages queued on a datagram and a
 *              seqpacket socketpair;
 *   strict     a second thread in seccomp strict mode (the dump must
 *              refuse without harming it);
 *   tsync      a seccomp filter on both threads (installed with TSYNC);
 *   zsegv      a child killed by SIGSEGV, a zombie not reaped yet;
 *   memfdexec  an executable in a memfd, sealed, that the check execs.
 *
 * The check asks for each that what it built is still there and works.
 */
#include <dirent.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "scenario.h"

static const char *mode;
static pid_t kid;
static int fds[4], strict_pipe[2];
static char *map;
static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
	siglongjmp(fault_jmp, sig);
}

/* The signal reading *p raises, 0 if none. */
static int read_faults(volatile char *p)
{
	struct sigaction sa = { .sa_handler = on_fault }, old_bus, old_segv;
	int sig;

	sigaction(SIGBUS, &sa, &old_bus);
	sigaction(SIGSEGV, &sa, &old_segv);
	sig = sigsetjmp(fault_jmp, 1);
	if (!sig)
		(void)*p;
	sigaction(SIGBUS, &old_bus, NULL);
	sigaction(SIGSEGV, &old_segv, NULL);
	return sig;
}
static volatile int strict_alive;

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (scn_read_small(path, buf, sizeof(buf)))
		return '?';
	p = strrchr(buf, ')');
	return p ? p[2] : '?';
}

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void setup_fail(const char *what)
{
	scn_log("setup: %s: %s", what, strerror(errno));
	exit(2);
}

static int bind_unix(int type, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, type, 0);

	strcpy(a.sun_path, path);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)))
		setup_fail("bind");
	return s;
}

static void *strict_main(void *arg)
{
	char c;

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT))
		return NULL;
	strict_alive = 1;
	/* read, write and exit only from here on */
	while (read(strict_pipe[0], &c, 1) == 1)
		if (write(strict_pipe[1] + 0, &c, 0) < 0)
			break;
	syscall(SYS_exit, 0);
	return NULL;
}

static void *idle_main(void *arg)
{
	for (;;)
		pause();
	return NULL;
}

/* Fails getpriority(2) with ENOTTY. */
static void tsync_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpriority, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOTTY),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog p = { ARRAY_LEN(f), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &p))
		setup_fail("seccomp");
}

static void setup(void)
{
	char path[64];
	pthread_t th;
	int p[2];

	if (!strcmp(mode, "chroot")) {
		if (chroot(".") || chdir("/"))
			setup_fail("chroot");
		scn_dir[0] = 0; /* WORKDIR is / now */
	} else if (!strcmp(mode, "deldir")) {
		if (mkdir("gone", 0700) || (fds[0] = open("gone", O_RDONLY | O_DIRECTORY)) < 0 ||
		    chdir("gone") || rmdir("../gone"))
			setup_fail("deldir");
	} else if (!strcmp(mode, "deldirfd")) {
		if (mkdir("gone", 0700) || (fds[0] = open("gone", O_RDONLY | O_DIRECTORY)) < 0 ||
		    rmdir("gone"))
			setup_fail("deldirfd");
	} else if (!strcmp(mode, "beyondeof")) {
		fds[0] = open("eof", O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fds[0] < 0 || ftruncate(fds[0], 2 * 4096))
			setup_fail("eof file");
		map = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
		if (map == MAP_FAILED)
			setup_fail("mmap");
		memset(map, 'e', 2 * 4096);
		if (ftruncate(fds[0], 4096))
			setup_fail("truncate");
	} else if (!strcmp(mode, "procfd") || !strcmp(mode, "proccwd")) {
		kid = fork();
		if (kid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		snprintf(path, sizeof(path), "/proc/%d", kid);
		if (!strcmp(mode, "proccwd")) {
			if (chdir(path))
				setup_fail("chdir /proc");
			return;
		}
		snprintf(path, sizeof(path), "/proc/%d/stat", kid);
		if ((fds[0] = open(path, O_RDONLY)) < 0 ||
		    (fds[1] = open("/proc/self/cgroup", O_RDONLY)) < 0)
			setup_fail("open /proc");
	} else if (!strcmp(mode, "unixdel")) {
		fds[0] = bind_unix(SOCK_DGRAM, "del.sock");
		if (unlink("del.sock"))
			setup_fail("unlink");
	} else if (!strcmp(mode, "unixfifo")) {
		fds[0] = bind_unix(SOCK_DGRAM, "fifo.sock");
		if (unlink("fifo.sock") || mkfifo("fifo.sock", 0600))
			setup_fail("mkfifo");
	} else if (!strcmp(mode, "unixzero")) {
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) ||
		    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds + 2) || send(fds[0], "", 0, 0) ||
		    send(fds[2], "", 0, 0) || send(fds[2], "x", 1, 0) != 1)
			setup_fail("zero-length messages");
	} else if (!strcmp(mode, "strict")) {
		if (pipe(strict_pipe) || pthread_create(&th, NULL, strict_main, NULL))
			setup_fail("strict thread");
		while (!strict_alive)
			scn_msleep(1);
	} else if (!strcmp(mode, "tsync")) {
		if (pthread_create(&th, NULL, idle_main, NULL))
			setup_fail("thread");
		tsync_filter();
	} else if (!strcmp(mode, "zsegv")) {
		kid = fork();
		if (kid == 0) {
			signal(SIGSEGV, SIG_DFL);
			raise(SIGSEGV);
			_exit(1);
		}
		while (proc_state(kid) != 'Z')
			scn_msleep(1);
	} else if (!strcmp(mode, "memfdexec")) {
		int src = open("/bin/true", O_RDONLY);
		char buf[65536];
		ssize_t n;

		fds[0] = memfd_create("exe", MFD_ALLOW_SEALING | MFD_CLOEXEC);
		if (src < 0 || fds[0] < 0)
			setup_fail("memfd");
		while ((n = read(src, buf, sizeof(buf))) > 0)
			if (write(fds[0], buf, n) != n)
				setup_fail("memfd write");
		close(src);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
		/* exec needs no writable open of it: keep a read-only one */
		p[0] = open(path, O_RDONLY | O_CLOEXEC);
		if (p[0] < 0)
			setup_fail("reopen");
		close(fds[0]);
		fds[0] = p[0];
	} else {
		scn_log("setup: unknown FID_ZOO %s", mode);
		exit(2);
	}
}

static int run_memfd(int fd)
{
	char *args[] = { "true", NULL }, *env[] = { NULL };
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		syscall(SYS_execveat, fd, "", args, env, AT_EMPTY_PATH);
		_exit(errno == ETXTBSY ? 91 : 92);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void check(void)
{
	char buf[256], path[256];
	struct stat st;
	int r;

	if (!strcmp(mode, "chroot")) {
		SCN_CHECK(stat("/ready", &st) == 0, "/ready is not in our root");
		SCN_CHECK(stat("/proc/self", &st) != 0, "the root is the host's");
	} else if (!strcmp(mode, "deldir")) {
		SCN_CHECK(getcwd(buf, sizeof(buf)) == NULL && errno == ENOENT,
			  "getcwd gives %s (%s), not ENOENT", buf, strerror(errno));
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
		r = readlink(path, buf, sizeof(buf) - 1);
		buf[r > 0 ? r : 0] = 0;
		SCN_CHECK(strstr(buf, "gone (deleted)"), "fd %d is %s", fds[0], buf);
		SCN_CHECK(fstatat(fds[0], ".", &st, 0) == 0 && st.st_nlink == 0,
			  "fd %d is not a deleted directory", fds[0]);
	} else if (!strcmp(mode, "beyondeof")) {
		SCN_CHECK(map[0] == 'e' && map[4095] == 'e', "the first page lost its bytes");
		SCN_CHECK(read_faults(map + 4096) == SIGBUS,
			  "the page beyond the end does not raise SIGBUS");
	} else if (!strcmp(mode, "procfd")) {
		r = pread(fds[0], buf, sizeof(buf) - 1, 0);
		SCN_CHECK(r > 0 && atoi(buf) == kid, "fd %d reads no stat of pid %d", fds[0], kid);
		SCN_CHECK(pread(fds[1], buf, sizeof(buf), 0) > 0, "fd %d reads no cgroup", fds[1]);
	} else if (!strcmp(mode, "unixdel") || !strcmp(mode, "unixfifo")) {
		struct sockaddr_un a;
		socklen_t len = sizeof(a);

		SCN_CHECK(getsockname(fds[0], (struct sockaddr *)&a, &len) == 0 &&
			      !strcmp(a.sun_path + (a.sun_path[0] == '/' ? strlen(scn_dir) + 1 : 0),
				      mode[4] == 'd' ? "del.sock" : "fifo.sock"),
			  "the socket is bound to another name");
		r = lstat(mode[4] == 'd' ? "del.sock" : "fifo.sock", &st);
		SCN_CHECK(mode[4] == 'd' ? r < 0 : r == 0 && S_ISFIFO(st.st_mode),
			  "the path is not as it was (%s)", r ? "missing" : "there");
	} else if (!strcmp(mode, "unixzero")) {
		SCN_CHECK(recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT) == 0,
			  "no zero-length datagram");
		SCN_CHECK(recv(fds[3], buf, sizeof(buf), MSG_DONTWAIT) == 0,
			  "no zero-length seqpacket message");
		SCN_CHECK(recv(fds[3], buf, sizeof(buf), MSG_DONTWAIT) == 1 && buf[0] == 'x',
			  "the seqpacket message after it is lost");
	} else if (!strcmp(mode, "strict")) {
		SCN_CHECK(write(strict_pipe[1], "x", 1) == 1, "the strict thread's pipe is gone");
		scn_msleep(20);
		snprintf(path, sizeof(path), "/proc/self/task");
		SCN_CHECK(count_dir(path) == 2, "the strict thread is gone");
	} else if (!strcmp(mode, "tsync")) {
		errno = 0;
		SCN_CHECK(getpriority(PRIO_PROCESS, 0) == -1 && errno == ENOTTY,
			  "the main thread's filter is gone");
	} else if (!strcmp(mode, "zsegv")) {
		SCN_CHECK(waitpid(kid, &r, 0) == kid && WIFSIGNALED(r) && WTERMSIG(r) == SIGSEGV,
			  "the zombie's status is %#x, not SIGSEGV", r);
	} else if (!strcmp(mode, "memfdexec")) {
		r = run_memfd(fds[0]);
		SCN_CHECK(r == 0, "exec of the memfd: %s",
			  r == 91   ? "ETXTBSY"
			  : r == 92 ? "failed"
				    : "exit status");
	}
}

int main(int argc, char **argv)
{
	scn_init(argc, argv, 1);
	mode = getenv("FID_ZOO");
	if (!mode)
		mode = "deldir";
	setup();
	scn_ready_then_wait();
	check();
	scn_pass();
}
