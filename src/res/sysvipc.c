/*
 * SysV IPC objects of the host IPC namespace that the tree uses: shared
 * memory segments with their contents and every attachment, semaphore
 * sets with their values, message queues with their messages.  (A task in
 * another IPC namespace is refused by res/ns.c before this runs.)
 *
 * Which objects are the tree's.  SysV objects are not held through fds:
 * any process that knows an id may use it.  Saved are the segments the
 * tree has attached (the /SYSV<key> mappings of /proc/PID/maps, whose
 * inode number is the shmid), and the semaphore sets and message queues
 * whose last operation the kernel credits to a task of the tree (a sempid,
 * msg_lspid or msg_lrpid).  A segment that a process outside the tree
 * attaches too is refused: removing it under that process at the end of
 * the dump, or sharing it with a restored copy, would both be wrong.
 * Other objects the tree may know by id are left alone; they are still
 * there when the tree is restored on the same host.
 *
 * Dump.  Nothing is changed while the dump may fail: a segment's pages are
 * read from one of the tree's own attachments (process_vm_readv, no
 * shmat of ours), messages with msgrcv(MSG_COPY), which leaves them
 * queued.  Only when the image is committed and the tree is killed are
 * the saved objects removed (IPC_RMID), so that their ids are free for
 * the restore; with --leave-running they stay, and a restore on this host
 * refuses their ids as taken.  SEM_UNDO adjustments are not visible in
 * /proc; when semaphore sets are saved, a task of the tree that has an
 * undo list at all (it did a semop with SEM_UNDO once, or it has threads
 * cloned with CLONE_SYSVSEM) is found with kcmp(KCMP_SYSVSEM) against
 * stasis, which has none, and refused.
 *
 * Restore, in the controller before anything is forked: each object is
 * created with its id (the kernel's /proc/sys/kernel/{shm,sem,msg}_next_id
 * picks the id of the next get) and key, its owner and mode set with
 * IPC_SET, a segment filled through an attachment of ours, semaphore
 * values set with SETALL, messages sent back in order.  An id or key in
 * use is refused by name.  The tasks' attachments are made by mm.c's
 * remote build, through sysvipc_vma_map(): shmat at the saved address.
 * A segment that was marked for removal is marked again when the tree is
 * released; a failed restore removes every object it created.  What
 * cannot be set back: creator ids, times and last-operation pids.
 *
 * A tree in an IPC namespace of its own (res/ns.c rebuilds it, and keeps
 * the whole tree in one) owns every object there: all semaphore sets and
 * message queues of the namespace are saved, and a segment no task of the
 * tree attaches is refused.  The dump reads them with its threads setns'ed
 * into the namespace, leaves them alone at the end (they go with the
 * namespace), and the restore creates them in the root's restore child,
 * inside the new namespace, before it forks.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mm.h"
#include "proc.h"
#include "res.h"
#include "sysvipc.pb-c.h"
#include "util.h"

#define SHM_CHUNK (1UL << 20)

/* ---------------------------------------------------------------- dump */

/* One segment the tree attaches: where one of its attachments is. */
struct shm_use {
	int id;
	unsigned int nattach; /* VMAs of it in the tree (shm_nattch counts VMAs) */
	pid_t pid;
	unsigned long addr;
};

struct ipc_dump {
	struct shm_use *shm;
	size_t nshm;
	int *sem, *msg;
	size_t nsem, nmsg;
	bool written;
	int ns_fd;   /* the tree's own IPC namespace, or -1: ours */
	int back_fd; /* ours, while a thread is in theirs (ipc_enter) */
};

/*
 * This thread into the tree's IPC namespace (in: true) or back into ours,
 * which it remembers on the way in (once in, "ours" is theirs).
 */
static int ipc_enter(struct ipc_dump *d, bool in)
{
	int ret;

	if (d->ns_fd < 0)
		return 0;
	if (!in) {
		ret = setns(d->back_fd, CLONE_NEWIPC);
		if (ret) {
			pr_perror("cannot go back to our own IPC namespace");
			abort(); /* this thread would see the wrong objects from now on */
		}
		close(d->back_fd);
		return 0;
	}
	d->back_fd = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
	if (d->back_fd < 0) {
		pr_perror("cannot open our IPC namespace");
		return -1;
	}
	ret = setns(d->ns_fd, CLONE_NEWIPC);
	if (ret) {
		pr_perror("cannot enter the tree's IPC namespace");
		close(d->back_fd);
	}
	return ret;
}

/* Is the tree in an IPC namespace of its own?  Then d->ns_fd holds it. */
static int find_ns(struct dump_ctx *ctx, struct ipc_dump *d)
{
	struct stat self, theirs;
	char path[64];

	d->ns_fd = -1;
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", ctx->opts->pid);
	if (stat("/proc/thread-self/ns/ipc", &self) || stat(path, &theirs)) {
		pr_perror("cannot read the IPC namespace of pid %d", ctx->opts->pid);
		return -1;
	}
	if (self.st_ino == theirs.st_ino)
		return 0;
	d->ns_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (d->ns_fd < 0) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	return 0;
}

