/*
 * User namespaces: a tree in a user namespace of its own (a rootless
 * container's, `unshare --user --map-root-user --pid --fork`) is saved as
 * the namespace's uid and gid maps, its setgroups setting and its owner,
 * as its parent (the dumper's namespace) sees them.  Only one level is
 * saved: every task of the tree is in the same one (nested user
 * namespaces are refused by name), whose parent is the dumper's, and the
 * tree has a PID namespace of its own that this user namespace owns.
 *
 * At restore the root is forked into a new user namespace by the same
 * clone3 that makes its PID namespace (CLONE_NEWUSER | CLONE_NEWPID: the
 * kernel makes the user namespace first, so it owns the PID namespace, as
 * it did), and the controller, in the parent namespace, writes setgroups
 * and the maps before the root runs its first instruction (set_up, through
 * ns_res's root_forked hook).  Every namespace created after it, by the
 * tree's creators, is owned by it, as the dumped ones were (ns.c checks
 * that at dump).  Inside a user namespace no task may choose its PID in
 * the restorer's PID namespace, so the tasks below the root get only
 * their numbers inside (as with --pidns; the root keeps both).  The
 * credentials res/creds.c sets are the dumper's view of them, turned into
 * the namespace's own ids here (userns_id_inside).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "ns.h"
#include "util.h"

#define MAP_LINES_MAX 340 /* the kernel's bound on the lines of a map */

/* The inode of the namespace that ioctl 'req' gives for /proc/PID/ns/NAME. */
static int ns_rel_ino(pid_t pid, const char *name, unsigned long req, uint64_t *ino)
{
	char path[96];
	struct stat st;
	int fd, rel;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("pid %d: cannot open %s", pid, path);
		return -1;
	}
	rel = ioctl(fd, req);
	close(fd);
	if (rel < 0 || fstat(rel, &st)) {
		pr_perror("pid %d: cannot find the namespace that owns its %s namespace", pid,
			  name);
		if (rel >= 0)
			close(rel);
		return -1;
	}
	close(rel);
	*ino = st.st_ino;
	return 0;
}

static int ns_inode(const char *path, uint64_t *ino)
{
	struct stat st;

	if (stat(path, &st)) {
		pr_perror("cannot read %s", path);
		return -1;
	}
	*ino = st.st_ino;
	return 0;
}

static int parse_map(pid_t pid, const char *name, NsIdMap ***out, size_t *n)
{
	char *text = read_proc(pid, name, NULL), *line, *save = NULL;
	unsigned long first, lower, count;

	if (!text) {
		pr_perror("pid %d: cannot read its %s", pid, name);
		return -1;
	}
	*out = xzalloc(MAP_LINES_MAX * sizeof(**out));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%lu %lu %lu", &first, &lower, &count) != 3 ||
		    *n == MAP_LINES_MAX) {
			pr_err("pid %d: cannot parse its %s line '%s'\n", pid, name, line);
			free(text);
			return -1;
		}
		(*out)[*n] = xzalloc(sizeof(NsIdMap));
		ns_id_map__init((*out)[*n]);
		(*out)[*n]->first = first;
		(*out)[*n]->lower = lower;
		(*out)[(*n)++]->count = count;
	}
	free(text);
	return 0;
}

