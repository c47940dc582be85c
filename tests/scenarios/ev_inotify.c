/*
 * ev_inotify: an inotify instance (O_NONBLOCK) with three watches on
 * files a, b and c of WORKDIR/w, the one on b removed again, so the live
 * watch descriptors are 1 and 3; the IN_IGNORED of the removal is read,
 * so the queue is empty at the dump.  The fd is dup'ed to fd 150.
 *
 * Check: no event is queued; writing c gives IN_MODIFY with c's wd,
 * writing a gives IN_MODIFY with a's wd (IN_ONESHOT: then IN_IGNORED);
 * the watch on b is really gone (no event for b); a new watch gets the
 * next wd after the highest one; O_NONBLOCK is kept and fd 150 is the
 * same instance.
 */
#include <poll.h>
#include <sys/stat.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>

#include "scenario.h"

static int ifd, wd_a, wd_b, wd_c;

static void touch(const char *name)
{
	int fd = open(name, O_WRONLY | O_APPEND);

	if (fd < 0 || write(fd, "x", 1) != 1)
		scn_fail("cannot write %s: %s", name, strerror(errno));
	close(fd);
}

/* The next event of the instance: its wd and mask; fails if none comes. */
static void next_event(int fd, int *wd, unsigned int *mask)
{
	static char buf[4096] __attribute__((aligned(8)));
	static size_t len, off;
	struct inotify_event *ev;
	struct pollfd p = { fd, POLLIN, 0 };
	ssize_t n;

	if (off >= len) {
		SCN_CHECK(poll(&p, 1, 2000) == 1, "no inotify event within 2 s");
		n = read(fd, buf, sizeof(buf));
		SCN_CHECK(n > 0, "read inotify: %s", strerror(errno));
		len = n;
		off = 0;
	}
	ev = (struct inotify_event *)(buf + off);
	off += sizeof(*ev) + ev->len;
	*wd = ev->wd;
	*mask = ev->mask;
}

static void verify(void)
{
	unsigned int mask;
	int q = -1, wd, w2;

	SCN_CHECK(fcntl(ifd, F_GETFL) & O_NONBLOCK, "inotify fd lost O_NONBLOCK");
	SCN_CHECK(ioctl(ifd, FIONREAD, &q) == 0 && q == 0, "%d bytes of events queued", q);
	touch("w/b");
	touch("w/c");
	next_event(ifd, &wd, &mask);
	SCN_CHECK(wd == wd_c && (mask & IN_MODIFY),
		  "first event: wd %d mask %#x, expected wd %d "
		  "IN_MODIFY (b's watch was removed)",
		  wd, mask, wd_c);
	touch("w/a");
	next_event(ifd, &wd, &mask);
	SCN_CHECK(wd == wd_a && (mask & IN_MODIFY), "event on a: wd %d mask %#x, expected wd %d",
		  wd, mask, wd_a);
	next_event(ifd, &wd, &mask);
	SCN_CHECK(wd == wd_a && (mask & IN_IGNORED), "a's one-shot watch: wd %d mask %#x", wd,
		  mask);
	w2 = inotify_add_watch(ifd, "w/b", IN_ATTRIB);
	SCN_CHECK(w2 == wd_c + 1, "a new watch got wd %d, expected %d", w2, wd_c + 1);
	SCN_CHECK(inotify_add_watch(150, "w/b", IN_ATTRIB | IN_MASK_CREATE) < 0 && errno == EEXIST,
		  "fd 150 is not the same inotify instance");
}

int main(int argc, char **argv)
{
	int wd;
	unsigned int mask;

	scn_init(argc, argv, 0);
	if (mkdir("w", 0755) && errno != EEXIST)
		scn_fail("mkdir: %s", strerror(errno));
	close(open("w/a", O_CREAT | O_WRONLY, 0644));
	close(open("w/b", O_CREAT | O_WRONLY, 0644));
	close(open("w/c", O_CREAT | O_WRONLY, 0644));
	ifd = inotify_init1(IN_NONBLOCK);
	wd_a = inotify_add_watch(ifd, "w/a", IN_MODIFY | IN_ONESHOT);
	wd_b = inotify_add_watch(ifd, "w/b", IN_MODIFY);
	wd_c = inotify_add_watch(ifd, "w/c", IN_MODIFY | IN_DELETE_SELF);
	if (ifd < 0 || wd_a < 0 || wd_b < 0 || wd_c < 0 || dup2(ifd, 150) < 0)
		scn_fail("inotify: %s", strerror(errno));
	if (inotify_rm_watch(ifd, wd_b))
		scn_fail("inotify_rm_watch: %s", strerror(errno));
	next_event(ifd, &wd, &mask);
	if (wd != wd_b || !(mask & IN_IGNORED))
		scn_fail("removal gave wd %d mask %#x", wd, mask);
	scn_log("watch descriptors a=%d c=%d (b=%d removed)", wd_a, wd_c, wd_b);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
