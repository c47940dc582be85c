/*
 * The address space: every mapping of /proc/PID/smaps, the mm fields
 * (code/data/brk/stack/arg/env bounds, auxv, exe file), and the contents
 * of the pages that only the process's memory holds (their contents: pages.c).
 *
 * Mappings of memfds and deleted files name the file_entry that saves
 * their inode (fsobj.c); the restore child maps the inode its subtree's
 * opener recreated, so a mapping shared between tasks stays shared.
 *
 * Dump: PAGEMAP_SCAN finds present or swapped pages that are neither the
 * shared zero page nor page cache, so never-touched and untouched-file
 * pages never reach the image.  Shared anonymous memory is read through
 * its map_files entry with SEEK_DATA.  Pages stream from the target with
 * process_vm_readv into one fixed buffer, so stasis's memory does not grow
 * with the target's.
 *
 * Restore: the restore child is stripped of every mapping but a small
 * trampoline; then each mapping is created at its address with remote
 * mmap, pages are filled by remote preadv straight from the image file
 * (one copy, kernel to kernel), and PR_SET_MM_MAP puts the mm fields back.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "compat.h"
#include "files.h"
#include "mm.h"
#include "ns.h"
#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

#define VMA_MADV_MASK                                                                   \
	(VMF_DONTCOPY | VMF_WIPEONFORK | VMF_HUGEPAGE | VMF_NOHUGEPAGE | VMF_DONTDUMP | \
	 VMF_MERGEABLE | VMF_SEQ_READ | VMF_RAND_READ | VMF_DROPPABLE)

/* Dump: what stage 1 reads remotely and stage 2 saves, per task. */
struct mm_task {
	MmEntry *mm;
	unsigned long brk;
};

static struct mm_task *mm_task(struct dump_task *dt)
{
	return res_dump_task_state(dt, &mm_res);
}

struct mm_image *mm_image(struct image *img)
{
	return res_image_state(img, &mm_res);
}

/* ---------------------------------------------------------------- dump */

static bool vma_is_special_name(const char *path)
{
	return path[0] == '[' && strncmp(path, "[anon:", 6) && strncmp(path, "[anon_shmem:", 12) &&
	       strcmp(path, "[heap]") && strcmp(path, "[stack]");
}

/* Kernel-provided mappings stasis knows how to recreate. */
static bool special_supported(const char *path)
{
	return !strcmp(path, "[vdso]") || !strcmp(path, "[vvar]") || !strcmp(path, "[vvar_vclock]");
}

static uint32_t mm_file_id(MmEntry *mm, const char *path, const struct stat *st, bool writable)
{
	size_t i;
	MappedFile *f;

	for (i = 0; i < mm->n_files; i++) {
		f = mm->files[i];
		if (f->dev == st->st_dev && f->ino == st->st_ino) {
			f->writable |= writable;
			return f->id;
		}
	}
	f = xmalloc(sizeof(*f));
	mapped_file__init(f);
	f->id = mm->n_files + 1;
	f->path = xstrdup(path);
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->writable = writable;
	mm->files = xrealloc(mm->files, (mm->n_files + 1) * sizeof(*mm->files));
	mm->files[mm->n_files++] = f;
	return f->id;
}

/*
 * Files checked already in this dump, by the device and inode /proc/PID/maps
 * shows: a tree maps the same libraries over and over.
 */
static struct checked_file {
	unsigned int major, minor;
	unsigned long ino;
	char *path;
	struct stat st;
} * checked;
static size_t nchecked;

static bool known_file(const struct proc_vma *v, struct stat *st)
{
	size_t i;

	for (i = 0; i < nchecked; i++)
		if (checked[i].ino == v->ino && checked[i].major == v->dev_major &&
		    checked[i].minor == v->dev_minor && !strcmp(checked[i].path, v->path)) {
			*st = checked[i].st;
			return true;
		}
	return false;
}

static void remember_file(const struct proc_vma *v, const struct stat *st)
{
	checked = xrealloc(checked, (nchecked + 1) * sizeof(*checked));
	checked[nchecked++] =
	    (struct checked_file){ v->dev_major, v->dev_minor, v->ino, xstrdup(v->path), *st };
}

/*
 * A memfd or deleted file (mapped, or the executable): its inode is saved
 * once, as a file_entry; the mapped_file names it.
 */
