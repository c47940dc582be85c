/*
 * Unit tests of the fd opener planner (src/res/fd_plan.c): which task of
 * a restored tree opens each open file description, so that every task
 * using it inherits the same one.  Images are built in memory; no root,
 * no process is forked.
 *
 * The tree:  1 ─┬─ 2 ── 4
 *               └─ 3 (leads its own session)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "log.h"
#include "res.h"
#include "util.h"
#include "unit.h"

static const uint32_t pids[] = { 1, 2, 3, 4 };
static const uint32_t ppids[] = { 0, 1, 1, 2 };
static const uint32_t sids[] = { 1, 1, 3, 1 };

static void image_init(struct image *img)
{
	size_t i;

	memset(img, 0, sizeof(*img));
	res_image_states_init(img);
	img->hdr = xmalloc(sizeof(*img->hdr));
	image_header__init(img->hdr);
	img->hdr->root_pid = 1;
	img->ntasks = ARRAY_SIZE(pids);
	img->tasks = xzalloc(img->ntasks * sizeof(*img->tasks));
	for (i = 0; i < img->ntasks; i++) {
		TaskEntry *te = xmalloc(sizeof(*te));

		task_entry__init(te);
		te->pid = pids[i];
		te->ppid = ppids[i];
		te->pgid = pids[i];
		te->sid = sids[i];
		img->tasks[i].te = te;
	}
}

static struct rst_task *task(struct image *img, uint32_t pid)
{
	return image_task(img, pid);
}

/* A description of a kind, its sub-message zeroed, loaded as IMG_FILE would be. */
static FileEntry *add_file(struct image *img, uint32_t id, FileType type)
{
	const struct fd_ops *ops = fd_kind(type);
	const ProtobufCMessageDescriptor *d;
	const ProtobufCFieldDescriptor *f;
	FileEntry *fe = xmalloc(sizeof(*fe));
	void **slot;

	file_entry__init(fe);
	fe->id = id;
	fe->type = type;
	fe->path = xsprintf("test-%u", id);
	fe->kind_case = ops->kind;
	f = protobuf_c_message_descriptor_get_field(&file_entry__descriptor, ops->kind);
	d = f->descriptor;
	slot = (void **)((char *)fe + f->offset);
	*slot = xzalloc(d->sizeof_message);
	protobuf_c_message_init(d, *slot);
	if (files_load(img, NULL, fe))
		abort();
	return fe;
}

static void add_fd(struct image *img, uint32_t pid, uint32_t fd, uint32_t file_id)
{
	struct rst_task *t = task(img, pid);
	FdEntry *f = xmalloc(sizeof(*f));

	fd_entry__init(f);
	f->pid = pid;
	f->fd = fd;
	f->file_id = file_id;
	t->fds = xrealloc(t->fds, (t->nfds + 1) * sizeof(*t->fds));
	t->fds[t->nfds++] = f;
}

static int plan(struct image *img)
{
	static const struct restore_opts opts;

	if (res_stage(image_loaded, img) || tree_build(img))
		return -1;
	return files_plan(img, &opts);
}

/* The task that opens description id, 0 if none, -1 if more than one. */
static long opener(struct image *img, uint32_t id)
{
	long who = 0;
	size_t i, k;

	for (i = 0; i < img->ntasks; i++)
		for (k = 0; k < img->tasks[i].n_open; k++)
			if (img->tasks[i].open_ids[k] == id)
				who = who ? -1 : (long)img->tasks[i].te->pid;
	return who;
}

/* An eventfd in one task, one shared by parent and child, one only a grandchild has. */
static void test_users(void)
{
	struct image img;

	image_init(&img);
	add_file(&img, 1, FILE_TYPE__FILE_EVENTFD);
	add_file(&img, 2, FILE_TYPE__FILE_EVENTFD);
	add_file(&img, 3, FILE_TYPE__FILE_EVENTFD);
	add_fd(&img, 2, 3, 1);
	add_fd(&img, 1, 3, 2);
	add_fd(&img, 2, 4, 2);
	add_fd(&img, 4, 3, 3);
	CHECK(plan(&img) == 0, "plan failed");
	CHECK(opener(&img, 1) == 2, "a description of task 2 alone opened by %ld", opener(&img, 1));
	CHECK(opener(&img, 2) == 1, "a description of parent and child opened by %ld",
	      opener(&img, 2));
	CHECK(opener(&img, 3) == 4, "a description of grandchild 4 alone opened by %ld",
	      opener(&img, 3));
	printf("  ok users: own, parent and child, grandchild\n");
}

