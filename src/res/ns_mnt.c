/*
 * Mount namespaces: a tree in a mount namespace of its own (a container)
 * is saved as its mount table and rebuilt in a new namespace.  ns.c owns
 * who is in which namespace; this file owns the table (IMG_MNT records,
 * images/mnt.proto) and, for each tmpfs the tree owns, its files
 * (IMG_MNT_FILE).
 *
 * At dump each mount of /proc/ROOT/mountinfo is given a way back, in this
 * order: an external mount the user named (--ext-mount-map MNT:KEY); a
 * bind of the same file system the dumper sees (same device, its root
 * below a mount of ours: a host directory or file, the host's root, its
 * /proc, a sysfs that shares the host's super block); a bind of a part of
 * an earlier mount of the tree; a new instance of proc, sysfs, devpts,
 * mqueue, cgroup2 or overlay with the same options; a new tmpfs with the
 * same options and its files, read through a detached copy of the mount
 * (open_tree), so files hidden under other mounts are saved too.  Any other
 * mount is refused by name.  Peer groups must stay inside the tree.
 *
 * At restore the namespace's creator (its restore child, once ns.c made
 * the namespace and cgroup.c put it in its cgroups) builds every mount
 * detached (fsopen/fsmount, open_tree) and attaches it with move_mount
 * under its parent, found by fd rather than by path so that mounts over
 * mounts and hidden mounts come back where they were.  The root is built
 * on a directory the controller made in /tmp before the fork (and removes
 * if the restore fails), entered with pivot_root; the old root is
 * detached and the directory removed.  Flags, read-only super blocks and
 * propagation (peer groups through MOVE_MOUNT_SET_GROUP) are set last.
 * Everything the child opens afterwards (mappings, files, the cwd) is
 * then named as the tree named it.  The image is read through its
 * service fd, which survives the pivot.  In a user namespace of the
 * tree's own, the host's mounts come from a host side (below).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "ns.h"
#include "res.h"
#include "util.h"
#include "mnt.pb-c.h"

#define CHUNK (1 << 20) /* bytes of a file per IMG_MNT_FILE record */

/* One line of mountinfo. */
struct mi {
	uint32_t id, parent;
	unsigned int major, minor;
	char *root, *mp, *mopts, *fstype, *source, *sopts;
	uint32_t shared, master;
	bool unbindable;
};

struct mi_table {
	struct mi *v;
	size_t n;
	char *text;
};

struct mnt_dump {
	MntEntry **ents;
	size_t n;
	int *tree_fd; /* per entry: a detached copy of a tmpfs, else -1 */
	int root_fd;  /* the namespace's root, as the tree sees it */
	uint64_t ns_id;
	pid_t pid;
	bool written;
};

struct mnt_image {
	MntEntry **ents;
	size_t n;
	MntFile **files;
	size_t nfiles;
	/*
	 * a tree in a user namespace of its own: the process that takes the
	 * host's mounts for it (host_side below), 0 if none, and the socket
	 * to it: ours, and the end the root's restore child inherits
	 */
	pid_t host_side;
	int host_pidfd; /* the host side's: signalled safely even once reaped */
	int child_sk;
	/*
	 * the directory in /tmp the root is built on, made by the controller
	 * before the fork and removed by it if the restore fails (a restore
	 * child killed in the middle of the build cannot)
	 */
	char stage[32];
};

/* the dump under way, for mnt_dump_path() and mnt_dump_dev_rebuilt() */
static struct mnt_dump *cur_dump;

/* restore child: the devices of the file systems it made anew (its kids inherit them) */
static dev_t *rebuilt_devs;
static size_t n_rebuilt_devs;

/* ------------------------------------------------------------ mountinfo */

/* Undo mountinfo's octal escapes (\040 ...) in place. */
static char *unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0');
			r += 4;
		} else
			*w++ = *r++;
	}
	*w = 0;
	return s;
}

static int parse_line(char *line, struct mi *m)
{
	char *f[16], *save = NULL, *tok;
	int n = 0, i;

	memset(m, 0, sizeof(*m));
	for (tok = strtok_r(line, " ", &save); tok && n < 16; tok = strtok_r(NULL, " ", &save))
		f[n++] = tok;
	if (n < 10 || sscanf(f[0], "%u", &m->id) != 1 || sscanf(f[1], "%u", &m->parent) != 1 ||
	    sscanf(f[2], "%u:%u", &m->major, &m->minor) != 2)
		return -1;
	m->root = unescape(f[3]);
	m->mp = unescape(f[4]);
	m->mopts = f[5];
	for (i = 6; i < n && strcmp(f[i], "-"); i++) {
		if (!strncmp(f[i], "shared:", 7))
			m->shared = strtoul(f[i] + 7, NULL, 10);
		else if (!strncmp(f[i], "master:", 7))
			m->master = strtoul(f[i] + 7, NULL, 10);
		else if (!strcmp(f[i], "unbindable"))
			m->unbindable = true;
	}
	if (i + 2 >= n)
		return -1;
	m->fstype = f[i + 1];
	m->source = unescape(f[i + 2]);
	m->sopts = i + 3 < n ? f[i + 3] : (char *)"";
	return 0;
}

static int read_mountinfo(pid_t pid, struct mi_table *t)
{
	char *line, *save = NULL;

	memset(t, 0, sizeof(*t));
	t->text = read_proc(pid, "mountinfo", NULL);
	if (!t->text) {
		pr_perror("pid %d: cannot read its mountinfo", pid);
		return -1;
	}
	for (line = strtok_r(t->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
		if (parse_line(line, &t->v[t->n])) {
			pr_err("pid %d: cannot parse a line of its mountinfo\n", pid);
			return -1;
		}
		t->n++;
	}
	return 0;
}

static void mi_free(struct mi_table *t)
{
	free(t->v);
	free(t->text);
}

/* The per-mount flags of "rw,nosuid,relatime" as MOUNT_ATTR_* bits. */
static uint32_t mount_attrs(const char *opts)
{
	char *s = xstrdup(opts), *tok, *save = NULL;
	uint32_t a = MOUNT_ATTR_STRICTATIME;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "ro"))
			a |= MOUNT_ATTR_RDONLY;
		else if (!strcmp(tok, "nosuid"))
			a |= MOUNT_ATTR_NOSUID;
		else if (!strcmp(tok, "nodev"))
			a |= MOUNT_ATTR_NODEV;
		else if (!strcmp(tok, "noexec"))
			a |= MOUNT_ATTR_NOEXEC;
		else if (!strcmp(tok, "nodiratime"))
			a |= MOUNT_ATTR_NODIRATIME;
		else if (!strcmp(tok, "nosymfollow"))
			a |= MOUNT_ATTR_NOSYMFOLLOW;
		else if (!strcmp(tok, "relatime"))
			a = (a & ~MOUNT_ATTR__ATIME) | MOUNT_ATTR_RELATIME;
		else if (!strcmp(tok, "noatime"))
			a = (a & ~MOUNT_ATTR__ATIME) | MOUNT_ATTR_NOATIME;
	}
	free(s);
	return a;
}

/* The super block's options without rw/ro (which *ro says). */
static char *sb_options(const char *opts, bool *ro)
{
	char *s = xstrdup(opts), *out = xzalloc(strlen(opts) + 1), *tok, *save = NULL;

	*ro = false;
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "ro")) {
			*ro = true;
			continue;
		}
		if (!strcmp(tok, "rw"))
			continue;
		if (*out)
			strcat(out, ",");
		strcat(out, tok);
	}
	free(s);
	return out;
}

/* Is path below (or at) dir, both absolute?  *rel: what is left, "" at dir. */
static bool path_below(const char *path, const char *dir, const char **rel)
{
	size_t n = strlen(dir);

	if (!strcmp(dir, "/")) {
		*rel = path + 1;
		return path[0] == '/';
	}
	if (strncmp(path, dir, n) || (path[n] && path[n] != '/'))
		return false;
	*rel = path[n] ? path + n + 1 : path + n;
	return true;
}

/* ------------------------------------------------------------------ dump */

static const char *const new_fs[] = { "proc", "sysfs", "devpts", "mqueue", "cgroup2", "overlay" };

static bool is_new_fs(const char *fstype)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(new_fs); i++)
		if (!strcmp(fstype, new_fs[i]))
			return true;
	return false;
}

/* How many mounts of ours after index i sit on the same mountpoint. */
static uint32_t depth_of(const struct mi_table *host, size_t i)
{
	uint32_t d = 0;
	size_t j;

	for (j = i + 1; j < host->n; j++)
		if (!strcmp(host->v[j].mp, host->v[i].mp))
			d++;
	return d;
}

