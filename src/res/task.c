/*
 * Process-wide identity and environment: tree links (pid, ppid, pgid,
 * sid), comm, personality, umask, cwd and root, resource limits,
 * credentials, pdeath signal and dumpable.
 *
 * Resource limits are read from /proc/PID/limits, which works for a task
 * of any user even without CAP_SYS_RESOURCE (prlimit on another user's
 * process does not).  Credentials are applied last and remotely, after
 * everything that needs the restorer's privileges.
 */
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "ns.h"
#include "proc.h"
#include "res.h"
#include "util.h"

static const char *const rlimit_names[] = {
	"CPU",	   "FSIZE", "DATA",  "STACK",	   "CORE",     "RSS",  "NPROC",	 "NOFILE",
	"MEMLOCK", "AS",    "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
};

static int parse_limit(const char *s, uint64_t *v, const char **end)
{
	char *e;

	while (*s == ' ')
		s++;
	if (!strncmp(s, "unlimited", 9)) {
		*v = RLIM_INFINITY;
		*end = s + 9;
		return 0;
	}
	*v = strtoull(s, &e, 10);
	if (e == s)
		return -1;
	*end = e;
	return 0;
}

static int dump_rlimits(struct dump_task *dt)
{
	char *buf = read_proc(dt->pid, "limits", NULL), *line;
	TaskEntry *te = dt->te;
	unsigned int res = 0;

	if (!buf) {
		pr_perror("cannot read /proc/%d/limits", dt->pid);
		return -1;
	}
	te->rlimits = xzalloc(ARRAY_SIZE(rlimit_names) * sizeof(*te->rlimits));
	line = strchr(buf, '\n'); /* skip the column titles */
	while (line && *++line && res < ARRAY_SIZE(rlimit_names)) {
		RlimitEntry *e = xmalloc(sizeof(*e));
		const char *p = line + 26, *end;

		rlimit_entry__init(e);
		e->resource = res++;
		if (strlen(line) < 26 || parse_limit(p, &e->cur, &end) ||
		    parse_limit(end, &e->max, &end)) {
			pr_err("cannot parse /proc/%d/limits: %.60s\n", dt->pid, line);
			free(e);
			free(buf);
			return -1;
		}
		te->rlimits[te->n_rlimits++] = e;
		line = strchr(line, '\n');
	}
	free(buf);
	return 0;
}

static int dump_prctl(struct dump_task *dt)
{
	long ret;
	int sig;

	if (remote_syscall(dt_rt(dt), &ret, __NR_prctl, PR_GET_PDEATHSIG, dt_rt(dt)->scratch, 0, 0,
			   0, 0) ||
	    ret || remote_read(dt->pid, dt_rt(dt)->scratch, &sig, sizeof(sig))) {
		pr_err("pid %d: cannot read the parent-death signal\n", dt->pid);
		return -1;
	}
	dt->te->has_pdeath_sig = true;
	dt->te->pdeath_sig = sig;
	if (remote_syscall(dt_rt(dt), &ret, __NR_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0, 0) ||
	    ret < 0) {
		pr_err("pid %d: cannot read the dumpable flag\n", dt->pid);
		return -1;
	}
	dt->te->has_dumpable = true;
	dt->te->dumpable = ret;
	if (remote_syscall(dt_rt(dt), &ret, __NR_prctl, PR_GET_CHILD_SUBREAPER, dt_rt(dt)->scratch,
			   0, 0, 0, 0) ||
	    ret || remote_read(dt->pid, dt_rt(dt)->scratch, &sig, sizeof(sig))) {
		pr_err("pid %d: cannot read the child-subreaper flag\n", dt->pid);
		return -1;
	}
	dt->te->has_child_subreaper = true;
	dt->te->child_subreaper = sig;
	return 0;
}

/* The part that needs remote syscalls (stage 1 of the dump). */
static int task_dump_remote(struct dump_ctx *ctx, struct dump_task *dt)
{
	return dump_prctl(dt);
}

/* The part read from /proc (stage 2). */
/*
 * A cwd or root restore cannot enter: a directory deleted since (its
 * path names nothing, or another directory) or one of the tree's /proc
 * (the PID may not exist yet, or be the original's beside a copy).
 */
