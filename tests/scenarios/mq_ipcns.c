/*
 * mq_ipcns: POSIX message queues of an IPC namespace of the tree's own
 * (unshare(CLONE_NEWIPC) at start, fs/mqueue/msg_max set to 20 in it):
 *   - N (/n), mode 0640, maxmsg 16, msgsize 64, messages of priorities
 *     1, 5, 1, 3; the root holds it O_RDWR, its child opens it O_WRONLY;
 *   - U (/unheld), mode 0604, owner 1234:1235 (unless MQNS_NOCHOWN is
 *     set), maxmsg 4, msgsize 32, three messages; no task holds it;
 *   - E (/empty), mode 0600, no messages, held by nobody;
 *   - D, unlinked, held O_RDONLY|O_NONBLOCK by the root, one message.
 * With "notify" in WORKDIR/mode, the root registers for mq_notify on N
 * (the dump must refuse it by name).
 *
 * Check: the limit, every queue by name with its mode, owner, attributes
 * and messages in priority order (U and E read through new descriptions),
 * D still unlinked with its message and no queue left under the name the
 * restore gave it meanwhile; the child's description still sends.
 */
#include <mqueue.h>
#include <stdbool.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "scenario.h"

static mqd_t qn, dr;
static pid_t kid;
static int kid_pipe[2];
static unsigned long long d_ino;

static void kid_loop(void)
{
	mqd_t w = mq_open("/n", O_WRONLY);
	char c;

	if (w < 0)
		_exit(3);
	close(kid_pipe[1]);
	while (read(kid_pipe[0], &c, 1) == 1)
		mq_send(w, "from the child", 15, 9);
	_exit(0);
}

static void expect(mqd_t q, const char *what, const char *text, unsigned int prio)
{
	char buf[64];
	unsigned int p;
	ssize_t n = mq_receive(q, buf, sizeof(buf), &p);

	SCN_CHECK(n == (ssize_t)strlen(text) + 1 && !strcmp(buf, text) && p == prio,
		  "%s: got '%.*s' prio %u (n %zd), expected '%s' prio %u", what,
		  (int)(n > 0 ? n : 0), buf, p, n, text, prio);
}

static void expect_queue(mqd_t q, const char *what, mode_t mode, long maxmsg, long msgsize,
			 long cur, uid_t uid, gid_t gid)
{
	struct mq_attr a;
	struct stat st;

	SCN_CHECK(q >= 0, "queue %s is gone by name: %s", what, strerror(errno));
	SCN_CHECK(fstat(q, &st) == 0 && (st.st_mode & 0777) == mode && st.st_uid == uid &&
		      st.st_gid == gid,
		  "queue %s: mode %o owner %d:%d", what, st.st_mode & 0777, (int)st.st_uid,
		  (int)st.st_gid);
	SCN_CHECK(mq_getattr(q, &a) == 0 && a.mq_maxmsg == maxmsg && a.mq_msgsize == msgsize &&
		      a.mq_curmsgs == cur,
		  "queue %s attributes %ld %ld %ld", what, a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs);
}

static void verify(void)
{
	bool chowned = !getenv("MQNS_NOCHOWN");
	char link[128], path[64], buf[32];
	mqd_t u, e;
	ssize_t n;

	SCN_CHECK(scn_read_small("/proc/sys/fs/mqueue/msg_max", buf, sizeof(buf)) == 0 &&
		      atoi(buf) == 20,
		  "msg_max of its IPC namespace is %s", buf);
	expect_queue(qn, "/n", 0640, 16, 64, 4, getuid(), getgid());
	expect(qn, "N 1", "b", 5);
	expect(qn, "N 2", "d", 3);
	expect(qn, "N 3", "a", 1);
	expect(qn, "N 4", "c", 1);
	SCN_CHECK(write(kid_pipe[1], "x", 1) == 1, "the child's pipe: %s", strerror(errno));
	expect(qn, "from the child", "from the child", 9);

	u = mq_open("/unheld", O_RDONLY);
	expect_queue(u, "/unheld", 0604, 4, 32, 3, chowned ? 1234 : getuid(),
		     chowned ? 1235 : getgid());
	expect(u, "U 1", "u1", 7);
	expect(u, "U 2", "u3", 7);
	expect(u, "U 3", "u2", 0);
	e = mq_open("/empty", O_RDONLY);
	expect_queue(e, "/empty", 0600, 10, 8192, 0, getuid(), getgid());

	snprintf(path, sizeof(path), "/proc/self/fd/%d", dr);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	SCN_CHECK(strstr(link, "(deleted)"), "queue D is no longer unlinked: %s", link);
	expect(dr, "D 1", "deleted", 2);
	snprintf(path, sizeof(path), "/.stasis-deleted-%llu", d_ino);
	SCN_CHECK(mq_open(path, O_RDONLY) < 0 && errno == ENOENT,
		  "the stand-in name %s of D is left", path);
	SCN_CHECK(kill(kid, 0) == 0, "the child is gone");
}

