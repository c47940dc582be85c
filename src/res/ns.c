/*
 * Namespaces are not saved yet: a restored task would come back in the
 * restorer's namespaces, with another hostname, network or mount table.
 * This kind refuses, before anything is written, a tree any of whose
 * tasks lives in (or would fork its children into) a namespace that
 * stasis itself is not in, naming the task and the namespace.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "res.h"
#include "util.h"

static const char *const ns_names[] = {
	"ipc",	  "net",  "uts", "mnt", "pid", "pid_for_children", "time", "time_for_children",
	"cgroup", "user",
};

static int check_one(pid_t pid, const char *name)
{
	struct stat self, st;
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
	if (stat(path, &self))
		return 0; /* this kernel has no such namespace: one world */
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	if (stat(path, &st) || st.st_ino == self.st_ino)
		return 0;
	if (strstr(name, "_for_children"))
		pr_err("pid %d: forks its children into another %.*s namespace (inode %lu); "
		       "namespaces are not saved yet\n",
		       pid, (int)(strchr(name, '_') - name), name, (unsigned long)st.st_ino);
	else
		pr_err("pid %d: lives in another %s namespace (%s:[%lu]); namespaces are not "
		       "saved yet\n",
		       pid, name, name, (unsigned long)st.st_ino);
	return -1;
}

static int ns_check(struct dump_ctx *ctx)
{
	size_t i, k;

	for (i = 0; i < ctx->ntasks; i++) {
		if (ctx->tasks[i].zombie)
			continue;
		for (k = 0; k < ARRAY_SIZE(ns_names); k++)
			if (check_one(ctx->tasks[i].pid, ns_names[k]))
				return -1;
	}
	return 0;
}

const struct res_ops ns_res = {
	.name = "ns",
	.dump_check = ns_check,
};
