/*
 * ev_refuse: holds one resource stasis must refuse, chosen by the word in
 * WORKDIR/mode (written by the runner before the start), and counts like
 * the counter scenario, so the runner can see it keep running after the
 * failed dump:
 *   inotify-queued  an inotify instance with an event not read yet
 *   inotify-deleted an inotify watch on a file deleted since (held open at
 *                   fd 100, a deleted file, which is refused too: later)
 *   fanotify-perm   a fanotify group of the permission class
 *   pidfd-outside   a pidfd of PID 1 (outside the tree)
 *   pidfd-reaped    a pidfd of a child that exited and was reaped
 *   pidfd-thread    a thread pidfd (PIDFD_THREAD) of a second thread
 *   shm             an attached SysV shared memory segment
 *   sem             a SysV semaphore set operated on with SEM_UNDO
 *   msg             a SysV message queue holding a message
 *   ipcns           a child in a new IPC namespace (unshare), listed in
 *                   WORKDIR/pids
 *   mdwe            memory-deny-write-execute (PR_SET_MDWE), as systemd's
 *                   MemoryDenyWriteExecute= may set it
 *   aio             an AIO context (io_setup, as libaio's io_queue_init)
 *   secretmem       a page of memfd_secret memory, mapped
 *   vfork           a thread waiting in vfork() for a child stopped before
 *                   it execs
 *
 * Check: the counter advances, and the resource is as it was (the event
 * still queued, the message still there, the semaphore value, ...).
 */
#include <pthread.h>
#include <sched.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "scenario.h"

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65 /* Linux 6.3 */
#endif

static char mode[32];
static int fd = -1, ipc_id = -1;
static volatile unsigned long *shm;
static unsigned long count;

static volatile pid_t thread_tid;

static void *thread_main(void *arg)
{
	thread_tid = syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

static void ipc_cleanup(void)
{
	if (!strcmp(mode, "sem"))
		semctl(ipc_id, 0, IPC_RMID);
	else if (!strcmp(mode, "msg"))
		msgctl(ipc_id, IPC_RMID, NULL);
}

/* Modes "ipcns", "netns" ...: a child in a namespace of its own. */
static int ns_flag(const char *m)
{
	static const struct {
		const char *mode;
		int flag;
	} kinds[] = {
		{ "ipcns", CLONE_NEWIPC },
		{ "netns", CLONE_NEWNET },
		{ "mntns", CLONE_NEWNS },
	};
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(m, kinds[i].mode))
			return kinds[i].flag;
	return 0;
}

/*
 * Mode "vfork": a thread stuck in vfork(), its child stopped before it
 * execs (SIGSTOP), so no interrupt can stop the thread; the child exits
 * when continued (the runner's cleanup kills it).
 */
static int vforked;
static pid_t vfork_tid;

static void *vfork_thread(void *arg)
{
	(void)arg;
	vfork_tid = syscall(SYS_gettid);
	__atomic_store_n(&vforked, 1, __ATOMIC_RELEASE); /* vfork returns when the child is gone */
	if (vfork() == 0) {
		kill(syscall(SYS_getpid), SIGSTOP);
		_exit(0);
	}
	__atomic_store_n(&vforked, 2, __ATOMIC_RELEASE);
	for (;;)
		pause();
	return NULL;
}

