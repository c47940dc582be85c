/*
 * sysv_ipc: SysV IPC objects of the host namespace used by a root and
 * its child.
 *   - segment A (IPC_PRIVATE, 3 pages + 100 bytes, mode 0640) attached by
 *     the root and inherited by the child over fork, filled with a
 *     pattern, marked for removal (IPC_RMID) while attached; the child
 *     answers requests the root writes into it; the root made its third
 *     page read-only (mprotect splits its attachment in three VMAs);
 *   - segment B (with a key, 2 pages) attached read-write by the root, read-only
 *     (SHM_RDONLY) by the child;
 *   - segment C (IPC_PRIVATE, 3 MiB + 5 bytes), attached by the root only
 *     and removed at once: its second MiB and its last bytes hold a
 *     pattern, the rest is zero (the image leaves zero chunks out);
 *   - a semaphore set of three (key, mode 0600), values 4, 7, 11 after a
 *     semop of the root;
 *   - a message queue (IPC_PRIVATE) with three messages of types 1, 2, 3.
 * With "munmap" in WORKDIR/mode, the root then unmaps the last page of
 * its B (for a test that the dump refuses the partial attachment).
 * The ids go to WORKDIR/ipcids ("shm A B sem S msg Q") for the suite to
 * remove whatever a failed run leaves.
 *
 * With SYSV_IPCNS=1 in the environment, all of this lives in an IPC
 * namespace of its own (unshare at start), whose kernel/msgmnb is set to
 * 32000; the check also wants that value.
 *
 * Check: same ids, keys, modes and sizes; A still marked removed and
 * attached four times (3 VMAs in the root, 1 in the child), B
 * attached three times (the child inherited one); A's third page still
 * read-only in the root; contents intact in both; the child answers
 * through A with a byte it reads through its B; semaphore values and
 * messages (in order) as they were.  Then the objects are removed.
 */
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <sched.h>

#include "scenario.h"

#define A_LEN (3 * 4096 + 100)
#define B_LEN (2 * 4096)
#define C_LEN (3 * 1024 * 1024 + 5)

static volatile uint64_t *a;
static volatile unsigned char *b, *cc;
static int idc;
static int ida, idb, ids, idq;
static key_t keyb, keys;
static pid_t kid;

struct msg {
	long mtype;
	char text[64];
};

static void kid_loop(void)
{
	unsigned char *rb = shmat(idb, NULL, SHM_RDONLY);

	if (rb == (void *)-1)
		_exit(3);
	for (;;) {
		if (a[1] != a[0])
			a[1] = a[0] + rb[7]; /* answer, with a byte read through B */
		scn_msleep(2);
	}
}

static void check_shm(int id, key_t key, size_t len, int removed, int nattch)
{
	struct shmid_ds ds;

	SCN_CHECK(shmctl(id, IPC_STAT, &ds) == 0, "segment %d is gone: %s", id, strerror(errno));
	SCN_CHECK(ds.shm_perm.__key == key, "segment %d key %#x, not %#x", id, ds.shm_perm.__key,
		  key);
	SCN_CHECK((ds.shm_perm.mode & 0777) == 0640, "segment %d mode %o", id, ds.shm_perm.mode);
	SCN_CHECK(ds.shm_segsz == len, "segment %d size %zu", id, (size_t)ds.shm_segsz);
	SCN_CHECK(!!(ds.shm_perm.mode & SHM_DEST) == removed, "segment %d removed flag %d", id,
		  !!(ds.shm_perm.mode & SHM_DEST));
	SCN_CHECK((int)ds.shm_nattch == nattch, "segment %d attached %d times, not %d", id,
		  (int)ds.shm_nattch, nattch);
}

/* The protection of the root's mapping at addr, as /proc/self/maps shows it. */
static void check_prot(unsigned long addr, const char *want)
{
	char line[512], perms[8] = "";
	unsigned long s, e;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && s <= addr && addr < e)
			break;
	if (f)
		fclose(f);
	SCN_CHECK(!strcmp(perms, want), "mapping at %lx is %s, not %s", addr, perms, want);
}

