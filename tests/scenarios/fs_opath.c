/*
 * fs_opath: O_PATH fds, next to a plain regular file.
 *
 *   fd 5   O_PATH on WORKDIR/data
 *   fd 6   O_PATH | O_DIRECTORY on WORKDIR, close-on-exec
 *   fd 7   O_PATH | O_NOFOLLOW on WORKDIR/link, a symlink to "data"
 *   fd 8   WORKDIR/data opened O_RDWR, offset 3 (restore checks its size)
 *
 * Check: each fd is O_PATH (8 is not), names the same inode (the symlink
 * itself for 7), and still works as a handle: fstatat(6, "data"),
 * readlinkat(7, ""), open of /proc/self/fd/5 for reading.
 */
#include <sys/stat.h>

#include "scenario.h"

static struct stat st_data, st_dir, st_link;

static void at(int fd, const char *path, int flags)
{
	int t = open(path, flags);

	if (t < 0 || dup2(t, fd) < 0)
		scn_fail("open %s: %s", path, strerror(errno));
	close(t);
}

static void same(int fd, const struct stat *want, const char *what)
{
	struct stat st;

	SCN_CHECK(fstat(fd, &st) == 0, "fstat %d: %s", fd, strerror(errno));
	SCN_CHECK(st.st_ino == want->st_ino && st.st_dev == want->st_dev, "fd %d is not %s", fd,
		  what);
	SCN_CHECK((st.st_mode & S_IFMT) == (want->st_mode & S_IFMT), "fd %d: type of %s", fd, what);
}

static void verify(void)
{
	char buf[64];
	struct stat st;
	ssize_t n;
	int fd;

	for (fd = 5; fd <= 7; fd++)
		SCN_CHECK(fcntl(fd, F_GETFL) & O_PATH, "fd %d lost O_PATH", fd);
	SCN_CHECK(!(fcntl(8, F_GETFL) & O_PATH), "fd 8 became O_PATH");
	SCN_CHECK(fcntl(6, F_GETFD) == FD_CLOEXEC, "fd 6 close-on-exec");
	SCN_CHECK(fcntl(5, F_GETFD) == 0, "fd 5 close-on-exec");
	same(5, &st_data, "data");
	same(6, &st_dir, "WORKDIR");
	same(7, &st_link, "the symlink");
	same(8, &st_data, "data");
	SCN_CHECK(lseek(8, 0, SEEK_CUR) == 3, "fd 8 offset");
	SCN_CHECK(fstatat(6, "data", &st, 0) == 0 && st.st_ino == st_data.st_ino,
		  "fstatat through the O_PATH directory");
	n = readlinkat(7, "", buf, sizeof(buf) - 1);
	SCN_CHECK(n == 4 && !memcmp(buf, "data", 4), "readlinkat through the O_PATH symlink");
	fd = open("/proc/self/fd/5", O_RDONLY);
	SCN_CHECK(fd >= 0, "reopen of the O_PATH fd: %s", strerror(errno));
	n = read(fd, buf, sizeof(buf));
	SCN_CHECK(n == 11 && !memcmp(buf, "opath data\n", 11), "data through the O_PATH fd");
	close(fd);
}

int main(int argc, char **argv)
{
	int fd;

	scn_init(argc, argv, 0);
	fd = open("data", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "opath data\n", 11) != 11)
		scn_fail("data: %s", strerror(errno));
	close(fd);
	unlink("link");
	if (symlink("data", "link"))
		scn_fail("symlink: %s", strerror(errno));
	at(5, "data", O_PATH);
	at(6, ".", O_PATH | O_DIRECTORY);
	fcntl(6, F_SETFD, FD_CLOEXEC);
	at(7, "link", O_PATH | O_NOFOLLOW);
	at(8, "data", O_RDWR);
	lseek(8, 3, SEEK_SET);
	if (stat("data", &st_data) || stat(".", &st_dir) || lstat("link", &st_link))
		scn_fail("stat: %s", strerror(errno));
	scn_ready_then_wait();
	verify();
	scn_pass();
}
