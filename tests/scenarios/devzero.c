// SPDX-License-Identifier: MIT
/*
 * devzero - memory mapped from /dev/zero, the idiom from before
 * MAP_ANONYMOUS: a private map (anonymous memory that /proc names
 * "/dev/zero") of three pages, the first and last written, and a shared
 * one (a shmem object, "/dev/zero (deleted)") of two pages, both written.
 * Check: every page holds what was written, the untouched one is zero,
 * and both maps still take writes.
 */
#include <sys/mman.h>

#include "scenario.h"

#define PG 4096

static char *priv, *shared;

static void verify(void)
{
	SCN_CHECK(!strcmp(priv, "private 0") && !strcmp(priv + 2 * PG, "private 2"),
		  "the private /dev/zero map holds '%.16s' / '%.16s'", priv, priv + 2 * PG);
	SCN_CHECK(!priv[PG] && !memcmp(priv + PG, priv + PG + 1, PG - 1),
		  "the untouched page of the private map is not zero");
	SCN_CHECK(!strcmp(shared, "shared 0") && !strcmp(shared + PG, "shared 1"),
		  "the shared /dev/zero map holds '%.16s' / '%.16s'", shared, shared + PG);
	priv[1] = 'X';
	shared[1] = 'X';
}

int main(int argc, char **argv)
{
	int fd;

	scn_init(argc, argv, 1);
	fd = open("/dev/zero", O_RDWR);
	if (fd < 0)
		scn_fail("open /dev/zero: %s", strerror(errno));
	priv = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	shared = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		scn_fail("mmap /dev/zero: %s", strerror(errno));
	close(fd);
	strcpy(priv, "private 0");
	strcpy(priv + 2 * PG, "private 2");
	strcpy(shared, "shared 0");
	strcpy(shared + PG, "shared 1");
	scn_ready_then_wait();
	verify();
	scn_pass();
}