/* A mount of ours that shows the same file system at or above root. */
static char *host_path_of(const struct mi_table *host, const struct mi *m, uint32_t *depth)
{
	struct stat st;
	size_t i;

	for (i = 0; i < host->n; i++) {
		const struct mi *h = &host->v[i];
		const char *rel;
		char *p;

		if (h->major != m->major || h->minor != m->minor || strcmp(h->fstype, m->fstype) ||
		    !path_below(m->root, h->root, &rel))
			continue;
		p = xmalloc(strlen(h->mp) + strlen(rel) + 2);
		sprintf(p, "%s%s%s", h->mp, strcmp(h->mp, "/") && *rel ? "/" : "", rel);
		*depth = 0;
		if (!stat(p, &st) &&
		    (st.st_dev == makedev(m->major, m->minor) || strcmp(m->fstype, "btrfs") == 0))
			return p;
		/* hidden on the host under mounts on the same point: reached at restore */
		if (!*rel && (*depth = depth_of(host, i)))
			return p;
		free(p);
	}
	return NULL;
}

static bool group_in(const struct mi_table *t, uint32_t g, bool shared_only)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].shared == g || (!shared_only && t->v[i].master == g))
			return true;
	return false;
}

static void refuse(pid_t pid, const struct mi *m, const char *why)
{
	pr_err("pid %d: mount %s (%s, source %s, root %s): %s; pass --ext-mount-map %s:KEY to "
	       "dump and restore it as external\n",
	       pid, m->mp, m->fstype, m->source, m->root, why, m->mp);
}

static const char *ext_key(const struct dump_opts *o, const char *mp)
{
	int i;

	for (i = 0; i < o->n_ext_mounts; i++)
		if (!strcmp(o->ext_mounts[i].a, mp))
			return o->ext_mounts[i].b;
	return NULL;
}

/* How mount m of the tree (index i) comes back, into e. */
static int classify(struct mnt_dump *md, const struct dump_opts *o, const struct mi_table *tree,
		    const struct mi_table *host, size_t i, MntEntry *e)
{
	const struct mi *m = &tree->v[i];
	const char *key = ext_key(o, m->mp), *rel;
	size_t j;

	if (m->shared && group_in(host, m->shared, false)) {
		refuse(md->pid, m, "its peer group reaches outside the tree");
		return -1;
	}
	if (m->master && !group_in(tree, m->master, true)) {
		refuse(md->pid, m, "it is a slave of a mount outside the tree");
		return -1;
	}
	if (key) {
		e->how = MNT_HOW__MNT_EXTERNAL;
		e->host_path = xstrdup(key);
		return 0;
	}
	if ((e->host_path = host_path_of(host, m, &e->host_depth))) {
		e->how = MNT_HOW__MNT_HOST;
		e->has_host_depth = e->has_host_dev = !!e->host_depth;
		e->host_dev = makedev(m->major, m->minor);
		return 0;
	}
	for (j = 0; j < i; j++) {
		const struct mi *p = &tree->v[j];

		if (p->major == m->major && p->minor == m->minor &&
		    (md->ents[j]->how == MNT_HOW__MNT_TMPFS ||
		     md->ents[j]->how == MNT_HOW__MNT_NEW) &&
		    !strcmp(p->root, "/") && path_below(m->root, "/", &rel)) {
			e->how = MNT_HOW__MNT_TREE;
			e->has_bind_of = true;
			e->bind_of = p->id;
			e->bind_path = xstrdup(rel);
			return 0;
		}
	}
	if (strcmp(m->fstype, "tmpfs") && !is_new_fs(m->fstype)) {
		refuse(md->pid, m, "stasis cannot recreate this file system type");
		return -1;
	}
	if (strcmp(m->root, "/")) {
		refuse(md->pid, m,
		       "a part of a file system that neither the tree nor stasis mounts whole "
		       "cannot be recreated");
		return -1;
	}
	e->how = strcmp(m->fstype, "tmpfs") ? MNT_HOW__MNT_NEW : MNT_HOW__MNT_TMPFS;
	return 0;
}

static MntEntry *entry_of(const struct mi *m, uint64_t ns_id, const struct mi_table *tree)
{
	MntEntry *e = xzalloc(sizeof(*e));
	bool ro;
	size_t j;

	mnt_entry__init(e);
	e->ns_id = ns_id;
	e->mnt_id = m->id;
	for (j = 0; j < tree->n; j++)
		if (tree->v[j].id == m->parent && &tree->v[j] != m)
			e->parent_id = m->parent;
	e->mountpoint = xstrdup(m->mp);
	e->root = xstrdup(m->root);
	e->fstype = xstrdup(m->fstype);
	e->source = xstrdup(m->source);
	e->options = sb_options(m->sopts, &ro);
	e->has_sb_ro = ro;
	e->sb_ro = ro;
	e->flags = mount_attrs(m->mopts);
	e->has_shared = !!m->shared;
	e->shared = m->shared;
	e->has_master = !!m->master;
	e->master = m->master;
	e->has_unbindable = m->unbindable;
	e->unbindable = m->unbindable;
	return e;
}

static int send_fd(int sk, int fd, int err)
{
	return sk_send_with_fd(sk, &err, sizeof(err), fd, 0);
}

static int recv_fd(int sk, int *err)
{
	char buf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { err, sizeof(*err) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof(buf)
	};
	struct cmsghdr *cm;
	int fd = -1;

	if (recvmsg(sk, &mh, MSG_CMSG_CLOEXEC) != sizeof(*err)) {
		*err = EIO;
		return -1;
	}
	cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/*
 * From inside the tree's namespace (a child of ours that entered it): its
 * root, then a detached copy of each tmpfs to save, hidden or not.
 */
static int fetch_fds(struct mnt_dump *md, const struct mi_table *tree)
{
	char path[64];
	int sk[2], ns, err, status;
	size_t i;
	pid_t kid;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", md->pid);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk)) {
		pr_perror("pid %d: cannot open its mount namespace", md->pid);
		if (ns >= 0)
			close(ns);
		return -1;
	}
	kid = fork();
	if (kid == 0) {
		close(sk[0]);
		if (setns(ns, CLONE_NEWNS)) {
			send_fd(sk[1], -1, errno);
			_exit(1);
		}
		err = 0;
		i = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		send_fd(sk[1], i, (int)i < 0 ? errno : 0);
		for (i = 0; i < md->n; i++) {
			int fd = -1;

			if (md->ents[i]->how != MNT_HOW__MNT_TMPFS)
				continue;
			fd =
			    open_tree(AT_FDCWD, tree->v[i].mp, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
			/* an unbindable mount has no copy: itself, its mountpoints skipped */
			if (fd < 0 && errno == EINVAL && tree->v[i].unbindable)
				fd = open(tree->v[i].mp, O_PATH | O_DIRECTORY | O_CLOEXEC);
			send_fd(sk[1], fd, fd < 0 ? errno : 0);
		}
		_exit(0);
	}
	close(ns);
	close(sk[1]);
	if (kid < 0) {
		close(sk[0]);
		pr_perror("fork");
		return -1;
	}
	md->root_fd = recv_fd(sk[0], &err);
	if (md->root_fd < 0)
		pr_err("pid %d: cannot enter its mount namespace: %s\n", md->pid, strerror(err));
	for (i = 0; md->root_fd >= 0 && i < md->n; i++) {
		struct stat st;
		const struct mi *m = &tree->v[i];

		if (md->ents[i]->how != MNT_HOW__MNT_TMPFS)
			continue;
		md->tree_fd[i] = recv_fd(sk[0], &err);
		if (md->tree_fd[i] < 0) {
			pr_err("pid %d: cannot read the tmpfs at %s: %s\n", md->pid, m->mp,
			       strerror(err));
			break;
		}
		if (fstat(md->tree_fd[i], &st) || st.st_dev != makedev(m->major, m->minor)) {
			refuse(md->pid, m, "a tmpfs hidden under another mount is not saved");
			break;
		}
	}
	close(sk[0]);
	while (waitpid(kid, &status, 0) < 0 && errno == EINTR)
		;
	if (md->root_fd < 0 || i < md->n)
		return -1;
	return 0;
}

/* Is pid in another user namespace than ours? */
static bool in_own_userns(pid_t pid)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	return !stat(path, &a) && !stat("/proc/self/ns/user", &b) && a.st_ino != b.st_ino;
}

/*
 * Which mounts of the tree's table are locked (MNT_LOCKED: root of its
 * user namespace cannot unmount them), which /proc does not show: a
 * child of ours enters the tree's user namespace and mount namespace,
 * makes a throwaway copy of it there (the same user namespace: the locks
 * stay), makes the copy private (its mounts are peers of the tree's: an
 * unmount would propagate into the tree), and tries to unmount each
 * mount, the last first (so that what was mounted over or below it is
 * gone when it is tried).  One byte per
 * entry: 0 unlocked, 1 locked (EINVAL on a mount root), 2 not known (its
 * mountpoint is not a mount root there, or another error).
 */