/* In the tree's own namespace every segment must be one it attaches. */
static int check_unattached(struct ipc_dump *d)
{
	struct shmid_ds ds;
	int max, i, id;
	size_t k;

	max = shmctl(0, SHM_INFO, &ds);
	for (i = 0; i <= max; i++) {
		id = shmctl(i, SHM_STAT_ANY, &ds);
		if (id < 0)
			continue;
		for (k = 0; k < d->nshm && d->shm[k].id != id; k++)
			;
		if (k == d->nshm) {
			pr_err(
			    "SysV shared memory segment %d (key %#x) of the tree's IPC namespace "
			    "is attached by no task of the tree; not supported\n",
			    id, ds.shm_perm.__key);
			return -1;
		}
	}
	return 0;
}

static struct ipc_dump *ipc_dump(struct dump_ctx *ctx)
{
	return res_dump_state(ctx, &sysvipc_res);
}

static struct shm_use *shm_use(struct ipc_dump *d, int id)
{
	size_t i;

	for (i = 0; i < d->nshm; i++)
		if (d->shm[i].id == id)
			return &d->shm[i];
	d->shm = xrealloc(d->shm, (d->nshm + 1) * sizeof(*d->shm));
	d->shm[d->nshm] = (struct shm_use){ .id = id };
	return &d->shm[d->nshm++];
}

/*
 * A task that has a SEM_UNDO list differs from stasis, which has none.
 * The kernel gives a task one at its first semop with SEM_UNDO, but also
 * when it clones a thread with CLONE_SYSVSEM (glibc's pthread_create): so
 * this is asked only of a tree whose semaphore sets are saved.
 */
static int check_undo(struct dump_task *dt)
{
	size_t k;

	for (k = 0; k < dt->nth; k++) {
		long r = syscall(SYS_kcmp, getpid(), dt->th[k].tid, KCMP_SYSVSEM, 0, 0);

		if (r < 0) {
			pr_perror("pid %d: cannot compare its SysV semaphore undo list", dt->pid);
			return -1;
		}
		if (r) {
			pr_err("pid %d: has a SysV semaphore undo list (semop with SEM_UNDO, or "
			       "threads sharing one), whose adjustments cannot be read; not "
			       "supported\n",
			       dt->pid);
			return -1;
		}
	}
	return 0;
}

static unsigned long page_up(uint64_t n)
{
	return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

static int partial(pid_t pid, const struct proc_vma *v, int id)
{
	pr_err("pid %d mapping %lx-%lx: part of the attachment of SysV shared memory segment "
	       "%d is unmapped; not supported\n",
	       pid, v->start, v->end, id);
	return -1;
}

/*
 * The attachments of one task: each starts at offset 0 and covers the
 * whole segment, in one VMA or in several (mprotect splits them).
 */
static int scan_attachments(struct ipc_dump *d, struct dump_task *dt)
{
	const struct proc_vma *last = NULL;
	unsigned long start = 0, end = 0;
	struct proc_vmas vmas;
	struct shmid_ds ds;
	int id = -1, ret = -1;
	size_t i;

	if (proc_parse_maps(dt->pid, &vmas))
		return -1;
	for (i = 0; i <= vmas.n; i++) {
		const struct proc_vma *v = i < vmas.n ? &vmas.v[i] : NULL;
		bool sysv = v && !strncmp(v->path, "/SYSV", 5);
		struct shm_use *u;

		if (sysv && v->pgoff && id == (int)v->ino && v->start == last->end &&
		    v->pgoff == v->start - start) {
			/* the next piece of the same attachment: the kernel counts each */
			last = v;
			shm_use(d, id)->nattach++;
			continue;
		}
		if (id >= 0 && last->end != end)
			goto bad;
		id = -1;
		if (!sysv)
			continue;
		last = v;
		if (v->pgoff)
			goto bad;
		id = (int)v->ino;
		if (shmctl(id, IPC_STAT, &ds) < 0) {
			pr_perror("pid %d: cannot read SysV shared memory segment %d", dt->pid, id);
			goto out;
		}
		start = v->start;
		end = v->start + page_up(ds.shm_segsz);
		u = shm_use(d, id);
		if (!u->nattach++) {
			u->pid = dt->pid;
			u->addr = v->start;
		}
	}
	ret = 0;
	goto out;
bad:
	partial(dt->pid, last, last->ino);
out:
	proc_vmas_free(&vmas);
	return ret;
}

static int check_shm(struct ipc_dump *d)
{
	struct shmid_ds ds;
	size_t i;

	for (i = 0; i < d->nshm; i++) {
		const struct shm_use *u = &d->shm[i];

		if (shmctl(u->id, IPC_STAT, &ds) < 0) {
			pr_perror("pid %d: cannot read SysV shared memory segment %d", u->pid,
				  u->id);
			return -1;
		}
		if (ds.shm_nattch != u->nattach) {
			pr_err("pid %d: SysV shared memory segment %d (key %#x) is also attached "
			       "by %lu process(es) outside the tree; not supported\n",
			       u->pid, u->id, ds.shm_perm.__key,
			       (unsigned long)ds.shm_nattch - u->nattach);
			return -1;
		}
	}
	return 0;
}

static void id_add(int **v, size_t *n, int id)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = id;
}

/*
 * Did process pid, a task of the tree, start after time t (seconds)?  An
 * object's last-operation PID may name a process long gone whose PID a
 * task of the tree has now: such an object is not the tree's.
 */