/*
 * A normal user restores what it dumps: a cwd or root it could not enter
 * again (a directory of another owner whose mode keeps the user out) is
 * refused now.  The user's own directories are entered with the restore's
 * CAP_DAC_OVERRIDE in the user namespace it makes (fs_plain.c says more).
 */
static int task_refuse_unenterable(struct dump_task *dt, const char *what, const char *path)
{
	char buf[PATH_MAX];
	const char *p = mnt_dump_path(path, buf, sizeof(buf));
	struct stat st;

	if (geteuid() == 0 || stat(p, &st) || (st.st_uid == geteuid() && st.st_gid == getegid()) ||
	    !faccessat(AT_FDCWD, p, X_OK, AT_EACCESS))
		return 0;
	pr_perror("pid %d: its %s %s cannot be entered again by uid %u for the restore", dt->pid,
		  what, path, (unsigned int)geteuid());
	return -1;
}

static int task_refuse_dir(struct dump_ctx *ctx, struct dump_task *dt, const char *what,
			   const char *path)
{
	pid_t of = proc_path_of_tree(ctx, path);
	size_t n = strlen(path), k = strlen(" (deleted)");

	if (n >= k && !strcmp(path + n - k, " (deleted)")) {
		pr_err("pid %d: its %s %s is a deleted directory; not supported\n", dt->pid, what,
		       path);
		return -1;
	}
	if (of) {
		pr_err("pid %d: its %s %s is in the /proc of pid %d of the tree; not supported\n",
		       dt->pid, what, path, of);
		return -1;
	}
	return task_refuse_unenterable(dt, what, path);
}

static int task_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	TaskEntry *te = dt->te;
	struct proc_stat st;
	char path[PATH_MAX];
	const char *status;
	char *s;
	int ret = -1;

	if (proc_parse_stat(dt->pid, &st))
		return -1;
	te->pid = dt->pid;
	te->ppid = st.ppid;
	te->pgid = st.pgid;
	te->sid = st.sid;
	te->n_threads = dt->nth;
	te->threads = xmalloc(dt->nth * sizeof(uint32_t));
	for (size_t i = 0; i < dt->nth; i++)
		te->threads[i] = dt->th[i].tid;
	te->comm = read_proc(dt->pid, "comm", NULL);
	if (!te->comm)
		te->comm = xstrdup("?");
	te->comm[strcspn(te->comm, "\n")] = '\0';
	s = read_proc(dt->pid, "personality", NULL);
	if (!s) {
		pr_perror("cannot read /proc/%d/personality", dt->pid);
		return -1;
	}
	te->personality = strtoul(s, NULL, 16);
	free(s);
	status = dump_thread_status(dt, &dt->th[0]);
	if (!status)
		return -1;
	{
		const char *v = status_field(status, "Umask");

		te->umask = v ? strtoul(v, NULL, 8) : 022;
		v = status_field(status, "THP_enabled");
		te->has_thp_disable = !!v;
		te->thp_disable = v && *v == '0';
	}
	if (readlink_proc(dt->pid, "cwd", path, sizeof(path)) < 0) {
		pr_perror("cannot read the cwd of %d", dt->pid);
		goto out;
	}
	te->cwd = xstrdup(path);
	if (readlink_proc(dt->pid, "root", path, sizeof(path)) < 0) {
		pr_perror("cannot read the root of %d", dt->pid);
		goto out;
	}
	te->root = xstrdup(path);
	if (task_refuse_dir(ctx, dt, "cwd", te->cwd) || task_refuse_dir(ctx, dt, "root", te->root))
		goto out;
	te->creds = xmalloc(sizeof(*te->creds));
	creds_entry__init(te->creds);
	if (dump_rlimits(dt) || creds_parse(dt->pid, status, te->creds))
		goto out;
	ret = 0;
out:
	return ret;
}

static int restore_rlimits(TaskEntry *te)
{
	size_t i;

	for (i = 0; i < te->n_rlimits; i++) {
		RlimitEntry *e = te->rlimits[i];
		struct rlimit cur, want = { e->cur, e->max };

		if (getrlimit(e->resource, &cur) == 0 && cur.rlim_cur == want.rlim_cur &&
		    cur.rlim_max == want.rlim_max)
			continue;
		if (setrlimit(e->resource, &want)) {
			const char *name = e->resource < ARRAY_SIZE(rlimit_names)
					       ? rlimit_names[e->resource]
					       : "?";

			if (errno == EPERM)
				pr_err("pid %u: cannot restore RLIMIT_%s hard limit %llu above the "
				       "restorer's %llu (needs CAP_SYS_RESOURCE)\n",
				       te->pid, name, (unsigned long long)e->max,
				       (unsigned long long)cur.rlim_max);
			else
				pr_perror("pid %u: cannot restore RLIMIT_%s", te->pid, name);
			return -1;
		}
	}
	return 0;
}

