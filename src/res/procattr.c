/*
 * Per-process attributes the kernel keeps in /proc/PID and that no other
 * kind saves: oom_score_adj, and the audit identity (loginuid, sessionid).
 * oom_score_adj is written back by the restore child itself; lowering it
 * below the restorer's needs CAP_SYS_RESOURCE, so a value restore could not
 * set is refused at dump.  The audit session cannot be recreated (the kernel
 * hands out a new sessionid whenever loginuid is set), so a process in
 * another audit session than stasis's own is refused at dump.
 */
#include <fcntl.h>
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

/* Do we hold CAP_SYS_RESOURCE (lowering oom_score_adj needs it)? */
static bool have_sys_resource(void)
{
	char *status = read_proc(0, "status", NULL);
	const char *eff = status ? status_field(status, "CapEff") : NULL;
	bool have = eff && (strtoull(eff, NULL, 16) >> 24 & 1); /* CAP_SYS_RESOURCE */

	free(status);
	return have;
}

static int procattr_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	TaskEntry *te = dt->te;
	long adj = read_proc_long(dt->pid, "oom_score_adj", 0);
	long ours = read_proc_long(0, "oom_score_adj", 0);

	if (adj < ours && !have_sys_resource()) {
		pr_err("pid %d: oom_score_adj %ld is below stasis's own (%ld); restoring it needs "
		       "CAP_SYS_RESOURCE\n",
		       dt->pid, adj, ours);
		return -1;
	}
	if (adj) {
		te->has_oom_score_adj = true;
		te->oom_score_adj = adj;
	}
	if (read_proc_ulong(dt->pid, "loginuid") != read_proc_ulong(0, "loginuid") ||
	    read_proc_ulong(dt->pid, "sessionid") != read_proc_ulong(0, "sessionid")) {
		pr_err("pid %d: in another audit session (loginuid %lu, sessionid %lu) than stasis "
		       "(loginuid %lu, sessionid %lu); an audit session cannot be recreated\n",
		       dt->pid, read_proc_ulong(dt->pid, "loginuid"),
		       read_proc_ulong(dt->pid, "sessionid"), read_proc_ulong(0, "loginuid"),
		       read_proc_ulong(0, "sessionid"));
		return -1;
	}
	return 0;
}

/* In the restore child, before it forks: its children inherit the value. */
static int procattr_restore_child(struct rst_ctx *c)
{
	TaskEntry *te = c->t->te;
	long want = te->has_oom_score_adj ? te->oom_score_adj : 0;
	char buf[32];
	int fd, n;

	if (want == read_proc_long(0, "oom_score_adj", want))
		return 0;
	n = snprintf(buf, sizeof(buf), "%ld", want);
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, n) != n) {
		pr_perror("pid %u: cannot set oom_score_adj %ld", te->pid, want);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

const struct res_ops procattr_res = {
	.name = "procattr",
	.dump_local = procattr_dump,
	.child_early = procattr_restore_child,
};
