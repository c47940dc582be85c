/*
 * The dump driver: find the tree, freeze it, write one image, and then
 * either kill the tree (the default) or let it run on (-R).  Whatever
 * fails after the freeze, every task is put back exactly as it was and
 * the partial image is removed.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

/* The tree under -t: for now one single-threaded process; say so clearly. */
static int check_tree_supported(pid_t pid)
{
	char path[64], *children;
	struct dirent *de;
	int nthreads = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d) {
		pr_err("no process with pid %d\n", pid);
		return -1;
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			nthreads++;
	closedir(d);
	if (nthreads > 1) {
		pr_err("pid %d has %d threads; multi-threaded processes are not supported yet\n",
		       pid, nthreads);
		return -1;
	}
	snprintf(path, sizeof(path), "task/%d/children", pid);
	children = read_proc(pid, path, NULL);
	if (children && children[0]) {
		pr_err("pid %d has child processes (%.40s); process trees are not supported yet\n",
		       pid, children);
		free(children);
		return -1;
	}
	free(children);
	return 0;
}

static int write_header(struct dump_ctx *ctx)
{
	ImageHeader h = IMAGE_HEADER__INIT;
	struct utsname u;
	char host[256] = "";

	uname(&u);
	gethostname(host, sizeof(host) - 1);
	h.arch = u.machine;
	h.page_size = PAGE_SIZE;
	h.kernel_release = u.release;
	h.tool_version = STASIS_VERSION;
	h.created_sec = time(NULL);
	h.root_pid = ctx->opts->pid;
	h.hostname = host;
	return img_write_msg(&ctx->w, IMG_HEADER, &h.base);
}

static void dump_task_free(struct dump_task *dt)
{
	if (dt->te)
		task_entry__free_unpacked(dt->te, NULL);
	if (dt->core)
		thread_core__free_unpacked(dt->core, NULL);
	if (dt->mm)
		mm_entry__free_unpacked(dt->mm, NULL);
	dt->te = NULL;
	dt->core = NULL;
	dt->mm = NULL;
}

/*
 * Everything that needs remote syscalls, while the scratch mapping exists;
 * then the records, then (with the scratch mapping gone) the pages.
 */
static int dump_one_task(struct dump_ctx *ctx, struct dump_task *dt)
{
	int ret = -1;

	dt->te = xmalloc(sizeof(*dt->te));
	task_entry__init(dt->te);
	dt->core = xmalloc(sizeof(*dt->core));
	thread_core__init(dt->core);
	if (rtask_inject(&dt->rt))
		return -1;
	if (task_dump(dt) || sig_dump(dt) || thread_dump(dt) || mm_dump(ctx, dt))
		goto uninject;
	if (rtask_uninject(&dt->rt))
		return -1;
	if (img_write_msg(&ctx->w, IMG_TASK, &dt->te->base) ||
	    img_write_msg(&ctx->w, IMG_THREAD_CORE, &dt->core->base) ||
	    img_write_msg(&ctx->w, IMG_MM, &dt->mm->base))
		return -1;
	if (files_dump(ctx, dt) || mm_dump_pages(ctx, dt))
		return -1;
	return 0;
uninject:
	rtask_uninject(&dt->rt);
	return ret;
}

static void release_all(struct dump_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].frozen) {
			rtask_uninject(&ctx->tasks[i].rt);
			rtask_release(&ctx->tasks[i].rt);
			ctx->tasks[i].frozen = false;
		}
}

static void kill_all(struct dump_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->ntasks; i++) {
		struct dump_task *dt = &ctx->tasks[i];

		if (!dt->frozen)
			continue;
		kill(dt->pid, SIGKILL);
		/* detaching lets the kill proceed; the parent reaps it */
		ptrace(PTRACE_DETACH, dt->pid, 0, 0);
		dt->frozen = false;
	}
}

int cmd_dump(const struct dump_opts *o)
{
	struct dump_ctx ctx = { .opts = o };
	uint64_t t0 = now_ns();
	struct dump_task *dt;
	size_t i;
	int ret = -1;

	if (o->pid <= 0 || !pid_exists(o->pid)) {
		pr_err("no process with pid %d\n", o->pid);
		return -1;
	}
	if (o->pid == getpid()) {
		pr_err("stasis cannot dump itself\n");
		return -1;
	}
	if (check_tree_supported(o->pid))
		return -1;
	ctx.tasks = xzalloc(sizeof(*ctx.tasks));
	ctx.ntasks = 1;
	dt = &ctx.tasks[0];
	dt->pid = o->pid;
	if (rtask_freeze(&dt->rt, dt->pid))
		goto out_free;
	dt->frozen = true;
	pr_info("froze pid %d in %.2f ms\n", o->pid, (now_ns() - t0) / 1e6);
	if (img_writer_open(&ctx.w, o->dir))
		goto out_release;
	if (write_header(&ctx))
		goto out_abort;
	for (i = 0; i < ctx.ntasks; i++)
		if (dump_one_task(&ctx, &ctx.tasks[i]))
			goto out_abort;
	if (img_writer_commit(&ctx.w))
		goto out_release;
	pr_info("dumped pid %d to %s/%s in %.2f ms\n", o->pid, o->dir, IMG_FILE_NAME,
		(now_ns() - t0) / 1e6);
	if (o->leave_running)
		release_all(&ctx);
	else
		kill_all(&ctx);
	ret = 0;
	goto out_free;
out_abort:
	img_writer_abort(&ctx.w);
out_release:
	release_all(&ctx);
	pr_info("dump of pid %d failed; the process keeps running unchanged\n", o->pid);
out_free:
	for (i = 0; i < ctx.ntasks; i++)
		dump_task_free(&ctx.tasks[i]);
	free(ctx.tasks);
	return ret;
}
