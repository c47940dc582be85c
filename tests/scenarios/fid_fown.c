/*
 * fid_fown: SIGIO owners.  A pipe whose read end is O_ASYNC, owned by
 * this process (F_SETOWN) with F_SETSIG SIGRTMIN+1 (a handler counts it);
 * a socketpair end owned by the second thread (F_OWNER_TID) with SIGIO;
 * an eventfd owned by the process group.
 *
 * The check: F_GETOWN_EX and F_GETSIG give back what was set (the thread
 * by its TID), and a byte written into the pipe sends SIGRTMIN+1 to the
 * process.
 */
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "scenario.h"

static volatile sig_atomic_t got;
static volatile pid_t thread_tid;
static int pipefd[2], sp[2], efd;

static void on_sig(int sig)
{
	got++;
}

static void *thread_main(void *arg)
{
	thread_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

static void own(int fd, int type, pid_t pid, int sig, int async)
{
	struct f_owner_ex o = { .type = type, .pid = pid };

	if (fcntl(fd, F_SETOWN_EX, &o) || (sig && fcntl(fd, F_SETSIG, sig)) ||
	    (async && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC))) {
		scn_log("setup: owner of fd %d: %s", fd, strerror(errno));
		exit(2);
	}
}

static const char *owned(int fd, int type, pid_t pid, int sig)
{
	static char why[128];
	struct f_owner_ex o;

	if (fcntl(fd, F_GETOWN_EX, &o) || (int)o.type != type || o.pid != pid ||
	    fcntl(fd, F_GETSIG) != sig) {
		snprintf(why, sizeof(why), "fd %d: owner type %d pid %d sig %d, want %d %d %d", fd,
			 o.type, o.pid, fcntl(fd, F_GETSIG), type, pid, sig);
		return why;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	const char *why;
	pthread_t th;
	int i;

	scn_init(argc, argv, 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGRTMIN + 1, &sa, NULL);
	signal(SIGIO, SIG_IGN);
	if (pipe(pipefd) || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || (efd = eventfd(0, 0)) < 0 ||
	    pthread_create(&th, NULL, thread_main, NULL))
		return 2;
	while (!thread_tid)
		scn_msleep(1);
	own(pipefd[0], F_OWNER_PID, getpid(), SIGRTMIN + 1, 1);
	own(sp[0], F_OWNER_TID, thread_tid, 0, 0);
	own(efd, F_OWNER_PGRP, getpgrp(), 0, 0);
	scn_ready_then_wait();

	why = owned(pipefd[0], F_OWNER_PID, getpid(), SIGRTMIN + 1);
	SCN_CHECK(!why, "%s", why);
	why = owned(sp[0], F_OWNER_TID, thread_tid, 0);
	SCN_CHECK(!why, "%s", why);
	why = owned(efd, F_OWNER_PGRP, getpgrp(), 0);
	SCN_CHECK(!why, "%s", why);
	SCN_CHECK(write(pipefd[1], "x", 1) == 1, "write: %s", strerror(errno));
	for (i = 0; i < 100 && !got; i++)
		scn_msleep(10);
	SCN_CHECK(got == 1, "a write into the O_ASYNC pipe sent SIGRTMIN+1 %d times", (int)got);
	scn_pass();
}
