/*
 * fs_shm: POSIX shared memory and a named semaphore, both unlinked from
 * /dev/shm at once (as python's multiprocessing does), shared by a
 * parent and its child through MAP_SHARED mappings only (no fd left).
 *
 *   shm   64 KiB, pattern; the child answers requests (word 0 -> word 1)
 *   sem   a sem_open semaphore; the child waits on it and counts the
 *         posts in word 2 of the shared memory
 *
 * Check: the pattern is intact; a request written after restore is
 * answered by the child; two sem_post()s after restore wake the child
 * (a futex on the recreated file) and it counts them.
 */
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "scenario.h"

#define SHM_LEN (64 << 10)

static volatile uint64_t *shm;
static sem_t *sem;
static pid_t kid;

static void *kid_waiter(void *arg)
{
	for (;;) {
		if (sem_wait(sem) == 0)
			__atomic_add_fetch(&shm[2], 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

#include <pthread.h>

static void __attribute__((noreturn)) kid_main(void)
{
	pthread_t t;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	pthread_create(&t, NULL, kid_waiter, NULL);
	for (;;) {
		if (shm[1] != shm[0])
			shm[1] = shm[0];
		scn_msleep(2);
	}
}

static void verify(void)
{
	uint64_t req = scn_hash(getpid()) | 1, posts = shm[2];
	int tries;
	size_t i;

	for (i = 3; i < SHM_LEN / 8; i++)
		SCN_CHECK(shm[i] == scn_hash(i), "shared word %zu changed", i);
	shm[0] = req;
	for (tries = 0; tries < 500 && shm[1] != req; tries++)
		scn_msleep(2);
	SCN_CHECK(shm[1] == req, "the child did not answer through the shared memory");
	SCN_CHECK(sem_post(sem) == 0 && sem_post(sem) == 0, "sem_post: %s", strerror(errno));
	for (tries = 0; tries < 500 && shm[2] != posts + 2; tries++)
		scn_msleep(2);
	SCN_CHECK(shm[2] == posts + 2, "the child saw %llu of 2 posts",
		  (unsigned long long)(shm[2] - posts));
}

int main(int argc, char **argv)
{
	char name[64], pids[32];
	size_t i;
	int fd;

	scn_init(argc, argv, 0);
	snprintf(name, sizeof(name), "/stasis-fs-shm-%d", (int)getpid());
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, SHM_LEN))
		scn_fail("shm_open: %s", strerror(errno));
	shm = mmap(NULL, SHM_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	close(fd);
	shm_unlink(name);
	for (i = 3; i < SHM_LEN / 8; i++)
		shm[i] = scn_hash(i);
	shm[0] = shm[1] = 7;
	snprintf(name, sizeof(name), "/stasis-fs-sem-%d", (int)getpid());
	sem = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
	if (sem == SEM_FAILED)
		scn_fail("sem_open: %s", strerror(errno));
	sem_unlink(name);
	kid = fork();
	if (kid == 0)
		kid_main();
	if (kid < 0)
		scn_fail("fork: %s", strerror(errno));
	/* one post before the dump: the child is blocked in sem_wait after it */
	sem_post(sem);
	for (i = 0; i < 500 && shm[2] != 1; i++)
		scn_msleep(2);
	snprintf(pids, sizeof(pids), "%d\n", (int)kid);
	scn_write_file("pids", pids);
	scn_ready_then_wait();
	verify();
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	scn_pass();
}
