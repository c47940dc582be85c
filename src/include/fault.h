/*
 * Fault injection: STASIS_FAULT=POINT[:N] makes dump or restore fail at
 * POINT, the Nth time it is reached (default the first), the way a real
 * error there would: the call returns -1 with errno set and one log line
 * says that the fault was injected.  Points are named SIDE:WHAT[:STAGE]:
 * every stage of every resource kind (dump:mm:data, restore:tty:child ...,
 * from the resource table), every fd kind's dump and open (fd_dump:pipe,
 * fd_open:unix, from the fd kind table), image writes and reads, and the
 * main steps of the drivers (the table in src/util/fault.c).  `stasis check
 * --faults` lists them all.  Counts are per process: a restore child counts
 * on from what its parent had counted when it was forked.
 */
#ifndef STASIS_FAULT_H
#define STASIS_FAULT_H

#include <stdbool.h>
#include <stdio.h>

/* The steps of the drivers and of the image container with a fault point. */
enum fault_point {
	FAULT_DUMP_SEIZE,
	FAULT_DUMP_FREEZE,
	FAULT_DUMP_INJECT,
	FAULT_DUMP_TREE,
	FAULT_IMG_CREATE,
	FAULT_IMG_WRITE,
	FAULT_IMG_PAGES,
	FAULT_IMG_COMMIT,
	FAULT_IMG_READ,
	FAULT_RST_FORK_ROOT,
	FAULT_RST_FORK,
	FAULT_RST_PARK,
	FAULT_RST_GROUPS,
	FAULT_RST_TRANSPLANT,
	FAULT_RST_THREAD,
	FAULT_RST_VERIFY,
	FAULT_RST_UFFD,
	FAULT_RST_RELEASE,
	FAULT__COUNT
};

/* Is STASIS_FAULT set at all?  (Cheap: the callers below test it first.) */
bool fault_armed(void);

/* 0; or -1 with errno set, after one log line, if p is due to fail now. */
int fault_at(enum fault_point p);
/* The same for point p, whose errno is err instead of its default. */
int fault_at_errno(enum fault_point p, int err);
/* A stage of a resource kind that just ran (res_stage in res.h). */
int fault_res_stage(const char *res, const char *stage);
/* An fd kind's dump (fd_dump:TYPE) or open (fd_open:TYPE). */
int fault_fd(bool open, int file_type);

/* Print every fault point, one per line (`stasis check --faults`). */
void fault_list(FILE *f);

#endif
