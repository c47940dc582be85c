/*
 * Per-process attributes the kernel keeps in /proc/PID and that no other
 * kind saves: oom_score_adj, coredump_filter (which parts of memory a core
 * dump holds; kept by the address space, so the restore child writes it
 * before it forks and before its transplant, which keeps that address
 * space), and the audit identity (loginuid, sessionid).
 * oom_score_adj is written back by the restore child itself; lowering it
 * below the restorer's needs CAP_SYS_RESOURCE, so a value restore could not
 * set is refused at dump.  An audit session cannot be recreated: the kernel
 * hands out a new sessionid whenever loginuid is written, except when it
 * is written unset, which unsets the sessionid too.  So a task in stasis's
 * own session inherits it, a task outside any session (a daemon) gets
 * loginuid unset written by its restore child (CAP_AUDIT_CONTROL), and a
 * task in another session is refused at dump; at restore, an image saved
 * in another session than the restorer's is refused unless
 * --skip-audit-session lets the tree join ours.
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "res.h"
#include "util.h"

static long read_proc_long(pid_t pid, const char *name, long fallback)
{
	char *s = read_proc(pid, name, NULL);
	long v = s ? strtol(s, NULL, 10) : fallback;

	free(s);
	return v;
}

static unsigned long read_proc_ulong(pid_t pid, const char *name)
{
	char *s = read_proc(pid, name, NULL);
	unsigned long v = s ? strtoul(s, NULL, 10) : 0;

	free(s);
	return v;
}

#define AUDIT_UNSET 4294967295UL /* loginuid and sessionid outside any session */

struct audit_id {
	unsigned long loginuid, sessionid;
};

/* stasis's own audit identity, read once */
static const struct audit_id *audit_ours(void)
{
	static struct audit_id ours;
	static bool done;

	if (!done) {
		ours.loginuid = read_proc_ulong(0, "loginuid");
		ours.sessionid = read_proc_ulong(0, "sessionid");
		done = true;
	}
	return &ours;
}

/* Saved as it is; refused when no restore could give it back. */
static int audit_dump(pid_t pid, TaskEntry *te)
{
	const struct audit_id *ours = audit_ours();
	struct audit_id id = { read_proc_ulong(pid, "loginuid"),
			       read_proc_ulong(pid, "sessionid") };

	te->has_loginuid = te->has_sessionid = true;
	te->loginuid = id.loginuid;
	te->sessionid = id.sessionid;
	if (id.loginuid == ours->loginuid && id.sessionid == ours->sessionid)
		return 0;
	if (id.loginuid == AUDIT_UNSET && id.sessionid == AUDIT_UNSET)
		return 0; /* the restore child writes loginuid unset */
	pr_err("pid %d: in another audit session (loginuid %lu, sessionid %lu) than stasis "
	       "(loginuid %lu, sessionid %lu); an audit session cannot be recreated\n",
	       pid, id.loginuid, id.sessionid, ours->loginuid, ours->sessionid);
	return -1;
}