static bool started_after(pid_t pid, time_t t)
{
	static unsigned long long btime;
	unsigned long long start = 0;
	char path[64], *st, *p;
	int i;

	if (!btime) {
		char *ps = read_file("/proc/stat", NULL), *b = ps ? strstr(ps, "\nbtime ") : NULL;

		btime = b ? strtoull(b + 7, NULL, 10) : 0;
		free(ps);
		if (!btime)
			return false;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	st = read_file(path, NULL);
	p = st ? strrchr(st, ')') : NULL;
	for (i = 0; p && i < 20; i++) /* field 22, starttime: the 20th after the comm */
		p = strchr(p + 1, ' ');
	if (p)
		start = strtoull(p + 1, NULL, 10);
	free(st);
	if (!p)
		return false;
	/* a margin of a second: t has whole seconds, the start time ticks */
	return btime + start / sysconf(_SC_CLK_TCK) > (unsigned long long)t + 1;
}

/* The last operation on an object, by pid at time t, was the tree's. */
static bool tree_op(struct dump_ctx *ctx, pid_t pid, time_t t)
{
	return dump_tree_has(ctx, pid) && !started_after(pid, t);
}

static int scan_sem(struct dump_ctx *ctx, struct ipc_dump *d)
{
	struct seminfo info;
	struct semid_ds ds;
	int max, i, id;
	unsigned long k;

	max = semctl(0, 0, SEM_INFO, &info);
	for (i = 0; i <= max; i++) {
		id = semctl(i, 0, SEM_STAT_ANY, &ds);
		if (id < 0)
			continue;
		for (k = 0; k < ds.sem_nsems; k++)
			if (tree_op(ctx, semctl(id, k, GETPID),
				    ds.sem_otime > ds.sem_ctime ? ds.sem_otime : ds.sem_ctime))
				break;
		if (k < ds.sem_nsems || ipc_dump(ctx)->ns_fd >= 0)
			id_add(&d->sem, &d->nsem, id);
	}
	return 0;
}

static int scan_msg(struct dump_ctx *ctx, struct ipc_dump *d)
{
	struct msqid_ds ds;
	int max, i, id;

	max = msgctl(0, MSG_INFO, &ds);
	for (i = 0; i <= max; i++) {
		id = msgctl(i, MSG_STAT_ANY, &ds);
		if (id < 0)
			continue;
		if (tree_op(ctx, ds.msg_lspid, ds.msg_stime) ||
		    tree_op(ctx, ds.msg_lrpid, ds.msg_rtime) || ipc_dump(ctx)->ns_fd >= 0)
			id_add(&d->msg, &d->nmsg, id);
	}
	return 0;
}

static int scan_all(struct dump_ctx *ctx, struct ipc_dump *d);

static int sysvipc_check(struct dump_ctx *ctx)
{
	struct ipc_dump *d = ipc_dump(ctx);
	int ret;

	if (find_ns(ctx, d) || ipc_enter(d, true))
		return -1;
	ret = scan_all(ctx, d);
	ipc_enter(d, false);
	return ret;
}

/*
 * May we write /proc/sys/kernel/{shm,sem,msg}_next_id of our IPC namespace?
 * The kernel wants CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN) in the user
 * namespace that owns it: not a normal user's.
 */
static bool ids_settable(void)
{
	return (cap_effective(CAP_CHECKPOINT_RESTORE) || cap_effective(CAP_SYS_ADMIN)) &&
	       owned_by_our_userns("ipc");
}

static int scan_all(struct dump_ctx *ctx, struct ipc_dump *d)
{
	size_t i;

	for (i = 0; i < ctx->ntasks; i++) {
		struct dump_task *dt = &ctx->tasks[i];

		if (dt->zombie)
			continue;
		if (scan_attachments(d, dt))
			return -1;
	}
	if (check_shm(d) || (d->ns_fd >= 0 && check_unattached(d)) || scan_sem(ctx, d) ||
	    scan_msg(ctx, d))
		return -1;
	if ((d->nshm || d->nsem || d->nmsg) && access("/proc/sys/kernel/shm_next_id", F_OK)) {
		pr_err("pid %d: uses SysV IPC, and this kernel cannot restore ids "
		       "(no /proc/sys/kernel/shm_next_id: CONFIG_CHECKPOINT_RESTORE)\n",
		       ctx->tasks[0].pid);
		return -1;
	}
	/* the restore sets the ids in our namespace: a normal user may not (its own one, yes) */
	if ((d->nshm || d->nsem || d->nmsg) && d->ns_fd < 0 && !ids_settable()) {
		pr_err("pid %d: uses SysV IPC (%zu segment(s), %zu semaphore set(s), %zu message "
		       "queue(s)) of this IPC namespace, whose ids a restore sets through "
		       "/proc/sys/kernel/*_next_id: that needs CAP_CHECKPOINT_RESTORE over it\n",
		       ctx->tasks[0].pid, d->nshm, d->nsem, d->nmsg);
		return -1;
	}
	for (i = 0; d->nsem && i < ctx->ntasks; i++)
		if (!ctx->tasks[i].zombie && check_undo(&ctx->tasks[i]))
			return -1;
	return 0;
}

static void perm_fill(SysvPerm *p, int id, const struct ipc_perm *ip)
{
	sysv_perm__init(p);
	p->id = id;
	p->key = ip->__key;
	p->mode = ip->mode & 0777;
	p->uid = ip->uid;
	p->gid = ip->gid;
}

static bool all_zero(const char *buf, size_t len)
{
	return len == 0 || (buf[0] == 0 && !memcmp(buf, buf + 1, len - 1));
}

/* The segment's bytes, read from the tree's own attachment, zero chunks left out. */
static int write_shm_data(struct dump_ctx *ctx, const struct shm_use *u, uint64_t size)
{
	char *buf = xmalloc(SHM_CHUNK);
	uint64_t off;
	int ret = -1;

	for (off = 0; off < size; off += SHM_CHUNK) {
		size_t len = size - off < SHM_CHUNK ? size - off : SHM_CHUNK;
		struct iovec l = { buf, len }, r = { (void *)(u->addr + off), len };
		SysvShmChunk ch;

		if (process_vm_readv(u->pid, &l, 1, &r, 1, 0) != (ssize_t)len) {
			pr_perror("pid %d: cannot read SysV shared memory segment %d at %lx",
				  u->pid, u->id, u->addr + off);
			goto out;
		}
		if (all_zero(buf, len))
			continue;
		sysv_shm_chunk__init(&ch);
		ch.id = u->id;
		ch.offset = off;
		ch.data.data = (uint8_t *)buf;
		ch.data.len = len;
		if (img_write_msg(&ctx->w, IMG_SYSV_SHM_DATA, &ch.base))
			goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

static int write_shm(struct dump_ctx *ctx, const struct shm_use *u)
{
	struct shmid_ds ds;
	SysvShmEntry se;
	SysvPerm p;

	if (shmctl(u->id, IPC_STAT, &ds) < 0) {
		pr_perror("pid %d: cannot read SysV shared memory segment %d", u->pid, u->id);
		return -1;
	}
	sysv_shm_entry__init(&se);
	perm_fill(&p, u->id, &ds.shm_perm);
	se.perm = &p;
	se.size = ds.shm_segsz;
	se.has_removed = se.removed = !!(ds.shm_perm.mode & SHM_DEST);
	se.has_locked = se.locked = !!(ds.shm_perm.mode & SHM_LOCKED);
	if (img_write_msg(&ctx->w, IMG_SYSV_SHM, &se.base))
		return -1;
	return write_shm_data(ctx, u, ds.shm_segsz);
}

static int write_sem(struct dump_ctx *ctx, int id)
{
	struct semid_ds ds;
	SysvSemEntry se;
	unsigned short *vals;
	SysvPerm p;
	size_t k;
	int ret = -1;

	if (semctl(id, 0, IPC_STAT, &ds) < 0) {
		pr_perror("cannot read SysV semaphore set %d", id);
		return -1;
	}
	vals = xzalloc((ds.sem_nsems + 1) * sizeof(*vals));
	sysv_sem_entry__init(&se);
	perm_fill(&p, id, &ds.sem_perm);
	se.perm = &p;
	if (semctl(id, 0, GETALL, vals) < 0) {
		pr_perror("cannot read the values of SysV semaphore set %d", id);
		goto out;
	}
	se.n_values = ds.sem_nsems;
	se.values = xzalloc((ds.sem_nsems + 1) * sizeof(*se.values));
	for (k = 0; k < ds.sem_nsems; k++)
		se.values[k] = vals[k];
	ret = img_write_msg(&ctx->w, IMG_SYSV_SEM, &se.base);
	free(se.values);
out:
	free(vals);
	return ret;
}

static long msg_max(void)
{
	char *s = read_file("/proc/sys/kernel/msgmax", NULL);
	long v = s ? atol(s) : 0;

	free(s);
	return v > 0 ? v : 65536;
}

/* The queue's messages, copied (MSG_COPY) without taking them off it. */
static int write_msg(struct dump_ctx *ctx, int id)
{
	long max = msg_max();
	struct msgbuf *mb = xmalloc(sizeof(*mb) + max);
	struct msqid_ds ds;
	SysvMsgEntry me;
	SysvPerm p;
	size_t k;
	int ret = -1;

	sysv_msg_entry__init(&me);
	if (msgctl(id, IPC_STAT, &ds) < 0) {
		pr_perror("cannot read SysV message queue %d", id);
		goto out;
	}
	perm_fill(&p, id, &ds.msg_perm);
	me.perm = &p;
	me.qbytes = ds.msg_qbytes;
	me.msgs = xzalloc((ds.msg_qnum + 1) * sizeof(*me.msgs));
	for (k = 0; k < ds.msg_qnum; k++) {
		ssize_t n = msgrcv(id, mb, max, k, IPC_NOWAIT | MSG_COPY);
		SysvMsg *m;

		if (n < 0) {
			pr_perror("cannot copy message %zu of SysV message queue %d", k, id);
			goto out;
		}
		m = xmalloc(sizeof(*m));
		sysv_msg__init(m);
		m->mtype = mb->mtype;
		m->text.len = n;
		m->text.data = xmalloc(n + 1);
		memcpy(m->text.data, mb->mtext, n);
		me.msgs[me.n_msgs++] = m;
	}
	ret = img_write_msg(&ctx->w, IMG_SYSV_MSG, &me.base);
out:
	for (k = 0; k < me.n_msgs; k++) {
		free(me.msgs[k]->text.data);
		free(me.msgs[k]);
	}
	free(me.msgs);
	free(mb);
	return ret;
}

/* Stage 2 of the first task: the records of every object, once. */
static int sysvipc_dump_write(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct ipc_dump *d = ipc_dump(ctx);
	size_t i;

	int ret = 0;

	if (d->written)
		return 0;
	d->written = true;
	if (ipc_enter(d, true))
		return -1;
	for (i = 0; i < d->nshm && !ret; i++)
		ret = write_shm(ctx, &d->shm[i]);
	for (i = 0; i < d->nsem && !ret; i++)
		ret = write_sem(ctx, d->sem[i]);
	for (i = 0; i < d->nmsg && !ret; i++)
		ret = write_msg(ctx, d->msg[i]);
	ipc_enter(d, false);
	return ret;
}

/* The image holds them and the tree dies: free their ids for the restore. */
static void sysvipc_dump_end(struct dump_ctx *ctx, bool kill)
{
	struct ipc_dump *d = ipc_dump(ctx);
	size_t i;

	if (!kill || !d->written || d->ns_fd >= 0)
		return; /* objects of the tree's own namespace go with it */
	for (i = 0; i < d->nshm; i++)
		if (shmctl(d->shm[i].id, IPC_RMID, NULL) < 0)
			pr_warn("cannot remove SysV shared memory segment %d: %m\n", d->shm[i].id);
	for (i = 0; i < d->nsem; i++)
		if (semctl(d->sem[i], 0, IPC_RMID) < 0)
			pr_warn("cannot remove SysV semaphore set %d: %m\n", d->sem[i]);
	for (i = 0; i < d->nmsg; i++)
		if (msgctl(d->msg[i], IPC_RMID, NULL) < 0)
			pr_warn("cannot remove SysV message queue %d: %m\n", d->msg[i]);
}

static void sysvipc_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct ipc_dump *d = state;

	if (d->ns_fd > 0)
		close(d->ns_fd); /* state is zeroed: fd 0 is never ours */
	free(d->shm);
	free(d->sem);
	free(d->msg);
}

/* mm.c, stage 2: an attachment's VMA (or a piece of one; scanned above). */
int sysvipc_vma_dump(pid_t pid, const struct proc_vma *v, VmaEntry *e)
{
	e->kind = VMA_KIND__VMA_SYSV_SHM;
	e->has_shmid = true;
	e->shmid = v->ino;
	e->has_shm_rdonly = true;
	e->shm_rdonly = !(v->vmflags & VMF_MAYWRITE);
	e->has_pgoff = true;
	e->pgoff = v->pgoff;
	return 0;
}

/* ------------------------------------------------------------- restore */

/* What the image holds, and what this restore created of it. */
struct ipc_image {
	SysvShmEntry **shm;
	SysvShmChunk **chunks;
	SysvSemEntry **sem;
	SysvMsgEntry **msg;
	size_t nshm, nchunks, nsem, nmsg;
	size_t made_shm, made_sem, made_msg; /* the first ones of each are ours */
	int released;
};

static struct ipc_image *ipc_image(struct image *img)
{
	return res_image_state(img, &sysvipc_res);
}

static bool perm_ok(struct image *img, const SysvPerm *p, const char *what)
{
	if (p->id > INT32_MAX || (p->mode & ~0777)) {
		pr_err("image %s is corrupt: SysV %s %u has a bad id or mode\n", img->r.path, what,
		       p->id);
		return false;
	}
	return true;
}

#define PUSH(arr, n, x)                                              \
	do {                                                         \
		(arr) = xrealloc((arr), ((n) + 1) * sizeof(*(arr))); \
		(arr)[(n)++] = (x);                                  \
	} while (0)

int sysvipc_shm_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	SysvShmEntry *se = msg;

	if (!perm_ok(img, se->perm, "shared memory segment") || !se->size ||
	    se->size > (1ULL << 46)) {
		sysv_shm_entry__free_unpacked(se, NULL);
		return -1;
	}
	PUSH(ipc_image(img)->shm, ipc_image(img)->nshm, se);
	return 0;
}

int sysvipc_shm_data_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	PUSH(ipc_image(img)->chunks, ipc_image(img)->nchunks, (SysvShmChunk *)msg);
	return 0;
}

