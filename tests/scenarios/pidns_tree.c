// SPDX-License-Identifier: MIT
/*
 * pidns_tree - a tree that is a PID namespace of its own, as a container's:
 *
 *   launcher   clone(CLONE_NEWPID), then waits for its child (outside the tree)
 *    +- I      PID 1 of the new namespace, session leader: the scenario
 *        +- A  pid 2: setpgid(0, 0), counts into A.cnt every 5 ms
 *        +- B  pid 3: two threads, the second counts into B.cnt
 *
 * Every line of A.cnt and B.cnt is "COUNT PID PPID PGRP TID" as the writer
 * sees them (inside the namespace).  WORKDIR/ready names I by its PID as
 * the runner sees it; WORKDIR/pids lists A and B the same way.
 *
 * Check (in I): getpid() is 1; A and B are its children with the same
 * numbers inside, reaped by nobody; their files grow and keep their
 * numbers: A is 2 in group 2, B's counting thread has the tid it had.
 */
#include "scenario.h"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static pid_t host_self(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return atoi(buf);
}

/*
 * Count into file: one line of fixed width written over itself at offset 0
 * through an fd held open for good.  A copy restored next to the original
 * writes the same file; an fd opened on a temporary name that the
 * original renames later would be gone for the copy.  The count ends the
 * line again so that a reader can tell a line torn by a write.
 */
static void count_into(const char *file)
{
	char line[128];
	unsigned long n = 0;
	int fd, len;

	fd = open(file, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		_exit(1);
	for (;;) {
		usleep(5000);
		n++;
		len = snprintf(line, sizeof(line), "%020lu %10d %10d %10d %10ld %020lu\n", n,
			       (int)getpid(), (int)getppid(), (int)getpgrp(),
			       (long)syscall(SYS_gettid), n);
		if (pwrite(fd, line, len, 0) != len)
			_exit(1);
	}
}

static void *b_thread(void *arg)
{
	count_into("B.cnt");
	return NULL;
}

/* The counter line: count, pid, ppid, pgrp, tid; a torn line is read again. */
static int read_cnt(const char *file, unsigned long *n, int *v)
{
	unsigned long again;
	char buf[256];
	int i;

	for (i = 0; i < 100; i++) {
		if (scn_read_small(file, buf, sizeof(buf)) >= 0 &&
		    sscanf(buf, "%lu %d %d %d %d %lu", n, &v[0], &v[1], &v[2], &v[3], &again) ==
			6 &&
		    again == *n)
			return 0;
		usleep(1000);
	}
	return -1;
}

static void __attribute__((noreturn)) init_main(void)
{
	char pids[64];
	unsigned long na, nb, na2, nb2;
	int va[4], vb[4], va2[4], vb2[4], i;
	pid_t a, b;
	pthread_t th;

	setsid();
	scn_pid = getpid();
	scn_proc_view = 1; /* the runner dumps us by the number it sees */
	a = fork();
	if (a == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		snprintf(pids, sizeof(pids), "%d", host_self());
		scn_write_file("A.host", pids);
		count_into("A.cnt");
	}
	b = fork();
	if (b == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(pids, sizeof(pids), "%d", host_self());
		scn_write_file("B.host", pids);
		pthread_create(&th, NULL, b_thread, NULL);
		for (;;)
			pause();
	}
	for (i = 0; i < 300 && (read_cnt("A.cnt", &na, va) || read_cnt("B.cnt", &nb, vb)); i++)
		usleep(10000);
	{
		char ha[32] = "", hb[32] = "";

		scn_read_small("A.host", ha, sizeof(ha));
		scn_read_small("B.host", hb, sizeof(hb));
		snprintf(pids, sizeof(pids), "%d %d\n", atoi(ha), atoi(hb));
		scn_write_file("pids", pids);
	}
	scn_ready();
	while (!scn_check)
		pause();
	SCN_CHECK(!read_cnt("A.cnt", &na, va) && !read_cnt("B.cnt", &nb, vb), "no counters");
	usleep(200000);
	SCN_CHECK(!read_cnt("A.cnt", &na2, va2) && !read_cnt("B.cnt", &nb2, vb2), "no counters");
	SCN_CHECK(getpid() == 1, "init is pid %d", (int)getpid());
	SCN_CHECK(na2 > na && nb2 > nb, "a counter stopped (A %lu->%lu, B %lu->%lu)", na, na2, nb,
		  nb2);
	SCN_CHECK(va2[0] == a && va2[1] == 1 && va2[2] == a && va2[3] == a,
		  "A sees pid %d ppid %d pgrp %d tid %d, wanted %d 1 %d %d", va2[0], va2[1], va2[2],
		  va2[3], a, a, a);
	SCN_CHECK(vb2[0] == b && vb2[1] == 1 && vb2[2] == 1 && vb2[3] == vb[3] && vb[3] != b,
		  "B sees pid %d ppid %d pgrp %d tid %d (tid before %d)", vb2[0], vb2[1], vb2[2],
		  vb2[3], vb[3]);
	SCN_CHECK(waitpid(-1, NULL, WNOHANG) == 0, "a child of init has exited");
	scn_pass();
}

int main(int argc, char **argv)
{
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	} args = { .flags = CLONE_NEWPID, .exit_signal = SIGCHLD };
	pid_t init;

	scn_init(argc, argv, 0);
	init = syscall(SYS_clone3, &args, sizeof(args));
	if (init < 0) {
		scn_log("cannot create a PID namespace: %s", strerror(errno));
		return 2;
	}
	if (init == 0)
		init_main();
	/* the launcher: outside the tree, gone with its child */
	while (waitpid(init, NULL, 0) < 0 && errno == EINTR)
		;
	return 0;
}
