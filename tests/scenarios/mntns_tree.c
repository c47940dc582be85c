// SPDX-License-Identifier: MIT
/*
 * mntns_tree - a tree in a PID and a mount namespace of its own, as from
 * `unshare --fork --pid --mount` (every mount private), with mounts of its
 * own in WORKDIR:
 *
 *   t/     a tmpfs (size=4m, mode=0750) holding a file with text, a
 *          directory with a file mode 0604 and a symlink, a hard link,
 *          and A.cnt, which A writes through an fd it holds
 *   ro/    the same tmpfs's directory d bound read-only and nosuid
 *   bnd/   a bind of the host directory WORKDIR/src (holding "host")
 *   file   a bind of the host file WORKDIR/src/f over WORKDIR/file
 *
 *   launcher   clone(CLONE_NEWPID | CLONE_NEWNS), waits (outside the tree)
 *    +- I      PID 1, makes the mounts, checks
 *        +- A  counts into t/A.cnt every 5 ms (fd opened once)
 *
 * MNTNS_MODE=rich adds: a tmpfs p1 (noatime, nodev, noexec) made shared,
 * p2 a bind of it (its peer), p3 a bind made its slave, u an unbindable
 * tmpfs, ov a bind of src with a tmpfs over it, pts a devpts of its own,
 * pr a proc with hidepid=invisible, mq an mqueue, cg a read-only cgroup2, olay an overlay of src
 * with an upper and a work directory on the host (WORKDIR/up, WORKDIR/work), a mount below p1 that
 * propagated to p2 and p3. MNTNS_MODE=pty holds a pty pair of a devpts of its own at pts (refused).
 * MNTNS_MODE=ramfs adds a ramfs at x/ (a type stasis does not recreate),
 * MNTNS_MODE=lost a bind at z/ of a directory of a tmpfs since unmounted
 * (a source that is nowhere to bind from): the dump must refuse both.
 *
 * Check (in I): the files of the tmpfs have their text, modes and link;
 * A's counter grows in the tmpfs; bnd/ and file show the host's bytes;
 * ro/ is read-only; the host's WORKDIR/t is still an empty directory.
 */
#include "scenario.h"

#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void count_into(const char *file)
{
	char line[64];
	unsigned long n = 0;
	int fd, len;

	fd = open(file, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		_exit(1);
	for (;;) {
		usleep(5000);
		n++;
		len = snprintf(line, sizeof(line), "%020lu %020lu\n", n, n);
		if (pwrite(fd, line, len, 0) != len)
			_exit(1);
	}
}

static int read_cnt(const char *file, unsigned long *n)
{
	unsigned long again;
	char buf[128];
	int i;

	for (i = 0; i < 100; i++) {
		if (scn_read_small(file, buf, sizeof(buf)) >= 0 &&
		    sscanf(buf, "%lu %lu", n, &again) == 2 && again == *n)
			return 0;
		usleep(1000);
	}
	return -1;
}

static int must(int r, const char *what)
{
	if (r) {
		scn_log("%s: %s", what, strerror(errno));
		exit(2);
	}
	return 0;
}

static void make_mounts(void)
{
	const char *mode = getenv("MNTNS_MODE");
	int fd;

	must(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "private /");
	must(mount("scn-tmp", "t", "tmpfs", 0, "size=4m,mode=0750"), "mount t");
	fd = open("t/text", O_WRONLY | O_CREAT | O_TRUNC, 0640);
	must(fd < 0 || write(fd, "tmpfs text\n", 11) != 11 || close(fd), "t/text");
	must(mkdir("t/d", 0711), "t/d");
	fd = open("t/d/f", O_WRONLY | O_CREAT | O_TRUNC, 0604);
	must(fd < 0 || write(fd, "deep\n", 5) != 5 || close(fd), "t/d/f");
	must(chmod("t/d/f", 0604), "chmod t/d/f");
	must(symlink("d/f", "t/link"), "t/link");
	must(link("t/text", "t/hard"), "t/hard");
	must(mount("t/d", "ro", NULL, MS_BIND, NULL), "bind ro");
	must(mount(NULL, "ro", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL),
	     "remount ro");
	must(mount("src", "bnd", NULL, MS_BIND, NULL), "bind bnd");
	must(mount("src/f", "file", NULL, MS_BIND, NULL), "bind file");
	if (mode && !strcmp(mode, "rich")) {
		must(mount("scn-p1", "p1", "tmpfs", MS_NOATIME | MS_NODEV | MS_NOEXEC, "size=1m"),
		     "mount p1");
		must(mount(NULL, "p1", NULL, MS_SHARED, NULL), "share p1");
		must(mkdir("p1/sub", 0755), "p1/sub");
		must(mount("p1", "p2", NULL, MS_BIND, NULL), "bind p2");
		must(mount("p1", "p3", NULL, MS_BIND, NULL), "bind p3");
		must(mount(NULL, "p3", NULL, MS_SLAVE, NULL), "slave p3");
		must(mount("scn-sub", "p1/sub", "tmpfs", 0, "size=64k"), "mount p1/sub");
		must(mount("scn-u", "u", "tmpfs", 0, "mode=0700"), "mount u");
		must(mount(NULL, "u", NULL, MS_UNBINDABLE, NULL), "unbindable u");
		must(mount("src", "ov", NULL, MS_BIND, NULL), "bind ov");
		must(mount("scn-ov", "ov", "tmpfs", 0, "size=64k"), "mount over ov");
		must(mount("devpts", "pts", "devpts", 0, "newinstance,ptmxmode=0666,mode=620"),
		     "mount pts");
		must(mount("proc", "pr", "proc", MS_NOSUID, "hidepid=invisible"), "mount pr");
		must(mount("mqueue", "mq", "mqueue", MS_NODEV, NULL), "mount mq");
		must(mount("cgroup2", "cg", "cgroup2", MS_RDONLY, NULL), "mount cg");
		{
			char opts[3 * PATH_MAX + 64];

			snprintf(opts, sizeof(opts),
				 "lowerdir=%s/src,upperdir=%s/up,workdir=%s/work", scn_dir, scn_dir,
				 scn_dir);
			must(mount("scn-olay", "olay", "overlay", 0, opts), "mount olay");
		}
	}
	if (mode && !strcmp(mode, "pty")) {
		int m;

		must(mount("devpts", "pts", "devpts", 0, "newinstance,ptmxmode=0666,mode=620"),
		     "mount pts");
		m = open("pts/ptmx", O_RDWR | O_NOCTTY);
		must(m < 0 || unlockpt(m) || ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY) < 0,
		     "open a pty");
	}
	if (mode && !strcmp(mode, "ramfs"))
		must(mount("scn-ram", "x", "ramfs", 0, NULL), "mount x");
	if (mode && !strcmp(mode, "lost")) {
		must(mount("scn-gone", "y", "tmpfs", 0, NULL), "mount y");
		must(mkdir("y/sub", 0755), "y/sub");
		must(mount("y/sub", "z", NULL, MS_BIND, NULL), "bind z");
		must(umount("y"), "umount y");
	}
}

