// SPDX-License-Identifier: MIT
/*
 * wide - a root with 16 children, enough for stasis restore to rebuild some
 * of them on its second driver thread (tasks last seen on the other CPU).
 *
 * Each child has its own pair of pipes to the root, a random token and a
 * counter in memory that it bumps every millisecond; asked (one byte on its
 * request pipe), it answers "TOKEN COUNTER PID" (PID: getpid(), so its PID
 * in its namespace).  Children have parent-death signal SIGKILL; WORKDIR/pids
 * lists them for the runner.  With two CPUs or more, the odd children are
 * bound to CPU 1 and the others to CPU 0, so that the second driver
 * always has work.
 *
 * Check (in the root): every child is still the root's child and not
 * reaped, answers within 2 s with the token it reported at start, the PID
 * it had, and a counter past the one it reported at start; a second answer
 * 50 ms later shows the counter still moving.
 */
#include "scenario.h"

#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define KIDS 16

static struct kid {
	pid_t pid;
	int req, rep; /* root's ends: request (write), reply (read) */
	unsigned long long token, count;
} kids[KIDS];

static void __attribute__((noreturn)) kid_main(int idx, int req, int rep)
{
	unsigned long long token, count = 0;
	struct pollfd p = { req, POLLIN, 0 };
	char buf[96];
	int n;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(idx % 2, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	if (getrandom(&token, sizeof(token), 0) != sizeof(token))
		token = (unsigned long long)getpid() * 2654435761ULL;
	n = snprintf(buf, sizeof(buf), "%llu %llu %d\n", token, count, (int)getpid());
	scn_write_all(rep, buf, (size_t)n);
	for (;;) {
		char c;

		count++;
		if (poll(&p, 1, 1) == 1) {
			if (read(req, &c, 1) != 1)
				_exit(3); /* the root is gone */
			n = snprintf(buf, sizeof(buf), "%llu %llu %d\n", token, count,
				     (int)getpid());
			scn_write_all(rep, buf, (size_t)n);
		}
	}
}

static int ask(struct kid *k, unsigned long long *token, unsigned long long *count, int *pid)
{
	char buf[96];

	if (scn_write_all(k->req, "?", 1) || scn_read_line(k->rep, buf, sizeof(buf), 2000))
		return -1;
	return sscanf(buf, "%llu %llu %d", token, count, pid) == 3 ? 0 : -1;
}

static void verify(void)
{
	int i, status;

	for (i = 0; i < KIDS; i++) {
		struct kid *k = &kids[i];
		unsigned long long token, c1, c2;
		int pid;

		SCN_CHECK(waitpid(k->pid, &status, WNOHANG) == 0, "child %d is gone or not ours",
			  (int)k->pid);
		SCN_CHECK(ask(k, &token, &c1, &pid) == 0, "child %d does not answer", (int)k->pid);
		SCN_CHECK(token == k->token, "child %d has lost its token", (int)k->pid);
		SCN_CHECK(pid == k->pid, "child %d answers as pid %d", (int)k->pid, pid);
		SCN_CHECK(c1 > k->count, "child %d counter %llu not past %llu", (int)k->pid, c1,
			  k->count);
		scn_msleep(50);
		SCN_CHECK(ask(k, &token, &c2, &pid) == 0 && c2 > c1,
			  "child %d counter stuck at %llu", (int)k->pid, c1);
	}
}

int main(int argc, char **argv)
{
	char buf[KIDS * 12 + 1] = "", line[96];
	int i;

	scn_init(argc, argv, 0);
	for (i = 0; i < KIDS; i++) {
		int req[2], rep[2];

		if (pipe2(req, O_CLOEXEC) || pipe2(rep, O_CLOEXEC))
			scn_fail("pipe: %s", strerror(errno));
		kids[i].pid = fork();
		if (kids[i].pid < 0)
			scn_fail("fork: %s", strerror(errno));
		if (kids[i].pid == 0) {
			close(req[1]);
			close(rep[0]);
			kid_main(i, req[0], rep[1]);
		}
		close(req[0]);
		close(rep[1]);
		kids[i].req = req[1];
		kids[i].rep = rep[0];
		if (scn_read_line(kids[i].rep, line, sizeof(line), 5000) ||
		    sscanf(line, "%llu %llu", &kids[i].token, &kids[i].count) != 2)
			scn_fail("child %d did not report", (int)kids[i].pid);
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%d\n", (int)kids[i].pid);
	}
	scn_write_file("pids", buf);
	scn_ready_then_wait();
	verify();
	scn_pass();
}
