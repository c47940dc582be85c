/*
 * The open files core: the fd table of each task and the open file
 * descriptions behind it.  Each description is saved once (a file_entry
 * with an id) and every fd that refers to it names that id, so fds that
 * shared an offset share it again after restore.  Sameness is decided with
 * kcmp(KCMP_FILE).
 *
 * What a description is and how it comes back is the business of its kind
 * (files.h, the fd kind table in fd_table.c); this file only walks the fd
 * tables, hands each new description to the first kind that matches it,
 * writes the records, and at restore opens each description in the task
 * the planner (fd_plan.c) chose, then installs every task's fd table.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat.h"
#include "files.h"
#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

/*
 * Files saved so far, for sameness: grouped by (dev, ino), and inside a
 * group kept in kcmp order (KCMP_FILE orders open file descriptions
 * consistently), so that an fd is matched with O(log n) kcmp calls even
 * when thousands of descriptions share one inode (every eventfd does).
 */
struct file_seen {
	uint32_t id;
	pid_t pid;
	int fd;
	const struct fd_ops *ops;
};

struct file_group {
	dev_t dev;
	ino_t ino;
	struct file_seen *v;
	size_t n;
};

struct file_index {
	struct file_group *g; /* open addressing; dev == 0 && ino == 0: free */
	size_t cap, used;
};

/* files_res's state for one dump */
struct files_dump {
	struct file_index seen;
	signed char *prescan;	   /* per fd kind: 0 not yet, 1 done, -1 failed */
	unsigned long table_sizes; /* the tree's fd tables (FDSize), together */
};

/* files_res's state for one image: every description, sorted by id once loaded */
struct files_image {
	FileEntry **files;
	size_t n;
};

static struct files_dump *files_dump_state(struct dump_ctx *ctx)
{
	return res_dump_state(ctx, &files_res);
}

static struct files_image *files_image_state(struct image *img)
{
	return res_image_state(img, &files_res);
}

/* ------------------------------------------------------- the kind's part */

static size_t kind_index(const struct fd_ops *ops)
{
	size_t i;

	for (i = 0; i < fd_kinds_len; i++)
		if (fd_kinds[i] == ops)
			return i;
	abort(); /* a kind that is not in the table */
}

int fd_prescan(struct dump_ctx *ctx, const struct fd_ops *ops)
{
	struct files_dump *fs = files_dump_state(ctx);
	size_t k = kind_index(ops);

	if (!fs->prescan)
		fs->prescan = xzalloc(fd_kinds_len);
	if (!fs->prescan[k]) {
		fs->prescan[k] = -1;
		if (ops->prescan && ops->prescan(ctx))
			return -1;
		fs->prescan[k] = 1;
	}
	return fs->prescan[k] < 0 ? -1 : 0;
}

/* A kind whose scan of the tree failed: its fds cannot be told from others. */
static const struct fd_ops *prescan_failed(struct dump_ctx *ctx)
{
	struct files_dump *fs = files_dump_state(ctx);
	size_t k;

	for (k = 0; fs->prescan && k < fd_kinds_len; k++)
		if (fs->prescan[k] < 0)
			return fd_kinds[k];
	return NULL;
}

/* The sub-message of the kind fe holds (the member of its oneof), or NULL. */
static ProtobufCMessage **kind_slot(FileEntry *fe)
{
	const ProtobufCFieldDescriptor *f;

	if (!fe->kind_case)
		return NULL;
	f = protobuf_c_message_descriptor_get_field(fe->base.descriptor, fe->kind_case);
	return f ? (ProtobufCMessage **)((char *)fe + f->offset) : NULL;
}

static void kind_release(const struct fd_ops *ops, FileEntry *fe)
{
	ProtobufCMessage **m = kind_slot(fe);

	if (ops->release)
		ops->release(fe);
	else if (m && *m)
		protobuf_c_message_free_unpacked(*m, NULL);
	if (m)
		*m = NULL;
	fe->kind_case = FILE_ENTRY__KIND__NOT_SET;
}