static void verify(void)
{
	unsigned short vals[3];
	struct semid_ds sds;
	struct msqid_ds qds;
	uint64_t req = scn_hash(getpid()) | 1;
	struct msg m;
	size_t i;
	int tries;

	check_shm(ida, IPC_PRIVATE, A_LEN, 1, 4); /* the kernel counts the VMAs: 3 + 1 */
	check_shm(idb, keyb, B_LEN, 0, 3);	  /* the child inherited one */
	for (i = 2; i < A_LEN / 8; i++)
		SCN_CHECK(a[i] == scn_hash(i), "word %zu of segment A changed", i);
	check_shm(idc, IPC_PRIVATE, C_LEN, 1, 1);
	for (i = 0; i < C_LEN; i++) {
		unsigned char want = (i >= 1048576 && i < 2097152) || i >= C_LEN - 5
					 ? (unsigned char)(scn_hash(i) | 1)
					 : 0;

		SCN_CHECK(cc[i] == want, "byte %zu of segment C is %u, not %u", i, cc[i], want);
	}
	check_prot((unsigned long)a + 2 * 4096, "r--s");
	check_prot((unsigned long)a + 3 * 4096, "rw-s");
	for (i = 0; i < B_LEN; i++)
		SCN_CHECK(b[i] == (unsigned char)(i * 7 + 1), "byte %zu of segment B changed", i);
	a[0] = req;
	for (tries = 0; tries < 1000 && a[1] != req + b[7]; tries++)
		scn_msleep(2);
	SCN_CHECK(a[1] == req + b[7], "the child did not answer through segment A");

	SCN_CHECK(semctl(ids, 0, IPC_STAT, &sds) == 0, "semaphore set %d is gone", ids);
	SCN_CHECK(sds.sem_perm.__key == keys && (sds.sem_perm.mode & 0777) == 0600,
		  "semaphore set key %#x mode %o", sds.sem_perm.__key, sds.sem_perm.mode);
	SCN_CHECK(semctl(ids, 0, GETALL, vals) == 0, "GETALL: %s", strerror(errno));
	SCN_CHECK(vals[0] == 4 && vals[1] == 7 && vals[2] == 11, "semaphore values %u %u %u",
		  vals[0], vals[1], vals[2]);

	SCN_CHECK(msgctl(idq, IPC_STAT, &qds) == 0, "message queue %d is gone", idq);
	SCN_CHECK(qds.msg_qnum == 3, "message queue holds %lu messages",
		  (unsigned long)qds.msg_qnum);
	for (i = 1; i <= 3; i++) {
		char want[64];
		ssize_t n = msgrcv(idq, &m, sizeof(m.text), 0, IPC_NOWAIT);

		snprintf(want, sizeof(want), "message %zu of %llx", i, scn_token);
		SCN_CHECK(n == (ssize_t)strlen(want) + 1 && m.mtype == (long)i &&
			      !strcmp(m.text, want),
			  "message %zu: type %ld '%.*s'", i, m.mtype, (int)(n > 0 ? n : 0), m.text);
	}
	SCN_CHECK(kill(kid, 0) == 0, "the child is gone");
}

static void cleanup(void)
{
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	shmctl(idb, IPC_RMID, NULL);
	semctl(ids, 0, IPC_RMID);
	msgctl(idq, IPC_RMID, NULL);
}

