/*
 * POSIX message queues (mq_open): the fd kind FILE_MQUEUE, and the queues
 * themselves, which live in the host IPC namespace's mqueue filesystem.
 *
 * Dump.  An fd whose inode is on the mqueue filesystem is one.  Its
 * description saves the queue's name (its /proc link, " (deleted)" once
 * mq_unlink'ed), inode, mode, owner, mq_attr sizes, and the queued
 * messages with their priorities.  The kernel has no way to peek at a
 * queue: stasis takes the messages off with mq_receive, through a
 * description of its own, and sends them straight back in the same order
 * (mq_receive gives the highest priority first, oldest first within one,
 * which is the order mq_send rebuilds); if taking them fails midway, what
 * was taken is sent back before the dump fails.  A process outside the
 * tree that reads the queue during those microseconds may see the queue
 * empty.  A queue with an mq_notify registration is refused (sending the
 * messages back would fire it).  When the image is committed and the tree
 * killed, the named queues saved are unlinked, so that the restore can
 * make them again; with --leave-running they stay and a restore on this
 * host refuses their names as taken.
 *
 * Restore.  Before anything is forked the controller makes each queue
 * once (descriptions are matched by their dump-time inode), with its
 * mode, attributes, owner and messages; a deleted one under its name
 * (another one if that is taken now), unlinked once the tree is rebuilt.  Each restore child then
 * opens its descriptions by name, with their access mode and O_NONBLOCK.  A failed restore unlinks
 * every queue it made.
 *
 * A tree in an IPC namespace of its own (res/ns.c keeps the whole tree in
 * one) owns every queue of that namespace, held or not.  The dump mounts
 * the namespace's mqueue filesystem detached (fsopen from a thread
 * setns'ed into it; the mount is in no table and goes with its fd), saves
 * every queue it lists as one IMG_MQUEUE record (name, inode, mode,
 * owner, attributes, messages, read and put back as above), and refuses a
 * queue with an mq_notify registration by name.  Descriptions of those
 * queues carry no messages of their own; a deleted queue still held
 * carries its messages as on the host.  Nothing is unlinked at the end:
 * the queues go with the namespace.  The restore makes them in the root's
 * restore child, inside the new namespace, before it forks (a deleted
 * one under a stand-in name that the controller unlinks, from inside
 * the namespace, once the tree is rebuilt).
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "res.h"
#include "util.h"

#ifndef MQUEUE_MAGIC
#define MQUEUE_MAGIC 0x19800202
#endif

/* ---------------------------------------------------------------- dump */

/*
 * The named queues this dump saved, unlinked if the tree is killed; the
 * queues of the tree's own IPC namespace, if it has one.
 */
struct mq_dump {
	char **names;
	size_t n;
	bool own_ns;
	bool written;
	MqueueEntry **ns_q;
	size_t ns_n;
};

static bool mqueue_match(const struct fd_dump *d)
{
	struct statfs sf;

	return S_ISREG(d->st.st_mode) && fstatfs(d->lfd, &sf) == 0 && sf.f_type == MQUEUE_MAGIC;
}

/* The queue's status line (QSIZE, NOTIFY_PID ...), read without moving its offset. */
static long notify_pid(int fd)
{
	char buf[160], *p;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, "NOTIFY_PID:");
	return p ? atol(p + 11) : 0;
}

static void msgs_free(MqueueEntry *m)
{
	size_t i;

	for (i = 0; i < m->n_msgs; i++) {
		free(m->msgs[i]->data.data);
		free(m->msgs[i]);
	}
	free(m->msgs);
	m->msgs = NULL;
	m->n_msgs = 0;
}

/* Send back what was taken, in the order it came (who: "pid 5 fd 3: "). */
static int give_back(const char *who, mqd_t q, const MqueueEntry *m)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < m->n_msgs; i++)
		if (mq_send(q, (char *)m->msgs[i]->data.data, m->msgs[i]->data.len,
			    m->msgs[i]->prio) < 0) {
			pr_perror("%smessage %zu of POSIX message queue %s is lost", who, i,
				  m->name);
			ret = -1;
		}
	return ret;
}

