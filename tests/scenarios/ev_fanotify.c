/*
 * ev_fanotify: a notification-class fanotify group (O_NONBLOCK) with
 *   - an inode mark on directory WORKDIR/d: FAN_MODIFY of its children;
 *   - an ignore mark on d/g for FAN_MODIFY that survives modification;
 *   - a mount mark on /dev/shm: FAN_CLOSE_WRITE;
 *   - a filesystem mark on /dev/shm's filesystem: FAN_OPEN.
 *
 * Check (only events caused by this process count: others may share the
 * files): writing g twice and then f gives FAN_MODIFY for f and none for
 * g; a file written in /dev/shm gives FAN_OPEN and FAN_CLOSE_WRITE;
 * O_NONBLOCK is kept.
 */
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/stat.h>

#include "scenario.h"

static int fan;
static char shm_file[64];

static void write_file(const char *name)
{
	int fd = open(name, O_WRONLY | O_CREAT | O_APPEND, 0600);

	if (fd < 0 || write(fd, "x", 1) != 1)
		scn_fail("cannot write %s: %s", name, strerror(errno));
	close(fd);
}

/* Read events until every bit of want was seen for a file ending in what. */
static void expect(const char *what, unsigned long long want, const char *forbidden)
{
	static char buf[8192] __attribute__((aligned(8)));
	unsigned long long seen = 0;
	struct pollfd p = { fan, POLLIN, 0 };

	while ((seen & want) != want) {
		struct fanotify_event_metadata *ev = (void *)buf;
		ssize_t n;

		SCN_CHECK(poll(&p, 1, 2000) == 1, "no fanotify event for %s (seen %#llx of %#llx)",
			  what, seen, want);
		n = read(fan, buf, sizeof(buf));
		SCN_CHECK(n > 0, "read fanotify: %s", strerror(errno));
		for (; FAN_EVENT_OK(ev, n); ev = FAN_EVENT_NEXT(ev, n)) {
			char link[64], path[PATH_MAX] = "";
			ssize_t l;

			if (ev->fd >= 0) {
				snprintf(link, sizeof(link), "/proc/self/fd/%d", ev->fd);
				l = readlink(link, path, sizeof(path) - 1);
				path[l > 0 ? l : 0] = '\0';
				close(ev->fd);
			}
			if (ev->pid != getpid())
				continue;
			if (forbidden && strstr(path, forbidden) && (ev->mask & FAN_MODIFY))
				scn_fail("FAN_MODIFY for %s, which an ignore mark covers", path);
			if (strstr(path, what))
				seen |= ev->mask;
		}
	}
}

static void verify(void)
{
	SCN_CHECK(fcntl(fan, F_GETFL) & O_NONBLOCK, "fanotify fd lost O_NONBLOCK");
	write_file("d/g");
	write_file("d/g");
	write_file("d/f");
	expect("/d/f", FAN_MODIFY, "/d/g");
	write_file(shm_file);
	expect(shm_file, FAN_OPEN | FAN_CLOSE_WRITE, NULL);
	unlink(shm_file);
}

int main(int argc, char **argv)
{
	scn_init(argc, argv, 0);
	snprintf(shm_file, sizeof(shm_file), "/dev/shm/ev_fanotify.%d", (int)getpid());
	if (mkdir("d", 0755) && errno != EEXIST)
		scn_fail("mkdir: %s", strerror(errno));
	write_file("d/f");
	write_file("d/g");
	fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC, O_RDONLY);
	if (fan < 0 ||
	    fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY | FAN_EVENT_ON_CHILD, AT_FDCWD, "d") ||
	    fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
			  FAN_MODIFY, AT_FDCWD, "d/g") ||
	    fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD,
			  "/dev/shm") ||
	    fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN, AT_FDCWD, "/dev/shm"))
		scn_fail("fanotify: %s", strerror(errno));
	scn_ready();
	while (!scn_check) {
		/* others' events: drop them, so the queue is empty at a dump */
		char buf[4096] __attribute__((aligned(8)));
		struct fanotify_event_metadata *ev = (void *)buf;
		ssize_t n = read(fan, buf, sizeof(buf));

		for (; n > 0 && FAN_EVENT_OK(ev, n); ev = FAN_EVENT_NEXT(ev, n))
			if (ev->fd >= 0)
				close(ev->fd);
		scn_msleep(10);
	}
	verify();
	scn_pass();
}
