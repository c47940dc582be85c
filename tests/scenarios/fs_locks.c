/*
 * fs_locks: file locks of every kind, held by a parent and its child.
 *
 *   fd 5   WORKDIR/flock   flock(LOCK_EX); the child inherits the same
 *                          open file description (and so shares the lock)
 *   fd 6   WORKDIR/posix   POSIX write lock on bytes 0-99 and read lock from
 *                          200 to the end, owned by the parent; the child
 *                          holds its own write lock on bytes 150-159
 *   fd 7   WORKDIR/ofd     OFD write lock on bytes 10-19
 *
 * Check: a checker process forked now cannot take any of them: flock()
 * on a new open of "flock" would block, F_GETLK on "posix" names the
 * parent or the child as the owners of their ranges (and lets a read lock
 * through beyond 200), F_OFD_GETLK on "ofd" finds the write lock.
 */
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "scenario.h"

static pid_t kid;

static int lock_at(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, cmd, &fl);
}

/* Who holds [start, start+len) against a lock of 'type' (0: nobody). */
static int holder(int fd, int cmd, short type, off_t start, off_t len, pid_t *pid)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, cmd, &fl))
		return -1;
	*pid = fl.l_pid;
	return fl.l_type != F_UNLCK;
}

/* In a fresh process: exit status says which lock is missing. */
static void __attribute__((noreturn)) checker(pid_t parent)
{
	int f = open("flock", O_RDWR), p = open("posix", O_RDWR), o = open("ofd", O_RDWR);
	pid_t who;

	if (f < 0 || p < 0 || o < 0)
		_exit(10);
	if (flock(f, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		_exit(11);
	if (holder(p, F_GETLK, F_RDLCK, 0, 100, &who) != 1 || who != parent)
		_exit(12);
	if (holder(p, F_GETLK, F_WRLCK, 150, 10, &who) != 1 || who != kid)
		_exit(13);
	if (holder(p, F_GETLK, F_WRLCK, 300, 10, &who) != 1 || who != parent)
		_exit(14);
	if (holder(p, F_GETLK, F_RDLCK, 300, 10, &who) != 0)
		_exit(15);
	if (holder(p, F_GETLK, F_WRLCK, 100, 50, &who) != 0)
		_exit(16);
	if (holder(o, F_OFD_GETLK, F_RDLCK, 15, 1, &who) != 1)
		_exit(17);
	if (holder(o, F_OFD_GETLK, F_WRLCK, 20, 10, &who) != 0)
		_exit(18);
	_exit(0);
}

static void verify(void)
{
	static const char *const why[] = {
		[10] = "cannot open the files",
		[11] = "the flock lock is gone",
		[12] = "the parent's POSIX write lock 0-99 is gone",
		[13] = "the child's POSIX lock 150-159 is gone",
		[14] = "the parent's POSIX read lock from 200 is gone",
		[15] = "the POSIX read lock became a write lock",
		[16] = "a POSIX lock appeared on 100-149",
		[17] = "the OFD lock is gone",
		[18] = "the OFD lock grew",
	};
	pid_t me = getpid(), c = fork();
	int status;

	if (c == 0)
		checker(me);
	SCN_CHECK(c > 0, "fork: %s", strerror(errno));
	SCN_CHECK(waitpid(c, &status, 0) == c, "waitpid");
	SCN_CHECK(WIFEXITED(status), "the checker died");
	SCN_CHECK(WEXITSTATUS(status) == 0, "%s",
		  WEXITSTATUS(status) < 19 && why[WEXITSTATUS(status)] ? why[WEXITSTATUS(status)]
								       : "checker failed");
}

static void at(int fd, const char *path)
{
	int t = open(path, O_RDWR | O_CREAT, 0644);

	if (t < 0 || dup2(t, fd) < 0 || ftruncate(fd, 1000))
		scn_fail("open %s: %s", path, strerror(errno));
	close(t);
}

int main(int argc, char **argv)
{
	char pids[32];
	int p[2];

	scn_init(argc, argv, 0);
	at(5, "flock");
	at(6, "posix");
	at(7, "ofd");
	if (flock(5, LOCK_EX) || lock_at(6, F_SETLK, F_WRLCK, 0, 100) ||
	    lock_at(6, F_SETLK, F_RDLCK, 200, 0) || lock_at(7, F_OFD_SETLK, F_WRLCK, 10, 10))
		scn_fail("lock: %s", strerror(errno));
	if (pipe(p))
		scn_fail("pipe");
	kid = fork();
	if (kid == 0) {
		char b = 0;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(7);
		if (lock_at(6, F_SETLK, F_WRLCK, 150, 10))
			_exit(2);
		close(p[0]);
		if (write(p[1], &b, 1) != 1)
			_exit(2);
		close(p[1]);
		for (;;)
			pause();
	}
	if (kid < 0)
		scn_fail("fork: %s", strerror(errno));
	close(p[1]);
	if (read(p[0], pids, 1) != 1)
		scn_fail("the child could not lock");
	close(p[0]);
	snprintf(pids, sizeof(pids), "%d\n", (int)kid);
	scn_write_file("pids", pids);
	scn_ready_then_wait();
	verify();
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	scn_pass();
}