static uint32_t mm_fsobj_file(struct dump_ctx *ctx, struct dump_task *dt, const char *what,
			      const char *src, const char *link, bool writable)
{
	MappedFile *f = NULL;
	struct stat st;
	uint32_t id;
	size_t i;

	if (fsobj_get(ctx, dt->pid, what, src, link, &id, &st))
		return 0;
	for (i = 0; i < mm_task(dt)->mm->n_files; i++)
		if (mm_task(dt)->mm->files[i]->has_fsobj_file &&
		    mm_task(dt)->mm->files[i]->fsobj_file == id)
			f = mm_task(dt)->mm->files[i];
	if (!f) {
		uint32_t n = mm_file_id(mm_task(dt)->mm, link, &st, false);

		f = mm_task(dt)->mm->files[n - 1]; /* after the call: it may move the array */
		f->has_fsobj_file = true;
		f->fsobj_file = id;
	}
	f->writable |= writable;
	return f->id;
}

/*
 * /proc/PID/map_files: the kernel lets only a holder of
 * CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN in the initial user namespace
 * look into it (root in a user namespace of its own is not enough).
 * Probed once, on our own first mapping.
 */
bool mm_map_files_usable(void)
{
	static int usable = -1;
	unsigned long start, end, ino = 0;
	char maps[256], path[96];
	struct stat st;
	FILE *f;

	if (usable >= 0)
		return usable;
	usable = 0;
	/* the first mapping of a file (a sanitizer's build starts with anonymous ones) */
	f = fopen("/proc/self/maps", "re");
	while (f && !ino && fgets(maps, sizeof(maps), f))
		if (sscanf(maps, "%lx-%lx %*s %*s %*s %lu", &start, &end, &ino) != 3)
			ino = 0;
	if (ino) {
		snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", start, end);
		usable = !stat(path, &st);
	}
	if (f)
		fclose(f);
	if (!usable)
		pr_info("/proc/PID/map_files is closed to us: mapped files are found by path, "
			"device and inode\n");
	return usable;
}

/* Does st name the inode /proc/PID/maps shows for v? */
static bool vma_same_inode(const struct proc_vma *v, const struct stat *st)
{
	return st->st_dev == makedev(v->dev_major, v->dev_minor) && st->st_ino == v->ino;
}

/*
 * Was the file behind a mapping opened for writing?  The link in
 * map_files carries the open's mode (a shared mapping shows it as
 * VM_MAYWRITE too): a private mapping of a file opened read-write must
 * come back mapped from a read-write open.  The link's own mode is there
 * for every dumper that may trace the task (lstat: only following the
 * link needs CAP_CHECKPOINT_RESTORE), so a normal user's dump sees it too.
 */
static bool vma_open_writable(pid_t pid, const struct proc_vma *v)
{
	char mf[96];
	struct stat st;

	if (v->shared)
		return v->vmflags & VMF_MAYWRITE;
	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%lx-%lx", pid, v->start, v->end);
	return !lstat(mf, &st) && (st.st_mode & S_IWUSR);
}

/*
 * Without map_files, a memfd or deleted file behind a mapping is reached
 * through the task's exe (a deleted program) or an fd of the task on the
 * same inode (/proc/PID/fd/N): the path to open into 'src', or -1 with the
 * refusal said.
 */
static int vma_fd_source(pid_t pid, const struct proc_vma *v, char *src, size_t len)
{
	char dir[64];
	struct dirent *d;
	struct stat st;
	DIR *dp;
	int ret = -1;

	snprintf(src, len, "/proc/%d/exe", pid);
	if (!stat(src, &st) && vma_same_inode(v, &st))
		return 0;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	dp = opendir(dir);
	if (!dp) {
		pr_perror("pid %d: cannot list %s", pid, dir);
		return -1;
	}
	while ((d = readdir(dp))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(src, len, "%s/%.16s", dir, d->d_name);
		if (!stat(src, &st) && vma_same_inode(v, &st)) {
			ret = 0;
			break;
		}
	}
	closedir(dp);
	if (ret)
		pr_err("pid %d mapping %lx-%lx: %s cannot be reached: neither its exe nor an fd of "
		       "the task holds it, and /proc/PID/map_files needs CAP_CHECKPOINT_RESTORE "
		       "(dump as root)\n",
		       pid, v->start, v->end, v->path);
	return ret;
}