/* Take the count messages of q (O_RDWR | O_NONBLOCK) and send them back. */
static int read_queue(const char *who, mqd_t q, MqueueEntry *m, long count)
{
	char *buf = xmalloc(m->msgsize + 1);
	unsigned int prio;
	long i;
	int ret = -1;

	m->msgs = xzalloc((count + 1) * sizeof(*m->msgs));
	for (i = 0; i < count; i++) {
		ssize_t n = mq_receive(q, buf, m->msgsize, &prio);
		MqMsg *mm;

		if (n < 0) {
			if (errno == EAGAIN)
				break; /* someone else took one meanwhile */
			pr_perror("%scannot read POSIX message queue %s", who, m->name);
			goto back;
		}
		mm = xmalloc(sizeof(*mm));
		mq_msg__init(mm);
		mm->prio = prio;
		mm->data.len = n;
		mm->data.data = xmalloc(n + 1);
		memcpy(mm->data.data, buf, n);
		m->msgs[m->n_msgs++] = mm;
	}
	ret = 0;
back:
	if (give_back(who, q, m))
		ret = -1;
	free(buf);
	return ret;
}

static int take_messages(const struct fd_dump *d, MqueueEntry *m, long count)
{
	char self[64], who[64];
	mqd_t q;
	int ret;

	snprintf(who, sizeof(who), "pid %d fd %d: ", d->pid, d->fd);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", d->lfd);
	q = open(self, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (q < 0) {
		pr_perror("%scannot open POSIX message queue %s to read it", who, m->name);
		return -1;
	}
	ret = read_queue(who, q, m, count);
	close(q);
	return ret;
}

static void remember_name(struct dump_ctx *ctx, const char *name)
{
	struct mq_dump *md = res_dump_state(ctx, &mqueue_res);
	size_t i;

	for (i = 0; i < md->n; i++)
		if (!strcmp(md->names[i], name))
			return;
	md->names = xrealloc(md->names, (md->n + 1) * sizeof(*md->names));
	md->names[md->n++] = xstrdup(name);
}

/* Is the tree (its root) in an IPC namespace other than ours? */
static bool other_ipc_ns(pid_t pid)
{
	struct stat self, theirs;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	return !stat("/proc/thread-self/ns/ipc", &self) && !stat(path, &theirs) &&
	       self.st_ino != theirs.st_ino;
}

static MqueueEntry *ns_queue_find(struct mq_dump *md, uint64_t ino)
{
	size_t i;

	for (i = 0; i < md->ns_n; i++)
		if (md->ns_q[i]->ino == ino)
			return md->ns_q[i];
	return NULL;
}

/* What every description says of its queue, and what only the queue knows. */
static void entry_fill(MqueueEntry *m, const char *name, const struct stat *st,
		       const struct mq_attr *a)
{
	mqueue_entry__init(m);
	m->name = xstrdup(name);
	m->ino = st->st_ino;
	m->mode = st->st_mode & 07777;
	m->uid = st->st_uid;
	m->gid = st->st_gid;
	m->maxmsg = a->mq_maxmsg;
	m->msgsize = a->mq_msgsize;
}

static int mqueue_dump(const struct fd_dump *d, FileEntry *fe)
{
	static const char del[] = " (deleted)";
	struct mq_dump *md = res_dump_state(d->ctx, &mqueue_res);
	size_t len = strlen(d->link);
	struct mq_attr a;
	MqueueEntry *m;

	if (d->link[0] != '/' || mq_getattr(d->lfd, &a) < 0) {
		pr_perror("pid %d fd %d: cannot read POSIX message queue %s", d->pid, d->fd,
			  d->link);
		return -1;
	}
	if (md->own_ns != other_ipc_ns(d->pid)) {
		pr_err("pid %d fd %d: POSIX message queue %s is not in the tree's IPC namespace; "
		       "not supported\n",
		       d->pid, d->fd, d->link);
		return -1;
	}
	if (notify_pid(d->lfd)) {
		pr_err("pid %d fd %d: POSIX message queue %s has an mq_notify registration; not "
		       "supported\n",
		       d->pid, d->fd, d->link);
		return -1;
	}
	if (strchr(d->link + 1, '/')) {
		pr_err("pid %d fd %d: POSIX message queue %s is open through a mount of the mqueue "
		       "filesystem; not supported\n",
		       d->pid, d->fd, d->link);
		return -1;
	}
	m = fe->mqueue = xmalloc(sizeof(*m));
	entry_fill(m, d->link, &d->st, &a);
	m->deleted = len > sizeof(del) - 1 && !strcmp(d->link + len - (sizeof(del) - 1), del);
	m->has_deleted = m->deleted;
	if (m->deleted)
		m->name[len - (sizeof(del) - 1)] = '\0';
	if (md->own_ns && !m->deleted) {
		/* the namespace's record of the queue holds its messages */
		if (!ns_queue_find(md, m->ino)) {
			pr_err("pid %d fd %d: POSIX message queue %s is not in the tree's IPC "
			       "namespace; not supported\n",
			       d->pid, d->fd, d->link);
			return -1;
		}
		return 0;
	}
	if (a.mq_curmsgs && take_messages(d, m, a.mq_curmsgs)) {
		msgs_free(m);
		return -1;
	}
	if (!m->deleted && !md->own_ns)
		remember_name(d->ctx, m->name);
	return 0;
}

/*
 * The tree's own IPC namespace: its mqueue filesystem, mounted detached
 * by this thread from inside the namespace.  -1 after one error line.
 */
static int ns_mqueue_mount(pid_t pid)
{
	char path[64];
	int ns = -1, back = -1, fs = -1, mnt = -1;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	back = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
	if (ns < 0 || back < 0) {
		pr_perror("pid %d: cannot open its IPC namespace", pid);
		goto out;
	}
	if (setns(ns, CLONE_NEWIPC)) {
		pr_perror("pid %d: cannot enter its IPC namespace", pid);
		goto out;
	}
	fs = fsopen("mqueue", FSOPEN_CLOEXEC);
	if (fs >= 0 && !fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0))
		mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	if (mnt < 0)
		pr_perror("pid %d: cannot mount the mqueue filesystem of its IPC namespace", pid);
	if (setns(back, CLONE_NEWIPC)) {
		pr_perror("cannot go back to our own IPC namespace");
		abort(); /* this thread would make queues in the wrong place */
	}
out:
	if (fs >= 0)
		close(fs);
	if (ns >= 0)
		close(ns);
	if (back >= 0)
		close(back);
	return mnt;
}