/* One level below ours, owning the tree's own PID namespace. */
static int check_levels(pid_t pid, uint64_t id)
{
	uint64_t ours, parent, pidns, pidns_ours, owner;
	char path[64];

	if (ns_inode("/proc/self/ns/user", &ours) ||
	    ns_rel_ino(pid, "user", NS_GET_PARENT, &parent))
		return -1;
	if (parent != ours) {
		pr_err("pid %d: its user namespace (user:[%" PRIu64 "]) is nested in another one "
		       "than stasis's; one level of user namespace is saved\n",
		       pid, id);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
	if (ns_inode("/proc/self/ns/pid", &pidns_ours) || ns_inode(path, &pidns))
		return -1;
	if (pidns == pidns_ours) {
		pr_err("pid %d: lives in a user namespace of its own (user:[%" PRIu64 "]) but in "
		       "stasis's PID namespace; a restore cannot choose PIDs from inside a user "
		       "namespace: give the tree a PID namespace of its own (unshare --user --pid "
		       "--fork)\n",
		       pid, id);
		return -1;
	}
	if (ns_rel_ino(pid, "pid", NS_GET_USERNS, &owner))
		return -1;
	if (owner != id) {
		pr_err("pid %d: its PID namespace is not owned by its user namespace "
		       "(user:[%" PRIu64 "]); not supported\n",
		       pid, id);
		return -1;
	}
	return 0;
}

static int user_describe(const struct ns_view *v, size_t task, NsEntry *e)
{
	pid_t pid = ns_view_pid(v, task);
	char path[64], *sg;
	uid_t owner;
	int fd, r;

	if (check_levels(pid, e->id) || parse_map(pid, "uid_map", &e->uid_map, &e->n_uid_map) ||
	    parse_map(pid, "gid_map", &e->gid_map, &e->n_gid_map))
		return -1;
	sg = read_proc(pid, "setgroups", NULL);
	if (!sg) {
		pr_perror("pid %d: cannot read its setgroups", pid);
		return -1;
	}
	e->has_setgroups_deny = true;
	e->setgroups_deny = !strncmp(sg, "deny", 4);
	free(sg);
	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	r = fd < 0 ? -1 : ioctl(fd, NS_GET_OWNER_UID, &owner);
	if (fd >= 0)
		close(fd);
	if (r) {
		pr_perror("pid %d: cannot read the owner of its user namespace", pid);
		return -1;
	}
	e->has_owner_uid = true;
	e->owner_uid = owner;
	return 0;
}

static bool map_valid(NsIdMap *const *m, size_t n)
{
	size_t i;

	if (n > MAP_LINES_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!m[i]->count || (uint64_t)m[i]->first + m[i]->count > 1ULL << 32 ||
		    (uint64_t)m[i]->lower + m[i]->count > 1ULL << 32)
			return false;
	return true;
}

static bool user_valid(const NsEntry *e)
{
	return map_valid(e->uid_map, e->n_uid_map) && map_valid(e->gid_map, e->n_gid_map) &&
	       e->has_setgroups_deny;
}

static int write_map(pid_t pid, const char *name, NsIdMap *const *m, size_t n)
{
	char path[64], *buf = xzalloc(n * 36 + 1);
	size_t i, len = 0;
	int fd, ret = 0;

	if (!n) {
		free(buf);
		return 0; /* never written in the original either */
	}
	for (i = 0; i < n; i++)
		len += sprintf(buf + len, "%u %u %u\n", m[i]->first, m[i]->lower, m[i]->count);
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	/* the whole map in one write: the kernel takes only one */
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
		pr_perror("cannot write the %s of the new user namespace (%.*s%s)", name,
			  (int)strcspn(buf, "\n"), buf, n > 1 ? " ..." : "");
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

/* From the parent namespace, before the root runs: setgroups first, then the maps. */
static int user_set_up(struct rst_ctx *c, const NsEntry *e, pid_t pid)
{
	char path[64];
	int fd;

	if (e->has_owner_uid && e->owner_uid != geteuid())
		pr_warn("the user namespace was owned by uid %u; the new one is owned by uid %u "
			"(ours)\n",
			e->owner_uid, geteuid());
	if (e->setgroups_deny) {
		snprintf(path, sizeof(path), "/proc/%d/setgroups", pid);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "deny", 4) != 4) {
			pr_perror("cannot deny setgroups in the new user namespace");
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	return write_map(pid, "uid_map", e->uid_map, e->n_uid_map) ||
		       write_map(pid, "gid_map", e->gid_map, e->n_gid_map)
		   ? -1
		   : 0;
}

int userns_id_inside(struct rst_ctx *c, bool gid, uint32_t host, uint32_t *inside)
{
	const NsEntry *e = ns_of(c, NS_K_USER);
	NsIdMap *const *m;
	size_t i, n;

	if (!e) {
		*inside = host;
		return 0;
	}
	m = gid ? e->gid_map : e->uid_map;
	n = gid ? e->n_gid_map : e->n_uid_map;
	for (i = 0; i < n; i++)
		if (host >= m[i]->lower && host - m[i]->lower < m[i]->count) {
			*inside = m[i]->first + (host - m[i]->lower);
			return 0;
		}
	return 1;
}

const struct ns_kind user_ns_kind = {
	.name = "user",
	.label = "user",
	.nstype = CLONE_NEWUSER,
	.kind = NS_KIND__NS_USER,
	NS_TE_FIELD(user_ns),
	.inherits = NS_K_USER,
	.same_in_threads = true,
	.one_per_tree = true,
	.at_fork = true,
	.describe = user_describe,
	.valid = user_valid,
	.set_up = user_set_up,
};
