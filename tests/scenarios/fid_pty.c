/*
 * fid_pty: a pseudo-terminal pair whose slave node was given an owner and
 * a mode (as grantpt() or a terminal emulator does): /dev/pts/N owned by
 * 1234:5 (when run as root) with mode 0604.
 *
 * The check: the slave node still has that owner and mode, and a byte
 * written to the master reaches the slave.
 */
#include <sys/stat.h>

#include "scenario.h"

int main(int argc, char **argv)
{
	struct stat want, st;
	char name[64], c;
	int m, s;

	scn_init(argc, argv, 1);
	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || unlockpt(m) || ptsname_r(m, name, sizeof(name))) {
		scn_log("setup: pty: %s", strerror(errno));
		return 2;
	}
	s = open(name, O_RDWR | O_NOCTTY);
	if (s < 0 || (getuid() == 0 && fchown(s, 1234, 5)) || fchmod(s, 0604) || fstat(s, &want)) {
		scn_log("setup: %s: %s", name, strerror(errno));
		return 2;
	}
	scn_ready_then_wait();

	SCN_CHECK(!stat(name, &st), "%s: %s", name, strerror(errno));
	SCN_CHECK(st.st_mode == want.st_mode && st.st_uid == want.st_uid &&
		      st.st_gid == want.st_gid,
		  "%s: mode %o owner %u:%u, was %o %u:%u", name, st.st_mode, st.st_uid, st.st_gid,
		  want.st_mode, want.st_uid, want.st_gid);
	SCN_CHECK(write(m, "x\n", 2) == 2 && read(s, &c, 1) == 1 && c == 'x',
		  "a byte typed into the master did not reach the slave");
	scn_pass();
}