static int vma_fsobj(struct dump_ctx *ctx, struct dump_task *dt, const struct proc_vma *v,
		     VmaEntry *e)
{
	char mf[96], what[64];

	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%lx-%lx", dt->pid, v->start, v->end);
	if (!mm_map_files_usable() && vma_fd_source(dt->pid, v, mf, sizeof(mf)))
		return -1;
	snprintf(what, sizeof(what), "mapping %lx-%lx", v->start, v->end);
	if (v->shared && (v->prot & PROT_WRITE) &&
	    fsobj_check_shared_write(dt->pid, what, mf, v->path))
		return -1;
	e->file_id = mm_fsobj_file(ctx, dt, what, mf, v->path, vma_open_writable(dt->pid, v));
	if (!e->file_id)
		return -1;
	e->has_file_id = true;
	e->has_pgoff = true;
	e->pgoff = v->pgoff;
	e->kind = v->shared ? VMA_KIND__VMA_FILE_SHARED : VMA_KIND__VMA_FILE_PRIVATE;
	return 0;
}

/*
 * The file behind a mapping: through map_files where we may, else by its
 * path, checked against the device and inode that /proc/PID/maps shows.
 */
static int vma_file_stat(pid_t pid, const struct proc_vma *v, struct stat *st)
{
	char mf[96], tp[PATH_MAX];

	if (mm_map_files_usable()) {
		snprintf(mf, sizeof(mf), "/proc/%d/map_files/%lx-%lx", pid, v->start, v->end);
		if (stat(mf, st)) {
			pr_perror("pid %d: cannot stat the file behind mapping %lx-%lx", pid,
				  v->start, v->end);
			return -1;
		}
		return 0;
	}
	if (stat(mnt_dump_path(v->path, tp, sizeof(tp)), st) || !vma_same_inode(v, st)) {
		pr_err("pid %d mapping %lx-%lx: %s no longer names the mapped file (device "
		       "%u:%u inode %lu)\n",
		       pid, v->start, v->end, v->path, v->dev_major, v->dev_minor, v->ino);
		return -1;
	}
	return 0;
}

static int vma_file(struct dump_task *dt, const struct proc_vma *v, VmaEntry *e)
{
	char tp[PATH_MAX];
	struct stat st, pst;
	bool writable;

	if (v->vmflags & (VMF_IO | VMF_PFNMAP)) {
		pr_err("pid %d mapping %lx-%lx: device mapping of %s is not supported\n", dt->pid,
		       v->start, v->end, v->path);
		return -1;
	}
	if (!known_file(v, &st)) {
		if (vma_file_stat(dt->pid, v, &st))
			return -1;
		/* a private map of /dev/zero is anonymous memory under that name */
		if (!S_ISREG(st.st_mode) &&
		    !(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5) && !v->shared)) {
			pr_err("pid %d mapping %lx-%lx: %s is not a regular file; not supported\n",
			       dt->pid, v->start, v->end, v->path);
			return -1;
		}
		if (stat(mnt_dump_path(v->path, tp, sizeof(tp)), &pst) || pst.st_dev != st.st_dev ||
		    pst.st_ino != st.st_ino) {
			pr_err("pid %d mapping %lx-%lx: %s no longer names the mapped file\n",
			       dt->pid, v->start, v->end, v->path);
			return -1;
		}
		remember_file(v, &st);
	}
	writable = vma_open_writable(dt->pid, v);
	/* a normal user restores it: the file must open again for it (fs_plain.c) */
	if (geteuid() && !(st.st_uid == geteuid() && st.st_gid == getegid()) &&
	    faccessat(AT_FDCWD, mnt_dump_path(v->path, tp, sizeof(tp)),
		      writable ? R_OK | W_OK : R_OK, AT_EACCESS)) {
		pr_perror("pid %d mapping %lx-%lx: %s cannot be opened again by uid %u for the "
			  "restore",
			  dt->pid, v->start, v->end, v->path, (unsigned int)geteuid());
		return -1;
	}
	e->has_file_id = true;
	e->file_id = mm_file_id(mm_task(dt)->mm, v->path, &st, writable);
	e->has_pgoff = true;
	e->pgoff = v->pgoff;
	e->kind = v->shared ? VMA_KIND__VMA_FILE_SHARED : VMA_KIND__VMA_FILE_PRIVATE;
	return 0;
}

