/*
 * A copy that a normal user's restore made lives under stasis-init, PID 1
 * of a PID namespace owned by a user namespace that stasis made for it
 * (restore/root.c: the user's uid and gid mapped to themselves, setgroups
 * denied).  The tasks have their original PIDs in there, new ones outside.
 * To dump such a copy again, the user's stasis dumps it from inside those
 * two namespaces: it joins the user namespace (its owner may), forks into
 * the PID namespace, and mounts a /proc of that namespace in a mount
 * namespace of its own.  From there the copy is in stasis's own user and
 * PID namespace, with its original numbers, and the image reads as the
 * original's did; a restore then makes such namespaces anew.  ns.c is
 * told the mount namespace stasis came from (dump_self_mnt_ino), since the
 * one made for /proc is not the tree's.
 *
 * When the dumped copy is killed, stasis-init exits, and the kernel kills
 * what is left in its PID namespace: our dumper too, possibly before it
 * exits.  So it tells us when the image is committed (a byte on a pipe),
 * and a dumper killed after that has succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "stasis.h"
#include "util.h"

uint64_t dump_self_mnt_ino;
int dump_commit_fd = -1;

/* The last number of an NS* line of a status text, and how many there are. */
static int last_number(const char *status, const char *key, pid_t *last)
{
	const char *p = status ? status_field(status, key) : NULL;
	char *end;
	int n = 0;

	while (p && *p >= '0' && *p <= '9') {
		*last = strtol(p, &end, 10);
		n++;
		p = end;
		while (*p == '\t' || *p == ' ')
			p++;
	}
	return n;
}

static bool same_ns(pid_t a, pid_t b, const char *name)
{
	char pa[64], pb[64];
	struct stat sa, sb;

	snprintf(pa, sizeof(pa), "/proc/%d/ns/%s", a, name);
	snprintf(pb, sizeof(pb), "/proc/%d/ns/%s", b, name);
	return !stat(pa, &sa) && !stat(pb, &sb) && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* The map file of pid is exactly "ID ID 1" (our own id, nothing else). */
static bool maps_only(pid_t pid, const char *name, unsigned int id)
{
	char *s = read_proc(pid, name, NULL);
	unsigned int a, b, n;
	char rest;
	bool ok;

	ok = s && sscanf(s, " %u %u %u %c", &a, &b, &n, &rest) == 3 && a == id && b == id && n == 1;
	free(s);
	return ok;
}

/*
 * Is pid in such a copy?  Then *init is stasis-init's PID (ours) and
 * *inner pid's number in there.
 */
static bool in_wrapper(pid_t pid, pid_t *init, pid_t *inner)
{
	char *status, comm[32];
	struct proc_stat st;
	pid_t p = pid, n = 0;
	char path[64];
	uid_t owner;
	int fd, levels;

	if (same_ns(pid, getpid(), "pid") || same_ns(pid, getpid(), "user"))
		return false;
	status = read_proc(pid, "status", NULL);
	levels = last_number(status, "NSpid", inner);
	free(status);
	if (levels != 2)
		return false;
	/* up the tree to PID 1 of its namespace */
	while (p > 1 && !proc_parse_stat(p, &st) && same_ns(p, pid, "pid")) {
		status = read_proc(p, "status", NULL);
		last_number(status, "NSpid", &n);
		free(status);
		if (n == 1)
			break;
		p = st.ppid;
	}
	proc_comm(p, comm, sizeof(comm));
	if (n != 1 || strcmp(comm, "stasis-init") || !same_ns(p, pid, "user"))
		return false;
	*init = p;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, NS_GET_OWNER_UID, &owner) || owner != geteuid()) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return maps_only(pid, "uid_map", geteuid()) && maps_only(pid, "gid_map", getegid());
}

/* In the forked dumper: our /proc, then the dump itself; never returns. */
static void __attribute__((noreturn))
dumper_main(const struct dump_opts *o, pid_t inner, int commit_fd)
{
	struct dump_opts in = *o;
	struct stat mnt;

	if (stat("/proc/self/ns/mnt", &mnt) || unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
		pr_perror("cannot mount a /proc of the copy's PID namespace");
		_exit(1);
	}
	dump_self_mnt_ino = mnt.st_ino;
	dump_commit_fd = commit_fd;
	in.pid = inner;
	exit(cmd_dump(&in) ? 1 : 0);
}

int dump_wrapped(const struct dump_opts *o, bool *handled)
{
	pid_t init, inner, kid;
	int user = -1, pidns = -1, commit[2], status, ret = -1;
	char c, path[64];

	*handled = false;
	if (dump_self_mnt_ino || !in_wrapper(o->pid, &init, &inner))
		return 0;
	*handled = true;
	pr_info("pid %d is pid %d of a copy a normal user's restore made (stasis-init %d): "
		"dumping it from inside its namespaces\n",
		o->pid, inner, init);
	snprintf(path, sizeof(path), "/proc/%d/ns/user", o->pid);
	user = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", o->pid);
	pidns = open(path, O_RDONLY | O_CLOEXEC);
	if (user < 0 || pidns < 0 || pipe2(commit, O_CLOEXEC)) {
		pr_perror("pid %d: cannot open its namespaces", o->pid);
		goto out;
	}
	kid = fork();
	if (kid == 0) {
		close(commit[0]);
		if (setns(user, CLONE_NEWUSER) || setns(pidns, CLONE_NEWPID)) {
			pr_perror("cannot enter the namespaces of pid %d", o->pid);
			_exit(1);
		}
		kid = fork(); /* the first task we fork is in the PID namespace */
		if (kid == 0)
			dumper_main(o, inner, commit[1]);
		if (kid < 0)
			_exit(1);
		close(commit[1]);
		while (waitpid(kid, &status, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	close(commit[1]);
	if (kid < 0) {
		pr_perror("fork");
		close(commit[0]);
		goto out;
	}
	while (waitpid(kid, &status, 0) < 0 && errno == EINTR)
		;
	/* killed with its namespace after the commit: the image is whole */
	ret = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
		      (read(commit[0], &c, 1) == 1 && c == 'C')
		  ? 0
		  : -1;
	close(commit[0]);
out:
	if (user >= 0)
		close(user);
	if (pidns >= 0)
		close(pidns);
	return ret;
}
