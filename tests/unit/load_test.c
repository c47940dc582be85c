/*
 * Unit tests of the loader's bounds (src/image/check.c, load.c, tree.c):
 * small images written with the image writer, each with one hostile value
 * (an fd of 2^31, a pagemap whose page count wraps, a parent cycle ...),
 * must be refused by image_load or tree_build with one "is corrupt" line,
 * at once; the same image without the fault loads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "stasis.h"
#include "util.h"

static int failed;
static char dir[] = "/tmp/stasis-load-test.XXXXXX";
static int log_mem;

enum fault {
	F_NONE,
	F_FD_HUGE,	  /* fd 2^31 */
	F_FILE_ID_HUGE,	  /* fd naming file 2^31 */
	F_PAGES_WRAP,	  /* nr_pages * 4096 wraps to the page data length */
	F_RUNS_TOO_MANY,  /* runs add up to more than nr_pages */
	F_RUN_OUTSIDE,	  /* a run beyond user space */
	F_VMA_INVERTED,	  /* a mapping that ends below its start */
	F_VMA_OVERLAP,	  /* two mappings overlap */
	F_PARENT_CYCLE,	  /* two tasks each other's parent */
	F_DUP_PID,	  /* two tasks with one pid */
	F_CORE_ELSEWHERE, /* a thread record after another task's record */
	F_PIECES_MORE,	  /* more page checksums than pieces */
	F_PIECES_HASH,	  /* the checksums' own checksum is wrong */
	F_NFAULTS
};

static const char *const fault_names[F_NFAULTS] = {
	"none",
	"fd 2^31",
	"file id 2^31",
	"page count wraps",
	"runs > pages",
	"run outside",
	"mapping inverted",
	"mappings overlap",
	"parent cycle",
	"pid twice",
	"thread record misplaced",
	"page checksums > pieces",
	"page checksums' checksum",
};

static int put_task(struct img_writer *w, uint32_t pid, uint32_t ppid, bool zombie)
{
	TaskEntry te = TASK_ENTRY__INIT;
	CredsEntry cr = CREDS_ENTRY__INIT;
	uint32_t tid = pid;

	te.pid = pid;
	te.ppid = ppid;
	te.pgid = te.sid = 100;
	te.comm = "t";
	te.cwd = te.root = "/";
	te.creds = &cr;
	te.n_threads = 1;
	te.threads = &tid;
	te.has_zombie = zombie;
	te.zombie = zombie;
	return img_write_msg(w, IMG_TASK, &te.base);
}

static int put_core(struct img_writer *w, uint32_t pid)
{
	ThreadCore c = THREAD_CORE__INIT;
	X86Regs regs = X86_REGS__INIT;

	c.pid = c.tid = pid;
	c.regs = &regs;
	return img_write_msg(w, IMG_THREAD_CORE, &c.base);
}

static int put_mm(struct img_writer *w, enum fault f)
{
	MmEntry mm = MM_ENTRY__INIT;
	VmaEntry v[2] = { VMA_ENTRY__INIT, VMA_ENTRY__INIT }, *vp[2] = { &v[0], &v[1] };

	mm.pid = 100;
	mm.n_vmas = 2;
	mm.vmas = vp;
	v[0].start = 0x400000;
	v[0].end = f == F_VMA_INVERTED ? 0x3000 : 0x402000;
	v[1].start = f == F_VMA_OVERLAP ? 0x401000 : 0x500000;
	v[1].end = 0x501000;
	v[0].kind = v[1].kind = VMA_KIND__VMA_ANON_PRIVATE;
	return img_write_msg(w, IMG_MM, &mm.base);
}

static int put_fd(struct img_writer *w, enum fault f)
{
	FileEntry fe = FILE_ENTRY__INIT;
	PathFileEntry reg = PATH_FILE_ENTRY__INIT;
	FdEntry fd = FD_ENTRY__INIT;

	fe.id = 1;
	fe.type = FILE_TYPE__FILE_REG;
	fe.path = "/dev/null";
	fe.kind_case = FILE_ENTRY__KIND_REG;
	fe.reg = &reg;
	fd.pid = 100;
	fd.fd = f == F_FD_HUGE ? 1U << 31 : 3;
	fd.file_id = f == F_FILE_ID_HUGE ? 1U << 31 : 1;
	return img_write_msg(w, IMG_FILE, &fe.base) || img_write_msg(w, IMG_FD, &fd.base);
}