/* One queue of the namespace, by its name in the mount mnt. */
static int ns_queue_save(struct mq_dump *md, int mnt, const char *name)
{
	char qname[NAME_MAX + 2], who[NAME_MAX + 64];
	struct mq_attr a;
	struct stat st;
	MqueueEntry *m;
	long owner;
	int q, ret = -1;

	snprintf(qname, sizeof(qname), "/%s", name);
	snprintf(who, sizeof(who), "the tree's IPC namespace: ");
	q = openat(mnt, name, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (q < 0 || fstat(q, &st) || mq_getattr(q, &a)) {
		pr_perror("%scannot read POSIX message queue %s", who, qname);
		goto out;
	}
	owner = notify_pid(q);
	if (owner) {
		pr_err("pid %ld: POSIX message queue %s of the tree's IPC namespace has an "
		       "mq_notify registration; not supported\n",
		       owner, qname);
		goto out;
	}
	m = xmalloc(sizeof(*m));
	entry_fill(m, qname, &st, &a);
	md->ns_q = xrealloc(md->ns_q, (md->ns_n + 1) * sizeof(*md->ns_q));
	md->ns_q[md->ns_n++] = m;
	ret = a.mq_curmsgs ? read_queue(who, q, m, a.mq_curmsgs) : 0;
out:
	if (q >= 0)
		close(q);
	return ret;
}

/* The tree is frozen: every queue of its own IPC namespace, before anything is written. */
static int mqueue_dump_check(struct dump_ctx *ctx)
{
	struct mq_dump *md = res_dump_state(ctx, &mqueue_res);
	struct dirent *de;
	DIR *dir;
	int mnt, fd, ret = 0;

	md->own_ns = other_ipc_ns(ctx->opts->pid);
	if (!md->own_ns)
		return 0;
	mnt = ns_mqueue_mount(ctx->opts->pid);
	if (mnt < 0)
		return -1;
	fd = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		pr_perror("cannot list the mqueue filesystem of the tree's IPC namespace");
		if (fd >= 0)
			close(fd);
		close(mnt);
		return -1;
	}
	while (!ret && (de = readdir(dir)))
		if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
			ret = ns_queue_save(md, mnt, de->d_name);
	closedir(dir);
	close(mnt);
	return ret;
}

