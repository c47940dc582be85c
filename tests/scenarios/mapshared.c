// SPDX-License-Identifier: MIT
/*
 * mapshared - a 64 KiB file in WORKDIR mapped MAP_SHARED (the fd is closed
 * afterwards, only the mapping keeps the file); the first half is written
 * through the mapping.
 *
 * Check: the mapping still shows the first half (second half zero); data
 * written now through the mapping reaches the file (msync + pread), and
 * data written now to the file shows up in the mapping: it is really
 * shared with the file, not a private copy.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include "scenario.h"

#define SIZE	  (64 << 10)
#define HALF	  (SIZE / 2)
#define FILE_NAME "shared.dat"

static unsigned char old_byte(size_t i)
{
	return (unsigned char)(i * 13 + 1);
}

static unsigned char new_byte(size_t i)
{
	return (unsigned char)(scn_hash(i) >> 11);
}

int main(int argc, char **argv)
{
	static unsigned char buf[SIZE];
	volatile unsigned char *m;
	struct stat st;
	size_t i;
	int fd;

	scn_init(argc, argv, 1);
	fd = open(FILE_NAME, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, SIZE) < 0)
		scn_fail("create %s: %s", FILE_NAME, strerror(errno));
	m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	close(fd);
	for (i = 0; i < HALF; i++)
		m[i] = old_byte(i);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);

	/* the mapping still holds what was written before */
	for (i = 0; i < SIZE; i++)
		SCN_CHECK(m[i] == (i < HALF ? old_byte(i) : 0), "mapping byte %zu is %#x", i, m[i]);

	/* mapping -> file */
	for (i = HALF; i < SIZE; i++)
		m[i] = new_byte(i);
	SCN_CHECK(msync((void *)m, SIZE, MS_SYNC) == 0, "msync: %s", strerror(errno));
	fd = open(FILE_NAME, O_RDWR);
	SCN_CHECK(fd >= 0, "open %s: %s", FILE_NAME, strerror(errno));
	SCN_CHECK(fstat(fd, &st) == 0 && st.st_size == SIZE, "file size is %ld", (long)st.st_size);
	SCN_CHECK(pread(fd, buf, SIZE, 0) == SIZE, "pread: short read");
	for (i = 0; i < SIZE; i++)
		SCN_CHECK(buf[i] == (i < HALF ? old_byte(i) : new_byte(i)),
			  "file byte %zu is %#x, expected %#x (mapping not shared?)", i, buf[i],
			  i < HALF ? old_byte(i) : new_byte(i));

	/* file -> mapping */
	SCN_CHECK(pwrite(fd, "SHARED", 6, 100) == 6, "pwrite: %s", strerror(errno));
	SCN_CHECK(!memcmp((const void *)(m + 100), "SHARED", 6),
		  "a write to the file is not visible in the mapping");
	close(fd);
	scn_pass();
}
