// SPDX-License-Identifier: MIT
/*
 * files - a set of file descriptors at fixed numbers:
 *
 *   10  "data"       O_RDWR, offset 1234; dup'ed to 100 and 200 (shared offset)
 *   11  "data"       O_RDONLY, a second open file description, offset 77
 *   12  "append"     O_WRONLY | O_APPEND
 *   13  "cloexec"    O_RDONLY | O_CLOEXEC, offset 5
 *   14  WORKDIR      O_RDONLY | O_DIRECTORY
 *   15  /dev/null    O_WRONLY
 *   16  /dev/zero    O_RDONLY | O_NONBLOCK
 *   17  /dev/urandom O_RDONLY
 *
 * Check: offsets, access modes and status flags, FD_CLOEXEC only on 13,
 * the same files (inode) are open, 10/100/200 share one open file
 * description while 11 does not, O_APPEND still appends, file contents
 * are unchanged, the devices behave, and no other fd is open.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "scenario.h"

#define DATA_SIZE    4096
#define CLOEXEC_TEXT "cloexec file contents\n"

static const int expected_fds[] = { 0, 1, 2, 10, 11, 12, 13, 14, 15, 16, 17, 100, 200 };

static unsigned char data_byte(size_t i)
{
	return (unsigned char)(scn_hash(i) >> 17);
}

/* Open path and move the descriptor to number fd (with O_CLOEXEC if asked). */
static void open_at(int fd, const char *path, int flags, int cloexec)
{
	int tmp = open(path, flags, 0644);

	if (tmp < 0)
		scn_fail("open %s: %s", path, strerror(errno));
	if (dup3(tmp, fd, cloexec ? O_CLOEXEC : 0) < 0)
		scn_fail("dup3 %s -> %d: %s", path, fd, strerror(errno));
	close(tmp);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0)
		scn_fail("cannot create %s: %s", path, strerror(errno));
}

static off_t pos(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

static void check_fl(int fd, int want)
{
	int fl = fcntl(fd, F_GETFL);
	int mask = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECTORY;

	SCN_CHECK(fl >= 0, "F_GETFL fd %d: %s", fd, strerror(errno));
	SCN_CHECK((fl & mask) == want, "fd %d: status flags %#o, expected %#o", fd, fl & mask,
		  want);
}

static void check_same_file(int fd, const char *path)
{
	struct stat a, b;

	SCN_CHECK(fstat(fd, &a) == 0 && stat(path, &b) == 0, "stat fd %d / %s: %s", fd, path,
		  strerror(errno));
	SCN_CHECK(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "fd %d is not %s (ino %lu vs %lu)",
		  fd, path, (unsigned long)a.st_ino, (unsigned long)b.st_ino);
}

static void check_chr(int fd, unsigned int maj, unsigned int min)
{
	struct stat st;

	SCN_CHECK(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode), "fd %d: not a character device", fd);
	SCN_CHECK(major(st.st_rdev) == maj && minor(st.st_rdev) == min,
		  "fd %d: device %u:%u, expected %u:%u", fd, major(st.st_rdev), minor(st.st_rdev),
		  maj, min);
}

/* No fd may be open apart from the expected ones (e.g. leaked by a restorer). */
static void check_fd_set(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t i;
	int fd, ok;

	SCN_CHECK(d, "opendir /proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd == dirfd(d))
			continue;
		ok = 0;
		for (i = 0; i < sizeof(expected_fds) / sizeof(expected_fds[0]); i++)
			ok |= expected_fds[i] == fd;
		SCN_CHECK(ok, "unexpected fd %d is open", fd);
	}
	closedir(d);
	for (i = 0; i < sizeof(expected_fds) / sizeof(expected_fds[0]); i++)
		SCN_CHECK(fcntl(expected_fds[i], F_GETFD) >= 0, "fd %d is not open",
			  expected_fds[i]);
}