/* Stage 2 of the first task: one record per queue of the namespace. */
static int mqueue_dump_write(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct mq_dump *md = res_dump_state(ctx, &mqueue_res);
	size_t i;

	if (__atomic_exchange_n(&md->written, true, __ATOMIC_SEQ_CST))
		return 0;
	for (i = 0; i < md->ns_n; i++)
		if (img_write_msg(&ctx->w, IMG_MQUEUE, &md->ns_q[i]->base))
			return -1;
	return 0;
}

/* The image holds them and the tree dies: free their names for the restore. */
static void mqueue_dump_end(struct dump_ctx *ctx, bool kill)
{
	struct mq_dump *md = res_dump_state(ctx, &mqueue_res);
	size_t i;

	for (i = 0; kill && i < md->n; i++)
		if (mq_unlink(md->names[i]) < 0 && errno != ENOENT)
			pr_warn("cannot unlink POSIX message queue %s: %m\n", md->names[i]);
}

static void mqueue_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct mq_dump *md = state;
	size_t i;

	for (i = 0; i < md->n; i++)
		free(md->names[i]);
	free(md->names);
	for (i = 0; i < md->ns_n; i++) {
		msgs_free(md->ns_q[i]);
		free(md->ns_q[i]->name);
		free(md->ns_q[i]);
	}
	free(md->ns_q);
}

/* ------------------------------------------------------------- restore */

/* The queues this restore made (their names as the children open them). */
struct mq_image {
	struct mq_made {
		uint64_t ino;
		char *name;
		bool temporary; /* a deleted queue's stand-in name */
	} * made;
	size_t n;
	int released;
	/* the tree's own IPC namespace: its queues (IMG_MQUEUE), stand-in names */
	MqueueEntry **ns_q;
	size_t ns_n;
	char **ns_temp; /* the names deleted queues get until the tree is rebuilt */
	uint64_t *ns_temp_ino;
	size_t ns_tn;
};

static struct mq_made *made_find(struct mq_image *mi, uint64_t ino)
{
	size_t i;

	for (i = 0; i < mi->n; i++)
		if (mi->made[i].ino == ino)
			return &mi->made[i];
	return NULL;
}

static bool name_ok(const char *name)
{
	return name[0] == '/' && name[1] && !strchr(name + 1, '/') && strlen(name) < NAME_MAX;
}

