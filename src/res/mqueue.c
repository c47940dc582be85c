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
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The named queues this dump saved, unlinked if the tree is killed. */
struct mq_dump {
	char **names;
	size_t n;
};

static bool mqueue_match(const struct fd_dump *d)
{
	struct statfs sf;

	return S_ISREG(d->st.st_mode) && fstatfs(d->lfd, &sf) == 0 && sf.f_type == MQUEUE_MAGIC;
}

/* The queue's status line (QSIZE, NOTIFY_PID ...), read without moving its offset. */
static long notify_pid(const struct fd_dump *d)
{
	char buf[160], *p;
	ssize_t n = pread(d->lfd, buf, sizeof(buf) - 1, 0);

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

/* Send back what was taken, in the order it came. */
static int give_back(const struct fd_dump *d, mqd_t q, const MqueueEntry *m)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < m->n_msgs; i++)
		if (mq_send(q, (char *)m->msgs[i]->data.data, m->msgs[i]->data.len,
			    m->msgs[i]->prio) < 0) {
			pr_perror("pid %d fd %d: message %zu of POSIX message queue %s is lost",
				  d->pid, d->fd, i, m->name);
			ret = -1;
		}
	return ret;
}

static int take_messages(const struct fd_dump *d, MqueueEntry *m, long count)
{
	char self[64], *buf = xmalloc(m->msgsize + 1);
	unsigned int prio;
	mqd_t q;
	long i;
	int ret = -1;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", d->lfd);
	q = open(self, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (q < 0) {
		pr_perror("pid %d fd %d: cannot open POSIX message queue %s to read it", d->pid,
			  d->fd, m->name);
		free(buf);
		return -1;
	}
	m->msgs = xzalloc((count + 1) * sizeof(*m->msgs));
	for (i = 0; i < count; i++) {
		ssize_t n = mq_receive(q, buf, m->msgsize, &prio);
		MqMsg *mm;

		if (n < 0) {
			if (errno == EAGAIN)
				break; /* someone else took one meanwhile */
			pr_perror("pid %d fd %d: cannot read POSIX message queue %s", d->pid, d->fd,
				  m->name);
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
	if (give_back(d, q, m))
		ret = -1;
	close(q);
	free(buf);
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

/* Queues are made by the controller, in our IPC namespace. */
static bool other_ipc_ns(pid_t pid)
{
	struct stat self, theirs;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	return !stat("/proc/self/ns/ipc", &self) && !stat(path, &theirs) &&
	       self.st_ino != theirs.st_ino;
}

static int mqueue_dump(const struct fd_dump *d, FileEntry *fe)
{
	static const char del[] = " (deleted)";
	size_t len = strlen(d->link);
	struct mq_attr a;
	MqueueEntry *m;

	if (d->link[0] != '/' || mq_getattr(d->lfd, &a) < 0) {
		pr_perror("pid %d fd %d: cannot read POSIX message queue %s", d->pid, d->fd,
			  d->link);
		return -1;
	}
	if (other_ipc_ns(d->pid)) {
		pr_err("pid %d fd %d: POSIX message queue %s is in the tree's own IPC namespace; "
		       "not supported yet\n",
		       d->pid, d->fd, d->link);
		return -1;
	}
	if (notify_pid(d)) {
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
	mqueue_entry__init(m);
	m->deleted = len > sizeof(del) - 1 && !strcmp(d->link + len - (sizeof(del) - 1), del);
	m->has_deleted = m->deleted;
	m->name = xstrdup(d->link);
	if (m->deleted)
		m->name[len - (sizeof(del) - 1)] = '\0';
	m->ino = d->st.st_ino;
	m->mode = d->st.st_mode & 07777;
	m->uid = d->st.st_uid;
	m->gid = d->st.st_gid;
	m->maxmsg = a.mq_maxmsg;
	m->msgsize = a.mq_msgsize;
	if (a.mq_curmsgs && take_messages(d, m, a.mq_curmsgs)) {
		msgs_free(m);
		return -1;
	}
	if (!m->deleted)
		remember_name(d->ctx, m->name);
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

/* Before anything is forked: every queue once, its descriptions renamed to it. */
static int mqueue_restore_check(struct image *img, const struct restore_opts *o)
{
	struct mq_image *mi = res_image_state(img, &mqueue_res);
	FileEntry **files;
	size_t i, n;

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

/* Every task is rebuilt: the stand-in names of deleted queues go. */
static int mqueue_release_tree(struct rst_ctx *c)
{
	struct mq_image *mi = res_image_state(c->img, &mqueue_res);
	size_t i;

	if (__atomic_exchange_n(&mi->released, 1, __ATOMIC_SEQ_CST))
		return 0;
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
	.dump_end = mqueue_dump_end,
	.dump_fini = mqueue_dump_fini,
	.restore_check = mqueue_restore_check,
	.release = mqueue_release_tree,
	.image_fini = mqueue_image_fini,
};
