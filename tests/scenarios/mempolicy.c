// SPDX-License-Identifier: MIT
/*
 * mempolicy - NUMA memory policies per thread, as numactl sets them: the
 * main thread interleaves over node 0 (numactl --interleave), a second
 * thread binds to node 0 with MPOL_F_STATIC_NODES (--membind), a third
 * prefers node 0 (--preferred), a fourth goes back to the default (threads
 * start with their creator's policy).
 * Check: each thread reads its own policy again (get_mempolicy, which
 * only the thread itself can) and finds the one it set.
 */
#include <pthread.h>
#include <sys/syscall.h>

#include "scenario.h"

#define MPOL_PREFERRED	    1
#define MPOL_BIND	    2
#define MPOL_INTERLEAVE	    3
#define MPOL_F_STATIC_NODES (1 << 15)
#define NTH		    4

static const int want[NTH] = { MPOL_INTERLEAVE, MPOL_BIND | MPOL_F_STATIC_NODES, MPOL_PREFERRED,
			       0 };
static int got[NTH], asked;
static unsigned long got_nodes[NTH];

static int set_policy(int i)
{
	unsigned long nodes = 1;

	return want[i] ? syscall(SYS_set_mempolicy, want[i], &nodes, 64)
		       : syscall(SYS_set_mempolicy, 0, NULL, 0);
}

static void read_policy(int i)
{
	unsigned long nodes[8] = { 0 };
	int mode = -1;

	if (!syscall(SYS_get_mempolicy, &mode, nodes, 8 * 64, NULL, 0)) {
		got[i] = mode;
		got_nodes[i] = nodes[0];
	} else {
		got[i] = -errno;
	}
}

static void *worker(void *arg)
{
	int i = (int)(long)arg, seen = 0;

	if (set_policy(i))
		scn_fail("set_mempolicy %#x: %s", want[i], strerror(errno));
	for (;;) {
		int now = __atomic_load_n(&asked, __ATOMIC_ACQUIRE);

		if (now != seen) {
			read_policy(i);
			seen = now;
			__atomic_store_n(&got[i] + 0, got[i], __ATOMIC_RELEASE);
		}
		usleep(1000);
	}
	return NULL;
}

static void verify(void)
{
	int i, tries;

	for (i = 1; i < NTH; i++)
		got[i] = -1000;
	__atomic_add_fetch(&asked, 1, __ATOMIC_RELEASE);
	read_policy(0);
	for (i = 1; i < NTH; i++)
		for (tries = 0; tries < 2000 && __atomic_load_n(&got[i], __ATOMIC_ACQUIRE) == -1000;
		     tries++)
			usleep(1000);
	for (i = 0; i < NTH; i++)
		SCN_CHECK(got[i] == want[i] && (!want[i] || (got_nodes[i] & 1)),
			  "thread %d: memory policy %#x nodes %#lx, expected %#x", i, got[i],
			  got_nodes[i], want[i]);
}

int main(int argc, char **argv)
{
	pthread_t t;
	long i;

	scn_init(argc, argv, 1);
	if (set_policy(0))
		scn_fail("set_mempolicy: %s", strerror(errno));
	for (i = 1; i < NTH; i++)
		if (pthread_create(&t, NULL, worker, (void *)i))
			scn_fail("pthread_create failed");
	usleep(20000);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
