/*
 * The fd ops table shared by the files of src/res/ that handle one kind of
 * open file each (files.c: regular files, directories, devices, external
 * objects, O_PATH fds; pipe.c: pipes inside the tree; fsobj.c: memfds and
 * deleted files; flock.c: file locks).
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

struct fd_ops {
	FileType type;
	const char *name;
	bool (*match)(const struct fd_dump *d);
	int (*dump)(const struct fd_dump *d, FileEntry *fe);
	/* in the restore child: return a new fd for this description */
	int (*open)(struct rst_ctx *c, const FileEntry *fe);
	/* optional: files with the same non-zero group are opened together */
	uint64_t (*group)(const FileEntry *fe);
	/* optional: free what dump() allocated, once the entry is written */
	void (*release)(FileEntry *fe);
};

extern const struct fd_ops pipe_fd_ops;
extern const struct fd_ops fifo_fd_ops;
extern const struct fd_ops inotify_fd_ops;
extern const struct fd_ops fanotify_fd_ops;
extern const struct fd_ops pidfd_fd_ops;
extern const struct fd_ops eventfd_fd_ops;
extern const struct fd_ops signalfd_fd_ops;
extern const struct fd_ops timerfd_fd_ops;
extern const struct fd_ops epoll_fd_ops;
extern const struct fd_ops unix_fd_ops;
extern const struct fd_ops ghost_fd_fd_ops;
extern const struct fd_ops memfd_fd_ops;
extern const struct fd_ops ghost_fd_ops;

/* fsobj.c: memfds and deleted files, shared by files.c and mm.c */
bool fsobj_link_is_ghost(const char *link);
int fsobj_get(struct dump_ctx *ctx, pid_t pid, const char *what, const char *src, const char *link,
	      uint32_t *id, struct stat *st);
int fsobj_check_shared_write(pid_t pid, const char *what, const char *src, const char *link);
int fsobj_reopen(struct rst_ctx *c, const FileEntry *fe, int flags);

/* flock.c: file locks */
int flock_dump_fd(const struct fd_dump *d, uint32_t file_id, bool first);
int flock_restore_file(struct rst_ctx *c, const FileEntry *fe, int fd);
extern const struct fd_ops ptmx_fd_ops;
extern const struct fd_ops tty_fd_ops;

/* res/tty.c: files_plan and files_open_shared ask about terminals */
long tty_master_index(struct image *img, const FileEntry *fe);
struct rst_task *tty_session_leader(struct image *img, const FileEntry *fe);
bool tty_open_later(struct rst_ctx *c, const FileEntry *fe);

/* A "key: value" line of /proc/PID/fdinfo/FD, read for an fd being dumped. */
const char *fdinfo_field(const struct fd_dump *d, const char *key, char *buf, size_t size);

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

/* A pipe seen anywhere in the tree during the pre-scan. */
struct pipe_seen {
	uint64_t dev, ino;
	bool has_read, has_write;
	pid_t rd_pid; /* some task holding the read end, and its fd */
	int rd_fd;
	bool saved;
};

int pipes_scan(struct dump_ctx *ctx);

typedef int (*tree_fd_fn)(struct dump_ctx *ctx, pid_t pid, int fd, const char *fd_path);
int files_for_each_tree_fd(struct dump_ctx *ctx, tree_fd_fn fn);

/* The restorer's fd passed with --inherit-fd for KEY, duplicated; -1 if none. */
int inherited_fd(struct rst_ctx *c, const char *key);

#endif