static void probe_locks(struct mnt_dump *md, const struct mi_table *tree)
{
	char path[64], *res = xzalloc(tree->n + 1);
	int user, mnt, p[2], status;
	size_t i;
	pid_t kid;

	snprintf(path, sizeof(path), "/proc/%d/ns/user", md->pid);
	user = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", md->pid);
	mnt = open(path, O_RDONLY | O_CLOEXEC);
	if (user < 0 || mnt < 0 || pipe2(p, O_CLOEXEC))
		goto out;
	kid = fork();
	if (kid == 0) {
		struct statx sx;

		close(p[0]);
		memset(res, 2, tree->n);
		/*
		 * private before anything is unmounted: the copy's mounts are
		 * peers of the tree's, and an unmount would propagate to them
		 */
		if (!setns(user, CLONE_NEWUSER) && !setns(mnt, CLONE_NEWNS) &&
		    !unshare(CLONE_NEWNS) && !mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			for (i = tree->n; i-- > 1;) {
				const char *mp = tree->v[i].mp;

				if (statx(AT_FDCWD, mp, AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW,
					  STATX_BASIC_STATS, &sx) ||
				    !(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) ||
				    !(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
					continue;
				if (!umount2(mp, MNT_DETACH))
					res[i] = 0;
				else if (errno == EINVAL)
					res[i] = 1;
			}
		_exit(write(p[1], res, tree->n) == (ssize_t)tree->n ? 0 : 1);
	}
	close(p[1]);
	if (kid > 0) {
		if (read(p[0], res, tree->n) == (ssize_t)tree->n)
			for (i = 1; i < md->n && i < tree->n; i++)
				if (res[i] < 2) {
					md->ents[i]->has_locked = true;
					md->ents[i]->locked = res[i];
				}
		while (waitpid(kid, &status, 0) < 0 && errno == EINTR)
			;
	}
	close(p[0]);
	if (md->n && md->ents[1] && md->ents[1]->has_locked)
		md->ents[0]->has_locked = true; /* the root of the namespace: never locked */
out:
	if (user >= 0)
		close(user);
	if (mnt >= 0)
		close(mnt);
	free(res);
}

static int mnt_describe(const struct ns_view *v, size_t task, NsEntry *e)
{
	struct mnt_dump *md = res_dump_state(v->ctx, &mnt_res);
	struct mi_table tree = { 0 }, host = { 0 };
	size_t i;
	int ret = -1;

	md->pid = ns_view_pid(v, task);
	md->ns_id = e->id;
	md->root_fd = -1;
	cur_dump = md;
	if (read_mountinfo(md->pid, &tree) || read_mountinfo(getpid(), &host))
		goto out;
	md->ents = xzalloc((tree.n + 1) * sizeof(*md->ents));
	md->tree_fd = xzalloc((tree.n + 1) * sizeof(*md->tree_fd));
	for (i = 0; i < tree.n; i++) {
		md->tree_fd[i] = -1;
		md->ents[i] = entry_of(&tree.v[i], e->id, &tree);
		md->n++;
		if (classify(md, v->ctx->opts, &tree, &host, i, md->ents[i]))
			goto out;
		if (i && !md->ents[i]->parent_id) {
			pr_err("pid %d: mount %s has no parent in its namespace; not supported\n",
			       md->pid, tree.v[i].mp);
			goto out;
		}
	}
	if (!tree.n || md->ents[0]->parent_id) {
		pr_err("pid %d: its mount table has no root mount first\n", md->pid);
		goto out;
	}
	for (i = 0;
	     i < tree.n && !(!strcmp(tree.v[i].mp, "/proc") && !strcmp(tree.v[i].fstype, "proc"));
	     i++)
		;
	if (i == tree.n) {
		/* the restore's own steps after the pivot read /proc/self */
		pr_err("pid %d: its mount namespace has no proc at /proc, which the restore needs "
		       "inside it; not supported\n",
		       md->pid);
		goto out;
	}
	ret = fetch_fds(md, &tree);
	if (!ret && in_own_userns(md->pid))
		probe_locks(md, &tree);
out:
	mi_free(&tree);
	mi_free(&host);
	return ret;
}

const char *mnt_dump_path(const char *path, char *buf, size_t size)
{
	if (!cur_dump || cur_dump->root_fd < 0 || path[0] != '/')
		return path;
	snprintf(buf, size, "/proc/self/fd/%d%s", cur_dump->root_fd, path);
	return buf;
}

bool mnt_dump_dev_rebuilt(dev_t dev)
{
	size_t i;

	if (!cur_dump)
		return false;
	for (i = 0; i < cur_dump->n; i++) {
		MntEntry *e = cur_dump->ents[i];

		if ((e->how == MNT_HOW__MNT_NEW || e->how == MNT_HOW__MNT_TMPFS) &&
		    cur_dump->tree_fd && i < cur_dump->n) {
			struct stat st;

			if (cur_dump->tree_fd[i] >= 0 && !fstat(cur_dump->tree_fd[i], &st) &&
			    st.st_dev == dev)
				return true;
			if (e->how == MNT_HOW__MNT_NEW) {
				char p[PATH_MAX];

				if (!stat(mnt_dump_path(e->mountpoint, p, sizeof(p)), &st) &&
				    st.st_dev == dev)
					return true;
			}
		}
	}
	return false;
}

bool mnt_restore_dev_rebuilt(dev_t dev)
{
	size_t i;

	for (i = 0; i < n_rebuilt_devs; i++)
		if (rebuilt_devs[i] == dev)
			return true;
	return false;
}

/* ----- the files of a tmpfs */

struct walk {
	struct dump_ctx *ctx;
	uint32_t mnt_id;
	dev_t dev; /* the tmpfs's: another is a mount on it, seen from above */
	struct {
		dev_t dev;
		ino_t ino;
		char *path;
	} * seen; /* hard links */
	size_t nseen;
};

static int write_file(struct walk *w, MntFile *f)
{
	return img_write_msg(&w->ctx->w, IMG_MNT_FILE, &f->base);
}

static int save_data(struct walk *w, int dir, const char *name, const char *path, MntFile *f)
{
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
	uint8_t *buf = NULL;
	uint64_t off = 0;
	ssize_t n;
	int ret = -1;

	if (fd < 0)
		fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot read %s of the tmpfs", path);
		return -1;
	}
	buf = xmalloc(CHUNK);
	for (;;) {
		n = read(fd, buf, CHUNK);
		if (n < 0) {
			pr_perror("cannot read %s of the tmpfs", path);
			goto out;
		}
		if (n == 0 && off)
			break;
		f->has_data = true;
		f->data.data = buf;
		f->data.len = n;
		if (off) {
			f->has_offset = true;
			f->offset = off;
		}
		if (write_file(w, f))
			goto out;
		if (!off) {
			/* the rest: continuation records of the data alone */
			mnt_file__init(f);
			f->mnt_id = w->mnt_id;
			f->path = (char *)path;
		}
		off += n;
		if (n == 0)
			break;
	}
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}

static int walk_dir(struct walk *w, int dir, const char *prefix);

static int walk_entry(struct walk *w, int dir, const char *name, const char *path,
		      const struct stat *st)
{
	MntFile f = MNT_FILE__INIT;
	char target[PATH_MAX];
	size_t i;
	ssize_t n;
	int sub, ret;

	f.mnt_id = w->mnt_id;
	f.path = (char *)path;
	f.has_mode = f.has_uid = f.has_gid = true;
	f.mode = st->st_mode;
	f.uid = st->st_uid;
	f.gid = st->st_gid;
	f.has_atime_sec = f.has_atime_nsec = f.has_mtime_sec = f.has_mtime_nsec = true;
	f.atime_sec = st->st_atim.tv_sec;
	f.atime_nsec = st->st_atim.tv_nsec;
	f.mtime_sec = st->st_mtim.tv_sec;
	f.mtime_nsec = st->st_mtim.tv_nsec;
	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
		for (i = 0; i < w->nseen; i++)
			if (w->seen[i].ino == st->st_ino) {
				f.link = w->seen[i].path;
				return write_file(w, &f);
			}
		w->seen = xrealloc(w->seen, (w->nseen + 1) * sizeof(*w->seen));
		w->seen[w->nseen].dev = st->st_dev;
		w->seen[w->nseen].ino = st->st_ino;
		w->seen[w->nseen++].path = xstrdup(path);
	}
	if (st->st_dev != w->dev) {
		/* a mountpoint of a mount seen with its children: the point only */
		f.mode = S_ISDIR(st->st_mode) ? S_IFDIR | 0755 : S_IFREG | 0644;
		return write_file(w, &f);
	}
	switch (st->st_mode & S_IFMT) {
	case S_IFDIR:
		if (write_file(w, &f))
			return -1;
		sub =
		    openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
		if (sub < 0) {
			pr_perror("cannot open %s of the tmpfs", path);
			return -1;
		}
		ret = walk_dir(w, sub, path);
		close(sub);
		return ret;
	case S_IFREG:
		return save_data(w, dir, name, path, &f);
	case S_IFLNK:
		n = readlinkat(dir, name, target, sizeof(target) - 1);
		if (n < 0) {
			pr_perror("cannot read the symlink %s of the tmpfs", path);
			return -1;
		}
		target[n] = 0;
		f.target = target;
		return write_file(w, &f);
	case S_IFIFO:
	case S_IFCHR:
	case S_IFBLK:
		f.has_rdev = true;
		f.rdev = st->st_rdev;
		return write_file(w, &f);
	default:
		pr_err("pid %d: %s of a tmpfs of the tree is a socket; not saved\n",
		       cur_dump ? cur_dump->pid : 0, path);
		return -1;
	}
}

static int walk_dir(struct walk *w, int dir, const char *prefix)
{
	DIR *d;
	struct dirent *de;
	int dfd = dup(dir), ret = 0;

	if (dfd < 0 || !(d = fdopendir(dfd))) {
		pr_perror("cannot list %s of the tmpfs", *prefix ? prefix : "/");
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	while (!ret && (errno = 0, de = readdir(d))) {
		struct stat st;
		char *path;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			pr_perror("cannot stat %s/%s of the tmpfs", prefix, de->d_name);
			ret = -1;
			break;
		}
		path = xmalloc(strlen(prefix) + strlen(de->d_name) + 2);
		sprintf(path, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name);
		ret = walk_entry(w, dir, de->d_name, path, &st);
		free(path);
	}
	if (!ret && errno) {
		pr_perror("cannot list %s of the tmpfs", *prefix ? prefix : "/");
		ret = -1;
	}
	closedir(d);
	return ret;
}

static int save_tmpfs(struct dump_ctx *ctx, struct mnt_dump *md, size_t i)
{
	struct walk w = { .ctx = ctx, .mnt_id = md->ents[i]->mnt_id };
	MntFile f = MNT_FILE__INIT;
	struct stat st;
	size_t k;
	int ret, dfd;

	if (fstat(md->tree_fd[i], &st)) {
		pr_perror("cannot stat the tmpfs at %s", md->ents[i]->mountpoint);
		return -1;
	}
	w.dev = st.st_dev;
	f.mnt_id = w.mnt_id;
	f.path = "";
	f.has_mode = f.has_uid = f.has_gid = true;
	f.mode = st.st_mode;
	f.uid = st.st_uid;
	f.gid = st.st_gid;
	f.has_atime_sec = f.has_atime_nsec = f.has_mtime_sec = f.has_mtime_nsec = true;
	f.atime_sec = st.st_atim.tv_sec;
	f.atime_nsec = st.st_atim.tv_nsec;
	f.mtime_sec = st.st_mtim.tv_sec;
	f.mtime_nsec = st.st_mtim.tv_nsec;
	/* the mount's fd is O_PATH: a directory fd of its root to list it */
	dfd = openat(md->tree_fd[i], ".", O_RDONLY | O_DIRECTORY | O_NOATIME | O_CLOEXEC);
	if (dfd < 0) {
		pr_perror("cannot open the tmpfs at %s", md->ents[i]->mountpoint);
		return -1;
	}
	ret = write_file(&w, &f) || walk_dir(&w, dfd, "") ? -1 : 0;
	close(dfd);
	for (k = 0; k < w.nseen; k++)
		free(w.seen[k].path);
	free(w.seen);
	return ret;
}

/* After the first task's own records: the table, then the tmpfs files. */
static int mnt_dump_write(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct mnt_dump *md = res_dump_state(ctx, &mnt_res);
	size_t i;

	if (md->written || !md->n)
		return 0;
	md->written = true;
	for (i = 0; i < md->n; i++)
		if (img_write_msg(&ctx->w, IMG_MNT, &md->ents[i]->base))
			return -1;
	for (i = 0; i < md->n; i++)
		if (md->ents[i]->how == MNT_HOW__MNT_TMPFS && save_tmpfs(ctx, md, i))
			return -1;
	return 0;
}

static int mnt_dump_zombie(struct dump_ctx *ctx, struct dump_task *dt)
{
	return mnt_dump_write(ctx, dt);
}

static void mnt_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct mnt_dump *md = state;
	size_t i;

	for (i = 0; i < md->n; i++) {
		mnt_entry__free_unpacked(md->ents[i], NULL);
		if (md->tree_fd[i] >= 0)
			close(md->tree_fd[i]);
	}
	if (md->n && md->root_fd >= 0)
		close(md->root_fd);
	free(md->ents);
	free(md->tree_fd);
	if (cur_dump == md)
		cur_dump = NULL;
}

