/*
 * SysV IPC (shared memory segments, semaphores, message queues) is not
 * saved: its objects live in the IPC namespace, and stasis has no IPC
 * namespace support yet (SysV IPC comes with it).  This file only makes
 * the refusal clear: before anything is written, every SysV object of the
 * host namespace is looked at, and a dump whose tree uses one fails with
 * a line naming the task and the object.  "Uses" is what the kernel keeps:
 * a segment attached by (or last attached by) a task of the tree, a
 * semaphore last operated on by one (semop, SEM_UNDO included), a queue
 * last sent to or received from by one.  (A task in another IPC namespace
 * is refused by res/ns.c before this runs.)
 */
#include <errno.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include "log.h"
#include "res.h"

static const char *const why = "SysV IPC is not supported (it needs IPC namespace support)";

static int check_shm(struct dump_ctx *ctx)
{
	struct shmid_ds ds;
	int max, i, id;

	max = shmctl(0, SHM_INFO, &ds);
	for (i = 0; i <= max; i++) {
		id = shmctl(i, SHM_STAT_ANY, &ds);
		if (id < 0)
			continue;
		if (ds.shm_nattch && dump_tree_has(ctx, ds.shm_lpid)) {
			pr_err("pid %d: attaches SysV shared memory segment %d (key %#x): %s\n",
			       ds.shm_lpid, id, ds.shm_perm.__key, why);
			return -1;
		}
	}
	return 0;
}

static int check_sem(struct dump_ctx *ctx)
{
	struct seminfo info;
	struct semid_ds ds;
	int max, i, id, pid;
	unsigned long k;

	max = semctl(0, 0, SEM_INFO, &info);
	for (i = 0; i <= max; i++) {
		id = semctl(i, 0, SEM_STAT_ANY, &ds);
		if (id < 0)
			continue;
		for (k = 0; k < ds.sem_nsems; k++) {
			pid = semctl(id, k, GETPID);
			if (dump_tree_has(ctx, pid)) {
				pr_err(
				    "pid %d: operated on SysV semaphore set %d (key %#x, semaphore "
				    "%lu): %s\n",
				    pid, id, ds.sem_perm.__key, k, why);
				return -1;
			}
		}
	}
	return 0;
}

static int check_msg(struct dump_ctx *ctx)
{
	struct msqid_ds ds;
	int max, i, id;
	pid_t pid;

	max = msgctl(0, MSG_INFO, &ds);
	for (i = 0; i <= max; i++) {
		id = msgctl(i, MSG_STAT_ANY, &ds);
		if (id < 0)
			continue;
		pid = dump_tree_has(ctx, ds.msg_lspid) ? ds.msg_lspid : ds.msg_lrpid;
		if (dump_tree_has(ctx, pid)) {
			pr_err("pid %d: uses SysV message queue %d (key %#x, %lu messages): %s\n",
			       pid, id, ds.msg_perm.__key, (unsigned long)ds.msg_qnum, why);
			return -1;
		}
	}
	return 0;
}

static int sysvipc_check(struct dump_ctx *ctx)
{
	return check_shm(ctx) || check_sem(ctx) || check_msg(ctx) ? -1 : 0;
}

const struct res_ops sysvipc_res = {
	.name = "sysvipc",
	.dump_check = sysvipc_check,
};
