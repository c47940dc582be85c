/*
 * Fault injection (see fault.h): which point STASIS_FAULT names, how
 * often it has been reached, and the list of every point there is.  The
 * list is made from the tables, not kept by hand: the stages of every
 * resource kind of res_table[] that has them, the dump and open of every
 * fd kind of fd_kinds[], and the driver steps of driver_points[] below.
 * A new kind gets its points from its table line; a new stage of struct
 * res_ops fails the build until it has its line in res_stages[].
 *
 * STASIS_FAULT_TRACE=FILE appends the name of every point reached to FILE,
 * one line each time (a test learns from one run which points a scenario
 * reaches, and how often, instead of trying every point there is).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "files.h"
#include "log.h"
#include "res.h"
#include "util.h"

struct driver_point {
	const char *name;
	int err; /* errno of the failure it stands for */
};

static const struct driver_point driver_points[FAULT__COUNT] = {
	/* a thread cannot be seized (another tracer, a security module) */
	[FAULT_DUMP_SEIZE] = { "dump:seize", EPERM },
	/* the tree is frozen, nothing remote done yet */
	[FAULT_DUMP_FREEZE] = { "dump:freeze", EIO },
	/* the scratch mapping cannot be placed in a task (it vanished) */
	[FAULT_DUMP_INJECT] = { "dump:inject", ESRCH },
	/* every task written: the tree as a whole is refused */
	[FAULT_DUMP_TREE] = { "dump:tree", EINVAL },
	/* the partial image cannot be created */
	[FAULT_IMG_CREATE] = { "image:create", EACCES },
	/* a record of the image: a short write, then ENOSPC */
	[FAULT_IMG_WRITE] = { "image:write", ENOSPC },
	/* page data of the image: a short write, then ENOSPC */
	[FAULT_IMG_PAGES] = { "image:write_pages", ENOSPC },
	/* the finished image cannot be renamed into place */
	[FAULT_IMG_COMMIT] = { "image:commit", EIO },
	/* a read of a record of the image */
	[FAULT_IMG_READ] = { "image:read", EIO },
	/* the root cannot be forked */
	[FAULT_RST_FORK_ROOT] = { "restore:fork_root", EAGAIN },
	/* a restore child cannot fork a child at its PID: the PID is taken */
	[FAULT_RST_FORK] = { "restore:fork", EEXIST },
	/* waiting for the forked tree to park */
	[FAULT_RST_PARK] = { "restore:park", ECHILD },
	/* joining process groups */
	[FAULT_RST_GROUPS] = { "restore:groups", ESRCH },
	/* the address space and state of a task (before it starts) */
	[FAULT_RST_TRANSPLANT] = { "restore:transplant", ESRCH },
	/* a thread cannot be created at its TID: the TID is taken */
	[FAULT_RST_THREAD] = { "restore:thread", EEXIST },
	/* the page data of the image fails its checksum */
	[FAULT_RST_VERIFY] = { "restore:verify", EIO },
	/* filling memory through userfaultfd (UFFDIO_COPY) fails */
	[FAULT_RST_UFFD] = { "restore:uffd_copy", EFAULT },
	/* a task cannot be let go (after the ones before it were) */
	[FAULT_RST_RELEASE] = { "restore:release", ESRCH },
};

/* Every hook of struct res_ops, in its order; fault points for those that can fail. */
struct res_stage_point {
	const char *hook;  /* the member, as res_stage() names it */
	size_t off;	   /* offsetof(struct res_ops, hook) */
	const char *point; /* "dump:%s:remote"; NULL: not a stage that fails */
	int err;
};

#define STAGE(h, p, e)                                \
	{                                             \
#h, offsetof(struct res_ops, h), p, e \
	}
#define NO_FAULT(h)                                      \
	{                                                \
#h, offsetof(struct res_ops, h), NULL, 0 \
	}

static const struct res_stage_point res_stages[] = {
	STAGE(dump_hold, "dump:%s:hold", EIO),
	STAGE(dump_unhold, "dump:%s:unhold", EIO),
	STAGE(dump_check, "dump:%s:check", EINVAL),
	STAGE(dump_remote, "dump:%s:remote", ESRCH),
	STAGE(dump_threads, "dump:%s:threads", ESRCH),
	STAGE(dump_thread, "dump:%s:thread", ESRCH),
	STAGE(dump_zombie, "dump:%s:zombie", ESRCH),
	STAGE(dump_local, "dump:%s:local", ESRCH),
	STAGE(dump_write, "dump:%s:write", ENOSPC),
	STAGE(dump_data, "dump:%s:data", ENOSPC),
	NO_FAULT(dump_end),
	NO_FAULT(dump_rescue),
	NO_FAULT(dump_task_fini),
	NO_FAULT(dump_fini),
	STAGE(image_loaded, "restore:%s:loaded", EINVAL),
	STAGE(restore_check, "restore:%s:check", EINVAL),
	STAGE(restore_prepare, "restore:%s:prepare", ENOMEM),
	STAGE(root_fork, "restore:%s:root_fork", EMFILE),
	STAGE(root_forked, "restore:%s:root_forked", EPERM),
	STAGE(child_early, "restore:%s:child_early", EIO),
	STAGE(child_session, "restore:%s:child_session", EIO),
	STAGE(child, "restore:%s:child", EIO),
	STAGE(child_late, "restore:%s:child_late", EIO),
	STAGE(child_zombie, "restore:%s:child_zombie", EIO),
	STAGE(tree, "restore:%s:tree", ESRCH),
	STAGE(remote, "restore:%s:remote", ESRCH),
	STAGE(thread, "restore:%s:thread", ESRCH),
	STAGE(remote_late, "restore:%s:remote_late", ESRCH),
	STAGE(thread_last, "restore:%s:thread_last", EPERM),
	STAGE(thread_finish, "restore:%s:thread_finish", ESRCH),
	STAGE(release, "restore:%s:release", ESRCH),
	NO_FAULT(restore_end),
	NO_FAULT(reaches_other_tasks),
	NO_FAULT(image_fini),
};

