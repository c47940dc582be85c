/*
 * fid_mm: mapping attributes that /proc/PID/smaps shows must come back.
 * Six anonymous mappings, each with one madvise hint (MADV_SEQUENTIAL,
 * MADV_RANDOM, MADV_DONTFORK, MADV_WIPEONFORK, MADV_HUGEPAGE,
 * MADV_NOHUGEPAGE) and a pattern; a MAP_DROPPABLE mapping (when the kernel
 * has it); a private mapping of WORKDIR/rwfile opened read-write (its fd
 * closed since).  With FID_MM_SEAL=1 one more mapping is sealed with
 * mseal(), which stasis refuses at dump.
 *
 * The check: each mapping still shows its VmFlags code in smaps and holds
 * its pattern; the private file mapping's map_files link says it came
 * from a read-write open (mode u+w) and still reads the file.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "scenario.h"

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif

#define LEN (4UL << 20) /* room for a huge page */

static const struct hint {
	int advice;
	const char *code;
} hints[] = {
	{ MADV_SEQUENTIAL, "sr" }, { MADV_RANDOM, "rr" },   { MADV_DONTFORK, "dc" },
	{ MADV_WIPEONFORK, "wf" }, { MADV_HUGEPAGE, "hg" }, { MADV_NOHUGEPAGE, "nh" },
};

#define NHINTS (sizeof(hints) / sizeof(hints[0]))

static char *maps[NHINTS];
static char *droppable, *rwmap;

/* Does the smaps entry of the mapping at addr list VmFlags code? */
static int has_vmflag(const void *addr, const char *code)
{
	char line[512], want[32];
	int in = 0, found = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, want, strlen(want)))
			in = 1;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			char *p = strstr(line + 8, code);

			found = p && p[-1] == ' ' && (p[2] == ' ' || p[2] == '\n');
			break;
		}
	}
	fclose(f);
	return found;
}

static void fill(char *p, size_t len, uint64_t seed)
{
	size_t i;

	for (i = 0; i < len; i += 4096)
		*(uint64_t *)(p + i) = scn_hash(seed + i);
}

static const char *check_fill(const char *p, size_t len, uint64_t seed)
{
	size_t i;

	for (i = 0; i < len; i += 4096)
		if (*(const uint64_t *)(p + i) != scn_hash(seed + i))
			return "pattern lost";
	return NULL;
}

static void setup(void)
{
	static const char text[] = "read-write file behind a private mapping";
	size_t i;
	int fd;

	for (i = 0; i < NHINTS; i++) {
		maps[i] =
		    mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (maps[i] == MAP_FAILED || madvise(maps[i], LEN, hints[i].advice)) {
			scn_log("setup: madvise %d: %s", hints[i].advice, strerror(errno));
			exit(2);
		}
		fill(maps[i], LEN, i);
	}
	droppable =
	    mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	if (droppable == MAP_FAILED)
		droppable = NULL; /* an older kernel */
	fd = open("rwfile", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, sizeof(text)) != sizeof(text)) {
		scn_log("setup: rwfile: %s", strerror(errno));
		exit(2);
	}
	rwmap = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (rwmap == MAP_FAILED) {
		scn_log("setup: mmap rwfile: %s", strerror(errno));
		exit(2);
	}
	if (getenv("FID_MM_SEAL")) {
		char *s = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (s == MAP_FAILED || syscall(462 /* mseal */, s, 4096, 0)) {
			scn_log("setup: mseal: %s", strerror(errno));
			exit(3);
		}
	}
}

int main(int argc, char **argv)
{
	char path[128];
	struct stat st;
	size_t i;

	scn_init(argc, argv, 1);
	setup();
	scn_ready_then_wait();

	for (i = 0; i < NHINTS; i++) {
		SCN_CHECK(has_vmflag(maps[i], hints[i].code) == 1,
			  "mapping %p (madvise %d) lost VmFlags %s", maps[i], hints[i].advice,
			  hints[i].code);
		SCN_CHECK(!check_fill(maps[i], LEN, i), "mapping %p (madvise %d): pattern lost",
			  maps[i], hints[i].advice);
	}
	if (droppable)
		SCN_CHECK(has_vmflag(droppable, "dp") == 1, "MAP_DROPPABLE mapping %p lost dp",
			  droppable);
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)rwmap,
		 (unsigned long)rwmap + 4096);
	SCN_CHECK(!lstat(path, &st), "%s: %s", path, strerror(errno));
	SCN_CHECK(st.st_mode & S_IWUSR,
		  "the private mapping of rwfile comes from a read-only open");
	SCN_CHECK(!strcmp(rwmap, "read-write file behind a private mapping"),
		  "the private mapping of rwfile reads '%.40s'", rwmap);
	scn_pass();
}