/* In the restore child: write text to its own /proc/self/NAME. */
static int write_own_attr(const TaskEntry *te, const char *name, const char *text)
{
	char path[64];
	size_t n = strlen(text);
	int fd;

	snprintf(path, sizeof(path), "/proc/self/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n) {
		pr_perror("pid %u: cannot set %s %s", te->pid, name, text);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

#define COREDUMP_FILTER_DEFAULT 0x33 /* the kernel's, MMF_DUMP_FILTER_DEFAULT */

static int coredump_filter_read(pid_t pid, unsigned long *v)
{
	char *s = read_proc(pid, "coredump_filter", NULL);

	if (!s)
		return -1;
	*v = strtoul(s, NULL, 16);
	free(s);
	return 0;
}

static int coredump_filter_dump(pid_t pid, TaskEntry *te)
{
	unsigned long v;

	if (coredump_filter_read(pid, &v)) {
		pr_perror("pid %d: cannot read /proc/%d/coredump_filter", pid, pid);
		return -1;
	}
	if (v != COREDUMP_FILTER_DEFAULT) {
		te->has_coredump_filter = true;
		te->coredump_filter = v;
	}
	return 0;
}

/* In the restore child: the filter the task had (absent: the default). */
static int coredump_filter_restore(const TaskEntry *te)
{
	unsigned long want =
			  te->has_coredump_filter ? te->coredump_filter : COREDUMP_FILTER_DEFAULT,
		      now;
	char buf[32];

	if (!coredump_filter_read(0, &now) && now == want)
		return 0;
	snprintf(buf, sizeof(buf), "0x%lx", want);
	return write_own_attr(te, "coredump_filter", buf);
}

static int procattr_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	TaskEntry *te = dt->te;
	long adj = read_proc_long(dt->pid, "oom_score_adj", 0);
	long ours = read_proc_long(0, "oom_score_adj", 0);

	if (adj < ours && !cap_effective(CAP_SYS_RESOURCE)) {
		pr_err("pid %d: oom_score_adj %ld is below stasis's own (%ld); restoring it needs "
		       "CAP_SYS_RESOURCE\n",
		       dt->pid, adj, ours);
		return -1;
	}
	if (adj) {
		te->has_oom_score_adj = true;
		te->oom_score_adj = adj;
	}
	if (coredump_filter_dump(dt->pid, te) || audit_dump(dt->pid, te))
		return -1;
	return 0;
}

/*
 * Before anything is made: every task's audit identity is ours, or unset
 * (which we may write), or the user lets the tree join our session.
 */
static int audit_restore_check(struct image *img, const struct restore_opts *o)
{
	const struct audit_id *ours = audit_ours();
	bool may_write = cap_effective(CAP_AUDIT_CONTROL);
	size_t i;

	for (i = 0; i < img->ntasks; i++) {
		const TaskEntry *te = img->tasks[i].te;

		if (!te->has_loginuid ||
		    (te->loginuid == ours->loginuid && te->sessionid == ours->sessionid))
			continue;
		if (te->loginuid == AUDIT_UNSET && te->sessionid == AUDIT_UNSET && may_write)
			continue;
		if (o->skip_audit_session) {
			pr_warn("pid %u: saved in audit session (loginuid %u, sessionid %u), "
				"restored in ours (loginuid %lu, sessionid %lu) as "
				"--skip-audit-session asks\n",
				te->pid, te->loginuid, te->sessionid, ours->loginuid,
				ours->sessionid);
			continue;
		}
		pr_err("pid %u: saved in audit session (loginuid %u, sessionid %u), stasis "
		       "runs in (loginuid %lu, sessionid %lu)%s; restore from that session, or "
		       "--skip-audit-session lets the tree join ours\n",
		       te->pid, te->loginuid, te->sessionid, ours->loginuid, ours->sessionid,
		       te->loginuid == AUDIT_UNSET ? " and may not leave it (no CAP_AUDIT_CONTROL)"
						   : "");
		return -1;
	}
	return 0;
}

/* The restore child leaves our audit session for none, as the task was. */
static int audit_restore_child(const TaskEntry *te)
{
	const struct audit_id *ours = audit_ours();

	if (!te->has_loginuid || te->loginuid != AUDIT_UNSET || te->sessionid != AUDIT_UNSET ||
	    ours->loginuid == AUDIT_UNSET || !cap_effective(CAP_AUDIT_CONTROL))
		return 0; /* ours, or joining ours (checked before) */
	/* leaving stasis's audit session */
	return write_own_attr(te, "loginuid", "4294967295");
}

/* In the restore child, before it forks: its children inherit the value. */
static int procattr_restore_child(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;
	long want = te->has_oom_score_adj ? te->oom_score_adj : 0;
	char buf[32];

	if (audit_restore_child(te) || coredump_filter_restore(te))
		return -1;
	if (want == read_proc_long(0, "oom_score_adj", want))
		return 0;
	snprintf(buf, sizeof(buf), "%ld", want);
	return write_own_attr(te, "oom_score_adj", buf);
}

const struct res_ops procattr_res = {
	.name = "procattr",
	.dump_local = procattr_dump,
	.restore_check = audit_restore_check,
	.child_early = procattr_restore_child,
};
