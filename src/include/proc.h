/*
 * Parsers for /proc/PID files: stat, smaps (mappings with VmFlags),
 * limits, fdinfo.
 */
#ifndef STASIS_PROC_H
#define STASIS_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define VMF_GROWSDOWN  (1U << 0)  /* gd */
#define VMF_LOCKED     (1U << 1)  /* lo */
#define VMF_DONTCOPY   (1U << 2)  /* dc */
#define VMF_DONTDUMP   (1U << 3)  /* dd */
#define VMF_WIPEONFORK (1U << 4)  /* wf */
#define VMF_HUGEPAGE   (1U << 5)  /* hg */
#define VMF_NOHUGEPAGE (1U << 6)  /* nh */
#define VMF_MERGEABLE  (1U << 7)  /* mg */
#define VMF_NORESERVE  (1U << 8)  /* nr */
#define VMF_IO	       (1U << 9)  /* io */
#define VMF_PFNMAP     (1U << 10) /* pf */
#define VMF_SHARED     (1U << 11) /* sh */
#define VMF_MAYWRITE   (1U << 12) /* mw */
#define VMF_SEQ_READ   (1U << 13) /* sr: MADV_SEQUENTIAL */
#define VMF_RAND_READ  (1U << 14) /* rr: MADV_RANDOM */
#define VMF_DROPPABLE  (1U << 15) /* dp: MAP_DROPPABLE */
#define VMF_SEALED     (1U << 16) /* sl: mseal() */

struct proc_vma {
	unsigned long start, end;
	unsigned long pgoff;
	unsigned int prot;
	bool shared; /* 's' in maps */
	unsigned int dev_major, dev_minor;
	unsigned long ino;
	unsigned int vmflags; /* VMF_* */
	char *path;	      /* "" for anonymous */
};

struct proc_vmas {
	struct proc_vma *v;
	size_t n;
};

int proc_parse_smaps(pid_t pid, struct proc_vmas *out);
int proc_parse_maps(pid_t pid, struct proc_vmas *out);
void proc_vmas_free(struct proc_vmas *vmas);

struct proc_stat {
	char state;
	pid_t ppid, pgid, sid;
	unsigned int tty_nr; /* controlling terminal's device, 0 if none */
	pid_t tpgid;	     /* its foreground group, -1 if none */
	unsigned long start_code, end_code, start_stack;
	unsigned long start_data, end_data, start_brk;
	unsigned long arg_start, arg_end, env_start, env_end;
	int exit_code;
};

int proc_parse_stat(pid_t pid, struct proc_stat *st);

/* Parse "pos:", "flags:", "mnt_id:" of /proc/PID/fdinfo/FD. */
struct proc_fdinfo {
	uint64_t pos;
	unsigned int flags;
	unsigned int mnt_id;
};
int proc_parse_fdinfo(pid_t pid, int fd, struct proc_fdinfo *fi);
/* The same from the text of an fdinfo file already read. */
int proc_fdinfo_parse_text(const char *buf, struct proc_fdinfo *fi);

struct dump_ctx;
/* A path below /proc/PID of a process or thread of the dumped tree: PID, else 0. */
pid_t proc_path_of_tree(const struct dump_ctx *ctx, const char *path);

#endif
