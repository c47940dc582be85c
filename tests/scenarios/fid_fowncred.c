// SPDX-License-Identifier: MIT
/*
 * fid_fowncred: SIGIO owners set by a task that is not root.  The kernel
 * records the uid and euid of whoever sets the owner (F_SETOWN_EX) and
 * sends the signal only to an owner whose uid matches them (or if root
 * set it).  The root process runs as uid 1000 and sets, with F_SETSIG:
 * pipe A owned by itself (its signal must arrive), pipe B owned by its
 * child K, which runs as uid 1001 (its signal must not arrive: the
 * kernel refuses uid 1000's owner to signal uid 1001).
 *
 * The check: a byte in A runs our handler; a byte in B does not reach K,
 * which would say so through a pipe.  Restored with the restorer's (root)
 * credentials as the setter, B's signal would reach K.
 */
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "scenario.h"

#define SIG_A (SIGRTMIN + 2)
#define SIG_B (SIGRTMIN + 3)

static volatile sig_atomic_t got_a;
static int report[2];

static void on_a(int sig)
{
	got_a++;
}

static void on_b(int sig)
{
	if (write(report[1], "b", 1) < 0)
		_exit(1);
}

static void own(int fd, pid_t pid, int sig)
{
	struct f_owner_ex o = { .type = F_OWNER_PID, .pid = pid };

	if (fcntl(fd, F_SETOWN_EX, &o) || fcntl(fd, F_SETSIG, sig) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK)) {
		scn_log("setup: owner of fd %d: %s", fd, strerror(errno));
		exit(2);
	}
}

/*
 * Run as uid id, keeping CAP_DAC_OVERRIDE (the runner's work directory is
 * root's): the kernel's SIGIO check looks at uids only.
 */
static void as_user(uid_t id)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || setresgid(id, id, id) || setresuid(id, id, id)) {
		scn_log("setup: uid %u: %s", id, strerror(errno));
		exit(2);
	}
	d[0].effective = d[0].permitted = 1u << CAP_DAC_OVERRIDE;
	if (syscall(SYS_capset, &h, d)) {
		scn_log("setup: capset: %s", strerror(errno));
		exit(2);
	}
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

int main(int argc, char **argv)
{
	int a[2], b[2], i;
	struct sigaction sa;
	char c;
	pid_t kid;

	scn_init(argc, argv, 1);
	if (pipe(a) || pipe(b) || pipe2(report, O_NONBLOCK))
		return 2;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	kid = fork();
	if (kid == 0) {
		sa.sa_handler = on_b;
		sigaction(SIG_B, &sa, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		as_user(1001);
		for (;;)
			pause();
	}
	sa.sa_handler = on_a;
	sigaction(SIG_A, &sa, NULL);
	as_user(1000);
	own(a[0], getpid(), SIG_A);
	own(b[0], kid, SIG_B);
	scn_msleep(20);
	scn_ready_then_wait();

	SCN_CHECK(write(a[1], "a", 1) == 1, "write A: %s", strerror(errno));
	for (i = 0; i < 100 && !got_a; i++)
		scn_msleep(2);
	SCN_CHECK(got_a == 1, "our own SIGIO signal came %d times", (int)got_a);
	SCN_CHECK(write(b[1], "b", 1) == 1, "write B: %s", strerror(errno));
	scn_msleep(50);
	SCN_CHECK(read(report[0], &c, 1) < 0,
		  "the child (uid 1001) got the signal of uid 1000's owner");
	scn_pass(); /* the child goes with us (its parent-death signal) */
}