/* ------------------------------------------------------------------ load */

/* A relative path with no "." or ".." component and no empty one. */
static bool rel_path_ok(const char *p)
{
	const char *s = p;

	if (!*p)
		return true;
	if (*p == '/')
		return false;
	while (*s) {
		const char *e = strchrnul(s, '/');
		size_t n = e - s;

		if (!n || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s = *e ? e + 1 : e;
		if (*e && !*s)
			return false;
	}
	return true;
}

static bool abs_path_ok(const char *p)
{
	return p[0] == '/' && (!p[1] || rel_path_ok(p + 1));
}

/*
 * A bind of a namespace file (ip netns add): its root is "net:[INO]", not
 * a path; *ino the namespace's inode number.
 */
static bool nsfs_root(const MntEntry *e, uint64_t *ino)
{
	char kind[16];
	int end = 0;

	return !strcmp(e->fstype, "nsfs") &&
	       sscanf(e->root, "%15[a-z_]:[%" SCNu64 "]%n", kind, ino, &end) == 2 && end &&
	       !e->root[end];
}

static MntEntry *image_entry(const struct mnt_image *mi, uint32_t id, size_t before)
{
	size_t i;

	for (i = 0; i < before && i < mi->n; i++)
		if (mi->ents[i]->mnt_id == id)
			return mi->ents[i];
	return NULL;
}

int mnt_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct mnt_image *mi = res_image_state(img, &mnt_res);
	MntEntry *e = msg;
	uint64_t ino;
	bool bad;

	bad = !abs_path_ok(e->mountpoint) ||
	      (e->root[0] != '/' && !(e->how == MNT_HOW__MNT_HOST && nsfs_root(e, &ino))) ||
	      !e->mnt_id || image_entry(mi, e->mnt_id, mi->n) ||
	      (mi->n && e->ns_id != mi->ents[0]->ns_id) || (!mi->n) != (!e->parent_id) ||
	      (e->parent_id && !image_entry(mi, e->parent_id, mi->n)) ||
	      (e->how == MNT_HOW__MNT_HOST && (!e->host_path || e->host_path[0] != '/')) ||
	      (e->how == MNT_HOW__MNT_EXTERNAL && !e->host_path) ||
	      (e->how == MNT_HOW__MNT_TREE &&
	       (!e->has_bind_of || !image_entry(mi, e->bind_of, mi->n) || !e->bind_path ||
		!rel_path_ok(e->bind_path))) ||
	      (e->options && strlen(e->options) > 4096);
	if (bad) {
		pr_err("image %s is corrupt: mount record %u (%s) is malformed or repeated\n",
		       img->r.path, e->mnt_id, e->mountpoint);
		mnt_entry__free_unpacked(e, NULL);
		return -1;
	}
	mi->ents = xrealloc(mi->ents, (mi->n + 1) * sizeof(*mi->ents));
	mi->ents[mi->n++] = e;
	return 0;
}

int mnt_file_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct mnt_image *mi = res_image_state(img, &mnt_res);
	MntFile *f = msg, *last = mi->nfiles ? mi->files[mi->nfiles - 1] : NULL;
	MntEntry *m = image_entry(mi, f->mnt_id, mi->n);
	bool bad;

	if (f->has_offset && f->offset)
		bad = !last || !f->has_data || last->mnt_id != f->mnt_id ||
		      strcmp(last->path, f->path) || !S_ISREG(last->mode);
	else
		bad = !m || m->how != MNT_HOW__MNT_TMPFS || !rel_path_ok(f->path) || !f->has_mode ||
		      (!*f->path && !S_ISDIR(f->mode)) || (S_ISLNK(f->mode) && !f->target) ||
		      (f->link && !rel_path_ok(f->link));
	if (bad) {
		pr_err("image %s is corrupt: tmpfs file record '%s' is malformed\n", img->r.path,
		       f->path);
		mnt_file__free_unpacked(f, NULL);
		return -1;
	}
	mi->files = xrealloc(mi->files, (mi->nfiles + 1) * sizeof(*mi->files));
	mi->files[mi->nfiles++] = f;
	return 0;
}

/* Every task that names a mount namespace names the one the table is of. */
static int mnt_image_loaded(struct image *img)
{
	struct mnt_image *mi = res_image_state(img, &mnt_res);
	size_t i;

	for (i = 0; i < img->ntasks; i++) {
		const TaskEntry *te = img->tasks[i].te;

		if (te->has_mnt_ns && (!mi->n || te->mnt_ns != mi->ents[0]->ns_id)) {
			pr_err("image %s is corrupt: pid %u names a mount namespace without its "
			       "mount table\n",
			       img->r.path, te->pid);
			return -1;
		}
	}
	return 0;
}