/* A hook added to struct res_ops needs its line above. */
_Static_assert(sizeof(struct res_ops) ==
		   offsetof(struct res_ops, dump_hold) + ARRAY_SIZE(res_stages) * sizeof(void *),
	       "every hook of struct res_ops needs its line in res_stages[]");

/* What STASIS_FAULT asks for, read once at start. */
static struct {
	bool armed;
	char point[128];
	unsigned long nth;
	unsigned long hits;
} want;

__attribute__((constructor)) static void fault_init(void)
{
	const char *env = getenv("STASIS_FAULT");
	char *colon, *end;

	if (!env || !*env || strlen(env) >= sizeof(want.point))
		return;
	strcpy(want.point, env);
	want.nth = 1;
	colon = strrchr(want.point, ':');
	if (colon && colon[1] >= '0' && colon[1] <= '9') {
		unsigned long n = strtoul(colon + 1, &end, 10);

		if (!*end && n > 0) {
			want.nth = n;
			*colon = '\0';
		}
	}
	want.armed = true;
}

/* STASIS_FAULT_TRACE, made absolute: opened at each point (a restore
 * child closes every fd it does not restore, and changes its cwd) */
static char trace_path[4096];

__attribute__((constructor)) static void fault_trace_init(void)
{
	const char *path = getenv("STASIS_FAULT_TRACE");

	if (!path || !*path)
		return;
	if (path[0] == '/')
		snprintf(trace_path, sizeof(trace_path), "%s", path);
	else if (getcwd(trace_path, sizeof(trace_path) - strlen(path) - 2))
		strcat(strcat(trace_path, "/"), path);
	else
		return;
	want.armed = true; /* to pass the points, with no point named */
}

static void trace_point(const char *name)
{
	char line[160];
	int fd, len;

	fd = open(trace_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return; /* a trace is best effort */
	len = snprintf(line, sizeof(line), "%s\n", name);
	if (write(fd, line, len) != len) {
		/* the same */
	}
	close(fd);
}

bool fault_armed(void)
{
	return want.armed;
}

/* name was reached: fail if this is the time asked for. */
static int fault_reached(const char *name, int err)
{
	unsigned long n;

	if (trace_path[0])
		trace_point(name);
	if (strcmp(name, want.point))
		return 0;
	n = __atomic_add_fetch(&want.hits, 1, __ATOMIC_RELAXED);
	if (n != want.nth)
		return 0;
	pr_err("fault injected at %s (time %lu): %s\n", name, n, strerror(err));
	errno = err;
	return -1;
}

int fault_at_errno(enum fault_point p, int err)
{
	if (!want.armed)
		return 0;
	return fault_reached(driver_points[p].name, err);
}

int fault_at(enum fault_point p)
{
	return fault_at_errno(p, driver_points[p].err);
}

static const struct res_stage_point *stage_point(const char *hook)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(res_stages); i++)
		if (!strcmp(res_stages[i].hook, hook))
			return res_stages[i].point ? &res_stages[i] : NULL;
	return NULL;
}

int fault_res_stage(const char *res, const char *stage)
{
	const struct res_stage_point *sp;
	char name[128];

	if (!want.armed || !(sp = stage_point(stage)))
		return 0;
	snprintf(name, sizeof(name), sp->point, res);
	return fault_reached(name, sp->err);
}

/* "unix" for FILE_UNIX: the name of the fd.proto enum value, lower case. */
static void fd_type_name(int type, char *buf, size_t size)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&file_type__descriptor, type);
	const char *s = v ? v->name : "unknown";
	size_t i;

	if (!strncmp(s, "FILE_", 5))
		s += 5;
	for (i = 0; s[i] && i + 1 < size; i++)
		buf[i] = s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i];
	buf[i] = '\0';
}

int fault_fd(bool open, int file_type)
{
	char type[32], name[64];

	if (!want.armed)
		return 0;
	fd_type_name(file_type, type, sizeof(type));
	snprintf(name, sizeof(name), "%s:%s", open ? "fd_open" : "fd_dump", type);
	return fault_reached(name, open ? EMFILE : EIO);
}

static void list_res_stages(FILE *f, bool dump)
{
	const struct res_ops *ops;
	size_t i, s;

	for_each_res(i, ops) for (s = 0; s < ARRAY_SIZE(res_stages); s++)
	{
		const struct res_stage_point *sp = &res_stages[s];
		void *hook;

		memcpy(&hook, (const char *)ops + sp->off, sizeof(hook));
		if (!hook || !sp->point || !strncmp(sp->point, "dump:", 5) != dump)
			continue;
		fprintf(f, sp->point, ops->name);
		fputc('\n', f);
	}
}

void fault_list(FILE *f)
{
	const struct fd_ops *ops;
	char type[32];
	size_t i;

	for (i = 0; i < FAULT__COUNT; i++)
		fprintf(f, "%s\n", driver_points[i].name);
	list_res_stages(f, true);
	list_res_stages(f, false);
	for_each_fd_kind(i, ops)
	{
		fd_type_name(ops->type, type, sizeof(type));
		fprintf(f, "fd_dump:%s\n", type);
		if (ops->open)
			fprintf(f, "fd_open:%s\n", type);
	}
}