const char *fdinfo_field(const struct fd_dump *d, const char *key, char *buf, size_t size)
{
	const char *v = d->fdinfo ? status_field(d->fdinfo, key) : NULL;

	if (v)
		snprintf(buf, size, "%.*s", (int)strcspn(v, "\n"), v);
	return v ? buf : NULL;
}

/* ----------------------------------------------------------------- dump */

static size_t group_hash(dev_t dev, ino_t ino, size_t cap)
{
	uint64_t h =
	    ((uint64_t)ino * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)dev * 0xc2b2ae3d27d4eb4fULL);

	return (size_t)(h >> 17) & (cap - 1);
}

static struct file_group *group_slot(struct file_group *g, size_t cap, dev_t dev, ino_t ino)
{
	size_t i = group_hash(dev, ino, cap);

	while ((g[i].dev || g[i].ino) && (g[i].dev != dev || g[i].ino != ino))
		i = (i + 1) & (cap - 1);
	return &g[i];
}

static struct file_group *group_get(struct file_index *x, dev_t dev, ino_t ino)
{
	struct file_group *s;
	size_t i;

	if ((x->used + 1) * 2 > x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 256;
		struct file_group *g = xzalloc(cap * sizeof(*g));

		for (i = 0; i < x->cap; i++)
			if (x->g[i].dev || x->g[i].ino)
				*group_slot(g, cap, x->g[i].dev, x->g[i].ino) = x->g[i];
		free(x->g);
		x->g = g;
		x->cap = cap;
	}
	s = group_slot(x->g, x->cap, dev, ino);
	if (!s->dev && !s->ino) {
		s->dev = dev;
		s->ino = ino;
		x->used++;
	}
	return s;
}

/*
 * The saved file this fd is an fd of (NULL with *pos set to where it
 * belongs in its group); *err set if kcmp fails.
 */
static const struct file_seen *group_find(const struct file_group *g, const struct fd_dump *d,
					  size_t *pos, bool *err)
{
	size_t lo = 0, hi = g->n;

	*err = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		long r = syscall(SYS_kcmp, d->pid, g->v[mid].pid, KCMP_FILE, d->fd, g->v[mid].fd);

		if (r == 0)
			return &g->v[mid];
		if (r == 1)
			hi = mid;
		else if (r == 2)
			lo = mid + 1;
		else {
			pr_perror("pid %d fd %d: kcmp", d->pid, d->fd);
			*err = true;
			return NULL;
		}
	}
	*pos = lo;
	return NULL;
}

static void group_insert(struct file_group *g, size_t pos, const struct fd_dump *d, uint32_t id,
			 const struct fd_ops *ops)
{
	g->v = xrealloc(g->v, (g->n + 1) * sizeof(*g->v));
	memmove(&g->v[pos + 1], &g->v[pos], (g->n - pos) * sizeof(*g->v));
	g->v[pos] = (struct file_seen){ id, d->pid, d->fd, ops };
	g->n++;
}

static void files_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct files_dump *fs = state;
	size_t i;

	for (i = 0; i < fs->seen.cap; i++)
		free(fs->seen.g[i].v);
	free(fs->seen.g);
	free(fs->prescan);
}

/* The first kind of the table that takes this fd, or NULL (with the error said). */
static const struct fd_ops *match_kind(struct dump_ctx *ctx, const struct fd_dump *d)
{
	const struct fd_ops *ops = NULL, *k, *bad;
	bool o_path = d->fi.flags & O_PATH;
	size_t i;

	for_each_fd_kind(i, k) if (k->o_path == o_path && k->match && k->match(d))
	{
		ops = k;
		break;
	}
	bad = prescan_failed(ctx);
	if (bad) {
		pr_err("pid %d fd %d (%s): the scan of the tree for %ss failed, so this fd "
		       "cannot be told apart\n",
		       d->pid, d->fd, d->link, bad->name);
		return NULL;
	}
	if (!ops)
		pr_err("pid %d fd %d (%s): %s\n", d->pid, d->fd, d->link, fd_unsupported_reason(d));
	return ops;
}