static int queue_make(struct mq_image *mi, MqueueEntry *m)
{
	struct mq_attr a = { .mq_maxmsg = m->maxmsg, .mq_msgsize = m->msgsize };
	struct mq_made *mk;
	char tmp[96];
	const char *name = m->name;
	size_t i;
	mqd_t q;

	q = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK | O_CLOEXEC, m->mode & 0777, &a);
	if (q < 0 && errno == EEXIST && m->deleted) {
		/* its name went to another queue since: any name will do */
		snprintf(tmp, sizeof(tmp), "/stasis-mq-%d-%llu", getpid(),
			 (unsigned long long)m->ino);
		name = tmp;
		q = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK | O_CLOEXEC,
			    m->mode & 0777, &a);
	}
	if (q < 0) {
		if (errno == EEXIST)
			pr_err("POSIX message queue %s exists on this host; cannot restore it\n",
			       name);
		else
			pr_perror("cannot create POSIX message queue %s", name);
		return -1;
	}
	mi->made = xrealloc(mi->made, (mi->n + 1) * sizeof(*mi->made));
	mk = &mi->made[mi->n++];
	*mk = (struct mq_made){ m->ino, xstrdup(name), m->deleted };
	if (fchown(q, m->uid, m->gid) < 0 || fchmod(q, m->mode & 0777) < 0) {
		pr_perror("cannot give POSIX message queue %s its owner", name);
		goto fail;
	}
	for (i = 0; i < m->n_msgs; i++)
		if (mq_send(q, (char *)m->msgs[i]->data.data, m->msgs[i]->data.len,
			    m->msgs[i]->prio) < 0) {
			pr_perror("cannot put message %zu back into POSIX message queue %s", i,
				  name);
			goto fail;
		}
	close(q);
	return 0;
fail:
	close(q);
	return -1;
}

static bool attrs_ok(const MqueueEntry *m)
{
	return name_ok(m->name) && m->msgsize > 0 && m->maxmsg > 0;
}

/* IMG_MQUEUE: a queue of the tree's own IPC namespace. */
int mqueue_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct mq_image *mi = res_image_state(img, &mqueue_res);
	MqueueEntry *m = msg;
	size_t i;

	if (!attrs_ok(m) || m->deleted) {
		pr_err("image %s is corrupt: POSIX message queue '%s' with bad attributes\n",
		       img->r.path, m->name);
		goto bad;
	}
	for (i = 0; i < mi->ns_n; i++)
		if (mi->ns_q[i]->ino == m->ino || !strcmp(mi->ns_q[i]->name, m->name)) {
			pr_err("image %s is corrupt: POSIX message queue '%s' saved twice\n",
			       img->r.path, m->name);
			goto bad;
		}
	mi->ns_q = xrealloc(mi->ns_q, (mi->ns_n + 1) * sizeof(*mi->ns_q));
	mi->ns_q[mi->ns_n++] = m;
	return 0;
bad:
	mqueue_entry__free_unpacked(m, NULL);
	return -1;
}

static bool own_ns(struct image *img)
{
	return img->ntasks && image_task(img, img->hdr->root_pid)->te->has_ipc_ns;
}

static const MqueueEntry *ns_find(struct mq_image *mi, uint64_t ino, const char *name)
{
	size_t i;

	for (i = 0; i < mi->ns_n; i++)
		if (mi->ns_q[i]->ino == ino || (name && !strcmp(mi->ns_q[i]->name, name)))
			return mi->ns_q[i];
	return NULL;
}

/* Is name taken in the new namespace by a queue other than ino? */
static bool ns_name_taken(struct mq_image *mi, FileEntry **files, size_t n, const char *name,
			  uint64_t ino)
{
	size_t i;

	if (ns_find(mi, 0, name))
		return true;
	for (i = 0; i < n; i++) {
		const MqueueEntry *m = files[i]->mqueue;

		if (files[i]->type == FILE_TYPE__FILE_MQUEUE && m && m->deleted && m->ino != ino &&
		    !strcmp(m->name, name))
			return true;
	}
	return false;
}

/*
 * The tree's own namespace: its queues are made by the root's restore
 * child; here every description is checked against them, and a deleted
 * queue keeps its name unless a queue of the namespace (or another
 * deleted one, renamed already) has it, when it gets a stand-in.
 */