static void mnt_image_fini(struct image *img, void *state)
{
	struct mnt_image *mi = state;
	size_t i;

	for (i = 0; i < mi->n; i++)
		mnt_entry__free_unpacked(mi->ents[i], NULL);
	for (i = 0; i < mi->nfiles; i++)
		mnt_file__free_unpacked(mi->files[i], NULL);
	free(mi->ents);
	free(mi->files);
}

static const char *ext_path(const struct restore_opts *o, const char *key)
{
	int i;

	for (i = 0; i < o->n_ext_mounts; i++)
		if (!strcmp(o->ext_mounts[i].a, key))
			return o->ext_mounts[i].b;
	return NULL;
}

/* Before anything is forked: every external mount has its path. */
static int mnt_restore_check(struct image *img, const struct restore_opts *o)
{
	struct mnt_image *mi = res_image_state(img, &mnt_res);
	size_t i;

	for (i = 0; i < mi->n; i++) {
		const MntEntry *e = mi->ents[i];
		struct stat st;
		const char *p;
		uint64_t ino;

		if (e->how == MNT_HOW__MNT_EXTERNAL) {
			p = ext_path(o, e->host_path);
			if (!p) {
				pr_err(
				    "mount %s is external (key %s): pass --ext-mount-map %s:PATH\n",
				    e->mountpoint, e->host_path, e->host_path);
				return -1;
			}
		} else if (e->how == MNT_HOW__MNT_HOST)
			p = e->host_path;
		else
			continue;
		if (stat(p, &st)) {
			pr_perror("mount %s: cannot bind %s", e->mountpoint, p);
			return -1;
		}
		/* a namespace file of ours: still the namespace the tree had */
		if (e->how == MNT_HOW__MNT_HOST && nsfs_root(e, &ino) && st.st_ino != ino) {
			pr_err("mount %s: %s is no longer %s but another namespace (inode %" PRIu64
			       ")\n",
			       e->mountpoint, p, e->root, (uint64_t)st.st_ino);
			return -1;
		}
	}
	return 0;
}

/* --------------------------------------------------------------- restore */

static int openat2_beneath(int dir, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = { .flags = flags | O_CLOEXEC, .resolve = resolve };

	return syscall(SYS_openat2, dir, path, &how, sizeof(how));
}

/* The directory holding path below dir (no symlink, no other mount), and its last name. */
static int open_parent(int dir, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	char *d;
	int fd;

	if (!slash) {
		*base = path;
		return fcntl(dir, F_DUPFD_CLOEXEC, 0);
	}
	*base = slash + 1;
	d = strndup(path, slash - path);
	fd = openat2_beneath(dir, d, O_PATH | O_DIRECTORY,
			     RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
	free(d);
	return fd;
}

static int set_times(int dir, const MntFile *f)
{
	struct timespec ts[2] = { { f->atime_sec, f->atime_nsec },
				  { f->mtime_sec, f->mtime_nsec } };
	const char *base;
	int pd, ret;

	if (!*f->path)
		return utimensat(dir, "", ts, AT_EMPTY_PATH) ? -1 : 0;
	pd = open_parent(dir, f->path, &base);
	if (pd < 0)
		return -1;
	ret = utimensat(pd, base, ts, AT_SYMLINK_NOFOLLOW);
	close(pd);
	return ret;
}

/* One entry of a tmpfs below its root dir; *wfd: a regular file left open for more data. */
static int make_file(int dir, const MntFile *f, int *wfd)
{
	const char *base;
	mode_t perm = f->mode & 07777;
	int pd, fd = -1, r = 0;

	if (f->has_offset && f->offset) {
		if (*wfd < 0 ||
		    pwrite(*wfd, f->data.data, f->data.len, f->offset) != (ssize_t)f->data.len)
			return -1;
		return 0;
	}
	if (*wfd >= 0) {
		close(*wfd);
		*wfd = -1;
	}
	if (!*f->path) {
		if (fchownat(dir, "", f->uid, f->gid, AT_EMPTY_PATH))
			return -1;
		fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = fd < 0 || fchmod(fd, perm) ? -1 : 0;
		if (fd >= 0)
			close(fd);
		return r;
	}
	pd = open_parent(dir, f->path, &base);
	if (pd < 0)
		return -1;
	if (f->link)
		r = linkat(dir, f->link, pd, base, 0);
	else if (S_ISDIR(f->mode))
		r = mkdirat(pd, base, 0700);
	else if (S_ISREG(f->mode)) {
		fd = openat(pd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		r = fd < 0 || (f->has_data && write_all(fd, f->data.data, f->data.len)) ? -1 : 0;
	} else if (S_ISLNK(f->mode))
		r = symlinkat(f->target, pd, base);
	else
		r = mknodat(pd, base, f->mode & ~07777, f->rdev);
	if (!r && !f->link)
		r = fchownat(pd, base, f->uid, f->gid, AT_SYMLINK_NOFOLLOW);
	if (!r && !f->link && !S_ISLNK(f->mode))
		r = fchmodat(pd, base, perm, 0);
	close(pd);
	if (fd >= 0) {
		if (r)
			close(fd);
		else
			*wfd = fd;
	}
	return r;
}

static int fill_tmpfs(struct mnt_image *mi, const MntEntry *e, int mfd)
{
	size_t i;
	int wfd = -1;

	for (i = 0; i < mi->nfiles; i++) {
		if (mi->files[i]->mnt_id != e->mnt_id)
			continue;
		if (make_file(mfd, mi->files[i], &wfd)) {
			pr_perror("cannot recreate %s in the tmpfs at %s", mi->files[i]->path,
				  e->mountpoint);
			if (wfd >= 0)
				close(wfd);
			return -1;
		}
	}
	if (wfd >= 0)
		close(wfd);
	/* times last, deepest first: filling a directory moves its mtime */
	for (i = mi->nfiles; i-- > 0;) {
		const MntFile *f = mi->files[i];

		if (f->mnt_id == e->mnt_id && !(f->has_offset && f->offset) && !f->link &&
		    set_times(mfd, f)) {
			pr_perror("cannot set the times of %s in the tmpfs at %s", f->path,
				  e->mountpoint);
			return -1;
		}
	}
	return 0;
}

/* A new super block of e's type with e's options: its detached mount. */
static int new_instance(const MntEntry *e)
{
	char *opts = xstrdup(e->options ? e->options : ""), *tok, *save = NULL, *eq;
	int fs = fsopen(e->fstype, FSOPEN_CLOEXEC), mfd = -1;

	if (fs < 0)
		goto out;
	if (e->source && fsconfig(fs, FSCONFIG_SET_STRING, "source", e->source, 0))
		goto out;
	for (tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		eq = strchr(tok, '=');
		if (eq)
			*eq++ = 0;
		if (eq ? fsconfig(fs, FSCONFIG_SET_STRING, tok, eq, 0)
		       : fsconfig(fs, FSCONFIG_SET_FLAG, tok, NULL, 0)) {
			pr_perror("mount %s: %s does not take the option %s", e->mountpoint,
				  e->fstype, tok);
			goto out;
		}
	}
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0))
		goto out;
	mfd = fsmount(fs, FSMOUNT_CLOEXEC, 0);
out:
	if (mfd < 0)
		pr_perror("mount %s: cannot create a %s", e->mountpoint, e->fstype);
	if (fs >= 0)
		close(fs);
	free(opts);
	return mfd;
}

static ssize_t index_of(const struct mnt_image *mi, uint32_t id)
{
	size_t i;

	for (i = 0; i < mi->n; i++)
		if (mi->ents[i]->mnt_id == id)
			return i;
	return -1;
}

/* e's mount, detached. */
static int make_mount(struct rst_ctx *c, struct mnt_image *mi, const MntEntry *e, const int *fds)
{
	const char *src = e->host_path;
	ssize_t b;
	int mfd;

	switch (e->how) {
	case MNT_HOW__MNT_EXTERNAL:
		src = ext_path(c->opts, e->host_path);
		/* fall through */
	case MNT_HOW__MNT_HOST:
		mfd = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (mfd < 0)
			pr_perror("mount %s: cannot bind %s", e->mountpoint, src);
		return mfd;
	case MNT_HOW__MNT_TREE:
		b = index_of(mi, e->bind_of);
		mfd = open_tree(fds[b], e->bind_path,
				OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
				    (*e->bind_path ? 0 : AT_EMPTY_PATH));
		if (mfd < 0)
			pr_perror("mount %s: cannot bind %s of %s", e->mountpoint, e->bind_path,
				  mi->ents[b]->mountpoint);
		return mfd;
	case MNT_HOW__MNT_NEW:
		return new_instance(e);
	case MNT_HOW__MNT_TMPFS:
		mfd = new_instance(e);
		if (mfd >= 0 && fill_tmpfs(mi, e, mfd)) {
			close(mfd);
			return -1;
		}
		return mfd;
	default:
		pr_err("mount %s: unknown kind %d\n", e->mountpoint, e->how);
		return -1;
	}
}

