/*
 * Fuzz target for the image reader and loader: everything restore does
 * with an image before it forks anything (image_load, the host and tree
 * checks, files_plan, the per-task plan of fds and trampoline, the page
 * checksums), `stasis show` in both forms, and image_free.
 *
 * Every record is checksummed, so a mutated input would almost always stop
 * at the first hash.  Each input is therefore run twice: as it is (the
 * checksum paths), and "resealed": every header and payload hash, the
 * prologue hash and the trailer recomputed, so the decoders and the loader
 * see the mutated contents.  The replay driver (replay.c) runs the same
 * function, so whatever the fuzzer finds replays with a plain build.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "res.h"
#include "restore.h"
#include "stasis.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VERIFY_BUF (64 * 1024)

static char fuzz_dir[PATH_MAX];
static int img_fd = -1;

/* Directories of fuzz processes that died without cleaning up (crashes). */
static void remove_stale(const char *tmp)
{
	struct dirent *de;
	DIR *d = opendir(tmp);
	char path[2 * PATH_MAX];

	while (d && (de = readdir(d))) {
		int pid;

		if (sscanf(de->d_name, "stasis-fuzz.%d", &pid) != 1 || pid <= 0 ||
		    kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", tmp, de->d_name, IMG_FILE_NAME);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s", tmp, de->d_name);
		rmdir(path);
	}
	if (d)
		closedir(d);
}

/*
 * The image lives in TMPDIR (/tmp), not /dev/shm: the suite's fanotify
 * scenario watches the /dev/shm filesystem and would see our writes.
 */
static int fuzz_setup(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	char path[2 * PATH_MAX];

	remove_stale(tmp);
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/stasis-fuzz.%d", tmp, getpid());
	if (mkdir(fuzz_dir, 0700) && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", fuzz_dir, IMG_FILE_NAME);
	img_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (img_fd < 0 || null < 0)
		return -1;
	log_fd_set(null);	   /* one line per refused input: not worth printing */
	dup2(null, STDOUT_FILENO); /* show's output */
	return 0;
}

static void fuzz_cleanup(void)
{
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir, IMG_FILE_NAME);
	unlink(path);
	rmdir(fuzz_dir);
}

static void put_image(const void *buf, size_t len)
{
	if (ftruncate(img_fd, 0) || pwrite(img_fd, buf, len, 0) != (ssize_t)len)
		abort();
}

/* What restore's prepare() does per task before anything is forked. */
static int plan_tasks(struct image *img)
{
	struct restore_opts o = { .dir = fuzz_dir };
	size_t i;

	for (i = 0; i < img->ntasks; i++) {
		struct rst_ctx c = { .opts = &o, .img = img, .t = &img->tasks[i], .svc_base = 3 };
		int ret;

		if (c.t->te->zombie)
			continue;
		ret = res_stage(restore_prepare, &c);
		free(c.premapped);
		free(c.filled);
		if (ret)
			return -1;
	}
	return 0;
}

static void load_and_plan(void)
{
	struct restore_opts o = { .dir = fuzz_dir, .detached = true, .shell_job = true };
	static void *buf;
	static XXH3_state_t *st;
	struct image img;

	if (!buf) {
		buf = xmalloc(VERIFY_BUF);
		st = XXH3_createState();
	}
	if (image_load(fuzz_dir, &img))
		return;
	/* what restore checks and plans before it forks anything (res_table order) */
	if (!tree_build(&img) && !res_stage(restore_check, &img, &o))
		plan_tasks(&img);
	image_verify_pages(&img, buf, VERIFY_BUF, st);
	image_free(&img);
}

static void run_one(void)
{
	load_and_plan();
	cmd_show(fuzz_dir, false);
	cmd_show(fuzz_dir, true);
	fflush(stdout);
}

/* ------------------------------------------------------------- reseal */

struct reseal {
	uint8_t *buf;
	size_t len, cap;
	XXH64_state_t *stream;
	uint64_t nrec, page_bytes;
};

static void reseal_put(struct reseal *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->buf = xrealloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void reseal_record(struct reseal *s, struct img_rec_hdr h, const void *payload)
{
	if (!(h.flags & IMG_RF_HASH_NEXT))
		h.hash = XXH64(payload, h.len, 0);
	h.hdr_hash = XXH32(&h, offsetof(struct img_rec_hdr, hdr_hash), 0);
	if (h.type != IMG_TRAILER) {
		XXH64_update(s->stream, &h, sizeof(h));
		s->nrec++;
		if (h.type == IMG_PAGES)
			s->page_bytes += h.len;
	}
	reseal_put(s, &h, sizeof(h));
	reseal_put(s, payload, h.len);
}

static void reseal_trailer(struct reseal *s)
{
	ImageTrailer tr = IMAGE_TRAILER__INIT;
	struct img_rec_hdr h = { .type = IMG_TRAILER };
	uint8_t payload[64];

	tr.record_count = s->nrec;
	tr.stream_hash = XXH64_digest(s->stream);
	tr.page_bytes = s->page_bytes;
	h.len = image_trailer__pack(&tr, payload);
	reseal_record(s, h, payload);
}

/*
 * The input with every checksum made right: records up to the first
 * trailer (or the first that does not fit), then a fresh trailer.
 */
static void reseal(const uint8_t *in, size_t size, struct reseal *s)
{
	struct img_prologue pro;
	size_t off = sizeof(pro);

	memset(s, 0, sizeof(*s));
	s->stream = XXH64_createState();
	XXH64_reset(s->stream, 0);
	if (size < sizeof(pro))
		goto out;
	memcpy(&pro, in, sizeof(pro));
	pro.prologue_hash = XXH32(&pro, offsetof(struct img_prologue, prologue_hash), 0);
	reseal_put(s, &pro, sizeof(pro));
	while (off + sizeof(struct img_rec_hdr) <= size) {
		struct img_rec_hdr h;

		memcpy(&h, in + off, sizeof(h));
		off += sizeof(h);
		if (h.type == IMG_TRAILER || h.len > size - off)
			break;
		reseal_record(s, h, in + off);
		off += h.len;
	}
	reseal_trailer(s);
out:
	XXH64_freeState(s->stream);
}

/* FUZZ_RESEALED=FILE: keep the resealed input there (to look at it with show). */
static void keep_resealed(const char *path, const struct reseal *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd >= 0 && write_all(fd, s->buf, s->len) == 0)
		fprintf(stderr, "resealed input written to %s\n", path);
	if (fd >= 0)
		close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct reseal s;

	if (!ready) {
		if (fuzz_setup())
			abort();
		atexit(fuzz_cleanup);
		ready = true;
	}
	put_image(data, size);
	run_one();
	reseal(data, size, &s);
	if (s.len && getenv("FUZZ_RESEALED"))
		keep_resealed(getenv("FUZZ_RESEALED"), &s);
	if (s.len) {
		put_image(s.buf, s.len);
		run_one();
	}
	free(s.buf);
	return 0;
}
