/*
 * Unit tests of the ptrace layer: freeze, remote syscalls, scratch
 * injection, remote memory access, and release with syscall restart, on
 * real child processes.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "rtask.h"
#include "util.h"

static int failed;

#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (!(cond)) {                                        \
			printf("  FAIL %s:%d: ", __func__, __LINE__); \
			printf(__VA_ARGS__);                          \
			printf("\n");                                 \
			failed++;                                     \
			goto out;                                     \
		}                                                     \
	} while (0)

static volatile unsigned long *shared_counter;

static pid_t spawn_counter(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (;;)
			(*shared_counter)++;
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static bool maps_has(pid_t pid, unsigned long addr)
{
	char *maps = read_proc(pid, "maps", NULL), key[32];
	bool found;

	snprintf(key, sizeof(key), "%lx-", addr);
	found = maps && strstr(maps, key);
	free(maps);
	return found;
}

static void test_freeze_remote_release(void)
{
	pid_t pid = spawn_counter();
	struct rtask t;
	unsigned long before, after, addr;
	char buf[16] = "stasis-unit";
	char back[16] = { 0 };
	long ret;

	usleep(20000);
	CHECK(rtask_freeze(&t, pid) == 0, "freeze");
	before = *shared_counter;
	usleep(20000);
	CHECK(*shared_counter == before, "task kept running while frozen");
	CHECK(rtask_inject(&t, 1) == 0, "inject");
	addr = t.inject_addr;
	CHECK(maps_has(pid, addr), "scratch mapping not visible in maps");
	CHECK(remote_syscall(&t, &ret, __NR_getpid, 0, 0, 0, 0, 0, 0) == 0, "remote getpid");
	CHECK(ret == pid, "remote getpid returned %ld, want %d", ret, pid);
	CHECK(remote_syscall(&t, &ret, __NR_close, 12345, 0, 0, 0, 0, 0) == 0, "remote close");
	CHECK(ret == -EBADF, "remote close of a bad fd returned %ld, want -EBADF", ret);
	CHECK(remote_write(pid, t.scratch, buf, sizeof(buf)) == 0, "remote write");
	CHECK(remote_read(pid, t.scratch, back, sizeof(back)) == 0, "remote read");
	CHECK(!memcmp(buf, back, sizeof(buf)), "read back differs");
	CHECK(rtask_uninject(&t) == 0, "uninject");
	CHECK(!maps_has(pid, addr), "scratch mapping left behind");
	CHECK(rtask_release(&t) == 0, "release");
	usleep(20000);
	after = *shared_counter;
	usleep(20000);
	CHECK(*shared_counter > after, "task does not run after release");
	printf("  ok freeze/remote/release\n");
out:
	reap(pid);
}

/* A task frozen in read() must get its data after release, not EINTR. */
static void test_restart_read(void)
{
	int p[2], r[2];
	pid_t pid;
	struct rtask t;
	char got[8] = { 0 };

	if (pipe(p) || pipe(r))
		abort();
	pid = fork();
	if (pid == 0) {
		char c[5];
		ssize_t n = read(p[0], c, 5);

		if (n == 5 && write(r[1], c, 5) == 5)
			_exit(0);
		_exit(1);
	}
	usleep(20000);
	CHECK(rtask_freeze(&t, pid) == 0, "freeze");
	CHECK(rtask_inject(&t, 1) == 0, "inject");
	CHECK(rtask_uninject(&t) == 0, "uninject");
	CHECK(rtask_release(&t) == 0, "release");
	CHECK(write(p[1], "hello", 5) == 5, "write");
	CHECK(read(r[0], got, 5) == 5 && !memcmp(got, "hello", 5),
	      "child did not resume its read() correctly");
	printf("  ok syscall restart after release\n");
out:
	reap(pid);
	close(p[0]);
	close(p[1]);
	close(r[0]);
	close(r[1]);
}

static void test_seize_missing(void)
{
	CHECK(tracee_seize(999999) < 0, "seizing a pid that cannot exist worked");
	printf("  ok refuses unknown pid\n");
out:;
}

/*
 * The tests trace their own children, which needs no root; only where
 * even that is refused (kernel.yama.ptrace_scope 2 or 3 without
 * CAP_SYS_PTRACE) is there nothing to test.
 */
static bool may_trace_children(void)
{
	pid_t pid = fork();
	bool ok;

	if (pid == 0) {
		pause();
		_exit(0);
	}
	if (pid < 0)
		return false;
	ok = ptrace(PTRACE_SEIZE, pid, 0, 0) == 0 || errno != EPERM;
	reap(pid);
	return ok;
}

int main(void)
{
	if (!may_trace_children()) {
		printf("SKIP ptrace_test: tracing a child is not permitted here "
		       "(kernel.yama.ptrace_scope?)\n");
		return 77;
	}
	log_init(LOG_MSG, NULL);
	shared_counter =
	    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	test_freeze_remote_release();
	test_restart_read();
	test_seize_missing();
	return failed ? 1 : 0;
}