int sysvipc_sem_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	SysvSemEntry *se = msg;

	if (!perm_ok(img, se->perm, "semaphore set") || !se->n_values) {
		sysv_sem_entry__free_unpacked(se, NULL);
		return -1;
	}
	PUSH(ipc_image(img)->sem, ipc_image(img)->nsem, se);
	return 0;
}

int sysvipc_msg_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	SysvMsgEntry *me = msg;

	if (!perm_ok(img, me->perm, "message queue")) {
		sysv_msg_entry__free_unpacked(me, NULL);
		return -1;
	}
	PUSH(ipc_image(img)->msg, ipc_image(img)->nmsg, me);
	return 0;
}

static const SysvShmEntry *shm_find(struct ipc_image *ii, uint32_t id)
{
	size_t i;

	for (i = 0; i < ii->nshm; i++)
		if (ii->shm[i]->perm->id == id)
			return ii->shm[i];
	return NULL;
}

static int bad_attachment(struct image *img, const MmEntry *mm, const VmaEntry *e)
{
	pr_err("image %s is corrupt: pid %u mapping %" PRIx64 "-%" PRIx64
	       " is no whole attachment of a saved SysV shared memory segment\n",
	       img->r.path, mm->pid, e->start, e->end);
	return -1;
}

/* The attachments of one task: pieces from offset 0 to the segment's end. */
static int check_attachments(struct image *img, struct ipc_image *ii, const MmEntry *mm)
{
	const VmaEntry *prev = NULL;
	uint64_t end = 0;
	size_t i;

	for (i = 0; i <= mm->n_vmas; i++) {
		const VmaEntry *e = i < mm->n_vmas ? mm->vmas[i] : NULL;
		bool sysv = e && e->kind == VMA_KIND__VMA_SYSV_SHM;
		const SysvShmEntry *se;

		if (sysv && e->pgoff && prev && e->shmid == prev->shmid && e->start == prev->end &&
		    e->pgoff == prev->pgoff + (prev->end - prev->start)) {
			prev = e;
			continue;
		}
		if (prev && prev->end != end)
			return bad_attachment(img, mm, prev);
		prev = NULL;
		if (!sysv)
			continue;
		se = e->has_shmid ? shm_find(ii, e->shmid) : NULL;
		if (!se || e->pgoff)
			return bad_attachment(img, mm, e);
		prev = e;
		end = e->start + page_up(se->size);
	}
	return 0;
}