/* In the restore child, before it is stopped for the transplant. */
static int task_restore_child(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;

	if (chdir(te->cwd)) {
		pr_perror("pid %u: cannot enter its cwd %s", te->pid, te->cwd);
		return -1;
	}
	umask(te->umask);
	if (personality(te->personality) < 0) {
		pr_perror("pid %u: cannot set personality %#x", te->pid, te->personality);
		return -1;
	}
	if (prctl(PR_SET_NAME, te->comm, 0, 0, 0)) {
		pr_perror("pid %u: cannot set its name", te->pid);
		return -1;
	}
	return restore_rlimits(te);
}

/*
 * In the restore child, last: its root.  The stages before (the premapped
 * address space reads /proc/self) need ours; its cwd, entered before,
 * stays where it is.
 */
static int task_restore_root(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;

	if (strcmp(te->root, "/") && chroot(te->root)) {
		pr_perror("pid %u: cannot chroot to %s", te->pid, te->root);
		return -1;
	}
	return 0;
}

/* Remote: process-wide prctl state that has no other way in. */
static int task_restore_remote(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;
	long ret;

	if (te->child_subreaper &&
	    (remote_syscall(&c->rt, &ret, __NR_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0, 0) ||
	     ret)) {
		pr_err("pid %u: cannot restore the child-subreaper flag\n", te->pid);
		return -1;
	}
	if (te->thp_disable &&
	    (remote_syscall(&c->rt, &ret, __NR_prctl, PR_SET_THP_DISABLE, 1, 0, 0, 0, 0) || ret)) {
		pr_err("pid %u: cannot restore the THP-disable flag\n", te->pid);
		return -1;
	}
	return 0;
}

/*
 * A zombie is its identity, exit status and what its process still shows:
 * limits, personality (here), credentials and signal sets (their kinds).
 */
static int task_dump_zombie(struct dump_ctx *ctx, struct dump_task *dt)
{
	TaskEntry *te = dt->te;
	struct proc_stat st;
	char *s;

	if (proc_parse_stat(dt->pid, &st))
		return -1;
	te->pid = dt->pid;
	te->ppid = st.ppid;
	te->pgid = st.pgid;
	te->sid = st.sid;
	te->comm = read_proc(dt->pid, "comm", NULL);
	if (!te->comm)
		te->comm = xstrdup("?");
	te->comm[strcspn(te->comm, "\n")] = '\0';
	te->cwd = xstrdup("/");
	te->root = xstrdup("/");
	te->creds = xmalloc(sizeof(*te->creds));
	creds_entry__init(te->creds);
	te->has_zombie = te->zombie = true;
	te->has_exit_code = true;
	te->exit_code = st.exit_code;
	s = read_proc(dt->pid, "personality", NULL);
	/*
	 * A zombie's /proc files belong to root: a normal user's dump takes
	 * its parent's personality, which it was forked with (docs/user-guide.md)
	 */
	if (!s && errno == EACCES && geteuid()) {
		s = read_proc(st.ppid, "personality", NULL);
		pr_info("pid %d: a zombie's personality is root's to read; its parent's is "
			"saved\n",
			dt->pid);
	}
	if (!s) {
		pr_perror("cannot read /proc/%d/personality", dt->pid);
		return -1;
	}
	te->personality = strtoul(s, NULL, 16);
	free(s);
	return dump_rlimits(dt);
}

/* In a zombie's restore child: its limits and personality, before it dies. */
static int task_restore_zombie(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;

	if (personality(te->personality) < 0) {
		pr_perror("pid %u: cannot set personality %#x", te->pid, te->personality);
		return -1;
	}
	return restore_rlimits(te);
}

const struct res_ops task_res = {
	.name = "task",
	.dump_zombie = task_dump_zombie,
	.child_zombie = task_restore_zombie,
	.dump_remote = task_dump_remote,
	.dump_local = task_dump,
	.child = task_restore_child,
	.child_late = task_restore_root,
	.remote = task_restore_remote,
};
