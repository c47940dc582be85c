/*
 * fs_memfd: a sealed memfd shared by a parent and its child.
 *
 *   parent  fd 5: memfd "stasis-fs" (MFD_ALLOW_SEALING), 1 MiB with data at
 *           0-64 KiB and 512-516 KiB (a hole between), seals SHRINK|GROW,
 *           offset 1234; fd 6: the same inode, a second open file
 *           description (O_RDONLY through /proc/self/fd), offset 77; a
 *           MAP_PRIVATE mapping of it whose first page the parent changed;
 *           fd 8: another memfd, "stasis-fs-fd", never mapped, 5 bytes,
 *           O_WRONLY through /proc/self/fd, offset 3.
 *   child   no fd, a MAP_SHARED mapping of the memfd; it answers every
 *           request the parent writes at word 0 in word 1.
 *
 * Check: name, size, seals, offsets, access modes, contents (data and
 * hole), the private copy; then a request written by the parent through
 * its fd after restore is answered by the child through its mapping (one
 * inode again, not two copies).
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "scenario.h"

#define SIZE	 (1 << 20)
#define DATA1	 (64 << 10)
#define DATA2_AT (512 << 10)
#define DATA2	 (4 << 10)
#define SEALS	 (F_SEAL_SHRINK | F_SEAL_GROW)

static pid_t kid;
static volatile uint64_t *priv;

static uint64_t word(size_t i)
{
	return scn_hash(i * 7 + 3);
}

static void __attribute__((noreturn)) kid_loop(volatile uint64_t *m)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		if (m[1] != m[0])
			m[1] = m[0];
		scn_msleep(2);
	}
}

static void verify(void)
{
	uint64_t buf[DATA1 / 8], req = scn_hash(getpid()) | 1, got = 0;
	char link[256];
	struct stat st;
	ssize_t n;
	size_t i;
	int tries, fd;

	n = readlink("/proc/self/fd/5", link, sizeof(link) - 1);
	SCN_CHECK(n > 0, "readlink fd 5: %s", strerror(errno));
	link[n] = '\0';
	SCN_CHECK(!strcmp(link, "/memfd:stasis-fs (deleted)"), "fd 5 is %s", link);
	SCN_CHECK(fstat(5, &st) == 0 && st.st_size == SIZE, "size %lld", (long long)st.st_size);
	SCN_CHECK(fcntl(5, F_GET_SEALS) == SEALS, "seals %#x", fcntl(5, F_GET_SEALS));
	SCN_CHECK(ftruncate(5, SIZE * 2) < 0 && errno == EPERM, "F_SEAL_GROW lost");
	SCN_CHECK(lseek(5, 0, SEEK_CUR) == 1234, "fd 5 offset %lld",
		  (long long)lseek(5, 0, SEEK_CUR));
	SCN_CHECK(lseek(6, 0, SEEK_CUR) == 77, "fd 6 offset %lld",
		  (long long)lseek(6, 0, SEEK_CUR));
	SCN_CHECK((fcntl(5, F_GETFL) & O_ACCMODE) == O_RDWR, "fd 5 not O_RDWR");
	SCN_CHECK((fcntl(6, F_GETFL) & O_ACCMODE) == O_RDONLY, "fd 6 not O_RDONLY");
	SCN_CHECK(pread(6, buf, DATA1, 0) == DATA1, "pread: %s", strerror(errno));
	for (i = 2; i < DATA1 / 8; i++)
		SCN_CHECK(buf[i] == word(i), "memfd word %zu changed", i);
	SCN_CHECK(pread(6, buf, DATA2, DATA2_AT) == DATA2, "pread 2");
	for (i = 0; i < DATA2 / 8; i++)
		SCN_CHECK(buf[i] == word(i + 100000), "memfd word %zu of the second run changed",
			  i);
	SCN_CHECK(pread(6, buf, 4096, DATA1 + 4096) == 4096, "pread hole");
	for (i = 0; i < 512; i++)
		SCN_CHECK(buf[i] == 0, "the hole holds data");
	for (i = 0; i < 512; i++)
		SCN_CHECK(priv[i] == ~word(i), "private copy word %zu", i);
	SCN_CHECK(priv[600] == word(600), "private mapping second page");
	/* through our fd, answered through the child's mapping */
	SCN_CHECK(pwrite(5, &req, 8, 0) == 8, "pwrite");
	for (tries = 0; tries < 500; tries++) {
		SCN_CHECK(pread(5, &got, 8, 8) == 8, "pread answer");
		if (got == req)
			break;
		scn_msleep(2);
	}
	SCN_CHECK(got == req, "the child did not answer through the shared memfd");
	SCN_CHECK(priv[0] == ~word(0), "a private mapping saw a shared write");
	n = readlink("/proc/self/fd/8", link, sizeof(link) - 1);
	SCN_CHECK(n > 0, "readlink fd 8: %s", strerror(errno));
	link[n] = '\0';
	SCN_CHECK(!strcmp(link, "/memfd:stasis-fs-fd (deleted)"), "fd 8 is %s", link);
	SCN_CHECK((fcntl(8, F_GETFL) & O_ACCMODE) == O_WRONLY, "fd 8 not O_WRONLY");
	SCN_CHECK(lseek(8, 0, SEEK_CUR) == 3, "fd 8 offset");
	SCN_CHECK(fstat(8, &st) == 0 && st.st_size == 5, "fd 8 size");
	fd = open("/proc/self/fd/8", O_RDONLY);
	SCN_CHECK(fd >= 0 && read(fd, link, 5) == 5 && !memcmp(link, "hello", 5),
		  "the contents of the second memfd");
	close(fd);
}

