/*
 * shmshare: 64 KiB of MAP_SHARED|MAP_ANONYMOUS memory filled with a
 * pattern, shared by the root and a child it forked.  The child answers
 * every request the root writes into the shared page.
 *
 * Check: the pattern is intact in the root, and a new request written by
 * the root after restore is answered by the child through the same memory
 * (each process holding its own copy would never answer).
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "scenario.h"

#define SHM_LEN (64 * 1024)

static volatile uint64_t *shm;
static pid_t kid;

static void kid_loop(void)
{
	for (;;) {
		if (shm[1] != shm[0])
			shm[1] = shm[0]; /* answer */
		scn_msleep(2);
	}
}

static void verify(void)
{
	uint64_t req = scn_hash(getpid()) | 1;
	size_t i;
	int tries;

	for (i = 2; i < SHM_LEN / 8; i++)
		SCN_CHECK(shm[i] == scn_hash(i), "shared word %zu changed", i);
	shm[0] = req;
	for (tries = 0; tries < 500 && shm[1] != req; tries++)
		scn_msleep(2);
	SCN_CHECK(shm[1] == req, "the child did not answer through the shared memory");
	SCN_CHECK(kill(kid, 0) == 0, "the child is gone");
}

int main(int argc, char **argv)
{
	size_t i;

	scn_init(argc, argv, 0);
	shm = mmap(NULL, SHM_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		scn_fail("mmap: %s", strerror(errno));
	for (i = 2; i < SHM_LEN / 8; i++)
		shm[i] = scn_hash(i);
	shm[0] = shm[1] = 7;
	kid = scn_fork(kid_loop);
	scn_write_pids(&kid, 1);
	scn_ready_then_wait();
	verify();
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	scn_pass();
}
