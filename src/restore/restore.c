/*
 * The restore driver.
 *
 * 1. Fork the tree.  The root is forked at its original PID (clone3 +
 *    set_tid); every restored task, still running stasis code, forks its
 *    own children at their PIDs, so parent links are the original ones.
 *    Sessions are made on the way down (setsid() between the children that
 *    keep the old session and those that share the new one), zombies exit
 *    at once with their original status.  Each task then sets up what
 *    plain C can (fds, signal actions, cwd, limits), opens the files its
 *    mappings need, and stops itself.  The controller traces the whole
 *    tree as it is created (its forks carry CLONE_PTRACE) and waits for every task to
 *    park.
 * 2. Process groups are joined with remote setpgid, leaders first.
 * 3. Each task is transplanted: the image's address space, threads,
 *    signals and credentials are put in with remote syscalls, then its
 *    registers.
 * 4. Every task is released.
 *
 * A failure at any step kills every task created: nothing half-restored
 * runs.  While the tree is rebuilt, a second thread re-reads the image's
 * page data and checks it against its checksum, so a corrupt image is
 * refused without slowing the restore down.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "restore_int.h"
#include "rtask.h"
#include "util.h"

#define VERIFY_BUF (1 << 20) /* page data checked in chunks of this size */

struct verify_job {
	struct image *img;
	void *buf;
	XXH3_state_t *st;
	int ret;
};

static void *verify_thread(void *arg)
{
	struct verify_job *j = arg;

	unpin(); /* hash on the other CPU while the tree is rebuilt on ours */
	j->ret = image_verify_pages(j->img, j->buf, VERIFY_BUF, j->st);
	return NULL;
}

/*
 * With -d the restored root's parent, stasis, exits at once: a parent-death
 * signal would fire right away.  Say so instead of restoring a process
 * that dies.
 */
static int check_pdeath(const struct restore_opts *o, struct image *img)
{
	TaskEntry *root = image_task(img, img->hdr->root_pid)->te;

	if (o->detached && !o->sibling && (!o->pidns || o->root_pid_kept) && root->pdeath_sig) {
		pr_err("pid %u has a parent-death signal (%u) that would fire when stasis exits; "
		       "use --restore-sibling or restore without -d\n",
		       root->pid, root->pdeath_sig);
		return -1;
	}
	return 0;
}

static int check_image_host(struct image *img)
{
	struct utsname u;

	uname(&u);
	if (strcmp(img->hdr->arch, u.machine)) {
		pr_err("image was made on %s; this machine is %s\n", img->hdr->arch, u.machine);
		return -1;
	}
	return 0;
}

/* Service fd layout, trampolines and the shared file area of every task. */
static int prepare(struct restore *r)
{
	struct rst_tree *tree = &r->tree;
	int top = 0;
	size_t i;

	tree->img = &r->img;
	tree->n = r->img.ntasks;
	tree->ctx = xzalloc(tree->n * sizeof(*tree->ctx));
	tree->our_pgid = getpgrp();
	for (i = 0; i < tree->n; i++) {
		struct rst_ctx *c = &tree->ctx[i];

		c->opts = tree->opts;
		c->tree = tree;
		c->img = &r->img;
		c->t = &r->img.tasks[i];
		c->go_fd = -1;
		c->host_pid = c->t->te->pid;
		if (c->t->te->pid == r->img.hdr->root_pid)
			tree->root = i;
		if (c->t->te->zombie)
			continue;
		c->svc_base = 3;
		if (res_stage(restore_prepare, c))
			return -1;
		/* the kinds' service fds, then the --inherit-fd ones */
		c->svc_end = svc_fd(c, SVC_FILES) + c->svc_files + c->opts->n_inherit;
		top = max(top, c->svc_end);
	}
	for (i = 0; i < tree->n; i++)
		tree->ctx[i].shared_base = top;
	return plan_group_helpers(tree);
}