static int vma_classify(struct dump_ctx *ctx, struct dump_task *dt, const struct proc_vma *v,
			VmaEntry *e)
{
	const char *p = v->path;

	if (p[0] == '[' && vma_is_special_name(p)) {
		if (!special_supported(p)) {
			pr_err("pid %d mapping %lx-%lx: special mapping %s is not supported\n",
			       dt->pid, v->start, v->end, p);
			return -1;
		}
		e->kind = VMA_KIND__VMA_SPECIAL;
		e->name = xstrdup(p);
		return 0;
	}
	if (p[0] == '[' || p[0] == '\0') {
		e->kind = v->shared ? VMA_KIND__VMA_ANON_SHARED : VMA_KIND__VMA_ANON_PRIVATE;
		if (p[0])
			e->name = xstrdup(p);
		return 0;
	}
	if (v->shared && v->ino && !strcmp(p, "/dev/zero (deleted)")) {
		/* MAP_SHARED|MAP_ANONYMOUS: a shmem object of its own */
		e->kind = VMA_KIND__VMA_ANON_SHARED;
		e->has_pgoff = true;
		e->pgoff = v->pgoff;
		e->has_file_id = true;
		e->file_id = 0;
		return 0;
	}
	if (!strncmp(p, "/SYSV", 5))
		return sysvipc_vma_dump(dt->pid, v, e);
	if (fsobj_link_is_ghost(p))
		return vma_fsobj(ctx, dt, v, e);
	return vma_file(dt, v, e);
}

static int dump_vmas(struct dump_ctx *ctx, struct dump_task *dt, struct proc_vmas *vmas)
{
	MmEntry *mm = mm_task(dt)->mm;
	size_t i;

	mm->vmas = xzalloc(vmas->n * sizeof(*mm->vmas));
	for (i = 0; i < vmas->n; i++) {
		const struct proc_vma *v = &vmas->v[i];
		VmaEntry *e;

		if (!strcmp(v->path, "[vsyscall]"))
			continue; /* fixed by the kernel, identical everywhere */
		if (v->start >= dt_rt(dt)->inject_addr &&
		    v->end <= dt_rt(dt)->inject_addr + dt_rt(dt)->inject_len)
			continue; /* our own scratch mapping */
		if (v->start < dt_rt(dt)->inject_addr + dt_rt(dt)->inject_len &&
		    dt_rt(dt)->inject_addr < v->end) {
			pr_err("pid %d: mapping %lx-%lx overlaps stasis's scratch area\n", dt->pid,
			       v->start, v->end);
			return -1;
		}
		if (!strncmp(v->path, "/secretmem", 10)) {
			pr_err("pid %d mapping %lx-%lx: secret memory (memfd_secret), which no one "
			       "but the process can read; not supported\n",
			       dt->pid, v->start, v->end);
			return -1;
		}
		if (!strncmp(v->path, "/[aio]", 6)) {
			pr_err("pid %d mapping %lx-%lx: the ring of an AIO context (io_setup); not "
			       "supported yet\n",
			       dt->pid, v->start, v->end);
			return -1;
		}
		if (v->vmflags & VMF_SEALED) {
			pr_err("pid %d mapping %lx-%lx: sealed (mseal); not supported\n", dt->pid,
			       v->start, v->end);
			return -1;
		}
		e = xmalloc(sizeof(*e));
		vma_entry__init(e);
		mm->vmas[mm->n_vmas++] = e;
		e->start = v->start;
		e->end = v->end;
		e->prot = v->prot;
		if (vma_classify(ctx, dt, v, e))
			return -1;
		if (v->vmflags & VMA_MADV_MASK) {
			e->has_madv = true;
			e->madv = v->vmflags & VMA_MADV_MASK;
		}
		if (v->vmflags & VMF_GROWSDOWN)
			e->has_growsdown = e->growsdown = true;
		if (v->vmflags & VMF_LOCKED)
			e->has_locked = e->locked = true;
		if (v->vmflags & VMF_NORESERVE)
			e->has_noreserve = e->noreserve = true;
		/* ino of shared anon memory tells which VMAs share one object */
		if (e->kind == VMA_KIND__VMA_ANON_SHARED && !mm_map_files_usable()) {
			pr_err("pid %d mapping %lx-%lx: shared anonymous memory is read through "
			       "/proc/PID/map_files, which needs CAP_CHECKPOINT_RESTORE (dump as "
			       "root)\n",
			       dt->pid, v->start, v->end);
			return -1;
		}
		if (e->kind == VMA_KIND__VMA_ANON_SHARED) {
			e->has_file_id = true;
			e->file_id = v->ino;
		}
	}
	return 0;
}