static int put_pages(struct img_writer *w, enum fault f)
{
	static char page[PAGE_SIZE];
	PagemapEntry pm = PAGEMAP_ENTRY__INIT;
	PageRun run = PAGE_RUN__INIT, *runp = &run;
	struct page_sums sums = { 0 };
	uint64_t two[2] = { 0 };
	int ret;

	if (img_pages_begin(w, PAGE_SIZE) || img_pages_feed(w, page, PAGE_SIZE) ||
	    img_pages_end(w, &sums))
		return -1;
	pm.pid = 100;
	pm.chunk_hashes = f == F_PIECES_MORE ? two : sums.chunk;
	pm.n_chunk_hashes = f == F_PIECES_MORE ? 2 : sums.n;
	pm.has_chunk_shift = true;
	pm.chunk_shift = IMG_PAGES_CHUNK_SHIFT;
	pm.pages_hash = page_sums_digest(pm.chunk_hashes, pm.n_chunk_hashes) + (f == F_PIECES_HASH);
	pm.nr_pages = f == F_PAGES_WRAP ? (1ULL << 52) + 1 : 1;
	pm.n_runs = 1;
	pm.runs = &runp;
	run.vaddr = f == F_RUN_OUTSIDE ? 0x7ffffffff000ULL : 0x400000;
	run.nr_pages = f == F_RUNS_TOO_MANY ? 2 : 1;
	ret = img_write_msg(w, IMG_PAGEMAP, &pm.base);
	page_sums_free(&sums);
	return ret;
}

/* Root 100 with one thread, an fd and one page; zombies 200 and 300. */
static int write_image(enum fault f)
{
	ImageHeader h = IMAGE_HEADER__INIT;
	struct img_writer w;

	h.arch = "x86_64";
	h.page_size = PAGE_SIZE;
	h.kernel_release = h.tool_version = "test";
	h.root_pid = 100;
	if (img_writer_open(&w, dir) || img_write_msg(&w, IMG_HEADER, &h.base) ||
	    put_task(&w, 100, 1, false))
		goto err;
	if (f == F_CORE_ELSEWHERE && put_task(&w, 200, 100, true))
		goto err;
	if (put_core(&w, 100) || put_mm(&w, f) || put_fd(&w, f) || put_pages(&w, f))
		goto err;
	if (f == F_PARENT_CYCLE && (put_task(&w, 200, 300, true) || put_task(&w, 300, 200, true)))
		goto err;
	if (f == F_DUP_PID && (put_task(&w, 200, 100, true) || put_task(&w, 200, 100, true)))
		goto err;
	return img_writer_commit(&w);
err:
	img_writer_abort(&w);
	return -1;
}

/* Load (and build the tree of) the image; the log lines it printed. */
static int load(int *lines, char *first, size_t size)
{
	struct image img;
	char buf[4096];
	ssize_t n;
	int ret, i;

	ftruncate(log_mem, 0);
	lseek(log_mem, 0, SEEK_SET);
	ret = image_load(dir, &img);
	if (!ret) {
		ret = tree_build(&img);
		image_free(&img);
	}
	n = pread(log_mem, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	for (*lines = 0, i = 0; buf[i]; i++)
		*lines += buf[i] == '\n';
	snprintf(first, size, "%.*s", (int)strcspn(buf, "\n"), buf);
	return ret;
}

static void test_fault(enum fault f)
{
	char first[512];
	int lines;

	if (write_image(f)) {
		printf("  FAIL %s: cannot write the image\n", fault_names[f]);
		failed++;
		return;
	}
	if (f == F_NONE) {
		if (load(&lines, first, sizeof(first)) || lines) {
			printf("  FAIL the image without a fault is refused: %s\n", first);
			failed++;
			return;
		}
		printf("  ok the image without a fault loads\n");
		return;
	}
	if (!load(&lines, first, sizeof(first)) || lines != 1 || !strstr(first, "is corrupt")) {
		printf("  FAIL %s: %s (%d lines)\n", fault_names[f], lines ? first : "accepted",
		       lines);
		failed++;
		return;
	}
	printf("  ok %s refused: %s\n", fault_names[f], first + strlen("Error: "));
}

int main(void)
{
	char path[128];
	int f;

	log_mem = memfd_create("log", MFD_CLOEXEC);
	if (log_mem < 0 || !mkdtemp(dir)) {
		perror("setup");
		return 1;
	}
	log_init(LOG_ERR, NULL);
	log_fd_set(log_mem);
	for (f = 0; f < F_NFAULTS; f++)
		test_fault(f);
	snprintf(path, sizeof(path), "%s/%s", dir, IMG_FILE_NAME);
	unlink(path);
	rmdir(dir);
	return failed ? 1 : 0;
}
