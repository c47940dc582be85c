/*
 * The one table of record kinds.  Each record type of the image format
 * (docs/image-format.md) has one line here: its name (for messages and
 * `stasis show`), the protobuf message of its payload (NULL for raw
 * payloads) and its load function (src/image/load.c, or the kind's own
 * file in src/res/ for the records of fd kinds).  The writer checks
 * a message against its type's descriptor, the loader dispatches through
 * the table, and show decodes with it.
 */
#include <stddef.h>

#include "records.h"
#include "res.h"
#include "util.h"
#include "cgroup.pb-c.h"
#include "core.pb-c.h"
#include "evobj.pb-c.h"
#include "fd.pb-c.h"
#include "fsobj.pb-c.h"
#include "header.pb-c.h"
#include "mm.pb-c.h"
#include "mnt.pb-c.h"
#include "ns.pb-c.h"
#include "sysvipc.pb-c.h"
#include "netlock.pb-c.h"
#include "task.pb-c.h"
#include "tty.pb-c.h"

#define KIND(t, n, d, l) [t] = { .type = t, .name = n, .desc = d, .load = l }

static const struct img_rec_kind rec_kinds[IMG_REC_MAX] = {
	KIND(IMG_HEADER, "header", &image_header__descriptor, rec_load_header),
	KIND(IMG_TRAILER, "trailer", &image_trailer__descriptor, rec_load_trailer),
	KIND(IMG_PAD, "pad", NULL, rec_load_skip),
	KIND(IMG_TASK, "task", &task_entry__descriptor, rec_load_task),
	KIND(IMG_THREAD_CORE, "thread-core", &thread_core__descriptor, rec_load_thread_core),
	KIND(IMG_MM, "mm", &mm_entry__descriptor, rec_load_mm),
	KIND(IMG_PAGEMAP, "pagemap", &pagemap_entry__descriptor, rec_load_pagemap),
	KIND(IMG_PAGES, "pages", NULL, rec_load_pages),
	KIND(IMG_FILE, "file", &file_entry__descriptor, rec_load_file),
	KIND(IMG_FD, "fd", &fd_entry__descriptor, rec_load_fd),
	KIND(IMG_PIPE, "pipe", &pipe_entry__descriptor, pipe_load),
	KIND(IMG_FSOBJ_DATA, "fsobj-data", NULL, fsobj_data_load),
	KIND(IMG_FLOCK, "flock", &flock_entry__descriptor, flock_load),
	KIND(IMG_POSIX_TIMERS, "posix-timers", &posix_timers_entry__descriptor,
	     rec_load_posix_timers),
	KIND(IMG_TTY, "tty", &tty_entry__descriptor, tty_load),
	KIND(IMG_SYSV_SHM, "sysv-shm", &sysv_shm_entry__descriptor, sysvipc_shm_load),
	KIND(IMG_SYSV_SHM_DATA, "sysv-shm-data", &sysv_shm_chunk__descriptor,
	     sysvipc_shm_data_load),
	KIND(IMG_SYSV_SEM, "sysv-sem", &sysv_sem_entry__descriptor, sysvipc_sem_load),
	KIND(IMG_SYSV_MSG, "sysv-msg", &sysv_msg_entry__descriptor, sysvipc_msg_load),
	KIND(IMG_CGROUP, "cgroup", &cgroup_entry__descriptor, cgroup_load),
	KIND(IMG_NS, "ns", &ns_entry__descriptor, ns_load),
	KIND(IMG_MNT, "mnt", &mnt_entry__descriptor, mnt_load),
	KIND(IMG_MNT_FILE, "mnt-file", &mnt_file__descriptor, mnt_file_load),
	KIND(IMG_MQUEUE, "mqueue", &mqueue_entry__descriptor, mqueue_load),
	KIND(IMG_NETLOCK, "netlock", &netlock_entry__descriptor, netlock_load),
};

const struct img_rec_kind *img_rec_kind(uint32_t type)
{
	if (type < ARRAY_SIZE(rec_kinds) && rec_kinds[type].name)
		return &rec_kinds[type];
	return NULL;
}

const char *img_rec_name(uint32_t type)
{
	const struct img_rec_kind *k = img_rec_kind(type);

	return k ? k->name : "unknown";
}