static int dump_vdso_hash(struct dump_task *dt)
{
	MmEntry *mm = mm_task(dt)->mm;
	size_t i;

	for (i = 0; i < mm->n_vmas; i++) {
		VmaEntry *e = mm->vmas[i];
		size_t len = e->end - e->start;
		void *buf;

		if (e->kind != VMA_KIND__VMA_SPECIAL || strcmp(e->name, "[vdso]"))
			continue;
		buf = xmalloc(len);
		if (remote_read(dt->pid, e->start, buf, len)) {
			free(buf);
			return -1;
		}
		mm->has_vdso_hash = true;
		mm->vdso_hash = XXH64(buf, len, 0);
		free(buf);
	}
	return 0;
}

static int dump_exe(struct dump_ctx *ctx, struct dump_task *dt)
{
	char path[PATH_MAX], proc[64];
	struct stat st;

	if (readlink_proc(dt->pid, "exe", path, sizeof(path)) < 0) {
		pr_perror("pid %d: cannot read its executable link", dt->pid);
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/%d/exe", dt->pid);
	if (fsobj_link_is_ghost(path)) {
		/* deleted since it was started (an upgrade): saved like any deleted file */
		mm_task(dt)->mm->exe_file_id =
		    mm_fsobj_file(ctx, dt, "executable", proc, path, false);
		mm_task(dt)->mm->has_exe_file_id = mm_task(dt)->mm->exe_file_id != 0;
		return mm_task(dt)->mm->has_exe_file_id ? 0 : -1;
	}
	if (stat(proc, &st)) {
		pr_perror("pid %d: cannot stat its executable", dt->pid);
		return -1;
	}
	mm_task(dt)->mm->has_exe_file_id = true;
	mm_task(dt)->mm->exe_file_id = mm_file_id(mm_task(dt)->mm, path, &st, false);
	return 0;
}

/*
 * Can we see page frame numbers in /proc/PID/pagemap?  Only with
 * CAP_SYS_ADMIN; others read them as 0.  Probed once on a page of ours.
 */
static bool pfns_visible(void)
{
	static int visible = -1;
	static volatile uint64_t probe = 1;
	uint64_t ent = 0;
	int fd;

	if (visible >= 0)
		return visible;
	visible = 0;
	probe++;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && pread(fd, &ent, 8, (uintptr_t)&probe / PAGE_SIZE * 8) == 8)
		visible = (ent >> 63 & 1) && (ent & ((1ULL << 55) - 1));
	if (fd >= 0)
		close(fd);
	if (!visible)
		pr_info("page frames are hidden from us: pages a child shares copy-on-write with "
			"its parent are saved in both\n");
	return visible;
}

/* Would a fork give the child this very mapping of its parent's? */
static bool vma_forks_as(const VmaEntry *e, const VmaEntry *p)
{
	return p->start == e->start && p->end == e->end && p->prot == e->prot &&
	       p->kind == VMA_KIND__VMA_ANON_PRIVATE && p->madv == e->madv &&
	       !(e->madv & (VMF_DONTCOPY | VMF_WIPEONFORK | VMF_DROPPABLE)) && !p->locked &&
	       !e->locked && p->growsdown == e->growsdown && p->noreserve == e->noreserve &&
	       !!p->name == !!e->name && (!e->name || !strcmp(p->name, e->name));
}

/*
 * Private anonymous mappings the parent (dumped before its children) has
 * at the same place with the same flags may share pages copy-on-write
 * with it: mark them, so that only the pages that differ are saved
 * (pages.c) and restore hands the rest down through fork (mm_cow.c).
 */
static void mm_cow_mark(struct dump_ctx *ctx, struct dump_task *dt, pid_t ppid)
{
	MmEntry *mm = mm_task(dt)->mm;
	const MmEntry *pmm = NULL;
	size_t i, j = 0;

	for (i = 0; i < ctx->ntasks && !pmm; i++)
		if (ctx->tasks[i].pid == ppid && &ctx->tasks[i] != dt && !ctx->tasks[i].zombie)
			pmm = mm_task(&ctx->tasks[i])->mm;
	if (!pmm || !pfns_visible())
		return;
	for (i = 0; i < mm->n_vmas; i++) {
		VmaEntry *e = mm->vmas[i];

		if (e->kind != VMA_KIND__VMA_ANON_PRIVATE)
			continue;
		while (j < pmm->n_vmas && pmm->vmas[j]->end <= e->start)
			j++;
		if (j < pmm->n_vmas && vma_forks_as(e, pmm->vmas[j]))
			e->has_cow_parent = e->cow_parent = true;
	}
}