static void verify(void)
{
	unsigned char buf[DATA_SIZE], zero[DATA_SIZE];
	struct stat st, dst;
	size_t i;
	int fd, fdf, nonzero;

	/* offsets: 10/100/200 share 1234, the other description has 77 */
	SCN_CHECK(pos(10) == 1234 && pos(100) == 1234 && pos(200) == 1234,
		  "data offsets %ld/%ld/%ld, expected 1234", (long)pos(10), (long)pos(100),
		  (long)pos(200));
	SCN_CHECK(pos(11) == 77, "second data description offset %ld, expected 77", (long)pos(11));
	SCN_CHECK(pos(13) == 5, "cloexec file offset %ld, expected 5", (long)pos(13));

	/* access modes and status flags */
	check_fl(10, O_RDWR);
	check_fl(11, O_RDONLY);
	check_fl(12, O_WRONLY | O_APPEND);
	check_fl(13, O_RDONLY);
	check_fl(14, O_RDONLY | O_DIRECTORY);
	check_fl(15, O_WRONLY);
	check_fl(16, O_RDONLY | O_NONBLOCK);
	check_fl(17, O_RDONLY);
	check_fl(100, O_RDWR);
	check_fl(200, O_RDWR);

	/* FD_CLOEXEC only where it was set */
	for (i = 0; i < sizeof(expected_fds) / sizeof(expected_fds[0]); i++) {
		fd = expected_fds[i];
		fdf = fcntl(fd, F_GETFD);
		SCN_CHECK(fdf >= 0, "F_GETFD fd %d: %s", fd, strerror(errno));
		SCN_CHECK(!!(fdf & FD_CLOEXEC) == (fd == 13), "fd %d: FD_CLOEXEC is %s", fd,
			  (fdf & FD_CLOEXEC) ? "set" : "clear");
	}

	/* the same files are open */
	check_same_file(10, "data");
	check_same_file(11, "data");
	check_same_file(100, "data");
	check_same_file(200, "data");
	check_same_file(12, "append");
	check_same_file(13, "cloexec");
	check_same_file(14, scn_dir);
	SCN_CHECK(fstat(14, &dst) == 0 && S_ISDIR(dst.st_mode), "fd 14 is not a directory");
	check_chr(15, 1, 3);
	check_chr(16, 1, 5);
	check_chr(17, 1, 9);
	check_fd_set();

	/* 100 and 200 are one open file description; 11 is another one */
	SCN_CHECK(lseek(100, 2000, SEEK_SET) == 2000, "lseek fd 100: %s", strerror(errno));
	SCN_CHECK(pos(200) == 2000 && pos(10) == 2000,
		  "moving fd 100 did not move fd 200/10 (%ld/%ld)", (long)pos(200), (long)pos(10));
	SCN_CHECK(pos(11) == 77, "moving fd 100 moved fd 11 to %ld", (long)pos(11));

	/* contents unchanged; reading through the dir fd works */
	SCN_CHECK(pread(10, buf, DATA_SIZE, 0) == DATA_SIZE, "pread data: short");
	for (i = 0; i < DATA_SIZE; i++)
		SCN_CHECK(buf[i] == data_byte(i), "data byte %zu changed", i);
	SCN_CHECK(fstat(10, &st) == 0 && st.st_size == DATA_SIZE, "data size changed");
	SCN_CHECK(read(13, buf, sizeof(buf)) == (ssize_t)strlen(CLOEXEC_TEXT) - 5 &&
		      !memcmp(buf, CLOEXEC_TEXT + 5, strlen(CLOEXEC_TEXT) - 5),
		  "reading the cloexec file from offset 5 gave the wrong data");
	fd = openat(14, "data", O_RDONLY);
	SCN_CHECK(fd >= 0, "openat(dirfd, data): %s", strerror(errno));
	close(fd);

	/* O_APPEND still appends, wherever the offset is */
	lseek(12, 0, SEEK_SET);
	SCN_CHECK(write(12, "line2\n", 6) == 6, "write append: %s", strerror(errno));
	fd = open("append", O_RDONLY);
	SCN_CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 12 && !memcmp(buf, "line1\nline2\n", 12),
		  "append file does not hold line1+line2");
	close(fd);

	/* devices */
	memset(zero, 0, sizeof(zero));
	memset(buf, 0xff, sizeof(buf));
	SCN_CHECK(read(16, buf, sizeof(buf)) == sizeof(buf) && !memcmp(buf, zero, sizeof(buf)),
		  "/dev/zero did not read zeros");
	SCN_CHECK(write(15, "x", 1) == 1, "write /dev/null: %s", strerror(errno));
	memset(buf, 0, 64);
	SCN_CHECK(read(17, buf, 64) == 64, "read /dev/urandom: %s", strerror(errno));
	for (i = 0, nonzero = 0; i < 64; i++)
		nonzero |= buf[i];
	SCN_CHECK(nonzero, "/dev/urandom gave 64 zero bytes");
}

int main(int argc, char **argv)
{
	unsigned char data[DATA_SIZE];
	size_t i;

	scn_init(argc, argv, 1);
	for (i = 0; i < DATA_SIZE; i++)
		data[i] = data_byte(i);
	write_file("cloexec", CLOEXEC_TEXT, strlen(CLOEXEC_TEXT));

	open_at(10, "data", O_RDWR | O_CREAT | O_TRUNC, 0);
	if (write(10, data, DATA_SIZE) != DATA_SIZE)
		scn_fail("write data: %s", strerror(errno));
	lseek(10, 1234, SEEK_SET);
	dup2(10, 100);
	dup2(10, 200);
	open_at(11, "data", O_RDONLY, 0);
	lseek(11, 77, SEEK_SET);
	open_at(12, "append", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0);
	if (write(12, "line1\n", 6) != 6)
		scn_fail("write append: %s", strerror(errno));
	open_at(13, "cloexec", O_RDONLY, 1);
	lseek(13, 5, SEEK_SET);
	open_at(14, ".", O_RDONLY | O_DIRECTORY, 0);
	open_at(15, "/dev/null", O_WRONLY, 0);
	open_at(16, "/dev/zero", O_RDONLY | O_NONBLOCK, 0);
	open_at(17, "/dev/urandom", O_RDONLY, 0);
	scn_ready();

	while (!scn_check)
		scn_msleep(5);
	verify();
	scn_pass();
}