static int own_ns_check(struct image *img, struct mq_image *mi)
{
	FileEntry **files;
	char tmp[64];
	size_t i, k, n;

	files = image_files(img, &n);
	for (i = 0; i < n; i++) {
		MqueueEntry *m = files[i]->mqueue;
		const char *name;

		if (files[i]->type != FILE_TYPE__FILE_MQUEUE || !m)
			continue;
		if (!attrs_ok(m) || (!m->deleted && !ns_find(mi, m->ino, NULL))) {
			pr_err("image %s is corrupt: POSIX message queue '%s' is not one of the "
			       "tree's IPC namespace\n",
			       img->r.path, m->name);
			return -1;
		}
		if (!m->deleted)
			continue;
		for (k = 0; k < mi->ns_tn && mi->ns_temp_ino[k] != m->ino; k++)
			;
		if (k < mi->ns_tn) { /* another description of a queue already named */
			free(m->name);
			m->name = xstrdup(mi->ns_temp[k]);
			continue;
		}
		name = m->name;
		snprintf(tmp, sizeof(tmp), "/.stasis-deleted-%llu", (unsigned long long)m->ino);
		if (ns_name_taken(mi, files, n, name, m->ino))
			name = tmp;
		if (ns_name_taken(mi, files, n, name, m->ino)) {
			pr_err("POSIX message queue %s of the image takes the stand-in name of a "
			       "deleted one\n",
			       tmp);
			return -1;
		}
		mi->ns_temp = xrealloc(mi->ns_temp, (k + 1) * sizeof(*mi->ns_temp));
		mi->ns_temp_ino = xrealloc(mi->ns_temp_ino, (k + 1) * sizeof(*mi->ns_temp_ino));
		mi->ns_temp[k] = xstrdup(name);
		mi->ns_temp_ino[k] = m->ino;
		mi->ns_tn++;
		if (name != m->name) {
			free(m->name);
			m->name = xstrdup(name);
		}
	}
	return 0;
}

/* Before anything is forked: every queue once, its descriptions renamed to it. */
static int mqueue_restore_check(struct image *img, const struct restore_opts *o)
{
	struct mq_image *mi = res_image_state(img, &mqueue_res);
	FileEntry **files;
	size_t i, n;

	if (own_ns(img))
		return own_ns_check(img, mi);
	if (mi->ns_n) {
		pr_err("image %s is corrupt: POSIX message queues of an IPC namespace the tree "
		       "does not have\n",
		       img->r.path);
		return -1;
	}
	files = image_files(img, &n);
	/* the named queues first: a deleted one may have lost its name to one */
	for (i = 0; i < 2 * n; i++) {
		MqueueEntry *m = files[i % n]->mqueue;
		struct mq_made *mk;

		if (files[i % n]->type != FILE_TYPE__FILE_MQUEUE || !m || m->deleted != (i >= n))
			continue;
		if (!name_ok(m->name) || m->msgsize <= 0 || m->maxmsg <= 0) {
			pr_err(
			    "image %s is corrupt: POSIX message queue '%s' with bad attributes\n",
			    img->r.path, m->name);
			return -1;
		}
		if (!made_find(mi, m->ino) && queue_make(mi, m))
			return -1;
		mk = made_find(mi, m->ino);
		if (strcmp(mk->name, m->name)) {
			free(m->name);
			m->name = xstrdup(mk->name);
		}
	}
	return 0;
}

static int mqueue_open(struct rst_ctx *c, const FileEntry *fe)
{
	int fd = mq_open(fe->mqueue->name, fe->flags & (O_ACCMODE | O_NONBLOCK));

	if (fd < 0)
		pr_perror("pid %u: cannot open POSIX message queue %s", c->t->te->pid,
			  fe->mqueue->name);
	return fd;
}

/*
 * The root's restore child, in the new IPC namespace (res/ns.c), before
 * it forks: the namespace's queues, then the deleted ones its tasks hold.
 */