/* Fork a child that unshares 'flag' and waits; listed in WORKDIR/pids. */
static pid_t ns_child(int flag)
{
	char buf[32];
	pid_t pid;
	int p[2];

	if (pipe(p))
		scn_fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		char ok = unshare(flag) ? 'n' : 'y';

		if (write(p[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (pid < 0 || read(p[0], buf, 1) != 1 || buf[0] != 'y')
		scn_fail("unshare(%#x) failed in the child", flag);
	close(p[0]);
	snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	scn_write_file("pids", buf);
	return pid;
}

static void setup(void)
{
	struct sembuf op = { 0, 1, SEM_UNDO };
	struct {
		long type;
		char text[8];
	} m = { 1, "hello" };
	pid_t child;

	if (!strcmp(mode, "inotify-queued")) {
		close(open("watched", O_CREAT | O_WRONLY, 0644));
		fd = inotify_init1(0);
		if (fd < 0 || inotify_add_watch(fd, "watched", IN_ATTRIB) < 0 ||
		    chmod("watched", 0600))
			scn_fail("inotify: %s", strerror(errno));
	} else if (!strcmp(mode, "inotify-deleted")) {
		/* fd 100 keeps the inode (and so the watch) alive after the unlink */
		fd = open("gone", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 100) < 0 || close(fd))
			scn_fail("open: %s", strerror(errno));
		fd = inotify_init1(0);
		if (fd < 0 || inotify_add_watch(fd, "gone", IN_MODIFY) < 0 || unlink("gone"))
			scn_fail("inotify: %s", strerror(errno));
	} else if (!strcmp(mode, "pidfd-thread")) {
		pthread_t th;

		if (pthread_create(&th, NULL, thread_main, NULL))
			scn_fail("pthread_create");
		while (!thread_tid)
			scn_msleep(1);
		fd = syscall(SYS_pidfd_open, thread_tid, O_EXCL /* PIDFD_THREAD */);
	} else if (!strcmp(mode, "fanotify-perm")) {
		fd = fanotify_init(FAN_CLASS_CONTENT, O_RDONLY);
	} else if (!strcmp(mode, "pidfd-outside")) {
		fd = syscall(SYS_pidfd_open, 1, 0);
	} else if (!strcmp(mode, "pidfd-reaped")) {
		child = fork();
		if (child == 0)
			_exit(0);
		fd = syscall(SYS_pidfd_open, child, 0);
		waitpid(child, NULL, 0);
	} else if (!strcmp(mode, "shm")) {
		ipc_id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
		shm = ipc_id < 0 ? (void *)-1 : shmat(ipc_id, NULL, 0);
		if (shm == (void *)-1)
			scn_fail("shm: %s", strerror(errno));
		*shm = 42;
		/* goes away with the last detach, even if this process is killed */
		shmctl(ipc_id, IPC_RMID, NULL);
		fd = 0;
	} else if (!strcmp(mode, "sem")) {
		ipc_id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
		fd = ipc_id < 0 ? -1 : semop(ipc_id, &op, 1);
	} else if (!strcmp(mode, "msg")) {
		ipc_id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
		fd = ipc_id < 0 ? -1 : msgsnd(ipc_id, &m, sizeof(m.text), 0);
	} else if (ns_flag(mode)) {
		child = ns_child(ns_flag(mode));
		fd = 0;
	} else if (!strcmp(mode, "mdwe")) {
		fd = prctl(PR_SET_MDWE, 1 /* PR_MDWE_REFUSE_EXEC_GAIN */, 0, 0, 0);
	} else if (!strcmp(mode, "vfork")) {
		pthread_t t;

		fd = pthread_create(&t, NULL, vfork_thread, NULL) ? -1 : 0;
		while (!fd && !__atomic_load_n(&vforked, __ATOMIC_ACQUIRE))
			usleep(1000);
		usleep(20000); /* the child stopped, the thread in vfork's wait */
	} else if (!strcmp(mode, "secretmem")) {
		char *p;

		fd = syscall(447 /* memfd_secret */, 0);
		if (fd >= 0 && !ftruncate(fd, 4096) &&
		    (p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) != MAP_FAILED)
			p[0] = 1;
		else
			fd = -1;
	} else if (!strcmp(mode, "aio")) {
		unsigned long ctx = 0;

		fd = syscall(SYS_io_setup, 8, &ctx);
	} else {
		scn_fail("unknown mode '%s'", mode);
	}
	if (fd < 0)
		scn_fail("%s: %s", mode, strerror(errno));
	scn_log("mode %s", mode);
	if (ipc_id >= 0) {
		char buf[64];

		/* for the runner, to remove it should this process be killed */
		snprintf(buf, sizeof(buf), "%s %d\n", mode, ipc_id);
		scn_write_file("ipc", buf);
	}
}

/* The vfork child, continued: the thread's vfork() returns. */
static void vfork_end(void)
{
	char path[64], buf[32] = "";
	int i;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)vfork_tid);
	if (!scn_read_small(path, buf, sizeof(buf)) && atoi(buf) > 0)
		kill(atoi(buf), SIGCONT);
	for (i = 0; i < 2000 && __atomic_load_n(&vforked, __ATOMIC_ACQUIRE) != 2; i++)
		usleep(1000);
	SCN_CHECK(vforked == 2, "the thread's vfork() did not return once its child went on");
}

static void verify(void)
{
	int n = 0;
	struct msqid_ds ds;

	if (!strcmp(mode, "vfork"))
		vfork_end();

	if (!strcmp(mode, "inotify-queued"))
		SCN_CHECK(ioctl(fd, FIONREAD, &n) == 0 && n > 0, "the queued event is gone");
	else if (!strcmp(mode, "shm"))
		SCN_CHECK(*shm == 42, "the segment lost its contents");
	else if (!strcmp(mode, "sem"))
		SCN_CHECK(semctl(ipc_id, 0, GETVAL) == 1, "semaphore value %d",
			  semctl(ipc_id, 0, GETVAL));
	else if (!strcmp(mode, "msg"))
		SCN_CHECK(msgctl(ipc_id, IPC_STAT, &ds) == 0 && ds.msg_qnum == 1,
			  "the message is gone");
}

int main(int argc, char **argv)
{
	unsigned long c0;

	scn_init(argc, argv, 1);
	if (scn_read_small("mode", mode, sizeof(mode)))
		scn_fail("no WORKDIR/mode");
	setup();
	atexit(ipc_cleanup);
	scn_ready();
	for (;;) {
		if (++count % 500 == 0)
			scn_log("count %lu", count);
		if (scn_check) {
			c0 = count;
			verify();
			scn_msleep(5);
			SCN_CHECK(++count == c0 + 1, "counter did not advance");
			scn_pass();
		}
		scn_msleep(1);
	}
}