/* Both ends of a pipe in different children: their lowest common ancestor. */
static void test_pipe_ends(void)
{
	struct image img;
	FileEntry *rd, *wr, *other;

	image_init(&img);
	rd = add_file(&img, 1, FILE_TYPE__FILE_PIPE);
	wr = add_file(&img, 2, FILE_TYPE__FILE_PIPE);
	other = add_file(&img, 3, FILE_TYPE__FILE_PIPE);
	rd->pipe->pipe_id = wr->pipe->pipe_id = 100;
	other->pipe->pipe_id = 200;
	add_fd(&img, 4, 0, 1); /* the read end in the grandchild under 2 */
	add_fd(&img, 3, 1, 2); /* the write end in 3 */
	add_fd(&img, 4, 5, 3); /* a pipe of its own */
	CHECK(plan(&img) == 0, "plan failed");
	CHECK(opener(&img, 1) == 1 && opener(&img, 2) == 1,
	      "ends in 4 and 3 opened by %ld and %ld, not by their common ancestor 1",
	      opener(&img, 1), opener(&img, 2));
	CHECK(opener(&img, 3) == 4, "a pipe of 4 alone opened by %ld", opener(&img, 3));
	printf("  ok both ends of a pipe: lowest common ancestor\n");
}

/* A group of unix sockets (a pair, a listener with its connection) is opened by one task. */
static void test_unix_group(void)
{
	struct image img;
	FileEntry *a, *b, *c;

	image_init(&img);
	a = add_file(&img, 1, FILE_TYPE__FILE_UNIX);
	b = add_file(&img, 2, FILE_TYPE__FILE_UNIX);
	c = add_file(&img, 3, FILE_TYPE__FILE_UNIX);
	a->unix_sk->group = b->unix_sk->group = 7;
	c->unix_sk->group = 8;
	add_fd(&img, 4, 3, 1);
	add_fd(&img, 2, 3, 2);
	add_fd(&img, 3, 3, 3);
	CHECK(plan(&img) == 0, "plan failed");
	CHECK(opener(&img, 1) == 2 && opener(&img, 2) == 2,
	      "a group used by 4 and 2 opened by %ld and %ld, not both by 2", opener(&img, 1),
	      opener(&img, 2));
	CHECK(opener(&img, 3) == 3, "a socket of 3 alone opened by %ld", opener(&img, 3));
	printf("  ok a unix socket group: one opener above all its users\n");
}

/* A memfd's inode: above its fds' users and every task mapping it. */
static void test_inode_users(void)
{
	struct image img;
	FileEntry *fd;
	MappedFile *mf = xmalloc(sizeof(*mf));

	image_init(&img);
	add_file(&img, 1, FILE_TYPE__FILE_MEMFD);
	fd = add_file(&img, 2, FILE_TYPE__FILE_FSOBJ_FD);
	fd->fsobj_fd->inode = 1;
	add_fd(&img, 4, 3, 2);
	mapped_file__init(mf);
	mf->has_fsobj_file = true;
	mf->fsobj_file = 1;
	task(&img, 3)->mm = xmalloc(sizeof(MmEntry));
	mm_entry__init(task(&img, 3)->mm);
	task(&img, 3)->mm->files = xmalloc(sizeof(*task(&img, 3)->mm->files));
	task(&img, 3)->mm->files[0] = mf;
	task(&img, 3)->mm->n_files = 1;
	CHECK(plan(&img) == 0, "plan failed");
	CHECK(opener(&img, 2) == 4, "the memfd fd of 4 opened by %ld", opener(&img, 2));
	CHECK(opener(&img, 1) == 1, "an inode used by 4 (fd) and 3 (mapping) opened by %ld",
	      opener(&img, 1));
	printf("  ok a memfd inode: above its fds and its mappings\n");
}

/* A pty master: above the users of its slave and the leader of its session. */
static void test_pty(void)
{
	struct image img;
	FileEntry *m, *s;
	TtyEntry *te = xmalloc(sizeof(*te));

	image_init(&img);
	m = add_file(&img, 1, FILE_TYPE__FILE_PTMX);
	s = add_file(&img, 2, FILE_TYPE__FILE_TTY);
	m->ptmx->has_index = s->tty->has_index = true;
	m->ptmx->index = s->tty->index = 5;
	add_fd(&img, 4, 0, 2);
	add_fd(&img, 4, 9, 1);
	CHECK(plan(&img) == 0, "plan failed");
	CHECK(opener(&img, 1) == 4, "a master with no session opened by %ld", opener(&img, 1));

	image_init(&img);
	m = add_file(&img, 1, FILE_TYPE__FILE_PTMX);
	s = add_file(&img, 2, FILE_TYPE__FILE_TTY);
	m->ptmx->has_index = s->tty->has_index = true;
	m->ptmx->index = s->tty->index = 5;
	tty_entry__init(te);
	te->index = 5;
	te->has_sid = true;
	te->sid = 3; /* the terminal of session 3 */
	CHECK(tty_load(&img, NULL, te) == 0, "tty_load");
	add_fd(&img, 4, 0, 2);
	add_fd(&img, 2, 9, 1);
	CHECK(plan(&img) == 0, "plan failed");
	CHECK(opener(&img, 2) == 4, "a slave of 4 alone opened by %ld", opener(&img, 2));
	CHECK(opener(&img, 1) == 1,
	      "a master in 2, its slave in 4, its session led by 3: opened by %ld, not 1",
	      opener(&img, 1));
	printf("  ok a pty master: above its slave's users and its session leader\n");
}

int main(void)
{
	log_init(LOG_MSG, "/dev/null");
	test_users();
	test_pipe_ends();
	test_unix_group();
	test_inode_users();
	test_pty();
	return failed ? 1 : 0;
}
