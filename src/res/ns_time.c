/*
 * Time namespaces: a namespace is saved as its monotonic and boottime
 * offsets.  A task has two slots, the namespace it lives in ("time") and
 * the one its children are born in ("time_for_children"); both name the
 * same records.  The offsets are read from /proc/PID/timens_offsets of a
 * task whose children's namespace it is, and written by the creator into
 * a new namespace before any task is in it, as the kernel requires.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ns.h"
#include "stasis.h"
#include "util.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define NSEC_PER_SEC 1000000000u

/* /proc/PID/timens_offsets shows the offsets of PID's children's namespace. */
static int read_offsets(pid_t pid, NsEntry *e)
{
	char path[64], *text, *line, *save = NULL;
	long long sec;
	unsigned int nsec;
	char clk[32];
	int got = 0;

	snprintf(path, sizeof(path), "/proc/%d/timens_offsets", pid);
	text = read_file(path, NULL);
	if (!text) {
		pr_perror("pid %d: cannot read %s", pid, path);
		return -1;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%31s %lld %u", clk, &sec, &nsec) != 3)
			continue;
		if (!strcmp(clk, "monotonic")) {
			e->has_monotonic_sec = e->has_monotonic_nsec = true;
			e->monotonic_sec = sec;
			e->monotonic_nsec = nsec;
			got |= 1;
		} else if (!strcmp(clk, "boottime")) {
			e->has_boottime_sec = e->has_boottime_nsec = true;
			e->boottime_sec = sec;
			e->boottime_nsec = nsec;
			got |= 2;
		}
	}
	free(text);
	if (got != 3) {
		pr_err("pid %d: %s does not hold both offsets\n", pid, path);
		return -1;
	}
	return 0;
}

/* From a task of the tree whose children are born in it. */
static int time_describe(const struct ns_view *v, size_t task, NsEntry *e)
{
	size_t i;

	for (i = 0; i < ns_view_ntasks(v); i++)
		if (ns_view_pid(v, i) > 0 && v->ids[i][NS_K_TIME_KIDS] == e->id)
			return read_offsets(ns_view_pid(v, i), e);
	pr_err("pid %d: no task of the tree forks into its time namespace %llu, so its offsets "
	       "cannot be read\n",
	       ns_view_pid(v, task), (unsigned long long)e->id);
	return -1;
}

static bool time_valid(const NsEntry *e)
{
	return e->has_monotonic_sec && e->has_boottime_sec && e->monotonic_nsec < NSEC_PER_SEC &&
	       e->boottime_nsec < NSEC_PER_SEC;
}

/* A new time namespace for our children, with its offsets. */
static int new_time(const NsEntry *e)
{
	char buf[128];
	int fd, len;

	if (unshare(CLONE_NEWTIME)) {
		pr_perror("cannot create a time namespace");
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "monotonic %lld %u\nboottime %lld %u\n",
		       (long long)e->monotonic_sec, e->monotonic_nsec, (long long)e->boottime_sec,
		       e->boottime_nsec);
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != len) {
		pr_perror("cannot set the offsets of a time namespace");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* The namespace the creator lives in: made for its children, then entered. */
static int time_create_enter(struct rst_ctx *c, const NsEntry *e)
{
	int fd;

	if (new_time(e))
		return -1;
	fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWTIME)) {
		pr_perror("cannot enter the new time namespace");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int time_create_kids(struct rst_ctx *c, const NsEntry *e)
{
	return new_time(e);
}

const struct ns_kind time_ns_kind = {
	.name = "time",
	.label = "time",
	.nstype = CLONE_NEWTIME,
	.kind = NS_KIND__NS_TIME,
	NS_TE_FIELD(time_ns),
	.inherits = NS_K_TIME_KIDS, /* a child lives where its parent forks it */
	.same_in_threads = true,
	.describe = time_describe,
	.valid = time_valid,
	.create = time_create_enter,
};

const struct ns_kind time_kids_ns_kind = {
	.name = "time_for_children",
	.label = "time",
	.nstype = CLONE_NEWTIME,
	.kind = NS_KIND__NS_TIME,
	NS_TE_FIELD(time_ns_children),
	.inherits = NS_K_TIME, /* unless it unshared, its own */
	.same_in_threads = true,
	.from_self = true,
	.describe = time_describe,
	.valid = time_valid,
	.create = time_create_kids,
};
