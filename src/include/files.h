/*
 * The fd kinds: every kind of open file description (a regular file, a
 * pipe, a unix socket, an eventfd, a pty master ...) is one `struct fd_ops`
 * in the file of src/res/ that holds its dump and its restore, and one
 * line of the fd kind table (src/res/fd_table.c).  The open files core
 * (src/res/files.c: the fd tables of the tasks, sameness with kcmp, which
 * task opens which description, src/res/fd_plan.c) calls the kinds only
 * through these hooks and names none of them.  Each kind keeps its state
 * in its own sub-message of file_entry (the `kind` oneof of fd.proto).
 */
#ifndef STASIS_FILES_H
#define STASIS_FILES_H

#include <limits.h>
#include <sys/stat.h>

#include "proc.h"
#include "restore.h"
#include "stasis.h"

/* One fd of a task being dumped, with a duplicate of it in stasis. */
struct fd_dump {
	struct dump_ctx *ctx;
	pid_t pid;
	int fd;
	int lfd;
	struct stat st;
	struct proc_fdinfo fi;
	const char *fdinfo; /* the text of /proc/PID/fdinfo/FD */
	char link[PATH_MAX];
};

struct fd_plan;

/* The sizes of the tree's fd tables (FDSize) together: at least its number of fds. */
unsigned long files_tree_table_sizes(struct dump_ctx *ctx);

/* The part of file locks (res/flock.c) that kinds able to hold them share. */
struct fd_lock_ops {
	/* the locks taken through d (id: its description; first: its first fd seen) */
	int (*dump)(const struct fd_dump *d, uint32_t id, bool first);
	/* the locks of the description just opened at fd by the task that opens it */
	int (*restore)(struct rst_ctx *c, const FileEntry *fe, int fd);
};

struct fd_ops {
	FileType type;
	FileEntry__KindCase kind; /* its sub-message in file_entry */
	const char *name;	  /* for messages: "pipe", "unix socket" */

	/* --- dump */
	/*
	 * Scan every fd of the tree once, before this kind can tell its fds
	 * apart (both ends of a pipe, every pty master): run on first need,
	 * through fd_prescan(), by the kind's own hooks.
	 */
	int (*prescan)(struct dump_ctx *ctx);
	/* matches O_PATH fds (which no other kind sees) */
	bool o_path;
	/* is d of this kind?  The first kind of the table that says so saves it */
	bool (*match)(const struct fd_dump *d);
	/* fill the kind's sub-message of fe (the core set id, type, flags, path) */
	int (*dump)(const struct fd_dump *d, FileEntry *fe);
	/* optional: free what dump() put into fe; default: the sub-message, by protobuf */
	void (*release)(FileEntry *fe);
	/* optional: file locks can be held through descriptions of this kind */
	const struct fd_lock_ops *lock;

	/* --- loading an image */
	/* optional: the record of a description of this kind was just read */
	int (*load)(struct image *img, FileEntry *fe);

	/* --- restore */
	/*
	 * optional: who else must inherit this description, beyond the tasks
	 * with an fd on it (fd_plan_use, fd_plan_join: the task that opens it
	 * is the lowest common ancestor of all of them).
	 */
	void (*plan)(struct fd_plan *p, const FileEntry *fe);
	/* optional: descriptions of one kind with the same non-zero group are opened together */
	uint64_t (*group)(const FileEntry *fe);
	/* opened before every other description (others are reopened from it) */
	bool open_first;
	/*
	 * optional: not opened with the others; a later hook of the kind puts it
	 * in place (until then its fd numbers are held by /dev/null)
	 */
	bool (*open_later)(struct rst_ctx *c, const FileEntry *fe);
	/* in the restore child: return a new fd for this description */
	int (*open)(struct rst_ctx *c, const FileEntry *fe);
	/* optional: in the restore child, its fd table installed, for each fd f of this kind */
	int (*after_install)(struct rst_ctx *c, const FdEntry *f, const FileEntry *fe);
	/*
	 * optional: the key of a description whose object is outside the tree
	 * (--inherit-fd fd[N]:KEY replaces it; show lists it), NULL if inside
	 */
	const char *(*inherit_key)(const FileEntry *fe, char *buf, size_t size);
};

/* The fd kind table (src/res/fd_table.c), in match order. */
extern const struct fd_ops *const fd_kinds[];
extern const size_t fd_kinds_len;

#define for_each_fd_kind(i, ops) \
	for ((i) = 0; (i) < fd_kinds_len && ((ops) = fd_kinds[i], 1); (i)++)

