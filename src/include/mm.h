/*
 * What the two files of the address space share: src/res/mm.c (the
 * layout, both directions) and src/res/pages.c (the page contents).
 */
#ifndef STASIS_MM_H
#define STASIS_MM_H

#include "restore.h"
#include "stasis.h"

#define TASK_SIZE_4L 0x7ffffffff000UL /* user address space, 4-level page tables */
#define PAGES_BUF    IMG_PAGES_BUF
#define IOV_BATCH    1024

/* rst_ctx.premapped[i]: who builds VMA i */
enum {
	MM_PREMAP_NO = 0,   /* the controller, remotely, after the stop */
	MM_PREMAP_DONE = 1, /* the restore child: mapped, filled and finished */
	MM_PREMAP_UFFD = 2, /* the child mapped it and fills it through userfaultfd */
	MM_PREMAP_FORK = 3, /* built and filled before the fork: a child inherits it (mm_cow.c) */
	MM_PREMAP_KEPT = 4, /* inherited from the parent through fork, kept (mm_cow.c) */
};

/* mm_pages_fill: which VMAs one pass fills */
enum {
	MM_FILL_REMOTE = 0, /* MM_PREMAP_NO: the controller, remotely */
	MM_FILL_CHILD = 1,  /* MM_PREMAP_DONE/UFFD: the restore child, after its forks */
	MM_FILL_FORK = 2,   /* MM_PREMAP_FORK/KEPT: the restore child, before them */
};

/*
 * mm.c: may this dumper follow /proc/PID/map_files?  Only a holder of
 * CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN in the initial user namespace
 * may; others find the files behind mappings by path, device and inode.
 */
bool mm_map_files_usable(void);

/* pages.c: dump a task's pages; fill those of the VMAs one side builds */
int mm_pages_dump(struct dump_ctx *ctx, struct dump_task *dt, const MmEntry *mm);
int mm_pages_fill(struct rst_ctx *c, int which, int uffd);

/* mm_cow.c: mappings shared copy-on-write with the parent, before the forks */
int mm_cow_child_early(struct rst_ctx *c);
bool mm_cow_inherited(struct rst_ctx *c, const VmaEntry *e);

/* pages_uffd.c: the one-copy fill of registered anonymous mappings */
struct uffd_fill {
	struct uffd_job {
		unsigned long dst;
		uint64_t off; /* in the image file */
		uint64_t len;
	} * jobs;
	size_t n, cap;
	uint64_t total;
	uint64_t base; /* the task's page data: jobs never cross a checksum piece */
};
int mm_uffd_register(struct rst_ctx *c); /* its userfaultfd, or -1 */
void uffd_fill_add(struct uffd_fill *f, unsigned long addr, uint64_t len, uint64_t off);
int uffd_fill_run(struct rst_ctx *c, struct uffd_fill *f, int img_fd, int uffd);
int uffd_remote_fill(struct rst_ctx *c); /* controller: what the child left to it */

/* mm.c: one mm syscall for the task being built (plain in the child, else remote) */
int mm_rcall(struct rst_ctx *c, const char *what, long nr, unsigned long a1, unsigned long a2,
	     unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6, long *out);
/* Copy buf into the task's scratch area for a call; its address there, or 0. */
unsigned long mm_rarg(struct rst_ctx *c, const void *buf, size_t len);
/* Does the task have saved pages in this VMA? */
bool vma_has_pages(const PagemapEntry *pm, const VmaEntry *e);

/* Restore: shared anonymous objects built so far, by their dump-time inode. */
struct mm_image {
	struct shmem_built {
		uint64_t ino;
		pid_t host_pid;		  /* the task that created it */
		unsigned long start, end; /* one of its mappings there */
		/* the object's ranges (offset, length) some mapping fills */
		struct shmem_range {
			uint64_t off, len;
		} * filled;
		size_t n_filled;
	} * built;
	size_t n;
};

struct mm_image *mm_image(struct image *img);

/*
 * sysvipc.c: a SysV shm attachment of /proc/PID/maps as a VMA record (dump),
 * and attaching it again at its address (the remote build)
 */
struct proc_vma;
int sysvipc_vma_dump(pid_t pid, const struct proc_vma *v, VmaEntry *e);
int sysvipc_vma_map(struct rst_ctx *c, const VmaEntry *e);

/*
 * mempolicy.c: the memory policies the mappings of a task have of their
 * own (from /proc/PID/numa_maps, or asked in stage 1); and mbind of one
 * when its mapping is finished
 */
int mempolicy_vmas_dump(struct dump_task *dt, MmEntry *mm);
int mempolicy_vma_restore(struct rst_ctx *c, const VmaEntry *e);

/* mm_build.c: the steps of building the address space (in mm.c's order) */
int mm_unmap_own(struct rst_ctx *c);
int mm_map_vdso(struct rst_ctx *c);
int mm_check_special_layout(struct rst_ctx *c);
int mm_map_one(struct rst_ctx *c, size_t i, size_t *last);
int mm_finish_vma(struct rst_ctx *c, const VmaEntry *e);
int mm_restore_mm_fields(struct rst_ctx *c);

#endif