static int mqueue_child_early(struct rst_ctx *c)
{
	struct mq_image *mi = res_image_state(c->img, &mqueue_res);
	FileEntry **files;
	size_t i, n;

	if (c->t->parent || !c->t->te->has_ipc_ns)
		return 0;
	for (i = 0; i < mi->ns_n; i++)
		if (queue_make(mi, mi->ns_q[i]))
			return -1;
	files = image_files(c->img, &n);
	for (i = 0; i < n; i++) {
		MqueueEntry *m = files[i]->mqueue;

		if (files[i]->type == FILE_TYPE__FILE_MQUEUE && m && m->deleted &&
		    !made_find(mi, m->ino) && queue_make(mi, m))
			return -1;
	}
	return 0;
}

/* The stand-in names of the tree's own namespace, unlinked from inside it. */
static int ns_temp_unlink(struct rst_ctx *c, struct mq_image *mi)
{
	char path[64];
	int ns, back, ret = 0;
	size_t i;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", c->host_pid);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	back = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
	if (ns < 0 || back < 0 || setns(ns, CLONE_NEWIPC)) {
		pr_perror("cannot enter the IPC namespace of pid %d", c->host_pid);
		ret = -1;
		goto out;
	}
	for (i = 0; i < mi->ns_tn && !ret; i++)
		if (mq_unlink(mi->ns_temp[i]) < 0) {
			pr_perror("cannot unlink POSIX message queue %s", mi->ns_temp[i]);
			ret = -1;
		}
	if (setns(back, CLONE_NEWIPC)) {
		pr_perror("cannot go back to our own IPC namespace");
		abort();
	}
out:
	if (ns >= 0)
		close(ns);
	if (back >= 0)
		close(back);
	return ret;
}

/* Every task is rebuilt: the stand-in names of deleted queues go. */
static int mqueue_release_tree(struct rst_ctx *c)
{
	struct mq_image *mi = res_image_state(c->img, &mqueue_res);
	size_t i;

	if (__atomic_exchange_n(&mi->released, 1, __ATOMIC_SEQ_CST))
		return 0;
	if (mi->ns_tn)
		return ns_temp_unlink(c, mi);
	for (i = 0; i < mi->n; i++)
		if (mi->made[i].temporary && mq_unlink(mi->made[i].name) < 0) {
			pr_perror("cannot unlink POSIX message queue %s", mi->made[i].name);
			return -1;
		}
	return 0;
}

/* A restore that failed takes back the queues it made. */
static void mqueue_image_fini(struct image *img, void *state)
{
	struct mq_image *mi = state;
	size_t i;

	for (i = 0; i < mi->n; i++) {
		if (!mi->released)
			mq_unlink(mi->made[i].name);
		free(mi->made[i].name);
	}
	free(mi->made);
	for (i = 0; i < mi->ns_n; i++)
		mqueue_entry__free_unpacked(mi->ns_q[i], NULL);
	free(mi->ns_q);
	for (i = 0; i < mi->ns_tn; i++)
		free(mi->ns_temp[i]);
	free(mi->ns_temp);
	free(mi->ns_temp_ino);
}

const struct fd_ops mqueue_fd_ops = {
	.type = FILE_TYPE__FILE_MQUEUE,
	.kind = FILE_ENTRY__KIND_MQUEUE,
	.name = "POSIX message queue",
	.match = mqueue_match,
	.dump = mqueue_dump,
	.open = mqueue_open,
};

const struct res_ops mqueue_res = {
	.name = "mqueue",
	.dump_state_size = sizeof(struct mq_dump),
	.image_state_size = sizeof(struct mq_image),
	.dump_check = mqueue_dump_check,
	.dump_write = mqueue_dump_write,
	.dump_end = mqueue_dump_end,
	.dump_fini = mqueue_dump_fini,
	.restore_check = mqueue_restore_check,
	.child_early = mqueue_child_early,
	.release = mqueue_release_tree,
	.image_fini = mqueue_image_fini,
};