static int write_pidfile(const char *path, pid_t pid)
{
	char buf[32];
	int fd, n = snprintf(buf, sizeof(buf), "%d", pid);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, buf, n)) {
		pr_perror("cannot write pidfile %s", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * The root's exit status.  Threads re-issued into a socket call may still
 * be ours, asleep in it (deadline.c's sock_release): one that stops (its
 * call returned, a signal) is let go.
 */
static int wait_root(pid_t pid)
{
	int status;
	pid_t w;

	for (;;) {
		w = waitpid(tracee_kept(0) ? -1 : pid, &status, __WALL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("waitpid(%d)", pid);
			return 1;
		}
		if (tracee_kept(w) && (WIFSTOPPED(status) || w != pid))
			tracee_kept_service(w, status);
		if (w != pid)
			continue;
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		if (WIFSIGNALED(status))
			return 128 + WTERMSIG(status);
	}
}

static int rebuild(struct restore *r)
{
	struct rst_tree *tree = &r->tree;
	size_t i;

	for (i = 0; i < tree->n; i++)
		if (!tree->ctx[i].t->te->zombie && transplant_begin(&tree->ctx[i]))
			return -1;
	/* before the second driver: these remote calls reach several tasks */
	if (restore_groups(tree) || res_stage(tree, tree) || second_driver_start(r))
		return -1;
	/* the tree was born on every CPU, its own mask unless restored below */
	for (i = 0; i < tree->n; i++) {
		struct rst_ctx *c = &tree->ctx[i];
		unsigned long before = remote_syscall_count;
		uint64_t t0 = now_ns();

		if (c->t->te->zombie || c->second)
			continue;
		/* drive each task from its own CPU: no cross-CPU wakeup per remote call */
		pin_to_cpu(last_cpu_of(c->host_pid));
		if (transplant(c))
			return -1;
		pr_debug("pid %u: transplanted with %lu remote syscalls in %.2f ms\n",
			 c->t->te->pid, remote_syscall_count - before, (now_ns() - t0) / 1e6);
	}
	return second_driver_wait_rebuilt(r);
}

/* The restore is over, the tree runs (ok) or is gone: every kind's restore_end. */
static void restore_end(struct image *img, const struct restore_opts *o, bool ok)
{
	const struct res_ops *ops;
	size_t i;

	for_each_res(i, ops) if (ops->restore_end) ops->restore_end(img, o, ok);
}

int cmd_restore(const struct restore_opts *o)
{
	struct restore r = { .tree.opts = o };
	struct restore_opts eff;
	struct verify_job vj = { 0 };
	pthread_t verifier;
	bool verifying = false;
	uint64_t t0 = now_ns();
	pid_t root = -1;
	size_t i;
	int ret = -1;

	if (image_load(o->dir, &r.img))
		return -1;
	restore_pick_ns(&r.img, &o, &eff);
	r.tree.opts = o;
	if (check_image_host(&r.img) || tree_build(&r.img) || check_pdeath(o, &r.img) ||
	    res_stage(restore_check, &r.img, o) || prepare(&r))
		goto out;
	/*
	 * Fork the root first, while we are still one thread (its copy of us
	 * can take any lock), then check the page data on the other CPU while
	 * the tree builds itself.
	 */
	if (fork_root(&r, &root))
		goto fail;
	vj.img = &r.img;
	vj.buf = mmap(NULL, VERIFY_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vj.buf == MAP_FAILED) {
		vj.buf = NULL;
		pr_perror("cannot allocate the verify buffer");
		goto fail;
	}
	vj.st = XXH3_createState();
	if (pthread_create(&verifier, NULL, verify_thread, &vj) == 0)
		verifying = true;
	else if ((vj.ret = image_verify_pages(&r.img, vj.buf, VERIFY_BUF, vj.st)))
		goto fail;
	if (wait_tree_parked(&r.tree))
		goto fail;
	pr_info("tree forked and parked in %.2f ms\n", (now_ns() - t0) / 1e6);
	if (rebuild(&r))
		goto fail;
	pr_info("tree rebuilt in %.2f ms\n", (now_ns() - t0) / 1e6);
	if (verifying) {
		pthread_join(verifier, NULL);
		verifying = false;
		if (vj.ret)
			goto fail;
	}
	if (release_tree(&r))
		goto fail;
	if (r.tree.ns_init > 0 && release_ns_init(r.tree.ns_init))
		goto fail;
	pr_info("restored %zu process(es), root pid %d, in %.2f ms\n", r.tree.n,
		r.tree.ctx[r.tree.root].host_pid, (now_ns() - t0) / 1e6);
	if (o->pidfile && write_pidfile(o->pidfile, r.tree.ctx[r.tree.root].host_pid))
		pr_warn("pid %d runs, but its pidfile could not be written\n",
			r.tree.ctx[r.tree.root].host_pid);
	ret = 0;
	goto out;
fail:
	if (verifying)
		pthread_join(verifier, NULL);
	kill_tree(&r, root);
	second_driver_finish(&r, false);
	pr_info("restore failed; nothing of it is left running\n");
out:
	restore_end(&r.img, o, ret == 0);
	unpin();
	for (i = 0; i < r.tree.n; i++) {
		free(r.tree.ctx[i].th);
		free(r.tree.ctx[i].premapped);
		free(r.tree.ctx[i].filled);
	}
	if (vj.buf)
		munmap(vj.buf, VERIFY_BUF);
	if (vj.st)
		XXH3_freeState(vj.st);
	free(r.tree.ctx);
	image_free(&r.img);
	if (ret == 0 && !o->detached)
		return wait_root(root);
	return ret;
}