/* A description seen for the first time: its kind saves it, then its record. */
static long save_description(struct dump_ctx *ctx, const struct fd_dump *d,
			     const struct fd_ops *ops)
{
	FileEntry fe = FILE_ENTRY__INIT;
	int ret;

	fe.id = ++ctx->next_file_id;
	fe.type = ops->type;
	fe.flags = d->fi.flags & ~O_CLOEXEC;
	fe.path = (char *)d->link;
	fe.kind_case = ops->kind;
	ret = ops->dump(d, &fe);
	if (!ret)
		ret = fown_dump(d, &fe);
	if (!ret && fault_fd(false, ops->type))
		ret = -1;
	if (!ret && !*kind_slot(&fe)) {
		pr_err("pid %d fd %d: the %s kind saved no state\n", d->pid, d->fd, ops->name);
		ret = -1;
	}
	if (!ret)
		ret = img_write_msg(&ctx->w, IMG_FILE, &fe.base);
	kind_release(ops, &fe);
	return ret ? -1 : (long)fe.id;
}

/* Locks held through d, if the kind can hold them; else refuse a held one. */
static int dump_locks(const struct fd_dump *d, const struct fd_ops *ops, uint32_t id, bool first)
{
	if (ops->lock)
		return ops->lock->dump(d, id, first);
	if (strstr(d->fdinfo, "\nlock:")) {
		pr_err("pid %d fd %d (%s): holds a file lock, which is not supported on a %s\n",
		       d->pid, d->fd, d->link, ops->name);
		return -1;
	}
	return 0;
}

static int dump_one_fd(struct dump_ctx *ctx, struct fd_dump *d)
{
	struct files_dump *fs = files_dump_state(ctx);
	FdEntry fde = FD_ENTRY__INIT;
	const struct file_seen *seen;
	const struct fd_ops *ops;
	struct file_group *g;
	size_t pos = 0;
	bool err;
	long id;

	if (proc_fdinfo_parse_text(d->fdinfo, &d->fi) || fstat(d->lfd, &d->st))
		return -1;
	g = group_get(&fs->seen, d->st.st_dev, d->st.st_ino);
	seen = group_find(g, d, &pos, &err);
	if (err)
		return -1;
	if (seen) {
		id = seen->id;
		ops = seen->ops;
		if (dump_locks(d, ops, id, false))
			return -1;
	} else {
		ops = match_kind(ctx, d);
		id = ops ? save_description(ctx, d, ops) : -1;
		if (id < 0)
			return -1;
		group_insert(g, pos, d, (uint32_t)id, ops);
		if (dump_locks(d, ops, id, true))
			return -1;
	}
	fde.pid = d->pid;
	fde.fd = d->fd;
	fde.cloexec = !!(d->fi.flags & O_CLOEXEC);
	fde.file_id = id;
	return img_write_msg(&ctx->w, IMG_FD, &fde.base);
}

/*
 * /proc/PID/fdinfo/FD, NUL-terminated: one read where it fits (the kernel
 * writes it in one go, so a read shorter than asked for is all of it),
 * else the whole file.
 */
static char *read_fdinfo(int info_dir, const char *name)
{
	char *buf = xmalloc(4096);
	ssize_t n;
	int fd = openat(info_dir, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		free(buf);
		return NULL;
	}
	do
		n = read(fd, buf, 4095);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n >= 0 && n < 4095) {
		buf[n] = '\0';
		return buf;
	}
	free(buf);
	return n < 0 ? NULL : read_file_at(info_dir, name, NULL);
}