/* The directories above rel below dir, none through a symlink or another mount. */
static int mkdirs_beneath(int dir, const char *rel)
{
	char *d = xstrdup(rel), *s;
	const char *base;
	int pd, r = 0;

	for (s = strchr(d, '/'); s && !r; s = strchr(s + 1, '/')) {
		*s = 0;
		pd = open_parent(dir, d, &base);
		r = pd < 0 || (mkdirat(pd, base, 0755) && errno != EEXIST) ? -1 : 0;
		if (pd >= 0)
			close(pd);
		*s = '/';
	}
	free(d);
	return r;
}

/* Where e goes: below its parent's root, made if missing (a dir or a file). */
static int mountpoint_fd(const MntEntry *e, const MntEntry *p, int pfd, int mfd)
{
	const char *rel, *base;
	struct stat st;
	int fd, pd;

	if (!path_below(e->mountpoint, p->mountpoint, &rel))
		return -1;
	if (!*rel)
		return fcntl(pfd, F_DUPFD_CLOEXEC, 0);
	fd = openat2_beneath(pfd, rel, O_PATH,
			     RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	/* a mountpoint the parent lost: make it, and the directories above */
	if (fstat(mfd, &st))
		return -1;
	if (mkdirs_beneath(pfd, rel))
		return -1;
	pd = open_parent(pfd, rel, &base);
	if (pd < 0)
		return -1;
	if (S_ISDIR(st.st_mode)
		? mkdirat(pd, base, 0755)
		: (fd = openat(pd, base, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644),
		   fd < 0 ? -1 : close(fd))) {
		close(pd);
		return -1;
	}
	close(pd);
	return openat2_beneath(pfd, rel, O_PATH,
			       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
}

static int set_attrs(const MntEntry *e, int mfd)
{
	struct mount_attr a = { .attr_set = e->flags, .attr_clr = MOUNT_ATTR__ATIME };
	int fs;

	if (e->sb_ro && (e->how == MNT_HOW__MNT_NEW || e->how == MNT_HOW__MNT_TMPFS)) {
		fs = fspick(mfd, "", FSPICK_EMPTY_PATH | FSPICK_CLOEXEC);
		if (fs < 0 || fsconfig(fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) ||
		    fsconfig(fs, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0)) {
			pr_perror("mount %s: cannot make its %s read-only", e->mountpoint,
				  e->fstype);
			if (fs >= 0)
				close(fs);
			return -1;
		}
		close(fs);
	}
	if (mount_setattr(mfd, "", AT_EMPTY_PATH, &a, sizeof(a))) {
		pr_perror("mount %s: cannot set its flags", e->mountpoint);
		return -1;
	}
	return 0;
}

static int set_prop(int mfd, uint64_t prop)
{
	struct mount_attr a = { .propagation = prop };

	return mount_setattr(mfd, "", AT_EMPTY_PATH, &a, sizeof(a));
}

/* The mount a peer group is copied from: the member with the widest root. */
static ssize_t group_leader(const struct mnt_image *mi, uint32_t g)
{
	ssize_t best = -1;
	size_t i;

	for (i = 0; i < mi->n; i++)
		if (mi->ents[i]->has_shared && mi->ents[i]->shared == g &&
		    (best < 0 || strlen(mi->ents[i]->root) < strlen(mi->ents[best]->root)))
			best = i;
	return best;
}

static int join_group(int from, int to)
{
	return move_mount(from, "", to, "",
			  MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

/* Peer groups, slaves, unbindable: once every mount is in place. */
static int set_propagation(struct mnt_image *mi, const int *fds)
{
	size_t i;
	ssize_t l;

	/* leaders of groups that are not slaves themselves */
	for (i = 0; i < mi->n; i++) {
		const MntEntry *e = mi->ents[i];

		if (e->has_shared && !e->has_master && group_leader(mi, e->shared) == (ssize_t)i &&
		    set_prop(fds[i], MS_SHARED))
			goto err;
	}
	/* slaves: a peer of their master's group for a moment, then its slave */
	for (i = 0; i < mi->n; i++) {
		const MntEntry *e = mi->ents[i];

		if (!e->has_master)
			continue;
		if (e->has_shared && group_leader(mi, e->shared) != (ssize_t)i)
			continue; /* joins its own group's leader below */
		l = group_leader(mi, e->master);
		if (l < 0 || join_group(fds[l], fds[i]) || set_prop(fds[i], MS_SLAVE) ||
		    (e->has_shared && set_prop(fds[i], MS_SHARED)))
			goto err;
	}
	for (i = 0; i < mi->n; i++) {
		const MntEntry *e = mi->ents[i];

		l = e->has_shared ? group_leader(mi, e->shared) : -1;
		if (l >= 0 && l != (ssize_t)i && join_group(fds[l], fds[i]))
			goto err;
	}
	for (i = 0; i < mi->n; i++)
		if (mi->ents[i]->unbindable && set_prop(fds[i], MS_UNBINDABLE))
			goto err;
	return 0;
err:
	pr_perror("mount %s: cannot set its propagation", mi->ents[i]->mountpoint);
	return -1;
}

/* Into the new root at fd root: the old one detached, the stage dir gone. */
static int enter_root(int root, int tmp, const char *stage)
{
	if (fchdir(root) || syscall(SYS_pivot_root, ".", ".")) {
		pr_perror("cannot pivot_root into the tree's root");
		return -1;
	}
	if (umount2(".", MNT_DETACH) || chdir("/")) {
		pr_perror("cannot detach the old root");
		return -1;
	}
	if (unlinkat(tmp, stage, AT_REMOVEDIR))
		pr_warn("cannot remove /tmp/%s: %m\n", stage);
	return 0;
}

/*
 * The host's mounts, detached copies taken before anything is mounted:
 * the visible first, then those under 1, 2 ... others at their point,
 * reached by taking the ones above away in our copy of the host's table.
 */
static int open_hosts(struct mnt_image *mi, int *fds)
{
	uint32_t depth, max = 0, k;
	struct stat st;
	size_t i;

	for (i = 0; i < mi->n; i++)
		if (mi->ents[i]->how == MNT_HOW__MNT_HOST && mi->ents[i]->host_depth > max)
			max = mi->ents[i]->host_depth;
	for (depth = 0; depth <= max; depth++)
		for (i = 0; i < mi->n; i++) {
			const MntEntry *e = mi->ents[i];

			if (e->how != MNT_HOW__MNT_HOST || e->host_depth != depth)
				continue;
			for (k = 0; k <= depth; k++) {
				fds[i] = open_tree(AT_FDCWD, e->host_path,
						   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
				if (fds[i] < 0 || !depth ||
				    (!fstat(fds[i], &st) && st.st_dev == e->host_dev))
					break;
				close(fds[i]);
				fds[i] = -1;
				if (umount2(e->host_path, MNT_DETACH))
					break;
			}
			if (fds[i] < 0 ||
			    (depth && (fstat(fds[i], &st) || st.st_dev != e->host_dev))) {
				pr_perror("mount %s: cannot bind %s", e->mountpoint, e->host_path);
				return -1;
			}
		}
	return 0;
}

/*
 * A copy made now of a copy made before: the table lists mounts in the
 * order they were made, which must be the tree's.
 */
static int reclone(const MntEntry *e, int early)
{
	int fd = open_tree(early, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);

	if (fd < 0)
		pr_perror("mount %s: cannot copy the bind of %s", e->mountpoint, e->host_path);
	close(early);
	return fd;
}

/* ----- the host side of a tree in a user namespace of its own */

/*
 * The host side: a process of ours in our user namespace and a private
 * copy of our mount namespace, that takes the host's mounts (open_hosts,
 * with the same umounts for hidden ones) and, on each request of the
 * restore child (an entry's index), sends a copy made that moment (the
 * ids keep the table's order).  Copies taken inside the tree's user
 * namespace would be of its locked copy of our table, which the kernel
 * refuses to bind without the mounts below (has_locked_children); a
 * detached mount may be moved into any namespace whose owner the mover
 * has CAP_SYS_ADMIN over, so the restore child attaches ours with
 * move_mount; the part unshare copied (and locked) comes by propagation,
 * locked again (host_copied_onto).
 */

/* Close every fd above 2 but the n in keep (the host side holds nothing of ours). */
static void keep_only(const int *keep, int n)
{
	int from = 3, next, i;

	for (;;) {
		next = -1;
		for (i = 0; i < n; i++)
			if (keep[i] >= from && (next < 0 || keep[i] < next))
				next = keep[i];
		if (next < 0)
			break;
		if (next > from)
			syscall(__NR_close_range, from, next - 1, 0);
		from = next + 1;
	}
	syscall(__NR_close_range, from, ~0U, 0);
}

/* The host side's copy of mount i, or of the path an external one names. */
static int host_copy(const struct restore_opts *o, const MntEntry *e, int early)
{
	if (early >= 0)
		return open_tree(early, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (e->how == MNT_HOW__MNT_EXTERNAL)
		return open_tree(AT_FDCWD, ext_path(o, e->host_path),
				 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	errno = EINVAL;
	return -1;
}

/* A request to the host side: a copy of entry index, or the copied part onto fd. */
enum { HOST_COPY, HOST_COPIED_ONTO };
struct host_req {
	uint32_t op, index;
};

static int send_req(int sk, uint32_t op, uint32_t index, int fd)
{
	struct host_req r = { op, index };

	return sk_send_with_fd(sk, &r, sizeof(r), fd, MSG_NOSIGNAL);
}

/* The next request (0), its fd in *fd (-1: none); -1 at the end of the socket. */
static int recv_req(int sk, struct host_req *r, int *fd)
{
	char buf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { r, sizeof(*r) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof(buf)
	};
	struct cmsghdr *cm;

	*fd = -1;
	if (recvmsg(sk, &mh, MSG_CMSG_CLOEXEC) != sizeof(*r))
		return -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(cm), sizeof(int));
	return 0;
}

/*
 * The copied part of the table: its first entries that are binds of host
 * mounts, each below an earlier one, all private.  That is what `unshare
 * --mount` copied into the tree's namespace, which the kernel locked
 * there (all but its root); the mounts the tree made itself come after.
 * How many, or 0 when there is nothing to lock (the root alone).
 */
static size_t copied_part(const struct mnt_image *mi)
{
	bool probed = true;
	size_t k;

	/* the dump probed the locks: the part is the locked mounts below the root */
	for (k = 1; k < mi->n && probed; k++)
		probed = mi->ents[k]->has_locked;
	for (k = 0; k < mi->n; k++) {
		const MntEntry *e = mi->ents[k];
		ssize_t p = e->parent_id ? index_of(mi, e->parent_id) : -1;

		if (e->how != MNT_HOW__MNT_HOST || e->has_shared || e->has_master ||
		    e->unbindable || (k && (p < 0 || (size_t)p >= k)) ||
		    (k && probed && !e->locked))
			break;
	}
	return k >= 2 ? k : 0;
}

/*
 * Host side: the copied part built detached from its first clones (with
 * their flags), then made to reach the restore child's namespace the way
 * the kernel locks mounts: by propagation from a namespace of a more
 * privileged user namespace.  Our bind S of the stage directory, shared,
 * takes the child's bind X of it (in its namespace) into its peer group
 * (MOVE_MOUNT_SET_GROUP, which needs CAP_SYS_ADMIN over both); the part
 * attached on S is copied onto X, its root unlocked and every mount below
 * it locked, with the flags locked too, as unshare leaves them.
 */
static int host_copied_onto(struct mnt_image *mi, int *fds, size_t k, int x)
{
	int sfd, to;
	size_t i;

	for (i = 0; i < k; i++) {
		const MntEntry *e = mi->ents[i];

		fds[i] = reclone(e, fds[i]);
		if (fds[i] < 0 || set_attrs(e, fds[i]))
			return -1;
		if (!i)
			continue;
		to = mountpoint_fd(e, mi->ents[index_of(mi, e->parent_id)],
				   fds[index_of(mi, e->parent_id)], fds[i]);
		if (to < 0 || move_mount(fds[i], "", to, "",
					 MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) {
			pr_perror("mount %s: cannot attach it to the copied part", e->mountpoint);
			if (to >= 0)
				close(to);
			return -1;
		}
		close(to);
	}
	sfd = open_tree(AT_FDCWD, mi->stage, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (sfd < 0 || move_mount(sfd, "", AT_FDCWD, mi->stage, MOVE_MOUNT_F_EMPTY_PATH) ||
	    set_prop(sfd, MS_SHARED) || join_group(sfd, x) ||
	    move_mount(fds[0], "", sfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) {
		pr_perror("cannot hand the copied mounts to the tree's namespace");
		if (sfd >= 0)
			close(sfd);
		return -1;
	}
	close(sfd);
	return 0;
}

/*
 * The host side's loop: a copy for each index asked for, until the
 * restore child's end closes or the controller (ctl, a pidfd) is gone.
 */
static void __attribute__((noreturn))
host_side_main(const struct restore_opts *o, struct mnt_image *mi, int sk, int ctl)
{
	int keep[3] = { sk, ctl, log_fd_get() }, *fds, err = 0, fd;
	struct pollfd pf[2] = { { .fd = sk, .events = POLLIN }, { .fd = ctl, .events = POLLIN } };
	uint32_t i;

	prctl(PR_SET_NAME, "stasis-mnthost", 0, 0, 0);
	keep_only(keep, 3);
	fds = xzalloc((mi->n + 1) * sizeof(*fds));
	for (i = 0; i < mi->n; i++)
		fds[i] = -1;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		pr_perror("cannot make a private mount namespace for the host's mounts");
		err = -1;
	} else if (open_hosts(mi, fds))
		err = -1; /* said so */
	for (;;) {
		struct host_req r;
		int x;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents || recv_req(sk, &r, &x))
			break;
		i = r.index;
		fd = -1;
		if (err || i >= mi->n)
			send_fd(sk, -1, err ? err : EINVAL);
		else if (r.op == HOST_COPIED_ONTO) {
			/* said why if it failed: the child fails without another word */
			send_fd(sk, -1,
				x >= 0 && !host_copied_onto(mi, fds, copied_part(mi), x) ? 0 : -1);
		} else {
			fd = host_copy(o, mi->ents[i], fds[i]);
			send_fd(sk, fd, fd < 0 ? errno : 0);
		}
		if (fd >= 0)
			close(fd);
		if (x >= 0)
			close(x);
	}
	_exit(0);
}

/*
 * The host side, forked out of our children (a grandchild whose parent
 * exits at once): the driver's waits for any child (waitpid -1, which
 * reap the tree) must never wait for it.  Its pid, or -1.
 */
static pid_t fork_host_side(const struct restore_opts *o, struct mnt_image *mi, int sk, int ctl)
{
	int p[2], status;
	pid_t mid, pid = -1;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	mid = fork();
	if (mid == 0) {
		pid_t h;

		close(p[0]);
		h = fork();
		if (h == 0) {
			close(p[1]);
			host_side_main(o, mi, sk, ctl);
		}
		_exit(h > 0 && write(p[1], &h, sizeof(h)) == sizeof(h) ? 0 : 1);
	}
	close(p[1]);
	if (mid > 0) {
		if (read(p[0], &pid, sizeof(pid)) != sizeof(pid))
			pid = -1;
		while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
			;
	}
	close(p[0]);
	return pid;
}

/* Does the build of c's mount table need the host side? */
static bool needs_host_side(struct rst_ctx *c, const struct mnt_image *mi)
{
	size_t i;

	if (!mi->n || c->t->parent || !ns_created_by(c, NS_K_MNT) || !ns_created_by(c, NS_K_USER))
		return false;
	for (i = 0; i < mi->n; i++)
		if (mi->ents[i]->how == MNT_HOW__MNT_HOST ||
		    mi->ents[i]->how == MNT_HOW__MNT_EXTERNAL)
			return true;
	return false;
}

/*
 * Controller, the root about to be forked: the directory its root is
 * built on and, into a user namespace of its own, the host side and the
 * socket to it at an fd above every service fd of the root's (which its
 * restore child places before it builds the table).
 */
static int mnt_root_fork(struct rst_ctx *c)
{
	struct mnt_image *mi = res_image_state(c->img, &mnt_res);
	int sk[2], kid_sk, ctl;
	pid_t pid;

	if (!mi->n || !ns_created_by(c, NS_K_MNT))
		return 0;
	strcpy(mi->stage, "/tmp/.stasis-root.XXXXXX");
	if (!mkdtemp(mi->stage)) {
		pr_perror("cannot make a directory in /tmp for the tree's root");
		mi->stage[0] = 0;
		return -1;
	}
	pr_debug("the tree's root: built on %s\n", mi->stage);
	if (!needs_host_side(c, mi))
		return 0;
	ctl = syscall(__NR_pidfd_open, getpid(), 0);
	if (ctl < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk)) {
		pr_perror("cannot make a socket for the host's mounts");
		if (ctl >= 0)
			close(ctl);
		return -1;
	}
	kid_sk = fcntl(sk[1], F_DUPFD_CLOEXEC, c->svc_end);
	close(sk[1]);
	pid = kid_sk < 0 ? -1 : fork_host_side(c->opts, mi, sk[0], ctl);
	close(sk[0]);
	close(ctl);
	/* it ends only when told, or alone: its pidfd, never its pid, is used */
	mi->host_pidfd = pid < 0 ? -1 : syscall(__NR_pidfd_open, pid, 0);
	if (mi->host_pidfd < 0) {
		pr_perror("cannot start the host side of the mount table");
		if (kid_sk >= 0)
			close(kid_sk); /* if it runs, it reads the end of its socket and exits */
		return -1;
	}
	mi->host_side = pid;
	mi->child_sk = kid_sk;
	pr_debug("the host's mounts: taken by pid %d\n", pid);
	return 0;
}

/* Controller, the root forked: its end is the restore child's alone. */
static int mnt_root_forked(struct rst_ctx *c, pid_t pid)
{
	struct mnt_image *mi = res_image_state(c->img, &mnt_res);

	if (mi->host_side > 0 && mi->child_sk >= 0) {
		close(mi->child_sk);
		mi->child_sk = -1;
	}
	return 0;
}

/* Restore child: a copy of host mount i made now by the host side. */
static int host_side_mount(struct mnt_image *mi, uint32_t i)
{
	const MntEntry *e = mi->ents[i];
	int fd, err = 0;

	if (send_req(mi->child_sk, HOST_COPY, i, -1)) {
		pr_perror("mount %s: cannot ask for it", e->mountpoint);
		return -1;
	}
	fd = recv_fd(mi->child_sk, &err);
	if (fd < 0 && err > 0)
		pr_err("mount %s: cannot bind %s: %s\n", e->mountpoint, e->host_path,
		       strerror(err));
	return fd;
}

/* The restore is over: the host side is done (or is told so). */
static void mnt_restore_end(struct image *img, const struct restore_opts *o, bool ok)
{
	struct mnt_image *mi = res_image_state(img, &mnt_res);
	struct pollfd pf = { .fd = mi->host_pidfd, .events = POLLIN };

	/* built and entered, the child removed it; else nothing is on it here */
	if (!ok && mi->stage[0] && rmdir(mi->stage) && errno != ENOENT)
		pr_warn("cannot remove %s: %m\n", mi->stage);
	mi->stage[0] = 0;
	if (mi->host_side <= 0)
		return;
	if (mi->child_sk >= 0)
		close(mi->child_sk);
	mi->child_sk = -1;
	/* not our child: signalled by pidfd, and gone when the pidfd says so */
	syscall(__NR_pidfd_send_signal, mi->host_pidfd, SIGKILL, NULL, 0);
	while (poll(&pf, 1, 5000) < 0 && errno == EINTR)
		;
	close(mi->host_pidfd);
	mi->host_side = 0;
}

/*
 * Restore child: the copied part of the table (copied_part, k entries),
 * from the host side by propagation onto our bind of the stage directory;
 * fds[] of its mounts (each found by its mountpoint: a mount hidden under
 * another of the part gets the one on top, as later mounts would see it).
 */
static int copied_from_host(struct mnt_image *mi, int *fds, size_t k)
{
	struct mount_attr priv = { .propagation = MS_PRIVATE };
	int x, err = 0;
	size_t i;

	x = open_tree(AT_FDCWD, mi->stage, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (x < 0 || move_mount(x, "", AT_FDCWD, mi->stage, MOVE_MOUNT_F_EMPTY_PATH)) {
		pr_perror("cannot bind %s for the copied mounts", mi->stage);
		goto fail;
	}
	if (send_req(mi->child_sk, HOST_COPIED_ONTO, 0, x) || recv_fd(mi->child_sk, &err) >= 0 ||
	    err) {
		if (err > 0)
			pr_err("cannot take the copied mounts: %s\n", strerror(err));
		goto fail;
	}
	/* on top of our bind: the part's root; nothing of it stays shared with the host side */
	fds[0] = open(mi->stage, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fds[0] < 0 || set_prop(x, MS_PRIVATE) ||
	    mount_setattr(fds[0], "", AT_EMPTY_PATH | AT_RECURSIVE, &priv, sizeof(priv))) {
		pr_perror("cannot make the copied mounts private");
		goto fail;
	}
	close(x);
	for (i = 1; i < k; i++) {
		const char *rel = mi->ents[i]->mountpoint + 1;

		fds[i] = *rel ? openat2_beneath(fds[0], rel, O_PATH,
						RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
			      : fcntl(fds[0], F_DUPFD_CLOEXEC, 0);
		if (fds[i] < 0) {
			pr_perror("mount %s: not found among the copied mounts",
				  mi->ents[i]->mountpoint);
			return -1;
		}
	}
	return 0;
fail:
	if (x >= 0)
		close(x);
	return -1;
}

static int build(struct rst_ctx *c, struct mnt_image *mi)
{
	const char *stage = mi->stage;
	bool entered = false;
	int *fds = xzalloc(mi->n * sizeof(*fds)), tmp = -1, to = -1, ret = -1;
	size_t i, copied;

	for (i = 0; i < mi->n; i++)
		fds[i] = -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		pr_perror("cannot make the new mount namespace private");
		goto out;
	}
	tmp = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (tmp < 0 || !stage[0]) {
		pr_perror("cannot open /tmp, where the tree's root is built");
		goto out;
	}
	if (mi->host_side <= 0 && open_hosts(mi, fds))
		goto out;
	copied = mi->host_side > 0 ? copied_part(mi) : 0;
	if (copied && copied_from_host(mi, fds, copied))
		goto out;
	for (i = copied ? copied : 1; i < mi->n; i++)
		if (mi->ents[i]->has_locked && mi->ents[i]->locked)
			pr_warn("mount %s was locked (copied from a more privileged namespace) and "
				"comes back unlocked: only the first mounts of a table can be\n",
				mi->ents[i]->mountpoint);
	for (i = copied; i < mi->n; i++) {
		const MntEntry *e = mi->ents[i];
		ssize_t p = e->parent_id ? index_of(mi, e->parent_id) : -1;

		if (fds[i] >= 0)
			fds[i] = reclone(e, fds[i]);
		else if (mi->host_side > 0 &&
			 (e->how == MNT_HOW__MNT_HOST || e->how == MNT_HOW__MNT_EXTERNAL))
			fds[i] = host_side_mount(mi, i);
		else
			fds[i] = make_mount(c, mi, e, fds);
		if (fds[i] < 0)
			goto out;
		if (p < 0)
			to = open(stage, O_PATH | O_DIRECTORY | O_CLOEXEC);
		else
			to = mountpoint_fd(e, mi->ents[p], fds[p], fds[i]);
		if (to < 0) {
			pr_perror("mount %s: no place for it", e->mountpoint);
			goto out;
		}
		if (move_mount(fds[i], "", to, "",
			       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) {
			pr_perror("mount %s: cannot attach it", e->mountpoint);
			goto out;
		}
		close(to);
		to = -1;
	}
	if (enter_root(fds[0], tmp, stage + 5))
		goto out;
	entered = true;
	/* the copied part has its flags from the host side, locked */
	for (i = mi->n; i-- > copied;)
		if (set_attrs(mi->ents[i], fds[i]))
			goto out;
	for (i = 0; i < mi->n; i++) {
		struct stat st;

		if ((mi->ents[i]->how == MNT_HOW__MNT_NEW ||
		     mi->ents[i]->how == MNT_HOW__MNT_TMPFS) &&
		    !fstat(fds[i], &st)) {
			rebuilt_devs = xrealloc(rebuilt_devs, (n_rebuilt_devs + 1) * sizeof(dev_t));
			rebuilt_devs[n_rebuilt_devs++] = st.st_dev;
		}
	}
	ret = set_propagation(mi, fds);
out:
	if (ret && !entered)
		umount2(stage, MNT_DETACH); /* the controller removes the directory */
	if (to >= 0)
		close(to);
	if (tmp >= 0)
		close(tmp);
	for (i = 0; i < mi->n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return ret;
}

/* The creator of the tree's mount namespace, once it is in its cgroups. */
static int mnt_child_early(struct rst_ctx *c)
{
	struct mnt_image *mi = res_image_state(c->img, &mnt_res);

	int ret;

	if (!ns_created_by(c, NS_K_MNT) || !mi->n)
		return 0;
	ret = build(c, mi);
	if (mi->host_side > 0) {
		/* the host side ends with our end: its children never hold it */
		close(mi->child_sk);
		mi->child_sk = -1;
	}
	return ret;
}

/* ------------------------------------------------------------- the kind */

static bool mnt_valid(const NsEntry *e)
{
	return true;
}

static int mnt_create(struct rst_ctx *c, const NsEntry *e)
{
	if (unshare(CLONE_NEWNS)) {
		pr_perror("cannot create a mount namespace");
		return -1;
	}
	return 0;
}

const struct ns_kind mnt_ns_kind = {
	.name = "mnt",
	.label = "mount",
	.nstype = CLONE_NEWNS,
	.kind = NS_KIND__NS_MNT,
	NS_TE_FIELD(mnt_ns),
	.inherits = NS_K_MNT,
	.one_per_tree = true,
	.describe = mnt_describe,
	.valid = mnt_valid,
	.create = mnt_create,
};

const struct res_ops mnt_res = {
	.name = "mnt",
	.dump_state_size = sizeof(struct mnt_dump),
	.image_state_size = sizeof(struct mnt_image),
	.dump_write = mnt_dump_write,
	.dump_zombie = mnt_dump_zombie,
	.dump_fini = mnt_dump_fini,
	.image_loaded = mnt_image_loaded,
	.restore_check = mnt_restore_check,
	.root_fork = mnt_root_fork,
	.root_forked = mnt_root_forked,
	.child_early = mnt_child_early,
	.restore_end = mnt_restore_end,
	.image_fini = mnt_image_fini,
};
