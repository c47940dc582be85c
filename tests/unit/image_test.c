/*
 * Unit tests of the image container: round trip, page streaming and
 * alignment, and refusal of truncated, corrupt and newer images.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "util.h"
#include "header.pb-c.h"
#include "unit.h"

static char dir[] = "/tmp/stasis-image-test.XXXXXX";

static int write_image(void)
{
	ImageHeader h = IMAGE_HEADER__INIT;
	struct img_writer w;
	char page[PAGE_SIZE];

	h.arch = "x86_64";
	h.page_size = PAGE_SIZE;
	h.kernel_release = "test";
	h.tool_version = "test";
	h.root_pid = 42;
	if (img_writer_open(&w, dir) || img_write_msg(&w, IMG_HEADER, &h.base))
		return -1;
	memset(page, 0xab, sizeof(page));
	if (img_pages_begin(&w, 2 * PAGE_SIZE) || img_pages_feed(&w, page, PAGE_SIZE) ||
	    img_pages_feed(&w, page, PAGE_SIZE))
		return -1;
	struct page_sums sums = { 0 };

	if (img_pages_end(&w, &sums) || sums.n != 1)
		return -1;
	page_sums_free(&sums);
	return img_writer_commit(&w);
}

/* Returns the number of records read, or -1 when the reader refused. */
static int read_image(uint64_t *pages_off)
{
	struct img_reader r;
	struct img_rec_hdr h;
	int n = 0, ret;

	if (img_reader_open(&r, dir))
		return -1;
	while ((ret = img_next(&r, &h)) == 0) {
		void *buf;

		if (h.type == IMG_PAGES || h.type == IMG_PAD) {
			uint64_t off;

			if (img_skip_payload(&r, &h, &off)) {
				ret = -1;
				break;
			}
			if (h.type == IMG_PAGES && pages_off)
				*pages_off = off;
		} else if (img_read_payload(&r, &h, &buf)) {
			ret = -1;
			break;
		} else {
			free(buf);
		}
		n++;
	}
	img_reader_close(&r);
	return ret < 0 ? -1 : n;
}

static char *img_path(void)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, IMG_FILE_NAME);
	return p;
}

static void test_round_trip(void)
{
	uint64_t off = 1;

	CHECK(write_image() == 0, "write");
	CHECK(read_image(&off) == 4, "expected header, pad, pages and trailer");
	CHECK(off % PAGE_SIZE == 0, "page payload at %llu is not page aligned",
	      (unsigned long long)off);
	printf("  ok round trip, pages aligned\n");
}

static void test_truncated(void)
{
	struct stat st;

	CHECK(write_image() == 0, "write");
	stat(img_path(), &st);
	CHECK(truncate(img_path(), st.st_size - 10) == 0, "truncate");
	CHECK(read_image(NULL) < 0, "truncated image accepted");
	CHECK(write_image() == 0, "write");
	CHECK(truncate(img_path(), st.st_size / 2) == 0, "truncate");
	CHECK(read_image(NULL) < 0, "half image accepted");
	printf("  ok truncated images refused\n");
}

static void flip_byte(off_t at)
{
	int fd = open(img_path(), O_RDWR);
	unsigned char c;

	if (pread(fd, &c, 1, at) == 1) {
		c ^= 0x40;
		if (pwrite(fd, &c, 1, at) != 1)
			abort();
	}
	close(fd);
}

static void test_corrupt(void)
{
	CHECK(write_image() == 0, "write");
	flip_byte(16 + 32 + 3); /* inside the header record's payload */
	CHECK(read_image(NULL) < 0, "corrupt payload accepted");
	CHECK(write_image() == 0, "write");
	flip_byte(16 + 8); /* inside the first record header: its length */
	CHECK(read_image(NULL) < 0, "corrupt record header accepted");
	CHECK(write_image() == 0, "write");
	flip_byte(0);
	CHECK(read_image(NULL) < 0, "bad magic accepted");
	printf("  ok corrupt images refused\n");
}

static void test_newer_major(void)
{
	struct img_prologue pro;
	int fd;

	CHECK(write_image() == 0, "write");
	fd = open(img_path(), O_RDWR);
	CHECK(pread(fd, &pro, sizeof(pro), 0) == sizeof(pro), "read prologue");
	pro.major = IMG_VER_MAJOR + 1;
	pro.prologue_hash = XXH32(&pro, offsetof(struct img_prologue, prologue_hash), 0);
	CHECK(pwrite(fd, &pro, sizeof(pro), 0) == sizeof(pro), "write prologue");
	close(fd);
	CHECK(read_image(NULL) < 0, "newer major version accepted");
	printf("  ok newer format refused\n");
}

/* An image of the previous major format: refused with one clear line. */
static void test_older_major(void)
{
	char log_path[160], *log;
	struct img_prologue pro;
	int fd;

	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	CHECK(write_image() == 0, "write");
	fd = open(img_path(), O_RDWR);
	CHECK(pread(fd, &pro, sizeof(pro), 0) == sizeof(pro), "read prologue");
	pro.major = IMG_VER_MAJOR - 1;
	pro.prologue_hash = XXH32(&pro, offsetof(struct img_prologue, prologue_hash), 0);
	CHECK(pwrite(fd, &pro, sizeof(pro), 0) == sizeof(pro), "write prologue");
	close(fd);
	log_init(LOG_MSG, log_path);
	CHECK(read_image(NULL) < 0, "older major version accepted");
	log_init(LOG_MSG, "/dev/null");
	log = read_file_at(AT_FDCWD, log_path, NULL);
	CHECK(log && strstr(log, "no longer supported"), "no clear error for an old image: %s",
	      log ? log : "(no log)");
	free(log);
	unlink(log_path);
	printf("  ok older format refused\n");
}

int main(void)
{
	log_init(LOG_MSG, "/dev/null");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_round_trip();
	test_truncated();
	test_corrupt();
	test_newer_major();
	test_older_major();
	unlink(img_path());
	rmdir(dir);
	return failed ? 1 : 0;
}
