/*
 * Forking the root of the tree: at its original PID, or with --pidns as
 * the child of a small init that is PID 1 of a new PID namespace and only
 * reaps once it has forked the root.  The controller seizes the first
 * task before letting it run, so the whole tree is traced from its first
 * instruction.  The root's clone also makes the namespaces the kinds ask
 * for (rst_ctx clone_flags: a user namespace), which they set up from
 * here (root_forked) before it runs.  What the tree forks is traced
 * (CLONE_PTRACE) without stopping its parent.
 *
 * A restorer without CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (a normal
 * user) cannot choose PIDs in its own PID namespace.  restore_pick_ns()
 * then restores as with --pidns, and the first task is cloned into a new
 * user namespace as well (it then owns the new PID namespace, where our
 * clone3 set_tid is allowed), mapping only our own uid and gid: nothing in
 * the image may ask for other ids anyway (res/creds.c checks).
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "restore_int.h"
#include "util.h"

/*
 * --pidns: PID 1 of the new namespace.  It forks the root at its PID in
 * there, reaps orphans like any init, and exits with the root's status
 * (which ends the namespace).
 */
static void __attribute__((noreturn)) pidns_init_main(struct restore *r, int go_fd)
{
	struct rst_ctx *c = &r->tree.ctx[r->tree.root];
	int status;
	pid_t root, w;
	char go;

	if (read(go_fd, &go, 1) != 1)
		_exit(1);
	close(go_fd);
	fork_traced();
	prctl(PR_SET_NAME, "stasis-init", 0, 0, 0);
	root = fork_at_pid(c->t->te->pid);
	if (root == 0)
		child_main(c);
	if (root < 0)
		_exit(1);
	/* hold nothing of the restorer's: no terminal, no pipe kept open */
	syscall(__NR_close_range, 0, ~0U, 0);
	for (;;) {
		w = waitpid(-1, &status, 0);
		if (w == root)
			_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		if (w < 0 && errno == ECHILD)
			_exit(0);
	}
}

static pid_t fork_ns_init(uint64_t flags)
{
	struct stasis_clone_args args = { .flags = CLONE_NEWPID | flags, .exit_signal = SIGCHLD };
	pid_t pid = syscall(__NR_clone3, &args, sizeof(args));

	if (pid < 0)
		pr_perror("cannot create a PID namespace%s",
			  flags & CLONE_NEWUSER ? " in a new user namespace" : "");
	return pid;
}

/*
 * May we give a new task the PID we choose in our PID namespace?  The
 * kernel wants CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN) in the user
 * namespace that owns it: ours, with the capability (root; root of a
 * rootless container that made its own PID namespace).
 */
bool can_choose_pids(void)
{
	return (cap_effective(CAP_CHECKPOINT_RESTORE) || cap_effective(CAP_SYS_ADMIN)) &&
	       owned_by_our_userns("pid");
}

/*
 * The namespaces a restore needs beyond what it was asked for, in 'eff'
 * (a copy of *o), which *o then points at.  A normal user: a new user and
 * PID namespace (see the top).  An image with inner_pids (a tree in a
 * user namespace of its own): as --pidns, since no task in there can name
 * a PID in ours, but the root keeps its PID.
 */
void restore_pick_ns(const struct image *img, const struct restore_opts **o,
		     struct restore_opts *eff)
{
	bool unpriv = !can_choose_pids();

	if (!unpriv && (!img->inner_pids || (*o)->pidns))
		return;
	*eff = **o;
	if (unpriv) {
		pr_info("without CAP_CHECKPOINT_RESTORE over our PID namespace: restoring into a "
			"new user and PID namespace\n");
		eff->pidns = eff->own_userns = true;
	} else {
		eff->pidns = eff->root_pid_kept = true;
	}
	*o = eff;
}

/*
 * Our own new user namespace: setgroups denied (the kernel lets no
 * unprivileged writer map a gid otherwise), our uid and gid mapped to
 * themselves, written from here before the first task runs.
 */
