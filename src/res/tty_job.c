/*
 * Terminals and job control: sessions, foreground groups, stopped jobs,
 * shell jobs whose session and terminal are outside the tree.
 *
 * Sessions: the session leader acquires its controlling terminal
 * (TIOCSCTTY) right after setsid(), before it forks the members of its
 * session, so they inherit it; the foreground group is set once every
 * group exists, by a remote ioctl in the leader.  A task in a job-control
 * stop is restored stopped (SIGSTOP queued before it is released), so
 * SIGCONT continues it.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"
#include "res.h"
#include "tty.h"
#include "util.h"

/*
 * In a session leader, right after setsid(): take the controlling
 * terminal, then open the /dev/tty files it holds for its subtree.
 */
static int tty_child_session(struct rst_ctx *c)
{
	struct tty_image *ti = res_image_state(c->img, &tty_res);
	struct rst_task *t = c->t;
	const TtyEntry *e = NULL;
	size_t i;
	int m, s;

	for (i = 0; i < ti->n; i++)
		if (ti->v[i]->has_sid && ti->v[i]->sid == t->te->pid)
			e = ti->v[i];
	if (!e)
		return 0;
	m = tty_master_here(c, e->index);
	if (m < 0)
		return -1;
	s = tty_slave_peer(m, O_RDWR);
	if (s < 0)
		return -1;
	if (ioctl(s, TIOCSCTTY, 0)) {
		pr_perror("pid %u: cannot make /dev/pts/%u its controlling terminal", t->te->pid,
			  e->index);
		close(s);
		return -1;
	}
	close(s);
	for (i = 0; i < t->n_open; i++) {
		const FileEntry *fe = image_file(c->img, t->open_ids[i]);
		int fd;

		if (!fe || fe->type != FILE_TYPE__FILE_TTY || !fe->tty->dev_tty ||
		    fd_shared_placed(c, fe->id))
			continue;
		fd = tty_open(c, fe);
		if (fd < 0 || fd_place_shared(c, fe->id, fd))
			return -1;
	}
	return 0;
}

/* Remote, in the session leader: make fg_pgrp its terminal's foreground group. */
static int set_fg_remote(struct rst_ctx *c, uint32_t index, uint32_t pgrp)
{
	static const char dev[] = "/dev/tty";
	unsigned long path = c->rt.scratch, arg = c->rt.scratch + 16;
	int32_t pg = image_own_pid(c->img, pgrp);
	long fd, ret;

	if (remote_write(c->rt.pid, path, dev, sizeof(dev)) ||
	    remote_write(c->rt.pid, arg, &pg, sizeof(pg)) ||
	    remote_syscall(&c->rt, &fd, __NR_openat, AT_FDCWD, path, O_RDWR | O_NOCTTY, 0, 0, 0))
		return -1;
	if (fd < 0) {
		pr_err("pid %u: cannot open its terminal: %s\n", c->t->te->pid, strerror(-fd));
		return -1;
	}
	if (remote_syscall(&c->rt, &ret, __NR_ioctl, fd, TIOCSPGRP, arg, 0, 0, 0))
		return -1;
	remote_syscall(&c->rt, &fd, __NR_close, fd, 0, 0, 0, 0, 0);
	if (ret) {
		pr_err("pid %u: cannot make group %u the foreground of /dev/pts/%u: %s\n",
		       c->t->te->pid, pgrp, index, strerror(-ret));
		return -1;
	}
	return 0;
}

static bool group_exists(struct image *img, uint32_t pgrp)
{
	size_t i;

	for (i = 0; i < img->ntasks; i++)
		if (!img->tasks[i].te->zombie && img->tasks[i].te->pgid == pgrp)
			return true;
	return false;
}

/*
 * Controller, once every group exists: foreground groups of the
 * terminals in the tree; for a shell job restored in the foreground, the
 * restorer's terminal goes to the job's group if it had its terminal.
 */
