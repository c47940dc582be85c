/*
 * timerfd: clock, time left, interval and the expirations not read yet,
 * from fdinfo.  Restored armed with the time that was left (relative), and
 * the unread expirations put back with TFD_IOC_SET_TICKS.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static bool timerfd_match(const struct fd_dump *d)
{
	return !strcmp(d->link, "anon_inode:[timerfd]");
}

static int parse_ts(const struct fd_dump *d, const char *key, uint64_t *ns)
{
	unsigned long long sec, nsec;
	char buf[64];

	if (!fdinfo_field(d, key, buf, sizeof(buf)) ||
	    sscanf(buf, "(%llu, %llu)", &sec, &nsec) != 2)
		return -1;
	*ns = sec * 1000000000ULL + nsec;
	return 0;
}

static int timerfd_dump(const struct fd_dump *d, FileEntry *fe)
{
	TimerfdEntry *t = xmalloc(sizeof(*t));
	char buf[64];

	timerfd_entry__init(t);
	fe->timerfd = t;
	if (!fdinfo_field(d, "clockid", buf, sizeof(buf)))
		goto bad;
	t->clockid = atoi(buf);
	if (!fdinfo_field(d, "ticks", buf, sizeof(buf)))
		goto bad;
	t->ticks = strtoull(buf, NULL, 10);
	if (parse_ts(d, "it_value", &t->value_ns) || parse_ts(d, "it_interval", &t->interval_ns))
		goto bad;
	return 0;
bad:
	pr_err("pid %d fd %d: cannot read the timerfd state\n", d->pid, d->fd);
	return -1;
}

static struct timespec ns_ts(uint64_t ns)
{
	struct timespec ts = { ns / 1000000000ULL, ns % 1000000000ULL };

	return ts;
}

static int timerfd_open(struct rst_ctx *c, const FileEntry *fe)
{
	const TimerfdEntry *t = fe->timerfd;
	struct itimerspec its;
	int fd;

	fd = timerfd_create(t->clockid, TFD_CLOEXEC | (fe->flags & O_NONBLOCK ? TFD_NONBLOCK : 0));
	if (fd < 0) {
		pr_perror("pid %u: cannot create a timerfd", c->t->te->pid);
		return -1;
	}
	/*
	 * An interval timer that fired and was not read yet shows no time left
	 * (the kernel re-arms it on read): its next expiry is within an interval.
	 */
	its.it_value = ns_ts(t->value_ns ? t->value_ns : t->interval_ns);
	its.it_interval = ns_ts(t->interval_ns);
	if ((t->value_ns || t->interval_ns) && timerfd_settime(fd, 0, &its, NULL)) {
		pr_perror("pid %u: cannot arm a timerfd", c->t->te->pid);
		goto err;
	}
	if (t->ticks && ioctl(fd, TFD_IOC_SET_TICKS, &t->ticks)) {
		pr_perror("pid %u: cannot restore a timerfd's expirations", c->t->te->pid);
		goto err;
	}
	return fd;
err:
	close(fd);
	return -1;
}

const struct fd_ops timerfd_fd_ops = {
	.type = FILE_TYPE__FILE_TIMERFD,
	.kind = FILE_ENTRY__KIND_TIMERFD,
	.name = "timerfd",
	.match = timerfd_match,
	.dump = timerfd_dump,
	.lock = &flock_fd_lock,
	.open = timerfd_open,
};