/* The one part of the mm that needs the task to run a syscall: brk. */
static int mm_dump_remote(struct dump_ctx *ctx, struct dump_task *dt)
{
	long brk;

	if (remote_syscall(dt_rt(dt), &brk, __NR_brk, 0, 0, 0, 0, 0, 0))
		return -1;
	mm_task(dt)->brk = brk;
	return 0;
}

static int mm_dump(struct dump_ctx *ctx, struct dump_task *dt)
{
	struct proc_vmas vmas;
	struct proc_stat st;
	MmEntry *mm;
	char *auxv;
	size_t len;
	int ret = -1;

	mm = mm_task(dt)->mm = xmalloc(sizeof(*mm));
	mm_entry__init(mm);
	mm->pid = dt->pid;
	if (proc_parse_stat(dt->pid, &st))
		return -1;
	mm->start_code = st.start_code;
	mm->end_code = st.end_code;
	mm->start_data = st.start_data;
	mm->end_data = st.end_data;
	mm->start_brk = st.start_brk;
	mm->start_stack = st.start_stack;
	mm->arg_start = st.arg_start;
	mm->arg_end = st.arg_end;
	mm->env_start = st.env_start;
	mm->env_end = st.env_end;
	mm->brk = mm_task(dt)->brk;
	auxv = read_proc(dt->pid, "auxv", &len);
	if (!auxv) {
		pr_perror("cannot read /proc/%d/auxv", dt->pid);
		return -1;
	}
	mm->n_auxv = len / sizeof(uint64_t);
	mm->auxv = (uint64_t *)auxv;
	if (dump_exe(ctx, dt))
		return -1;
	if (proc_parse_smaps(dt->pid, &vmas))
		return -1;
	if (dump_vmas(ctx, dt, &vmas) || dump_vdso_hash(dt) ||
	    mempolicy_vmas_dump(dt, mm))
		goto out;
	mm_cow_mark(ctx, dt, st.ppid);
	ret = 0;
out:
	proc_vmas_free(&vmas);
	return ret;
}

/* ------------------------------------------------------------- restore */

/* The restore kernel must offer the very vDSO the image's code calls into. */
static int mm_vdso_check(struct image *img, const struct restore_opts *o)
{
	unsigned long base = getauxval(AT_SYSINFO_EHDR);
	struct proc_vmas vmas;
	size_t i, t;
	uint64_t hash = 0;

	if (proc_parse_maps(getpid(), &vmas))
		return -1;
	for (i = 0; i < vmas.n; i++)
		if (vmas.v[i].start == base)
			hash = XXH64((void *)base, vmas.v[i].end - vmas.v[i].start, 0);
	proc_vmas_free(&vmas);
	for (t = 0; t < img->ntasks; t++) {
		MmEntry *mm = img->tasks[t].mm;

		if (mm && mm->has_vdso_hash && mm->vdso_hash != hash) {
			pr_err("pid %u: the image's vDSO differs from this kernel's (dumped on %s, "
			       "restoring on another kernel build); not supported yet\n",
			       mm->pid, img->hdr->kernel_release);
			return -1;
		}
	}
	return 0;
}

