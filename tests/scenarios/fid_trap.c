// SPDX-License-Identifier: MIT
/*
 * fid_trap: SIGTRAP pending and blocked in a task with a SIGTRAP handler.
 * The main thread blocks SIGTRAP and gets one for itself (raise: tgkill,
 * SI_TKILL) and one for the process (kill: SI_USER); a second thread,
 * SIGTRAP blocked too, gets one of its own (tgkill).
 *
 * The check: the three are still pending where they were (the thread's,
 * the process's), the handler is still ours; unblocked, each runs the
 * handler once with its own si_code and our pid as the sender.
 *
 * FID_TRAP_DFL=1: no handler (SIGTRAP's default action); the check then
 * only asks that the three are pending and the action is still SIG_DFL.
 *
 * FID_TRAP_LOGINUID=1: it also enters an audit session of its own (writes
 * /proc/self/loginuid), which the dump must refuse (it cannot be made again).
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/syscall.h>

#include "scenario.h"

static volatile sig_atomic_t traps, bad_info, thread_traps;
static volatile pid_t thread_tid;
static volatile int thread_go;
static pid_t me;
static __thread int second_thread;

static void on_trap(int sig, siginfo_t *si, void *uc)
{
	if (si->si_pid != me || (si->si_code != SI_TKILL && si->si_code != SI_USER))
		bad_info++;
	if (second_thread)
		thread_traps++;
	else
		traps++;
}

static void block_trap(int how)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGTRAP);
	pthread_sigmask(how, &s, NULL);
}

static void *thread_main(void *arg)
{
	block_trap(SIG_BLOCK);
	second_thread = 1;
	thread_tid = (pid_t)syscall(SYS_gettid);
	while (!thread_go)
		scn_msleep(2);
	block_trap(SIG_UNBLOCK);
	for (;;)
		pause();
	return NULL;
}

/* Is SIGTRAP pending for the thread (own) or for the process (shared)? */
static int pending_in(const char *field, pid_t tid)
{
	char path[64], buf[4096], *p;
	unsigned long long v;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	if (scn_read_small(path, buf, sizeof(buf)))
		return -1;
	p = strstr(buf, field);
	if (!p)
		return -1;
	v = strtoull(p + strlen(field) + 1, NULL, 16);
	return (v >> (SIGTRAP - 1)) & 1;
}

/* Our tid as /proc/self/task names it: /proc/thread-self -> PID/task/TID. */
static pid_t proc_tid(void)
{
	char link[64];
	ssize_t n = readlink("/proc/thread-self", link, sizeof(link) - 1);
	char *p;

	if (n < 0)
		return -1;
	link[n] = 0;
	p = strrchr(link, '/');
	return p ? atoi(p + 1) : -1;
}

/* The thread of ours that is not tid. */
static pid_t other_thread(pid_t tid)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	pid_t t = -1;

	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && atoi(de->d_name) != tid)
			t = atoi(de->d_name);
	if (d)
		closedir(d);
	return t;
}

int main(int argc, char **argv)
{
	struct sigaction sa, now;
	pthread_t th;
	pid_t tid;
	int i;

	scn_init(argc, argv, 1);
	me = getpid();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_trap;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (getenv("FID_TRAP_DFL")) {
		sa.sa_flags = 0;
		sa.sa_handler = SIG_DFL;
	}
	if (sigaction(SIGTRAP, &sa, NULL) || pthread_create(&th, NULL, thread_main, NULL))
		return 2;
	while (!thread_tid)
		scn_msleep(1);
	block_trap(SIG_BLOCK);
	tid = (pid_t)syscall(SYS_gettid);
	raise(SIGTRAP);
	kill(me, SIGTRAP);
	syscall(SYS_tgkill, me, thread_tid, SIGTRAP);
	if (getenv("FID_TRAP_LOGINUID")) {
		int fd = open("/proc/self/loginuid", O_WRONLY);

		if (fd < 0 || write(fd, "4242", 4) != 4) {
			scn_log("setup: loginuid: %s", strerror(errno));
			return 2;
		}
		close(fd);
	}
	scn_ready_then_wait();
	/* our numbers as /proc names them (a copy in a PID namespace of its own has others) */
	tid = proc_tid();
	thread_tid = other_thread(tid);

	sigaction(SIGTRAP, NULL, &now);
	if (getenv("FID_TRAP_DFL")) {
		SCN_CHECK(now.sa_handler == SIG_DFL, "SIGTRAP's action is no longer SIG_DFL");
		SCN_CHECK(pending_in("SigPnd:", tid) == 1 && pending_in("ShdPnd:", tid) == 1 &&
			      pending_in("SigPnd:", thread_tid) == 1,
			  "a pending SIGTRAP is gone");
		scn_pass();
	}
	SCN_CHECK(now.sa_sigaction == on_trap && (now.sa_flags & SA_SIGINFO),
		  "the SIGTRAP handler is gone");
	SCN_CHECK(pending_in("SigPnd:", tid) == 1, "SIGTRAP is not pending for the main thread");
	SCN_CHECK(pending_in("ShdPnd:", tid) == 1, "SIGTRAP is not pending for the process");
	SCN_CHECK(pending_in("SigPnd:", thread_tid) == 1,
		  "SIGTRAP is not pending for the second thread");
	SCN_CHECK(traps == 0 && thread_traps == 0, "the handler ran before the check");
	block_trap(SIG_UNBLOCK);
	SCN_CHECK(traps == 2, "unblocked, the handler ran %d times, not twice", (int)traps);
	thread_go = 1;
	for (i = 0; i < 500 && !thread_traps; i++)
		scn_msleep(2);
	SCN_CHECK(thread_traps == 1, "the second thread's handler ran %d times", (int)thread_traps);
	SCN_CHECK(!bad_info, "a SIGTRAP came with another sender or si_code");
	scn_pass();
}
