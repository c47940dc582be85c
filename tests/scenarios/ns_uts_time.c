// SPDX-License-Identifier: MIT
/*
 * ns_uts_time - UTS and time namespaces of a tree:
 *
 *   root   its own UTS namespace (hostname "stasis-outer", domain name
 *          "outer.test"); its children are born in a time namespace with
 *          offsets monotonic +10 days, boottime +1 hour
 *    +- K  lives in that time namespace, and in a UTS namespace of its own
 *          (hostname "stasis-inner")
 *
 * NS_MODE=shared-uts: a second child S joins K's UTS namespace with setns
 * instead (the dump must refuse: S did not inherit it).
 *
 * K checks itself every 5 ms: its hostname, the offsets of its time
 * namespace, and that CLOCK_MONOTONIC and CLOCK_BOOTTIME never go back nor
 * jump by more than a minute (a lost offset moves them by days); a failure
 * is written to WORKDIR/K.fail, each step to K.cnt.  Check (root): its own
 * names, its children's offsets, no K.fail, and K.cnt grows.
 */
#include "scenario.h"

#include <sched.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define OFFSETS "monotonic 864000 0\nboottime 3600 0\n"

static int offsets_ok(const char *path)
{
	char buf[256];
	long long ms = 0, bs = 0, mn = 1, bn = 1;
	char *p;

	if (scn_read_small(path, buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, "monotonic");
	if (p)
		sscanf(p, "monotonic %lld %lld", &ms, &mn);
	p = strstr(buf, "boottime");
	if (p)
		sscanf(p, "boottime %lld %lld", &bs, &bn);
	return ms == 864000 && mn == 0 && bs == 3600 && bn == 0;
}

static long long clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void kid_fail(const char *why)
{
	scn_write_file("K.fail", why);
	for (;;)
		pause();
}

static void __attribute__((noreturn)) kid_main(void)
{
	long long mono = clock_ms(CLOCK_MONOTONIC), boot = clock_ms(CLOCK_BOOTTIME), m, b;
	unsigned long steps = 0;
	struct utsname u;
	char buf[64];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWUTS) || sethostname("stasis-inner", 12))
		kid_fail("cannot make its UTS namespace");
	/* the monotonic clock of the time namespace: 10 days ahead of the host's */
	if (mono < 864000 * 1000LL)
		kid_fail("born outside the time namespace");
	for (;;) {
		usleep(5000);
		m = clock_ms(CLOCK_MONOTONIC);
		b = clock_ms(CLOCK_BOOTTIME);
		if (m < mono || m > mono + 60000 || b < boot || b > boot + 60000) {
			snprintf(buf, sizeof(buf),
				 "clock moved: monotonic %+lld ms, boottime %+lld ms", m - mono,
				 b - boot);
			kid_fail(buf);
		}
		mono = m;
		boot = b;
		if (uname(&u) || strcmp(u.nodename, "stasis-inner"))
			kid_fail("hostname changed");
		if (!offsets_ok("/proc/self/timens_offsets"))
			kid_fail("time namespace offsets changed");
		if (++steps % 20 == 0) {
			snprintf(buf, sizeof(buf), "%lu", steps);
			scn_write_file("K.cnt", buf);
		}
	}
}

/* NS_MODE=shared-uts: joins K's UTS namespace from the side. */
static void __attribute__((noreturn)) side_main(pid_t k)
{
	char path[64];
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	usleep(100000); /* K has made its namespace */
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", k);
	fd = open(path, O_RDONLY);
	if (fd < 0 || setns(fd, CLONE_NEWUTS))
		_exit(1);
	for (;;)
		pause();
}

static unsigned long kid_steps(void)
{
	char buf[64];

	if (scn_read_small("K.cnt", buf, sizeof(buf)) < 0)
		return 0;
	return strtoul(buf, NULL, 10);
}

int main(int argc, char **argv)
{
	const char *mode = getenv("NS_MODE");
	char buf[256], pids[64];
	struct utsname u;
	pid_t k, s = 0;
	unsigned long before;
	int fd, i;

	scn_init(argc, argv, 0);
	if (unshare(CLONE_NEWUTS) || sethostname("stasis-outer", 12) ||
	    setdomainname("outer.test", 10)) {
		scn_log("cannot make a UTS namespace: %s", strerror(errno));
		return 2;
	}
	if (unshare(CLONE_NEWTIME)) {
		scn_log("cannot make a time namespace: %s", strerror(errno));
		return 2;
	}
	fd = open("/proc/self/timens_offsets", O_WRONLY);
	if (fd < 0 || write(fd, OFFSETS, strlen(OFFSETS)) != (ssize_t)strlen(OFFSETS)) {
		scn_log("cannot set time offsets: %s", strerror(errno));
		return 2;
	}
	close(fd);
	k = fork();
	if (k == 0)
		kid_main();
	if (mode && !strcmp(mode, "shared-uts")) {
		s = fork();
		if (s == 0)
			side_main(k);
	}
	if (s)
		snprintf(pids, sizeof(pids), "%d %d\n", k, s);
	else
		snprintf(pids, sizeof(pids), "%d\n", k);
	scn_write_file("pids", pids);
	for (i = 0; i < 200 && kid_steps() < 20; i++)
		usleep(10000);
	if (s)
		usleep(200000);
	scn_ready();
	while (!scn_check)
		pause();
	before = kid_steps();
	usleep(300000);
	SCN_CHECK(scn_read_small("K.fail", buf, sizeof(buf)) < 0, "K failed: %s", buf);
	SCN_CHECK(kid_steps() > before, "K stopped counting (%lu)", before);
	SCN_CHECK(!uname(&u) && !strcmp(u.nodename, "stasis-outer") &&
		      !strcmp(u.domainname, "outer.test"),
		  "root's names are %s / %s", u.nodename, u.domainname);
	SCN_CHECK(offsets_ok("/proc/self/timens_offsets"), "its children's time offsets changed");
	scn_pass();
}