/* The first VMA of mm ending above a (the loader checked they are sorted). */
static size_t vma_after(const MmEntry *mm, unsigned long a)
{
	size_t lo = 0, hi = mm->n_vmas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mm->vmas[mid]->end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* 0 if [a, a + len) is free in both layouts, else the end of what is there. */
static unsigned long range_busy(const struct proc_vmas *ours, const MmEntry *mm, unsigned long a,
				unsigned long len)
{
	size_t i;

	for (i = 0; i < ours->n; i++)
		if (a < ours->v[i].end && ours->v[i].start < a + len)
			return ours->v[i].end;
	i = vma_after(mm, a);
	if (i < mm->n_vmas && mm->vmas[i]->start < a + len)
		return mm->vmas[i]->end;
	return 0;
}

#define TRAMP_STEP 0x1000000UL

/*
 * Pick where the trampoline lives during the transplant: a range free both
 * in our own layout (the child is a copy of us) and in the target's.  The
 * candidates are 16 MiB apart; past a busy range, the next one is the
 * first candidate above it.
 */
static int mm_pick_trampoline(struct rst_ctx *c)
{
	/* our own layout, read once: every restore child starts as a copy of it */
	static struct proc_vmas ours;
	static bool have_ours;
	unsigned long a, busy;
	size_t len = 16 * PAGE_SIZE;

	if (!have_ours) {
		if (proc_parse_maps(getpid(), &ours))
			return -1;
		have_ours = true;
	}
	for (a = 0x10000000UL; a < TASK_SIZE_4L - len; a = max(a + TRAMP_STEP, busy)) {
		busy = range_busy(&ours, c->t->mm, a, len);
		if (!busy)
			break;
		busy = (busy + TRAMP_STEP - 1) & ~(TRAMP_STEP - 1);
	}
	if (a >= TASK_SIZE_4L - len) {
		pr_err("pid %u: no room for the restore trampoline\n", c->t->te->pid);
		return -1;
	}
	c->tramp = a;
	c->tramp_len = len;
	return 0;
}

static int open_mapped_file(struct rst_ctx *c, const MappedFile *f, int target_fd)
{
	struct stat st;
	int fd;

	if (f->has_fsobj_file) {
		char self[64];

		/*
		 * A memfd or deleted file: the inode our subtree's opener made,
		 * read-only unless a shared mapping may write it (an executable
		 * must have no writer).
		 */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", c->shared_base + f->fsobj_file);
		fd = open(self, (f->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("pid %u: mapped file %s was not recreated", c->t->te->pid,
				  f->path);
			return -1;
		}
		goto place;
	}
	fd = open(f->path, (f->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("pid %u: cannot open mapped file %s", c->t->te->pid, f->path);
		return -1;
	}
	if (fstat(fd, &st) || ((st.st_ino != f->ino || st.st_dev != f->dev) &&
			       !c->opts->skip_file_check && !mnt_restore_dev_rebuilt(st.st_dev))) {
		pr_err("pid %u: mapped file %s was replaced since the dump\n", c->t->te->pid,
		       f->path);
		close(fd);
		return -1;
	}
place:
	if (move_fd(fd, target_fd) < 0) {
		pr_perror("cannot place mapped file fd");
		close(fd);
		return -1;
	}
	return 0;
}

/* In the child: open mapped files as service fds and set up the trampoline. */
static int mm_restore_child(struct rst_ctx *c)
{
	static const unsigned char insn[8] = { 0x0f, 0x05, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc };
	MmEntry *mm = c->t->mm;
	const void *code;
	size_t code_len;
	void *p;
	size_t i;

	for (i = 0; i < mm->n_files; i++)
		if (open_mapped_file(c, mm->files[i], svc_fd(c, SVC_FILES) + mm->files[i]->id - 1))
			return -1;
	p = mmap((void *)c->tramp, c->tramp_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)c->tramp) {
		pr_perror("cannot map the restore trampoline at %lx", c->tramp);
		return -1;
	}
	memcpy(p, insn, sizeof(insn));
	code = rbatch_code(&code_len);
	memcpy((char *)p + TRAMP_BATCH_OFF, code, code_len);
	if (mprotect(p, PAGE_SIZE, PROT_READ | PROT_EXEC)) {
		pr_perror("cannot protect the restore trampoline");
		return -1;
	}
	return 0;
}

static bool premappable(const VmaEntry *e)
{
	return e->kind == VMA_KIND__VMA_ANON_PRIVATE || e->kind == VMA_KIND__VMA_FILE_PRIVATE ||
	       e->kind == VMA_KIND__VMA_FILE_SHARED;
}

static bool overlaps(const struct proc_vmas *own, unsigned long s, unsigned long e)
{
	size_t i;

	for (i = 0; i < own->n; i++)
		if (own->v[i].start < e && s < own->v[i].end)
			return true;
	return false;
}

/*
 * In the restore child: build every mapping of the image that does not
 * collide with stasis's own, fill and finish it, with plain syscalls.
 * The controller does the rest remotely after the stop; c->premapped
 * tells it which (it reads the child's copy).
 */
static int mm_premap_child(struct rst_ctx *c)
{
	MmEntry *mm = c->t->mm;
	struct proc_vmas own;
	size_t i, last;
	int ret = -1;

	if (proc_parse_maps(0, &own))
		return -1;
	c->in_child = true;
	for (i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		int r;

		if (c->premapped[i] || !premappable(e) || overlaps(&own, e->start, e->end) ||
		    (e->start < c->tramp + c->tramp_len && c->tramp < e->end))
			continue;
		r = mm_map_one(c, i, &last);
		if (r < 0)
			goto out;
		c->premapped[i] = r == 0 ? MM_PREMAP_DONE : MM_PREMAP_NO;
	}
	if (mm_pages_fill(c, MM_FILL_CHILD, mm_uffd_register(c)))
		goto out;
	for (i = 0; i < mm->n_vmas; i++)
		if (c->premapped[i] == MM_PREMAP_DONE && mm_finish_vma(c, mm->vmas[i]))
			goto out;
	ret = 0;
out:
	c->in_child = false;
	proc_vmas_free(&own);
	return ret;
}

/* Remote: replace what is left of the child's address space with the image's. */
static int mm_restore_remote(struct rst_ctx *c)
{
	MmEntry *mm = c->t->mm;
	size_t i, last;

	c->rt.syscall_ip = c->tramp;
	c->rt.batch_ip = c->tramp + TRAMP_BATCH_OFF;
	c->rt.scratch = c->tramp + PAGE_SIZE;
	c->rt.scratch_len = c->tramp_len - PAGE_SIZE;
	/* what the child built itself, from its own copy of the array */
	if (remote_read(c->rt.pid, (unsigned long)c->premapped, c->premapped, mm->n_vmas) ||
	    uffd_remote_fill(c))
		return -1;
	if (mm_unmap_own(c) || mm_map_vdso(c))
		return -1;
	for (i = 0; i < mm->n_vmas; i = last + 1) {
		last = i;
		if (!c->premapped[i] && mm_map_one(c, i, &last))
			return -1;
	}
	if (mm_pages_fill(c, MM_FILL_REMOTE, -1))
		return -1;
	for (i = 0; i < mm->n_vmas; i++)
		if (c->premapped[i] == MM_PREMAP_NO && mm_finish_vma(c, mm->vmas[i]))
			return -1;
	if (mm_restore_mm_fields(c))
		return -1;
	return mm_check_special_layout(c);
}

/* Stage 2, last: the task's pages (src/res/pages.c). */
static int mm_dump_pages(struct dump_ctx *ctx, struct dump_task *dt)
{
	return mm_pages_dump(ctx, dt, mm_task(dt)->mm);
}

/* Stage 2, after the task record: the layout (its pages come last). */
static int mm_dump_write(struct dump_ctx *ctx, struct dump_task *dt)
{
	return img_write_msg(&ctx->w, IMG_MM, &mm_task(dt)->mm->base);
}

static void mm_dump_task_fini(struct dump_task *dt, void *state)
{
	struct mm_task *m = state;

	if (m->mm)
		mm_entry__free_unpacked(m->mm, NULL);
}

/*
 * Before the fork: service fds for the mapped files (SVC_FILES on) and one
 * after them for the userfaultfd the child leaves to us (pages_uffd.c),
 * per-VMA flags, trampoline.
 */
static int mm_restore_prepare(struct rst_ctx *c)
{
	c->premapped = xzalloc(c->t->mm->n_vmas + 1);
	c->filled = xzalloc(c->t->mm->n_vmas + 1);
	c->svc_files += c->t->mm->n_files + 1;
	return mm_pick_trampoline(c);
}

/* Shared anonymous memory is created by one task and mapped from it by the others. */
static bool mm_reaches_other_tasks(const struct rst_ctx *c)
{
	const MmEntry *mm = c->t->mm;
	size_t i;

	for (i = 0; mm && i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND__VMA_ANON_SHARED)
			return true;
	return false;
}

static void mm_image_fini(struct image *img, void *state)
{
	struct mm_image *mi = state;
	size_t i;

	for (i = 0; i < mi->n; i++)
		free(mi->built[i].filled);
	free(mi->built);
}

const struct res_ops mm_res = {
	.name = "mm",
	.dump_task_state_size = sizeof(struct mm_task),
	.image_state_size = sizeof(struct mm_image),
	.dump_remote = mm_dump_remote,
	.dump_local = mm_dump,
	.dump_write = mm_dump_write,
	.dump_data = mm_dump_pages,
	.dump_task_fini = mm_dump_task_fini,
	.restore_check = mm_vdso_check,
	.restore_prepare = mm_restore_prepare,
	.child_early = mm_cow_child_early,
	.child = mm_restore_child,
	.child_late = mm_premap_child,
	.remote = mm_restore_remote,
	.reaches_other_tasks = mm_reaches_other_tasks,
	.image_fini = mm_image_fini,
};

/* Does the dumped task map the file dev:ino (its layout saved already)? */
bool mm_maps_file(struct dump_task *dt, dev_t dev, ino_t ino)
{
	const MmEntry *mm = mm_task(dt)->mm;
	size_t k;

	for (k = 0; mm && k < mm->n_files; k++)
		if (mm->files[k]->dev == dev && mm->files[k]->ino == ino)
			return true;
	return false;
}