static int has(const char *path, const char *text)
{
	char buf[256];

	return scn_read_small(path, buf, sizeof(buf)) >= 0 && !strcmp(buf, text);
}

static void __attribute__((noreturn)) init_main(void)
{
	unsigned long n1, n2;
	struct stat st, hs;
	pid_t a;
	int i, fd;

	setsid();
	scn_pid = getpid();
	scn_proc_view = 1;
	make_mounts();
	a = fork();
	if (a == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		count_into("t/A.cnt");
	}
	for (i = 0; i < 300 && read_cnt("t/A.cnt", &n1); i++)
		usleep(10000);
	/* I holds a file of the tmpfs open too */
	fd = open("t/text", O_RDONLY);
	SCN_CHECK(fd >= 0, "cannot open t/text");
	scn_ready();
	while (!scn_check)
		pause();
	SCN_CHECK(!read_cnt("t/A.cnt", &n1), "no counter");
	usleep(100000);
	SCN_CHECK(!read_cnt("t/A.cnt", &n2) && n2 > n1, "the counter stopped (%lu)", n1);
	SCN_CHECK(has("t/text", "tmpfs text") && has("t/hard", "tmpfs text"), "t/text lost");
	SCN_CHECK(has("t/link", "deep") && has("ro/f", "deep"), "t/d/f lost");
	SCN_CHECK(!stat("t/d/f", &st) && (st.st_mode & 07777) == 0604, "t/d/f mode %o",
		  st.st_mode & 07777);
	SCN_CHECK(!stat("t/text", &st) && !stat("t/hard", &hs) && st.st_ino == hs.st_ino &&
		      st.st_nlink == 2,
		  "t/hard is not a hard link of t/text");
	SCN_CHECK(!stat("t", &st) && (st.st_mode & 07777) == 0750, "t mode %o", st.st_mode & 07777);
	SCN_CHECK(has("bnd/f", "host") && has("file", "host"), "the host bind mounts lost");
	SCN_CHECK(open("ro/new", O_WRONLY | O_CREAT, 0600) < 0 && errno == EROFS,
		  "ro/ is writable");
	{
		char buf[64];

		SCN_CHECK(pread(fd, buf, 11, 0) == 11 && !memcmp(buf, "tmpfs text\n", 11),
			  "the held fd of t/text reads other bytes");
	}
	SCN_CHECK(waitpid(-1, NULL, WNOHANG) == 0, "a child of init has exited");
	scn_pass();
}

int main(int argc, char **argv)
{
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	} args = { .flags = CLONE_NEWPID | CLONE_NEWNS, .exit_signal = SIGCHLD };
	pid_t init;
	int fd;

	scn_init(argc, argv, 0);
	mkdir("t", 0755);
	mkdir("ro", 0755);
	mkdir("bnd", 0755);
	mkdir("src", 0755);
	mkdir("x", 0755);
	mkdir("p1", 0755);
	mkdir("p2", 0755);
	mkdir("p3", 0755);
	mkdir("u", 0755);
	mkdir("ov", 0755);
	mkdir("pts", 0755);
	mkdir("pr", 0755);
	mkdir("olay", 0755);
	mkdir("mq", 0755);
	mkdir("cg", 0755);
	mkdir("up", 0755);
	mkdir("work", 0755);
	mkdir("y", 0755);
	mkdir("z", 0755);
	fd = open("src/f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "host\n", 5) != 5 || close(fd))
		return 2;
	fd = open("file", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || close(fd))
		return 2;
	init = syscall(SYS_clone3, &args, sizeof(args));
	if (init < 0) {
		scn_log("cannot create the namespaces: %s", strerror(errno));
		return 2;
	}
	if (init == 0)
		init_main();
	while (waitpid(init, NULL, 0) < 0 && errno == EINTR)
		;
	return 0;
}