static int tty_restore_fg(struct rst_tree *tree)
{
	struct rst_ctx *ctx = tree->ctx;
	struct image *img = tree->img;
	size_t n = tree->n, root = tree->root;
	struct tty_image *ti = res_image_state(img, &tty_res);
	TaskEntry *rt = ctx[root].t->te;
	size_t i, j;

	for (i = 0; i < ti->n; i++) {
		const TtyEntry *e = ti->v[i];

		if (!e->has_sid || !e->fg_pgrp || !group_exists(img, e->fg_pgrp))
			continue;
		for (j = 0; j < n; j++)
			if (ctx[j].t->te->pid == e->sid && !ctx[j].t->te->zombie &&
			    set_fg_remote(&ctx[j], e->index, e->fg_pgrp))
				return -1;
	}
	if (rt->tty_fg && rt->pgid == rt->pid && rt->sid != rt->pid && !image_task(img, rt->sid) &&
	    !ctx[0].opts->detached && !ctx[0].opts->pidns && isatty(0) &&
	    tcgetpgrp(0) == getpgrp() && tcsetpgrp(0, ctx[root].host_pid)) {
		pr_perror("cannot give the terminal to the restored job");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------- tasks, job control */

/*
 * Per task at dump: job-control stop, whether its group had the
 * terminal, and the sessions stasis can rebuild.  A task whose session
 * and terminal are outside the tree is (part of) a shell job: say that -j
 * is needed.  (A session outside the tree without a terminal, as for a
 * subtree or a process started by a script, needs no -j: the tree joins
 * the restorer's session either way.)
 */
static int tty_dump_task(struct dump_ctx *ctx, struct dump_task *dt)
{
	TaskEntry *te = dt->te;
	struct proc_stat st;
	long idx;

	if (dt->nth && dt->th[0].rt.stop_sig) {
		te->has_stop_sig = true;
		te->stop_sig = dt->th[0].rt.stop_sig;
	}
	idx = tty_ctty_index(dt->pid, &st);
	if (st.tty_nr && st.tpgid > 0 && st.tpgid == st.pgid)
		te->has_tty_fg = te->tty_fg = true;
	if (st.tty_nr && st.sid != dt->pid && !dump_tree_has(ctx, st.sid)) {
		if (!ctx->opts->shell_job) {
			char name[32];

			if (idx >= 0)
				snprintf(name, sizeof(name), "/dev/pts/%ld", idx);
			else
				snprintf(name, sizeof(name), "device %u:%u", major(st.tty_nr),
					 minor(st.tty_nr));
			pr_err(
			    "pid %d is a shell job: its terminal (%s) and session %d are outside "
			    "the tree; dump it with -j (--shell-job) and restore it with -j\n",
			    dt->pid, name, st.sid);
			return -1;
		}
		te->has_ext_ctty = te->ext_ctty = true;
	}
	if (st.sid == dt->pid && st.tty_nr) {
		if (tty_scan_once(ctx))
			return -1;
		if (idx < 0 || !tty_find(ctx, idx)) {
			pr_err(
			    "pid %d: its controlling terminal (device %u:%u) is outside the tree; "
			    "not supported\n",
			    dt->pid, major(st.tty_nr), minor(st.tty_nr));
			return -1;
		}
	}
	return 0;
}

/* Restore: the image says a shell job; the user must say so too. */
static int tty_check_shell_job(struct image *img, const struct restore_opts *o)
{
	size_t i;

	for (i = 0; i < img->ntasks && !o->shell_job; i++)
		if (img->tasks[i].te->ext_ctty) {
			pr_err("pid %u was dumped as a shell job (its session and terminal were "
			       "outside the tree); restore it with -j (--shell-job)\n",
			       img->tasks[i].te->pid);
			return -1;
		}
	return 0;
}

/*
 * Is the process group orphaned now (no member has its parent in another
 * group of the same session)?  The kernel drops SIGTSTP, SIGTTIN and
 * SIGTTOU sent to such a group.
 */
static bool group_orphaned(const struct rst_tree *tree, pid_t pgid)
{
	size_t i;

	for (i = 0; i < tree->n; i++) {
		const TaskEntry *te = tree->ctx[i].t->te;
		struct proc_stat me, parent;

		if ((pid_t)te->pgid != pgid || te->zombie)
			continue;
		/* as we see them: with --pidns the host's PIDs */
		if (proc_parse_stat(tree->ctx[i].host_pid, &me) ||
		    proc_parse_stat(me.ppid, &parent))
			continue;
		if (parent.pgid != me.pgid && parent.sid == me.sid)
			return false;
	}
	return true;
}

/* Controller, just before a task is released: a stopped job stays stopped. */
static int tty_stop_job(struct rst_ctx *c)
{
	int sig = c->t->te->stop_sig;

	if (!sig)
		return 0;
	/* by its own signal: a parent's wait reports SIGTSTP as SIGTSTP */
	if (sig != SIGSTOP && group_orphaned(c->tree, c->t->te->pgid)) {
		pr_warn("pid %u: its process group is orphaned here, where signal %d would "
			"not stop it: stopped by SIGSTOP instead\n",
			c->t->te->pid, sig);
		sig = SIGSTOP;
	}
	if (kill(c->rt.pid, sig)) {
		pr_perror("pid %u: cannot stop it again", c->t->te->pid);
		return -1;
	}
	return 0;
}

const struct res_ops tty_res = {
	.name = "tty",
	.dump_state_size = sizeof(struct tty_dump),
	.image_state_size = sizeof(struct tty_image),
	.dump_fini = tty_dump_fini,
	.image_fini = tty_image_fini,
	.dump_local = tty_dump_task,
	.restore_check = tty_check_shell_job,
	.child_session = tty_child_session,
	.tree = tty_restore_fg,
	.release = tty_stop_job,
};