static int map_own_ids(pid_t pid)
{
	char path[64], line[64];
	const char *name[] = { "setgroups", "uid_map", "gid_map" };
	int i, fd, n;

	for (i = 0; i < 3; i++) {
		if (i == 0)
			n = snprintf(line, sizeof(line), "deny");
		else
			n = snprintf(line, sizeof(line), "%u %u 1\n",
				     i == 1 ? geteuid() : getegid(),
				     i == 1 ? geteuid() : getegid());
		snprintf(path, sizeof(path), "/proc/%d/%s", pid, name[i]);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, line, n) != n) {
			pr_perror("cannot write the %s of our new user namespace", name[i]);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* Fork the root (or, with --pidns, our init that forks it) and start it. */
int fork_root(struct restore *r, pid_t *first)
{
	struct rst_ctx *c = &r->tree.ctx[r->tree.root];
	bool own_ns = c->t->te->has_ns_pid; /* the root was PID 1 of its namespace */
	/* a user namespace of our own, unless the image brings its own */
	uint64_t user =
	    r->tree.opts->own_userns && !(c->clone_flags & CLONE_NEWUSER) ? CLONE_NEWUSER : 0;
	int sync[2];

	if (fault_at(FAULT_RST_FORK_ROOT)) {
		*first = -1;
		return -1;
	}
	/* what the kinds hand the root's restore child by inheritance */
	if (res_stage(root_fork, c))
		return -1;
	if (pipe2(sync, O_CLOEXEC)) {
		pr_perror("pipe");
		return -1;
	}
	if (r->tree.opts->pidns && !own_ns && c->clone_flags) {
		pr_err("the tree's root must be PID 1 of a PID namespace of its own here\n");
		close(sync[0]);
		close(sync[1]);
		return -1;
	}
	if (r->tree.opts->pidns && !own_ns) {
		*first = fork_ns_init(user);
		if (*first == 0) {
			close(sync[1]);
			pidns_init_main(r, sync[0]);
		}
		r->tree.ns_init = *first;
	} else {
		uint64_t flags = (r->tree.opts->sibling ? CLONE_PARENT : 0) |
				 (own_ns ? CLONE_NEWPID : 0) | c->clone_flags | user;

		c->go_fd = sync[0];
		/* a tree whose root was PID 1 of its own namespace: it is again */
		if (r->tree.opts->root_pid_kept)
			*first = fork_at_pid_flags(c->t->te->pid, c->t->te->ns_pid, flags);
		else
			*first = fork_at(c, c->t->te->pid, c->t->te->ns_pid, flags);
		if (*first == 0) {
			close(sync[1]);
			child_main(c);
		}
		c->go_fd = -1;
	}
	close(sync[0]);
	if (*first < 0) {
		close(sync[1]);
		return -1;
	}
	/* only now is there a task of ours at that pid: never kill someone else's */
	c->attached = !r->tree.opts->pidns || own_ns;
	if (own_ns && r->tree.opts->pidns)
		c->host_pid = *first;
	/* what it forks is traced by CLONE_PTRACE (child.c's fork_traced) */
	if (ptrace(PTRACE_SEIZE, *first, 0, PTRACE_O_EXITKILL)) {
		pr_perror("cannot trace the restore child %d", *first);
		close(sync[1]);
		return -1;
	}
	if (user && map_own_ids(*first)) {
		close(sync[1]);
		return -1;
	}
	/* what the kinds set up from outside before it runs (a user namespace's maps) */
	if (c->clone_flags && res_stage(root_forked, c, *first)) {
		close(sync[1]);
		return -1;
	}
	if (write(sync[1], "g", 1) != 1) {
		pr_perror("cannot start the restore child");
		close(sync[1]);
		return -1;
	}
	close(sync[1]);
	return 0;
}

/* Our init must stop being traced, or it dies with us (PTRACE_O_EXITKILL). */
int release_ns_init(pid_t pid)
{
	int status;

	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) || waitpid(pid, &status, __WALL) != pid ||
	    !WIFSTOPPED(status) || ptrace(PTRACE_DETACH, pid, 0, 0)) {
		pr_perror("cannot release the namespace init %d", pid);
		return -1;
	}
	return 0;
}