/* The kind of a file type; NULL if this stasis has none. */
const struct fd_ops *fd_kind(FileType type);
/* Why an fd no kind matched cannot be saved, for the error line. */
const char *fd_unsupported_reason(const struct fd_dump *d);

/* The entries of the table, defined in their own files. */
extern const struct fd_ops reg_fd_ops, dir_fd_ops, chr_fd_ops, opath_fd_ops, ext_fd_ops;
extern const struct fd_ops pipe_fd_ops, fifo_fd_ops;
extern const struct fd_ops eventfd_fd_ops, signalfd_fd_ops, timerfd_fd_ops, epoll_fd_ops;
extern const struct fd_ops inotify_fd_ops, fanotify_fd_ops, pidfd_fd_ops;
extern const struct fd_ops unix_fd_ops, inet_fd_ops, netlink_fd_ops, packet_fd_ops;
extern const struct fd_ops inet_raw_fd_ops;
extern const struct fd_ops fsobj_fd_fd_ops, memfd_fd_ops, ghost_fd_ops;
extern const struct fd_ops ptmx_fd_ops, tty_fd_ops;
extern const struct fd_ops mqueue_fd_ops;

/* ---------------------------------------------- services of the core */

/* Run ops->prescan once per dump (on first need); 0, or -1 if it failed. */
int fd_prescan(struct dump_ctx *ctx, const struct fd_ops *ops);

/* fown.c: the owner and signal of d's description (F_GETOWN_EX, F_GETSIG) into fe */
int fown_dump(const struct fd_dump *d, FileEntry *fe);

typedef int (*tree_fd_fn)(struct dump_ctx *ctx, pid_t pid, int fd, const char *fd_path);
/* fn(ctx, pid, fd, /proc/PID/fd/FD) for every fd of every live task of the tree. */
int files_for_each_tree_fd(struct dump_ctx *ctx, tree_fd_fn fn);

/* A "key: value" line of /proc/PID/fdinfo/FD, read for an fd being dumped. */
const char *fdinfo_field(const struct fd_dump *d, const char *key, char *buf, size_t size);

/* Every description of the image, sorted by id. */
FileEntry **image_files(struct image *img, size_t *n);

/* Planning (src/res/fd_plan.c): task t uses description id; to's users include from's. */
void fd_plan_use(struct fd_plan *p, uint32_t id, struct rst_task *t);
void fd_plan_join(struct fd_plan *p, uint32_t to, uint32_t from);
struct image *fd_plan_image(struct fd_plan *p);
/* Decide which task opens each description (files_res.restore_check). */
int files_plan(struct image *img, const struct restore_opts *o);

/* Put fd at the shared slot of description id (for kinds that open several at once). */
int fd_place_shared(struct rst_ctx *c, uint32_t id, int fd);
/* Is the shared slot of description id filled already? */
bool fd_shared_placed(struct rst_ctx *c, uint32_t id);

/* The restorer's fd passed with --inherit-fd for KEY, duplicated; -1 if none. */
int inherited_fd(struct rst_ctx *c, const char *key);

/* ---------------------------------------------- helpers between kinds */

/* fsobj.c: memfds and deleted files, shared with mm.c */
bool fsobj_link_is_ghost(const char *link);
int fsobj_get(struct dump_ctx *ctx, pid_t pid, const char *what, const char *src, const char *link,
	      uint32_t *id, struct stat *st);
int fsobj_check_shared_write(pid_t pid, const char *what, const char *src, const char *link);

/* flock.c: the lock part of the kinds that can hold file locks */
extern const struct fd_lock_ops flock_fd_lock;

/* A file handle as fsnotify fdinfo shows it (res/inotify.c, fanotify.c). */
struct fs_handle {
	unsigned int sdev; /* kernel encoding: major << 20 | minor */
	unsigned long ino;
	unsigned int hbytes, htype;
	char handle[2 * 128 + 1]; /* hex, MAX_HANDLE_SZ bytes at most */
};
/* The path of the inode behind h (NULL if none: gone, deleted); *st its stat. */
char *fs_handle_path(const struct fs_handle *h, struct stat *st);
/* A mount point of the filesystem sdev, preferring a mount of its root. */
int fs_mount_path(unsigned int sdev, char *buf, size_t size);

/* tty.c: is this a terminal device (fs_plain.c: one outside the tree is external) */
bool tty_is_terminal(const struct stat *st);

#endif