/* One fd: its link, a duplicate of it in stasis, its fdinfo; then save it. */
static int dump_fd_at(struct dump_ctx *ctx, pid_t pid, int pidfd, int fd_dir, int info_dir,
		      const char *name)
{
	struct fd_dump d = { .ctx = ctx, .pid = pid, .fd = atoi(name), .lfd = -1 };
	char *info = NULL;
	ssize_t n;
	int ret = -1;

	n = readlinkat(fd_dir, name, d.link, sizeof(d.link) - 1);
	if (n < 0) {
		pr_perror("pid %d: cannot read fd %d", pid, d.fd);
		return -1;
	}
	d.link[n] = '\0';
	d.lfd = syscall(__NR_pidfd_getfd, pidfd, d.fd, 0);
	if (d.lfd < 0) {
		pr_perror("pid %d fd %d: pidfd_getfd", pid, d.fd);
		return -1;
	}
	info = read_fdinfo(info_dir, name);
	if (!info) {
		pr_perror("cannot read /proc/%d/fdinfo/%d", pid, d.fd);
		goto out;
	}
	d.fdinfo = info;
	ret = dump_one_fd(ctx, &d);
out:
	free(info);
	close(d.lfd);
	return ret;
}

static int files_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	int pidfd, info_dir = -1, ret = -1;
	struct dirent *de;
	char path[64];
	DIR *dir = NULL;

	pidfd = syscall(__NR_pidfd_open, dt->pid, 0);
	if (pidfd < 0) {
		pr_perror("pid %d: pidfd_open", dt->pid);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", dt->pid);
	info_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/fd", dt->pid);
	dir = info_dir < 0 ? NULL : opendir(path);
	if (!dir) {
		pr_perror("cannot open %s", path);
		goto out;
	}
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.' &&
		    dump_fd_at(ctx, dt->pid, pidfd, dirfd(dir), info_dir, de->d_name))
			goto out;
	ret = 0;
out:
	if (dir)
		closedir(dir);
	if (info_dir >= 0)
		close(info_dir);
	close(pidfd);
	return ret;
}

/*
 * Call fn(ctx, pid, fd, path of /proc/PID/fd/FD) for every fd of every
 * live task of the tree: the pre-scans that must see all ends of an
 * object (pipes, pty masters) before the first one is saved.  fn returns
 * 0 to go on, -1 to stop with an error.
 */