static void setup(void)
{
	struct sembuf op = { 0, -1, 0 };
	unsigned short vals[3] = { 5, 7, 11 };
	struct msg m;
	char buf[128];
	size_t i;

	keyb = (key_t)(scn_token & 0x3fffffff) | 0x40000000;
	keys = keyb ^ 0x1;
	ida = shmget(IPC_PRIVATE, A_LEN, IPC_CREAT | 0640);
	idb = shmget(keyb, B_LEN, IPC_CREAT | IPC_EXCL | 0640);
	ids = semget(keys, 3, IPC_CREAT | IPC_EXCL | 0600);
	idq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	snprintf(buf, sizeof(buf), "shm %d %d sem %d msg %d\n", ida, idb, ids, idq);
	scn_write_file("ipcids", buf);
	if (ida < 0 || idb < 0 || ids < 0 || idq < 0)
		scn_fail("cannot create the objects: %s", strerror(errno));
	a = shmat(ida, NULL, 0);
	b = shmat(idb, NULL, 0);
	if (a == (void *)-1 || b == (void *)-1)
		scn_fail("shmat: %s", strerror(errno));
	for (i = 2; i < A_LEN / 8; i++)
		a[i] = scn_hash(i);
	for (i = 0; i < B_LEN; i++)
		b[i] = (unsigned char)(i * 7 + 1);
	a[0] = a[1] = 7;
	if (semctl(ids, 0, SETALL, vals) || semop(ids, &op, 1))
		scn_fail("semaphores: %s", strerror(errno));
	for (i = 1; i <= 3; i++) {
		m.mtype = i;
		snprintf(m.text, sizeof(m.text), "message %zu of %llx", i, scn_token);
		if (msgsnd(idq, &m, strlen(m.text) + 1, IPC_NOWAIT))
			scn_fail("msgsnd: %s", strerror(errno));
	}
}

int main(int argc, char **argv)
{
	char buf[32];
	int tries;

	scn_init(argc, argv, 0);
	if (getenv("SYSV_IPCNS")) {
		int fd;

		if (unshare(CLONE_NEWIPC))
			scn_fail("unshare(CLONE_NEWIPC): %s", strerror(errno));
		fd = open("/proc/sys/kernel/msgmnb", O_WRONLY);
		if (fd < 0 || write(fd, "32000", 5) != 5)
			scn_fail("cannot set msgmnb: %s", strerror(errno));
		close(fd);
	}
	setup();
	kid = fork();
	if (kid == 0)
		kid_loop();
	if (kid < 0)
		scn_fail("fork: %s", strerror(errno));
	a[0] = 1; /* the child's answer proves it attached B */
	for (tries = 0; tries < 2000 && a[1] != 1U + b[7]; tries++)
		scn_msleep(2);
	if (a[1] != 1U + b[7])
		scn_fail("the child did not attach segment B");
	idc = shmget(IPC_PRIVATE, C_LEN, IPC_CREAT | 0640);
	cc = idc < 0 ? (void *)-1 : shmat(idc, NULL, 0);
	if (cc == (void *)-1)
		scn_fail("segment C: %s", strerror(errno));
	shmctl(idc, IPC_RMID, NULL);
	for (size_t i = 1048576; i < 2097152; i++)
		cc[i] = (unsigned char)(scn_hash(i) | 1);
	for (size_t i = C_LEN - 5; i < C_LEN; i++)
		cc[i] = (unsigned char)(scn_hash(i) | 1);
	shmctl(ida, IPC_RMID, NULL); /* removed while attached */
	if (mprotect((void *)((char *)a + 2 * 4096), 4096, PROT_READ))
		scn_fail("mprotect: %s", strerror(errno));
	if (scn_read_small("mode", buf, sizeof(buf)) == 0 && !strcmp(buf, "munmap") &&
	    munmap((void *)(b + 4096), 4096))
		scn_fail("munmap: %s", strerror(errno));
	snprintf(buf, sizeof(buf), "%d\n", (int)kid);
	scn_write_file("pids", buf);
	scn_ready_then_wait();
	atexit(cleanup);
	if (getenv("SYSV_IPCNS")) {
		SCN_CHECK(scn_read_small("/proc/sys/kernel/msgmnb", buf, sizeof(buf)) == 0 &&
			      atoi(buf) == 32000,
			  "msgmnb of its IPC namespace is %s", buf);
	}
	verify();
	scn_pass();
}