int main(int argc, char **argv)
{
	volatile uint64_t *m;
	uint64_t buf[DATA1 / 8];
	char path[64], pids[32];
	size_t i;
	int fd;

	scn_init(argc, argv, 0);
	fd = memfd_create("stasis-fs", MFD_ALLOW_SEALING);
	if (fd < 0 || dup2(fd, 5) < 0)
		scn_fail("memfd_create: %s", strerror(errno));
	close(fd);
	for (i = 0; i < DATA1 / 8; i++)
		buf[i] = word(i);
	buf[0] = buf[1] = 7;
	if (ftruncate(5, SIZE) || pwrite(5, buf, DATA1, 0) != DATA1)
		scn_fail("fill: %s", strerror(errno));
	for (i = 0; i < DATA2 / 8; i++)
		buf[i] = word(i + 100000);
	if (pwrite(5, buf, DATA2, DATA2_AT) != DATA2)
		scn_fail("fill 2: %s", strerror(errno));
	m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, 5, 0);
	priv = mmap(NULL, 2 * 4096 * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE, 5, 0);
	if (m == MAP_FAILED || priv == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	for (i = 0; i < 512; i++)
		priv[i] = ~word(i);
	if (fcntl(5, F_ADD_SEALS, SEALS))
		scn_fail("F_ADD_SEALS: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/5");
	fd = open(path, O_RDONLY);
	if (fd < 0 || dup2(fd, 6) < 0)
		scn_fail("reopen: %s", strerror(errno));
	close(fd);
	lseek(5, 1234, SEEK_SET);
	lseek(6, 77, SEEK_SET);
	fd = memfd_create("stasis-fs-fd", 0);
	if (fd < 0 || write(fd, "hello", 5) != 5)
		scn_fail("second memfd: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	i = open(path, O_WRONLY);
	if ((int)i < 0 || dup2(i, 8) < 0)
		scn_fail("reopen of the second memfd: %s", strerror(errno));
	close(i);
	close(fd);
	lseek(8, 3, SEEK_SET);
	kid = fork();
	if (kid == 0) {
		close(5);
		close(6);
		close(8);
		munmap((void *)priv, 4 * 4096);
		kid_loop(m);
	}
	if (kid < 0)
		scn_fail("fork: %s", strerror(errno));
	munmap((void *)m, SIZE);
	snprintf(pids, sizeof(pids), "%d\n", (int)kid);
	scn_write_file("pids", pids);
	scn_ready_then_wait();
	verify();
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	scn_pass();
}