/* Every chunk lies in its segment, every attachment names a saved segment. */
static int sysvipc_loaded(struct image *img)
{
	struct ipc_image *ii = ipc_image(img);
	size_t i, t;

	for (i = 0; i < ii->nchunks; i++) {
		const SysvShmChunk *ch = ii->chunks[i];
		const SysvShmEntry *se = shm_find(ii, ch->id);

		if (!se || ch->offset > se->size || ch->data.len > se->size - ch->offset) {
			pr_err("image %s is corrupt: SysV shared memory data for segment %u lies "
			       "outside it\n",
			       img->r.path, ch->id);
			return -1;
		}
	}
	for (t = 0; t < img->ntasks; t++)
		if (img->tasks[t].mm && check_attachments(img, ii, img->tasks[t].mm))
			return -1;
	return 0;
}

static int next_id(const char *which, int id)
{
	char path[64], buf[16];
	int fd, len, ret = 0;

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s_next_id", which);
	len = snprintf(buf, sizeof(buf), "%d", id);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != len) {
		pr_perror("cannot write %s", path);
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * Is the slot of id free?  A segment removed by the dump may linger while
 * the tree it killed exits: wait for it a little.
 */
static int slot_free(const char *what, int id)
{
	int i, held;

	for (i = 0; i < 200; i++) {
		struct shmid_ds sd;
		struct semid_ds md;
		struct msqid_ds qd;
		const struct ipc_perm *p;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		int idx = id & 0x7fff; /* ipcid_to_idx(), without the ipcmni_extend boot option */

		if (!strcmp(what, "shm")) {
			held = shmctl(idx, SHM_STAT_ANY, &sd);
			p = &sd.shm_perm;
		} else if (!strcmp(what, "sem")) {
			held = semctl(idx, 0, SEM_STAT_ANY, &md);
			p = &md.sem_perm;
		} else {
			held = msgctl(idx, MSG_STAT_ANY, &qd);
			p = &qd.msg_perm;
		}
		if (held < 0)
			return 0;
		if (strcmp(what, "shm") || !(p->mode & SHM_DEST)) {
			pr_err("SysV %s id %d is taken on this host (by id %d, key %#x); cannot "
			       "restore it\n",
			       what, id, held, p->__key);
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	pr_err("SysV shm id %d is still held by a removed segment on this host\n", id);
	return -1;
}

static void rm_any(const char *which, int id)
{
	if (!strcmp(which, "shm"))
		shmctl(id, IPC_RMID, NULL);
	else if (!strcmp(which, "sem"))
		semctl(id, 0, IPC_RMID);
	else
		msgctl(id, IPC_RMID, NULL);
}

/*
 * A get that failed left which_next_id set (it only goes back to -1 when
 * used, and cannot be written below 0): use it up with an object of ours,
 * removed at once, so that the next get of another program is not steered.
 */
static void next_id_consume(const char *which, const void *arg,
			    int (*get)(const void *arg, key_t k, int flags))
{
	char name[32], *s;
	long v;
	int id;

	snprintf(name, sizeof(name), "/proc/sys/kernel/%s_next_id", which);
	s = read_file(name, NULL);
	v = s ? atol(s) : -1;
	free(s);
	if (v < 0)
		return;
	id = get(arg, IPC_PRIVATE, IPC_CREAT | 0600);
	if (id >= 0)
		rm_any(which, id);
}

/*
 * Create one object with its saved id: which_next_id set, get() called,
 * the id checked; the next id is reset whatever happens.
 */
static int get_with_id(const char *which, const SysvPerm *p,
		       int (*get)(const void *arg, key_t k, int flags), const void *arg)
{
	int id, err;

	if (slot_free(which, p->id) || next_id(which, p->id))
		return -1;
	id = get(arg, p->key ? (key_t)p->key : IPC_PRIVATE, IPC_CREAT | IPC_EXCL | p->mode);
	err = errno;
	if (id < 0)
		next_id_consume(which, arg, get);
	if (id < 0) {
		errno = err;
		if (err == EEXIST)
			pr_err("SysV %s key %#x (id %u) is taken on this host; cannot restore it\n",
			       which, p->key, p->id);
		else
			pr_perror("cannot create SysV %s id %u (key %#x)", which, p->id, p->key);
		return -1;
	}
	if (id != (int)p->id) {
		pr_err("SysV %s id %u could not be had (the kernel gave %d)\n", which, p->id, id);
		return id;
	}
	return id;
}

static int shm_get(const void *arg, key_t k, int flags)
{
	return shmget(k, ((const SysvShmEntry *)arg)->size, flags);
}

static int sem_get(const void *arg, key_t k, int flags)
{
	return semget(k, ((const SysvSemEntry *)arg)->n_values, flags);
}

static int msg_get(const void *arg, key_t k, int flags)
{
	return msgget(k, flags);
}

static void owner_set(struct ipc_perm *ip, const SysvPerm *p)
{
	ip->uid = p->uid;
	ip->gid = p->gid;
	ip->mode = p->mode;
}

static int shm_fill(struct ipc_image *ii, const SysvShmEntry *se)
{
	char *at = shmat(se->perm->id, NULL, 0);
	size_t i;

	if (at == (void *)-1) {
		pr_perror("cannot attach SysV shared memory segment %u to fill it", se->perm->id);
		return -1;
	}
	for (i = 0; i < ii->nchunks; i++)
		if (ii->chunks[i]->id == se->perm->id)
			memcpy(at + ii->chunks[i]->offset, ii->chunks[i]->data.data,
			       ii->chunks[i]->data.len);
	shmdt(at);
	return 0;
}

static int shm_create(struct ipc_image *ii, const SysvShmEntry *se)
{
	struct shmid_ds ds;
	int id = get_with_id("shm", se->perm, shm_get, se);

	if (id < 0)
		return -1;
	if (id != (int)se->perm->id) {
		shmctl(id, IPC_RMID, NULL);
		return -1;
	}
	ii->made_shm++;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		goto fail;
	owner_set(&ds.shm_perm, se->perm);
	if (shmctl(id, IPC_SET, &ds) < 0 || (se->locked && shmctl(id, SHM_LOCK, NULL) < 0))
		goto fail;
	return shm_fill(ii, se);
fail:
	pr_perror("cannot set up SysV shared memory segment %d", id);
	return -1;
}

static int sem_create(struct ipc_image *ii, const SysvSemEntry *se)
{
	unsigned short *vals;
	struct semid_ds ds;
	size_t k;
	int id = get_with_id("sem", se->perm, sem_get, se), ret = -1;

	if (id < 0)
		return -1;
	if (id != (int)se->perm->id) {
		semctl(id, 0, IPC_RMID);
		return -1;
	}
	ii->made_sem++;
	vals = xzalloc(se->n_values * sizeof(*vals));
	for (k = 0; k < se->n_values; k++)
		vals[k] = se->values[k];
	if (semctl(id, 0, SETALL, vals) < 0 || semctl(id, 0, IPC_STAT, &ds) < 0)
		goto out;
	owner_set(&ds.sem_perm, se->perm);
	if (semctl(id, 0, IPC_SET, &ds) < 0)
		goto out;
	ret = 0;
out:
	if (ret)
		pr_perror("cannot set up SysV semaphore set %d", id);
	free(vals);
	return ret;
}

static int msg_create(struct ipc_image *ii, const SysvMsgEntry *me)
{
	struct msqid_ds ds;
	struct msgbuf *mb;
	size_t k;
	int id = get_with_id("msg", me->perm, msg_get, me);

	if (id < 0)
		return -1;
	if (id != (int)me->perm->id) {
		msgctl(id, IPC_RMID, NULL);
		return -1;
	}
	ii->made_msg++;
	if (msgctl(id, IPC_STAT, &ds) < 0)
		goto fail;
	owner_set(&ds.msg_perm, me->perm);
	ds.msg_qbytes = me->qbytes;
	if (msgctl(id, IPC_SET, &ds) < 0)
		goto fail;
	for (k = 0; k < me->n_msgs; k++) {
		const SysvMsg *m = me->msgs[k];
		int r;

		if (m->mtype <= 0) {
			pr_err("SysV message queue %d: message %zu has a bad type\n", id, k);
			return -1;
		}
		mb = xmalloc(sizeof(*mb) + m->text.len);
		mb->mtype = m->mtype;
		memcpy(mb->mtext, m->text.data, m->text.len);
		r = msgsnd(id, mb, m->text.len, IPC_NOWAIT);
		free(mb);
		if (r < 0)
			goto fail;
	}
	return 0;
fail:
	pr_perror("cannot set up SysV message queue %d", id);
	return -1;
}

/* Before anything is forked: every object, with its id. */
/* The objects live in the tree's own IPC namespace (made by its root). */
static bool own_ns(struct image *img)
{
	return img->ntasks && image_task(img, img->hdr->root_pid)->te->has_ipc_ns;
}

static int create_all(struct ipc_image *ii);

static int sysvipc_restore_check(struct image *img, const struct restore_opts *o)
{
	return own_ns(img) ? 0 : create_all(ipc_image(img));
}

/* The root's restore child, in the new namespace (res/ns.c), before it forks. */
static int sysvipc_child_early(struct rst_ctx *c)
{
	if (c->t->parent || !c->t->te->has_ipc_ns)
		return 0;
	return create_all(ipc_image(c->img));
}

static int create_all(struct ipc_image *ii)
{
	size_t i;

	for (i = 0; i < ii->nshm; i++)
		if (shm_create(ii, ii->shm[i]))
			return -1;
	for (i = 0; i < ii->nsem; i++)
		if (sem_create(ii, ii->sem[i]))
			return -1;
	for (i = 0; i < ii->nmsg; i++)
		if (msg_create(ii, ii->msg[i]))
			return -1;
	return 0;
}

static uint64_t shm_size(struct image *img, uint32_t id)
{
	const SysvShmEntry *se = shm_find(ipc_image(img), id);

	return se ? se->size : 0;
}

/*
 * mm.c's remote build: attach the segment where the task had it (at the
 * first piece of the attachment), and give each piece its protection.
 */
int sysvipc_vma_map(struct rst_ctx *c, const VmaEntry *e)
{
	unsigned int prot = PROT_READ | (e->shm_rdonly ? 0 : PROT_WRITE);
	long flags = (e->shm_rdonly ? SHM_RDONLY : 0);
	long at;

	if (e->pgoff)
		return mm_rcall(c, "mprotect", __NR_mprotect, e->start, e->end - e->start, e->prot,
				0, 0, 0, NULL);
	if (e->prot & PROT_EXEC) {
		flags |= SHM_EXEC;
		prot |= PROT_EXEC;
	}
	if (mm_rcall(c, "shmat", __NR_shmat, e->shmid, e->start, flags, 0, 0, 0, &at))
		return -1;
	if ((unsigned long)at != e->start) {
		pr_err("pid %u: SysV segment %u attached at %lx, not at %" PRIx64 "\n",
		       c->t->te->pid, e->shmid, (unsigned long)at, e->start);
		return -1;
	}
	if (prot != e->prot || e->end - e->start != page_up(shm_size(c->img, e->shmid)))
		return mm_rcall(c, "mprotect", __NR_mprotect, e->start, e->end - e->start, e->prot,
				0, 0, 0, NULL);
	return 0;
}

/* Every task is rebuilt: segments removed at the dump are removed again. */
static int sysvipc_release(struct rst_ctx *c)
{
	struct ipc_image *ii = ipc_image(c->img);
	size_t i;

	struct ipc_dump ns = { .ns_fd = -1 };
	char path[64];
	int ret = 0;

	if (__atomic_exchange_n(&ii->released, 1, __ATOMIC_SEQ_CST))
		return 0;
	if (c->t->te->has_ipc_ns) {
		snprintf(path, sizeof(path), "/proc/%d/ns/ipc", c->host_pid);
		ns.ns_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (ns.ns_fd < 0 || ipc_enter(&ns, true)) {
			pr_perror("cannot enter the IPC namespace of pid %d", c->host_pid);
			if (ns.ns_fd >= 0)
				close(ns.ns_fd);
			return -1;
		}
	}
	for (i = 0; i < ii->nshm && !ret; i++)
		if (ii->shm[i]->removed && shmctl(ii->shm[i]->perm->id, IPC_RMID, NULL) < 0) {
			pr_perror("cannot mark SysV shared memory segment %u removed",
				  ii->shm[i]->perm->id);
			ret = -1;
		}
	if (ns.ns_fd >= 0) {
		ipc_enter(&ns, false);
		close(ns.ns_fd);
	}
	return ret;
}

/* A restore that failed takes back what it created. */
static void sysvipc_image_fini(struct image *img, void *state)
{
	struct ipc_image *ii = state;
	bool undo = !ii->released;
	size_t i;

	for (i = 0; i < ii->nshm; i++) {
		if (undo && i < ii->made_shm)
			shmctl(ii->shm[i]->perm->id, IPC_RMID, NULL);
		sysv_shm_entry__free_unpacked(ii->shm[i], NULL);
	}
	for (i = 0; i < ii->nchunks; i++)
		sysv_shm_chunk__free_unpacked(ii->chunks[i], NULL);
	for (i = 0; i < ii->nsem; i++) {
		if (undo && i < ii->made_sem)
			semctl(ii->sem[i]->perm->id, 0, IPC_RMID);
		sysv_sem_entry__free_unpacked(ii->sem[i], NULL);
	}
	for (i = 0; i < ii->nmsg; i++) {
		if (undo && i < ii->made_msg)
			msgctl(ii->msg[i]->perm->id, IPC_RMID, NULL);
		sysv_msg_entry__free_unpacked(ii->msg[i], NULL);
	}
	free(ii->shm);
	free(ii->chunks);
	free(ii->sem);
	free(ii->msg);
}

const struct res_ops sysvipc_res = {
	.name = "sysvipc",
	.dump_state_size = sizeof(struct ipc_dump),
	.image_state_size = sizeof(struct ipc_image),
	.dump_check = sysvipc_check,
	.dump_write = sysvipc_dump_write,
	.dump_end = sysvipc_dump_end,
	.dump_fini = sysvipc_dump_fini,
	.image_loaded = sysvipc_loaded,
	.restore_check = sysvipc_restore_check,
	.child_early = sysvipc_child_early,
	.release = sysvipc_release,
	.image_fini = sysvipc_image_fini,
};
