/*
 * fid_ghost: deleted files that must come back as they were.
 *
 *   fd A  WORKDIR/suid, owned by 1234:5678 (as root) with mode 06755 and
 *         fixed times, then unlinked
 *   fd B  WORKDIR/taken, unlinked, and a new file created under the same
 *         name, holding "new file"
 *
 * Check: A still has its set-id bits, owner and times; B's link still
 * reads "WORKDIR/taken (deleted)" and holds its bytes; WORKDIR/taken is
 * still the new file with its contents.
 */
#include <sys/stat.h>

#include "scenario.h"

static int make_file(const char *name, const char *text)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		scn_log("setup: %s: %s", name, strerror(errno));
		exit(2);
	}
	return fd;
}

static const char *same_text(int fd, const char *text)
{
	static char buf[64];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return strerror(errno);
	buf[n] = '\0';
	return strcmp(buf, text) ? buf : NULL;
}

int main(int argc, char **argv)
{
	struct timespec ts[2] = { { 1200000000, 111 }, { 1300000000, 222 } };
	char link[PATH_MAX], want[PATH_MAX + 16], path[64];
	struct stat a0, st;
	const char *why;
	int a, b, n;
	ssize_t len;

	scn_init(argc, argv, 1);
	a = make_file("suid", "set-id file");
	if ((getuid() == 0 && fchown(a, 1234, 5678)) || fchmod(a, 06755) || futimens(a, ts) ||
	    fstat(a, &a0) || unlink("suid")) {
		scn_log("setup: suid: %s", strerror(errno));
		return 2;
	}
	b = make_file("taken", "deleted file");
	if (unlink("taken"))
		return 2;
	n = make_file("taken", "new file");
	close(n);
	scn_ready_then_wait();

	SCN_CHECK(!fstat(a, &st), "fstat suid: %s", strerror(errno));
	SCN_CHECK(st.st_mode == a0.st_mode && st.st_uid == a0.st_uid && st.st_gid == a0.st_gid,
		  "deleted suid: mode %o owner %u:%u, was %o %u:%u", st.st_mode, st.st_uid,
		  st.st_gid, a0.st_mode, a0.st_uid, a0.st_gid);
	SCN_CHECK(st.st_mtim.tv_sec == ts[1].tv_sec && st.st_mtim.tv_nsec == ts[1].tv_nsec &&
		      st.st_atim.tv_sec == ts[0].tv_sec,
		  "deleted suid: mtime %ld.%09ld atime %ld", st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		  st.st_atim.tv_sec);
	why = same_text(a, "set-id file");
	SCN_CHECK(!why, "deleted suid holds '%s'", why);

	snprintf(path, sizeof(path), "/proc/self/fd/%d", b);
	len = readlink(path, link, sizeof(link) - 1);
	SCN_CHECK(len > 0, "readlink %s: %s", path, strerror(errno));
	link[len] = '\0';
	snprintf(want, sizeof(want), "%s/taken (deleted)", scn_dir);
	SCN_CHECK(!strcmp(link, want), "the deleted file's fd names '%s', not '%s'", link, want);
	why = same_text(b, "deleted file");
	SCN_CHECK(!why, "the deleted file holds '%s'", why);
	n = open("taken", O_RDONLY);
	SCN_CHECK(n >= 0, "WORKDIR/taken: %s", strerror(errno));
	why = same_text(n, "new file");
	SCN_CHECK(!why, "WORKDIR/taken holds '%s'", why);
	scn_pass();
}