static void cleanup(void)
{
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
}

static void send_one(mqd_t q, const char *text, unsigned int prio)
{
	if (mq_send(q, text, strlen(text) + 1, prio))
		scn_fail("mq_send: %s", strerror(errno));
}

static void setup(void)
{
	struct mq_attr an = { .mq_maxmsg = 16, .mq_msgsize = 64 };
	struct mq_attr au = { .mq_maxmsg = 4, .mq_msgsize = 32 };
	struct stat st;
	mqd_t u, e, dw;
	int fd;

	if (unshare(CLONE_NEWIPC))
		scn_fail("unshare(CLONE_NEWIPC): %s", strerror(errno));
	fd = open("/proc/sys/fs/mqueue/msg_max", O_WRONLY);
	if (fd < 0 || write(fd, "20", 2) != 2)
		scn_fail("cannot set msg_max: %s", strerror(errno));
	close(fd);
	umask(0);
	qn = mq_open("/n", O_CREAT | O_EXCL | O_RDWR, 0640, &an);
	u = mq_open("/unheld", O_CREAT | O_EXCL | O_WRONLY, 0604, &au);
	e = mq_open("/empty", O_CREAT | O_EXCL | O_RDONLY, 0600, NULL);
	dw = mq_open("/d", O_CREAT | O_EXCL | O_WRONLY, 0600, &au);
	dr = mq_open("/d", O_RDONLY | O_NONBLOCK);
	if (qn < 0 || u < 0 || e < 0 || dw < 0 || dr < 0)
		scn_fail("mq_open: %s", strerror(errno));
	if (!getenv("MQNS_NOCHOWN") && fchown(u, 1234, 1235))
		scn_fail("fchown: %s", strerror(errno));
	send_one(qn, "a", 1);
	send_one(qn, "b", 5);
	send_one(qn, "c", 1);
	send_one(qn, "d", 3);
	send_one(u, "u1", 7);
	send_one(u, "u2", 0);
	send_one(u, "u3", 7);
	send_one(dw, "deleted", 2);
	if (fstat(dr, &st))
		scn_fail("fstat: %s", strerror(errno));
	d_ino = st.st_ino;
	close(u);
	close(e);
	close(dw);
	mq_unlink("/d");
}

int main(int argc, char **argv)
{
	char buf[64];

	scn_init(argc, argv, 0);
	setup();
	if (pipe(kid_pipe))
		scn_fail("pipe: %s", strerror(errno));
	kid = fork();
	if (kid == 0)
		kid_loop();
	if (kid < 0)
		scn_fail("fork: %s", strerror(errno));
	close(kid_pipe[0]);
	atexit(cleanup);
	if (scn_read_small("mode", buf, sizeof(buf)) == 0 && !strcmp(buf, "notify")) {
		struct sigevent ev = { .sigev_notify = SIGEV_NONE };

		if (mq_notify(qn, &ev))
			scn_fail("mq_notify: %s", strerror(errno));
	}
	snprintf(buf, sizeof(buf), "%d\n", (int)kid);
	scn_write_file("pids", buf);
	scn_msleep(50); /* the child opens its description */
	scn_ready_then_wait();
	verify();
	scn_pass();
}
