/*
 * fs_ghost: a file deleted while open and mapped.
 *
 *   fd 5   WORKDIR/ghost, O_RDWR, 10000 bytes + a 64 KiB hole + 100 bytes,
 *          mode 0640, offset 1234; then unlinked
 *   fd 6   the same inode, a second open file description, O_RDONLY,
 *          offset 77
 *   fd 7   dup of fd 5 (shares its offset)
 *   a MAP_SHARED mapping of its first page
 *
 * Check: fd 5 still names "WORKDIR/ghost (deleted)", the file has no
 * link, size, mode, offsets and contents are the same, fds 5 and 7 share
 * one offset and 6 does not, the mapping and the file are one inode (a
 * write through the fd shows in the mapping).
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "scenario.h"

#define HEAD	10000
#define TAIL_AT (HEAD + (64 << 10))
#define TAIL	100

static volatile unsigned char *map;

static unsigned char byte(size_t i)
{
	return (unsigned char)(scn_hash(i) >> 11);
}

static void verify(void)
{
	unsigned char buf[HEAD];
	char link[PATH_MAX + 32], want[PATH_MAX + 32];
	struct stat st;
	ssize_t n;
	size_t i;

	n = readlink("/proc/self/fd/5", link, sizeof(link) - 1);
	SCN_CHECK(n > 0, "readlink: %s", strerror(errno));
	link[n] = '\0';
	snprintf(want, sizeof(want), "%s/ghost (deleted)", scn_dir);
	SCN_CHECK(!strcmp(link, want), "fd 5 names %s", link);
	SCN_CHECK(fstat(5, &st) == 0, "fstat");
	SCN_CHECK(st.st_nlink == 0, "the file has %lu links", (unsigned long)st.st_nlink);
	SCN_CHECK(st.st_size == TAIL_AT + TAIL, "size %lld", (long long)st.st_size);
	SCN_CHECK((st.st_mode & 07777) == 0640, "mode %o", st.st_mode & 07777);
	SCN_CHECK(lseek(5, 0, SEEK_CUR) == 1234, "fd 5 offset");
	SCN_CHECK(lseek(6, 0, SEEK_CUR) == 77, "fd 6 offset");
	SCN_CHECK((fcntl(6, F_GETFL) & O_ACCMODE) == O_RDONLY, "fd 6 access mode");
	SCN_CHECK(pread(6, buf, HEAD, 0) == HEAD, "pread");
	for (i = 0; i < HEAD; i++)
		SCN_CHECK(buf[i] == byte(i), "byte %zu changed", i);
	SCN_CHECK(pread(6, buf, TAIL, TAIL_AT) == TAIL, "pread tail");
	for (i = 0; i < TAIL; i++)
		SCN_CHECK(buf[i] == byte(i + 7777), "tail byte %zu changed", i);
	SCN_CHECK(pread(6, buf, 4096, HEAD + 8192) == 4096, "pread hole");
	for (i = 0; i < 4096; i++)
		SCN_CHECK(buf[i] == 0, "the hole holds data");
	SCN_CHECK(lseek(7, 4321, SEEK_SET) == 4321 && lseek(5, 0, SEEK_CUR) == 4321,
		  "fds 5 and 7 do not share an offset");
	SCN_CHECK(lseek(6, 0, SEEK_CUR) == 77, "fd 6 moved with fd 7");
	for (i = 0; i < 4096; i++)
		SCN_CHECK(map[i] == byte(i), "mapped byte %zu changed", i);
	SCN_CHECK(pwrite(5, "Z", 1, 10) == 1, "pwrite");
	SCN_CHECK(map[10] == 'Z', "the mapping is not the file");
}

int main(int argc, char **argv)
{
	unsigned char buf[HEAD];
	size_t i;
	int fd;

	scn_init(argc, argv, 0);
	for (i = 0; i < HEAD; i++)
		buf[i] = byte(i);
	fd = open("ghost", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || dup2(fd, 5) < 0 || pwrite(5, buf, HEAD, 0) != HEAD)
		scn_fail("create: %s", strerror(errno));
	close(fd);
	for (i = 0; i < TAIL; i++)
		buf[i] = byte(i + 7777);
	if (pwrite(5, buf, TAIL, TAIL_AT) != TAIL || fchmod(5, 0640))
		scn_fail("fill: %s", strerror(errno));
	fd = open("ghost", O_RDONLY);
	if (fd < 0 || dup2(fd, 6) < 0 || dup2(5, 7) < 0)
		scn_fail("open: %s", strerror(errno));
	close(fd);
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 5, 0);
	if (map == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	if (unlink("ghost"))
		scn_fail("unlink: %s", strerror(errno));
	lseek(5, 1234, SEEK_SET);
	lseek(6, 77, SEEK_SET);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