int files_for_each_tree_fd(struct dump_ctx *ctx, tree_fd_fn fn)
{
	size_t i;

	for (i = 0; i < ctx->ntasks; i++) {
		pid_t pid = ctx->tasks[i].pid;
		char path[64], fd_path[64 + 256];
		struct dirent *de;
		int ret = 0;
		DIR *d;

		if (ctx->tasks[i].zombie)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		d = opendir(path);
		if (!d) {
			pr_perror("cannot list the fds of %d", pid);
			return -1;
		}
		while (!ret && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(fd_path, sizeof(fd_path), "%s/%s", path, de->d_name);
			ret = fn(ctx, pid, atoi(de->d_name), fd_path);
		}
		closedir(d);
		if (ret)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- loading */

/* IMG_FILE: one open file description; its kind checks what it needs. */
int files_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct files_image *fi = files_image_state(img);
	const struct fd_ops *ops;
	FileEntry *fe = msg;

	ops = fd_kind(fe->type);
	if (ops && fe->kind_case != ops->kind) {
		pr_err("image %s is corrupt: file %u (%s) lacks its state\n", img->r.path, fe->id,
		       ops->name);
		goto err;
	}
	if (ops && ops->load && ops->load(img, fe))
		goto err;
	fi->files = xrealloc(fi->files, (fi->n + 1) * sizeof(*fi->files));
	fi->files[fi->n++] = fe;
	return 0;
err:
	file_entry__free_unpacked(fe, NULL);
	return -1;
}

static int cmp_file_id(const void *a, const void *b)
{
	uint32_t x = (*(FileEntry *const *)a)->id, y = (*(FileEntry *const *)b)->id;

	return x < y ? -1 : x > y;
}

/* Sorted by id for the lookups below; a repeated id is corrupt. */
static int files_loaded(struct image *img)
{
	struct files_image *fi = files_image_state(img);
	size_t i;

	sort_array(fi->files, fi->n, sizeof(*fi->files), cmp_file_id);
	for (i = 1; i < fi->n; i++)
		if (fi->files[i]->id == fi->files[i - 1]->id) {
			pr_err("image %s is corrupt: file id %u appears twice\n", img->r.path,
			       fi->files[i]->id);
			return -1;
		}
	return 0;
}

static void files_image_fini(struct image *img, void *state)
{
	struct files_image *fi = state;
	size_t i;

	for (i = 0; i < fi->n; i++)
		file_entry__free_unpacked(fi->files[i], NULL);
	free(fi->files);
}

FileEntry **image_files(struct image *img, size_t *n)
{
	struct files_image *fi = files_image_state(img);

	*n = fi->n;
	return fi->files;
}

long image_file_index(struct image *img, uint32_t id)
{
	struct files_image *fi = files_image_state(img);
	size_t lo = 0, hi = fi->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fi->files[mid]->id == id)
			return (long)mid;
		if (fi->files[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

FileEntry *image_file(struct image *img, uint32_t id)
{
	long i = image_file_index(img, id);

	return i < 0 ? NULL : files_image_state(img)->files[i];
}

/* -------------------------------------------------------------- restore */

int files_max_fd(struct rst_task *t)
{
	int m = 2;
	size_t i;

	for (i = 0; i < t->nfds; i++)
		m = max(m, (int)t->fds[i]->fd);
	return m;
}

int inherited_fd(struct rst_ctx *c, const char *key)
{
	const struct restore_opts *o = c->opts;
	int k;

	for (k = 0; k < o->n_inherit; k++)
		if (!strcmp(o->inherit[k].key, key))
			/* after the kinds' service fds (child.c places them) */
			return fcntl(svc_fd(c, SVC_FILES) + c->svc_files + k, F_DUPFD_CLOEXEC, 0);
	return -1;
}

bool fd_shared_placed(struct rst_ctx *c, uint32_t id)
{
	return fcntl(c->shared_base + id, F_GETFD) >= 0;
}

int fd_place_shared(struct rst_ctx *c, uint32_t id, int fd)
{
	if (move_fd(fd, c->shared_base + id) < 0) {
		pr_perror("pid %u: cannot place file %u at fd %d", c->t->te->pid, id,
			  c->shared_base + id);
		close(fd);
		return -1;
	}
	return 0;
}

/* Are fd's the service fds of a process that shares c's table (or c's own)? */
static bool svc_of_table(const struct rst_ctx *c, int fd)
{
	size_t i;

	if (fd >= c->svc_base && fd < c->svc_end)
		return true;
	for (i = 0; c->table_leader && i < c->tree->n; i++) {
		const struct rst_ctx *o = &c->tree->ctx[i];

		if (o->table_leader == c->table_leader && fd >= o->svc_base && fd < o->svc_end)
			return true;
	}
	return false;
}

/* Close everything the child inherited that is neither a target fd nor ours. */
static int close_strays_listed(struct rst_ctx *c)
{
	int max_fd = files_max_fd(c->t);
	unsigned char *target = xzalloc(max_fd + 1);
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	size_t i;
	int dfd;

	if (!dir) {
		pr_perror("cannot list my fds");
		free(target);
		return -1;
	}
	for (i = 0; i < c->t->nfds; i++)
		target[c->t->fds[i]->fd] = 1;
	dfd = dirfd(dir);
	while ((de = readdir(dir))) {
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd == dfd || (fd <= max_fd && target[fd]) || svc_of_table(c, fd))
			continue;
		close(fd);
	}
	closedir(dir);
	free(target);
	return 0;
}

struct fd_span {
	unsigned int lo, hi; /* kept: [lo, hi] */
};

static int span_cmp(const void *a, const void *b)
{
	const struct fd_span *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/*
 * The same with close_range() over the gaps between what stays (the
 * target fds, the service fds of the table): a few calls, where listing
 * /proc/self/fd costs a lookup per fd (a process with thousands of
 * sockets has them twice here, in the shared slots and at their fds).
 */
static int close_strays(struct rst_ctx *c)
{
	size_t i, n = 0, cap = c->t->nfds + c->tree->n + 1;
	struct fd_span *keep = xmalloc(cap * sizeof(*keep));
	unsigned int next = 0;
	int ret = 0;

	for (i = 0; i < c->t->nfds; i++)
		keep[n++] = (struct fd_span){ c->t->fds[i]->fd, c->t->fds[i]->fd };
	if (c->svc_end > c->svc_base)
		keep[n++] = (struct fd_span){ c->svc_base, c->svc_end - 1 };
	for (i = 0; c->table_leader && i < c->tree->n; i++) {
		const struct rst_ctx *o = &c->tree->ctx[i];

		if (o != c && o->table_leader == c->table_leader && o->svc_end > o->svc_base)
			keep[n++] = (struct fd_span){ o->svc_base, o->svc_end - 1 };
	}
	if (n)
		sort_array(keep, n, sizeof(*keep), span_cmp);
	for (i = 0; i <= n && !ret; i++) {
		unsigned int lo = i < n ? keep[i].lo : ~0U;

		if (lo > next)
			ret = syscall(__NR_close_range, next, i < n ? lo - 1 : ~0U, 0);
		if (i < n && keep[i].hi + 1 > next)
			next = keep[i].hi + 1;
	}
	free(keep);
	if (ret && errno == ENOSYS)
		return close_strays_listed(c); /* Linux < 5.9 */
	if (ret)
		pr_perror("cannot close the fds the restore does not keep");
	return ret;
}

static int open_shared_one(struct rst_ctx *c, const FileEntry *fe, const struct fd_ops *ops)
{
	int fd;

	if (fd_shared_placed(c, fe->id) || (ops->open_later && ops->open_later(c, fe)))
		return 0; /* placed already (with another of its group), or later */
	fd = ops->open(c, fe);
	if (fd >= 0 && fault_fd(true, ops->type)) {
		close(fd);
		fd = -1;
	}
	if (fd < 0 || fd_place_shared(c, fe->id, fd))
		return -1;
	return ops->lock ? ops->lock->restore(c, fe, c->shared_base + fe->id) : 0;
}

/*
 * In the child, before it forks its own children: open every description
 * this task opens for its subtree at shared_base + file id, unless it is
 * there already.  Children forked next inherit them, so a description
 * shared between processes stays one description.  Kinds that others are
 * reopened from go first.
 */
static int files_open_shared(struct rst_ctx *c)
{
	struct rst_task *t = c->t;
	size_t i;
	int pass;

	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < t->n_open; i++) {
			const FileEntry *fe = image_file(c->img, t->open_ids[i]);
			const struct fd_ops *ops = fe ? fd_kind(fe->type) : NULL;

			if (!ops) {
				pr_err("pid %u: image names an unknown file %u\n", t->te->pid,
				       t->open_ids[i]);
				return -1;
			}
			if (ops->open_first == (pass == 0) && open_shared_one(c, fe, ops))
				return -1;
		}
	return 0;
}

/* One fd of the table: a dup of its description, or held until its kind places it. */
static int install_fd(struct rst_ctx *c, const FdEntry *f)
{
	const FileEntry *fe = image_file(c->img, f->file_id);
	const struct fd_ops *ops = fe ? fd_kind(fe->type) : NULL;
	int flags = f->cloexec ? O_CLOEXEC : 0, hold;

	if (!fd_shared_placed(c, f->file_id) && ops && ops->open_later && ops->open_later(c, fe)) {
		hold = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (hold < 0 || (hold != (int)f->fd && dup3(hold, f->fd, flags) < 0)) {
			pr_perror("pid %u: cannot hold fd %u for its %s", c->t->te->pid, f->fd,
				  ops->name);
			if (hold >= 0)
				close(hold);
			return -1;
		}
		if (hold != (int)f->fd)
			close(hold);
		return 0;
	}
	if (dup3(c->shared_base + f->file_id, f->fd, flags) < 0) {
		pr_perror("pid %u: cannot install fd %u", c->t->te->pid, f->fd);
		return -1;
	}
	return 0;
}

/*
 * In the child, after forking: install the fd table.  The shared slots
 * stay until files_close_strays(): the mappings of memfds and deleted
 * files are opened from them.
 */
static int files_restore_child(struct rst_ctx *c)
{
	struct rst_task *t = c->t;
	size_t i;

	if (c->table_leader && c->table_leader != c)
		return 0; /* its table is its parent's: the leader fills it */

	for (i = 0; i < t->nfds; i++)
		if (install_fd(c, t->fds[i]))
			return -1;
	for (i = 0; i < t->nfds; i++) {
		const FileEntry *fe = image_file(c->img, t->fds[i]->file_id);
		const struct fd_ops *ops = fe ? fd_kind(fe->type) : NULL;

		if (ops && ops->after_install && ops->after_install(c, t->fds[i], fe))
			return -1;
	}
	return 0;
}

/* In the child, its mapped files open: drop everything but its fds and ours. */
static int files_close_strays(struct rst_ctx *c)
{
	if (c->table_leader && c->table_leader != c)
		return 0; /* the leader does, once every sharer has parked */
	return close_strays(c);
}

/*
 * Service fds go above every fd of the task, and, in a table shared by
 * several processes, above those of the sharers before it (parents come
 * first in the image): each keeps its own in the one table.
 */
static int files_restore_prepare(struct rst_ctx *c)
{
	size_t i, n;
	FileEntry **files = image_files(c->img, &n);

	/* the slots of the tree's open files, shared_base + id (child.c keeps above them) */
	c->shared_slots = (n ? (int)files[n - 1]->id : 0) + 1;
	c->svc_base = max(c->svc_base, files_max_fd(c->t) + 1);
	for (i = 0; c->table_leader && &c->tree->ctx[i] != c; i++)
		if (c->tree->ctx[i].table_leader == c->table_leader)
			c->svc_base = max(c->svc_base, c->tree->ctx[i].svc_end);
	return 0;
}

static unsigned long table_size(pid_t pid)
{
	char path[64], *st, *at;
	unsigned long n = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	st = read_file(path, NULL);
	at = st ? strstr(st, "\nFDSize:") : NULL;
	if (at)
		n = strtoul(at + 8, NULL, 10);
	free(st);
	return n;
}

/*
 * The tree is frozen, no thread of ours started yet: make room in our fd
 * table for a duplicate of every fd of the tree (the kinds may keep some,
 * TCP connections keep one each), in one step (fd_table_reserve).
 */
static int files_dump_check(struct dump_ctx *ctx)
{
	struct files_dump *fs = files_dump_state(ctx);
	size_t i;

	for (i = 0; i < ctx->ntasks; i++)
		fs->table_sizes += table_size(ctx->tasks[i].pid);
	fd_table_reserve(fs->table_sizes + 64);
	return 0;
}

unsigned long files_tree_table_sizes(struct dump_ctx *ctx)
{
	return files_dump_state(ctx)->table_sizes;
}

const struct res_ops files_res = {
	.name = "files",
	.dump_state_size = sizeof(struct files_dump),
	.dump_check = files_dump_check,
	.image_state_size = sizeof(struct files_image),
	.dump_write = files_dump,
	.dump_fini = files_dump_fini,
	.image_loaded = files_loaded,
	.image_fini = files_image_fini,
	.restore_check = files_plan,
	.restore_prepare = files_restore_prepare,
	.child_early = files_open_shared,
	.child = files_restore_child,
	.child_late = files_close_strays,
};
