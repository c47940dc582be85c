/*
 * IPC namespaces: a namespace is saved as its IPC limits (the sysctls an
 * IPC namespace has of its own), read from inside, and its creator sets
 * them in a new one.  The objects in it are res/sysvipc.c's and
 * res/mqueue.c's; they are made in one place, so the whole tree must be in
 * one IPC namespace.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ns.h"
#include "util.h"

/* The IPC limits an IPC namespace has of its own (kernel/ and fs/mqueue/). */
static const char *const ipc_sysctls[] = {
	"kernel/shmmax",
	"kernel/shmall",
	"kernel/shmmni",
	"kernel/shm_rmid_forced",
	"kernel/msgmax",
	"kernel/msgmnb",
	"kernel/msgmni",
	"kernel/sem",
	"fs/mqueue/queues_max",
	"fs/mqueue/msg_max",
	"fs/mqueue/msgsize_max",
	"fs/mqueue/msg_default",
	"fs/mqueue/msgsize_default",
};

/* Seen from inside (a sysctl missing here is left out). */
static int look_ipc(pid_t pid, NsEntry *e)
{
	char path[128], *v;
	size_t i, n;

	e->sysctls = xzalloc(ARRAY_SIZE(ipc_sysctls) * sizeof(*e->sysctls));
	for (i = 0; i < ARRAY_SIZE(ipc_sysctls); i++) {
		snprintf(path, sizeof(path), "/proc/sys/%s", ipc_sysctls[i]);
		v = read_file(path, NULL);
		if (!v)
			continue;
		n = strcspn(v, "\n");
		v[n] = '\0';
		e->sysctls[e->n_sysctls] = xzalloc(sizeof(NsSysctl));
		ns_sysctl__init(e->sysctls[e->n_sysctls]);
		e->sysctls[e->n_sysctls]->name = xstrdup(ipc_sysctls[i]);
		e->sysctls[e->n_sysctls++]->value = v;
	}
	return 0;
}

static int ipc_describe(const struct ns_view *v, size_t task, NsEntry *e)
{
	return ns_look_inside(ns_view_pid(v, task), &ipc_ns_kind, e, look_ipc);
}

/* Only names of our own list, values on one line. */
static bool ipc_valid(const NsEntry *e)
{
	size_t i, k;

	for (i = 0; i < e->n_sysctls; i++) {
		for (k = 0; k < ARRAY_SIZE(ipc_sysctls); k++)
			if (!strcmp(e->sysctls[i]->name, ipc_sysctls[k]))
				break;
		if (k == ARRAY_SIZE(ipc_sysctls) || strchr(e->sysctls[i]->value, '\n') ||
		    strlen(e->sysctls[i]->value) > 64)
			return false;
	}
	return true;
}

/* A new IPC namespace with the limits it had (res/sysvipc.c fills it). */
static int ipc_create(struct rst_ctx *c, const NsEntry *e)
{
	char path[128];
	size_t i;
	int fd;

	if (unshare(CLONE_NEWIPC)) {
		pr_perror("cannot create an IPC namespace");
		return -1;
	}
	for (i = 0; i < e->n_sysctls; i++) {
		const char *v = e->sysctls[i]->value;

		snprintf(path, sizeof(path), "/proc/sys/%s", e->sysctls[i]->name);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, v, strlen(v)) != (ssize_t)strlen(v)) {
			pr_perror("cannot set %s to %s in the new IPC namespace", path, v);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

const struct ns_kind ipc_ns_kind = {
	.name = "ipc",
	.label = "IPC",
	.nstype = CLONE_NEWIPC,
	.kind = NS_KIND__NS_IPC,
	NS_TE_FIELD(ipc_ns),
	.inherits = NS_K_IPC,
	.one_per_tree = true,
	.describe = ipc_describe,
	.valid = ipc_valid,
	.create = ipc_create,
};
