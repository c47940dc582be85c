/*
 * fs_exe: a program whose executable was deleted while it runs (as an
 * upgrade does).  The scenario copies its own binary to WORKDIR/exe-copy,
 * execs the copy (same PID) and the copy unlinks itself.
 *
 * Check: /proc/self/exe still names "WORKDIR/exe-copy (deleted)", has no
 * link left and the same size as the binary it was copied from; the text
 * of the program still runs (this check is that code).
 */
#include <sys/stat.h>

#include "scenario.h"

static off_t orig_size;

static void copy_self(const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open("/proc/self/exe", O_RDONLY), out;

	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (in < 0 || out < 0)
		scn_fail("copy: %s", strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			scn_fail("copy: %s", strerror(errno));
	close(in);
	close(out);
}

static void verify(void)
{
	char link[PATH_MAX + 32], want[PATH_MAX + 32];
	struct stat st;
	ssize_t n;

	n = readlink("/proc/self/exe", link, sizeof(link) - 1);
	SCN_CHECK(n > 0, "readlink exe: %s", strerror(errno));
	link[n] = '\0';
	snprintf(want, sizeof(want), "%s/exe-copy (deleted)", scn_dir);
	SCN_CHECK(!strcmp(link, want), "exe is %s", link);
	SCN_CHECK(stat("/proc/self/exe", &st) == 0, "stat exe: %s", strerror(errno));
	SCN_CHECK(st.st_nlink == 0, "the executable has %lu links", (unsigned long)st.st_nlink);
	SCN_CHECK(st.st_size == orig_size, "the executable has %lld bytes, not %lld",
		  (long long)st.st_size, (long long)orig_size);
}

int main(int argc, char **argv)
{
	char path[PATH_MAX + 16];
	struct stat st;

	if (argc == 2) {
		/* first run: become the copy */
		if (!realpath(argv[1], path))
			return 2;
		strcat(path, "/exe-copy");
		scn_init(argc, argv, 0);
		copy_self(path);
		execl(path, path, argv[1], "copied", (char *)NULL);
		scn_fail("exec: %s", strerror(errno));
	}
	scn_init(2, argv, 0);
	if (stat("exe-copy", &st) || unlink("exe-copy"))
		scn_fail("unlink: %s", strerror(errno));
	orig_size = st.st_size;
	scn_ready_then_wait();
	verify();
	scn_pass();
}
