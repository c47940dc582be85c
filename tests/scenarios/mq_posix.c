/*
 * mq_posix: POSIX message queues held by a root and its child.
 *   - queue N, named (/stasis-N-TOKEN), mode 0640, maxmsg 8, msgsize 128,
 *     with four messages of priorities 1, 5, 1, 3; the root holds it
 *     O_RDWR, the child inherits that fd and opens it again O_WRONLY by
 *     name;
 *   - queue D, unlinked after it was filled with two messages, held by the
 *     root O_RDONLY|O_NONBLOCK and O_WRONLY.
 * With "notify" in WORKDIR/mode, the root registers for mq_notify on N
 * (for a test that the dump refuses it).
 * The name goes to WORKDIR/mqname for the suite to unlink after a failure.
 *
 * Check: N by its name: same mode, attributes and messages in priority
 * order; the child's description sends a message the root receives; D is
 * still unlinked (its fd link says so), non-blocking, with its messages.
 */
#include <mqueue.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "scenario.h"

static char name[64];
static mqd_t qn, dr, dw;
static pid_t kid;
static int kid_pipe[2];

static void kid_loop(void)
{
	mqd_t w = mq_open(name, O_WRONLY);
	char c;

	if (w < 0)
		_exit(3);
	close(kid_pipe[1]);
	/* each byte from the root: one message through our own description */
	while (read(kid_pipe[0], &c, 1) == 1)
		mq_send(w, "from the child", 15, 9);
	_exit(0);
}

static void expect(mqd_t q, const char *what, const char *text, unsigned int prio)
{
	char buf[128];
	unsigned int p;
	ssize_t n = mq_receive(q, buf, sizeof(buf), &p);

	SCN_CHECK(n == (ssize_t)strlen(text) + 1 && !strcmp(buf, text) && p == prio,
		  "%s: got '%.*s' prio %u (n %zd), expected '%s' prio %u", what,
		  (int)(n > 0 ? n : 0), buf, p, n, text, prio);
}

static void verify(void)
{
	struct mq_attr a;
	struct stat st;
	char link[128], path[64];
	ssize_t n;
	mqd_t again = mq_open(name, O_RDONLY);

	SCN_CHECK(again >= 0, "queue %s is gone by name: %s", name, strerror(errno));
	SCN_CHECK(fstat(qn, &st) == 0 && (st.st_mode & 0777) == 0640, "queue mode %o", st.st_mode);
	SCN_CHECK(mq_getattr(qn, &a) == 0 && a.mq_maxmsg == 8 && a.mq_msgsize == 128 &&
		      a.mq_curmsgs == 4 && !(a.mq_flags & O_NONBLOCK),
		  "queue attributes %ld %ld %ld %lx", a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs,
		  a.mq_flags);
	expect(qn, "N 1", "b", 5);
	expect(qn, "N 2", "d", 3);
	expect(qn, "N 3", "a", 1);
	expect(qn, "N 4", "c", 1);
	SCN_CHECK(write(kid_pipe[1], "x", 1) == 1, "the child's pipe: %s", strerror(errno));
	expect(qn, "from the child", "from the child", 9);

	snprintf(path, sizeof(path), "/proc/self/fd/%d", dr);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	SCN_CHECK(strstr(link, "(deleted)"), "queue D is no longer unlinked: %s", link);
	SCN_CHECK(mq_getattr(dr, &a) == 0 && a.mq_curmsgs == 2 && (a.mq_flags & O_NONBLOCK),
		  "queue D attributes: %ld messages, flags %lx", a.mq_curmsgs, a.mq_flags);
	expect(dr, "D 1", "deleted one", 2);
	expect(dr, "D 2", "deleted two", 2);
	SCN_CHECK(mq_send(dw, "x", 1, 0) == 0, "D's writer: %s", strerror(errno));
	SCN_CHECK(kill(kid, 0) == 0, "the child is gone");
}

static void cleanup(void)
{
	mq_unlink(name);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
}

static void send_one(mqd_t q, const char *text, unsigned int prio)
{
	if (mq_send(q, text, strlen(text) + 1, prio))
		scn_fail("mq_send: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct mq_attr a = { .mq_maxmsg = 8, .mq_msgsize = 128 };
	char dname[64], buf[160];

	scn_init(argc, argv, 0);
	snprintf(name, sizeof(name), "/stasis-N-%llx", scn_token);
	snprintf(dname, sizeof(dname), "/stasis-D-%llx", scn_token);
	snprintf(buf, sizeof(buf), "%s %s\n", name, dname);
	scn_write_file("mqname", buf);
	qn = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0640, &a);
	dw = mq_open(dname, O_CREAT | O_EXCL | O_WRONLY, 0600, &a);
	dr = mq_open(dname, O_RDONLY | O_NONBLOCK);
	if (qn < 0 || dw < 0 || dr < 0)
		scn_fail("mq_open: %s", strerror(errno));
	atexit(cleanup);
	mq_unlink(dname);
	send_one(qn, "a", 1);
	send_one(qn, "b", 5);
	send_one(qn, "c", 1);
	send_one(qn, "d", 3);
	send_one(dw, "deleted one", 2);
	send_one(dw, "deleted two", 2);
	if (pipe(kid_pipe))
		scn_fail("pipe: %s", strerror(errno));
	kid = fork();
	if (kid == 0)
		kid_loop();
	if (kid < 0)
		scn_fail("fork: %s", strerror(errno));
	close(kid_pipe[0]);
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
