// SPDX-License-Identifier: MIT
/*
 * creds - credentials and scheduling state, process-wide and per thread.
 * Started as root, the main thread sets:
 *
 *   nice 5, SCHED_BATCH, timer slack 123456 ns, child subreaper, THP
 *   disabled, ITIMER_REAL of 100 s (interval 100 s), affinity CPU 0;
 *   CAP_SYS_BOOT dropped from the bounding set, securebits KEEP_CAPS|NOROOT;
 *   groups {1000, 1001}, gids 1000, uids 1000 (keeping capabilities), then
 *   effective = permitted = inheritable = ambient = {CAP_NET_BIND_SERVICE};
 *   no_new_privs, a seccomp filter that fails swapon(2) with ENOTTY (which
 *   swapon never returns by itself).  (No pdeath signal: it would fire when
 *   the restorer of `restore -d` exits; tree3's children have one.)
 *
 * A second thread T, created after the uid change but before the capset,
 * no_new_privs and the filter, has its own: effective {CAP_KILL}, permitted
 * {CAP_KILL, CAP_NET_BIND_SERVICE}, inheritable {}, nice 10, timer slack
 * 7777, affinity CPU 1 (CPU 0 on a single CPU), name "creds-t", no
 * no_new_privs and no filter (swapon fails with EPERM).
 *
 * Check: all of it, in the main thread, in T (by itself) and of T from
 * outside (getpriority, sched_getaffinity, /proc/self/task/T/status);
 * the itimer has between 90 and 100 s left and never fired; dumpable is
 * what it was at 'ready'.
 */
#include "scenario.h"

#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define ID	  1000
#define GROUP2	  1001
#define NICE	  5
#define SLACK	  123456
#define T_NICE	  10
#define T_SLACK	  7777
#define SECBITS	  (SECBIT_KEEP_CAPS | SECBIT_NOROOT)
#define TIMER_SEC 100
#define BIT(c)	  (1u << (c))

static volatile sig_atomic_t alarms;
static volatile int t_ready, t_check, t_done;
static pid_t t_tid;
static int t_cpu;
static int dumpable_at_ready;
static char t_result[300];

static void on_alarm(int sig)
{
	alarms++;
}

static int cap_get(pid_t tid, uint32_t *eff, uint32_t *prm, uint32_t *inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, tid };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	if (d[1].effective || d[1].permitted || d[1].inheritable)
		return -2; /* nothing above capability 31 may be left */
	*eff = d[0].effective;
	*prm = d[0].permitted;
	*inh = d[0].inheritable;
	return 0;
}

static int cap_set(uint32_t eff, uint32_t prm, uint32_t inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { eff, prm, inh }, { 0, 0, 0 } };

	return (int)syscall(SYS_capset, &h, d);
}

/* swapon(2) of a missing file: its errno (0 if it succeeded). */
static int swapon_errno(void)
{
	errno = 0;
	if (syscall(SYS_swapon, "/nonexistent-stasis-test", 0) == 0)
		return 0;
	return errno;
}

/* The CPU set of a thread is exactly {cpu}. */
static int only_cpu(pid_t tid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	return sched_getaffinity(tid, sizeof(set), &set) == 0 && CPU_COUNT(&set) == 1 &&
	       CPU_ISSET(cpu, &set);
}

static void *t_main(void *arg)
{
	uint32_t eff, prm, inh;
	cpu_set_t set;
	int e;

	prctl(PR_SET_NAME, "creds-t");
	if (cap_set(BIT(CAP_KILL), BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE), 0) < 0 ||
	    setpriority(PRIO_PROCESS, 0, T_NICE) < 0 || prctl(PR_SET_TIMERSLACK, T_SLACK) < 0) {
		snprintf(t_result, sizeof(t_result), "setup of T failed: %s", strerror(errno));
		t_ready = -1;
		return NULL;
	}
	CPU_ZERO(&set);
	CPU_SET(t_cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		snprintf(t_result, sizeof(t_result), "affinity of T: %s", strerror(errno));
		t_ready = -1;
		return NULL;
	}
	t_tid = gettid();
	t_ready = 1;
	while (!t_check)
		scn_msleep(10);

	/* T checks itself */
	if (gettid() != t_tid)
		snprintf(t_result, sizeof(t_result), "T: gettid %d, was %d", (int)gettid(),
			 (int)t_tid);
	else if (cap_get(0, &eff, &prm, &inh) < 0 || eff != BIT(CAP_KILL) ||
		 prm != (BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE)) || inh != 0)
		snprintf(t_result, sizeof(t_result), "T: capabilities eff %#x prm %#x inh %#x", eff,
			 prm, inh);
	else if (prctl(PR_GET_TIMERSLACK) != T_SLACK)
		snprintf(t_result, sizeof(t_result), "T: timer slack %d, expected %d",
			 prctl(PR_GET_TIMERSLACK), T_SLACK);
	else if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0)
		snprintf(t_result, sizeof(t_result), "T: no_new_privs is set");
	else if ((e = swapon_errno()) != EPERM)
		snprintf(t_result, sizeof(t_result),
			 "T: swapon gives %s, expected EPERM (no filter)", strerror(e));
	else if (getpriority(PRIO_PROCESS, 0) != T_NICE)
		snprintf(t_result, sizeof(t_result), "T: nice %d, expected %d",
			 getpriority(PRIO_PROCESS, 0), T_NICE);
	else if (!only_cpu(0, t_cpu))
		snprintf(t_result, sizeof(t_result), "T: affinity is not CPU %d only", t_cpu);
	t_done = 1;
	return NULL;
}

/* The value of a "Key:\tvalue" line of /proc/self/task/TID/status. */
static const char *status_field(pid_t tid, const char *key)
{
	static char buf[8192], val[128];
	char path[64], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "(no status)";
	buf[0] = '\n'; /* so that the first line matches "\nKey:\t" too */
	n = read(fd, buf + 1, sizeof(buf) - 2);
	close(fd);
	buf[1 + (n > 0 ? n : 0)] = '\0';
	snprintf(val, sizeof(val), "\n%s:\t", key);
	p = strstr(buf, val);
	if (!p)
		return "(missing)";
	p += strlen(val);
	snprintf(val, sizeof(val), "%.*s", (int)strcspn(p, "\n"), p);
	return val;
}

static void verify(void)
{
	uid_t r, e, s;
	gid_t rg, eg, sg, groups[8];
	uint32_t eff, prm, inh;
	struct itimerval it;
	char want[32];
	int n, i;

	SCN_CHECK(getresuid(&r, &e, &s) == 0 && r == ID && e == ID && s == ID,
		  "uids %d %d %d, expected %d", (int)r, (int)e, (int)s, ID);
	SCN_CHECK(getresgid(&rg, &eg, &sg) == 0 && rg == ID && eg == ID && sg == ID,
		  "gids %d %d %d, expected %d", (int)rg, (int)eg, (int)sg, ID);
	n = getgroups(8, groups);
	SCN_CHECK(n == 2 && groups[0] == ID && groups[1] == GROUP2,
		  "%d groups (%d %d), expected %d %d", n, n > 0 ? (int)groups[0] : -1,
		  n > 1 ? (int)groups[1] : -1, ID, GROUP2);
	n = cap_get(0, &eff, &prm, &inh);
	SCN_CHECK(n == 0, "capget: %s",
		  n == -2 ? "capabilities above 31 are set" : strerror(errno));
	SCN_CHECK(eff == BIT(CAP_NET_BIND_SERVICE) && prm == eff && inh == eff,
		  "capabilities eff %#x prm %#x inh %#x, expected %#x for all", eff, prm, inh,
		  BIT(CAP_NET_BIND_SERVICE));
	SCN_CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0) == 1 &&
		      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0) == 0,
		  "ambient capabilities: NET_BIND_SERVICE %d, KILL %d, expected 1 0",
		  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0),
		  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0));
	SCN_CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_BOOT) == 0 &&
		      prctl(PR_CAPBSET_READ, CAP_NET_BIND_SERVICE) == 1,
		  "bounding set: SYS_BOOT %d, NET_BIND_SERVICE %d, expected 0 1",
		  prctl(PR_CAPBSET_READ, CAP_SYS_BOOT),
		  prctl(PR_CAPBSET_READ, CAP_NET_BIND_SERVICE));
	SCN_CHECK(prctl(PR_GET_SECUREBITS) == SECBITS, "securebits %#x, expected %#x",
		  prctl(PR_GET_SECUREBITS), SECBITS);
	SCN_CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs is %d",
		  prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	n = swapon_errno();
	SCN_CHECK(n == ENOTTY, "swapon gives '%s', expected ENOTTY from the seccomp filter",
		  strerror(n));
	SCN_CHECK(!strcmp(status_field(getpid(), "Seccomp"), "2") &&
		      !strcmp(status_field(getpid(), "Seccomp_filters"), "1"),
		  "Seccomp %s, Seccomp_filters %s, expected 2 and 1",
		  status_field(getpid(), "Seccomp"), status_field(getpid(), "Seccomp_filters"));
	errno = 0;
	n = getpriority(PRIO_PROCESS, 0);
	SCN_CHECK(n == NICE && errno == 0, "nice %d, expected %d", n, NICE);
	SCN_CHECK(sched_getscheduler(0) == SCHED_BATCH,
		  "scheduling policy %d, expected SCHED_BATCH", sched_getscheduler(0));
	SCN_CHECK(prctl(PR_GET_TIMERSLACK) == SLACK, "timer slack %d, expected %d",
		  prctl(PR_GET_TIMERSLACK), SLACK);
	n = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &n);
	SCN_CHECK(n == 1, "child subreaper %d, expected 1", n);
	SCN_CHECK(only_cpu(0, 0), "affinity is not CPU 0 only");
	SCN_CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP disable %d, expected 1",
		  prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
	SCN_CHECK(prctl(PR_GET_DUMPABLE) == dumpable_at_ready, "dumpable %d, was %d",
		  prctl(PR_GET_DUMPABLE), dumpable_at_ready);
	SCN_CHECK(getitimer(ITIMER_REAL, &it) == 0, "getitimer: %s", strerror(errno));
	SCN_CHECK(it.it_interval.tv_sec == TIMER_SEC && it.it_interval.tv_usec == 0,
		  "ITIMER_REAL interval %ld.%06ld s, expected %d s", (long)it.it_interval.tv_sec,
		  (long)it.it_interval.tv_usec, TIMER_SEC);
	SCN_CHECK(it.it_value.tv_sec >= TIMER_SEC - 10 && it.it_value.tv_sec < TIMER_SEC,
		  "ITIMER_REAL has %ld.%06ld s left, expected 90-100 s", (long)it.it_value.tv_sec,
		  (long)it.it_value.tv_usec);
	SCN_CHECK(alarms == 0, "SIGALRM fired %d times", (int)alarms);

	/* T from outside */
	SCN_CHECK(t_tid > 0 && status_field(t_tid, "Name")[0] != '(', "thread T (%d) is gone",
		  (int)t_tid);
	SCN_CHECK(!strcmp(status_field(t_tid, "Name"), "creds-t"), "T is named '%s'",
		  status_field(t_tid, "Name"));
	errno = 0;
	n = getpriority(PRIO_PROCESS, t_tid);
	SCN_CHECK(n == T_NICE && errno == 0, "T: nice %d from outside, expected %d", n, T_NICE);
	SCN_CHECK(only_cpu(t_tid, t_cpu), "T: affinity is not CPU %d only (from outside)", t_cpu);
	snprintf(want, sizeof(want), "%016x", BIT(CAP_KILL));
	SCN_CHECK(!strcmp(status_field(t_tid, "CapEff"), want), "T: CapEff %s, expected %s",
		  status_field(t_tid, "CapEff"), want);
	SCN_CHECK(!strcmp(status_field(t_tid, "NoNewPrivs"), "0") &&
		      !strcmp(status_field(t_tid, "Seccomp"), "0"),
		  "T: NoNewPrivs %s, Seccomp %s, expected 0 and 0",
		  status_field(t_tid, "NoNewPrivs"), status_field(t_tid, "Seccomp"));
	SCN_CHECK(!strcmp(status_field(t_tid, "Uid"), "1000\t1000\t1000\t1000"), "T: Uid %s",
		  status_field(t_tid, "Uid"));

	/* T checks itself */
	t_check = 1;
	for (i = 0; i < 500 && !t_done; i++)
		scn_msleep(10);
	SCN_CHECK(t_done, "thread T did not answer within 5 s");
	SCN_CHECK(!t_result[0], "%s", t_result);
}

int main(int argc, char **argv)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_swapon, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOTTY & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };
	struct sched_param sp = { 0 };
	struct itimerval it = { { TIMER_SEC, 0 }, { TIMER_SEC, 0 } };
	gid_t groups[2] = { ID, GROUP2 };
	struct sigaction sa;
	cpu_set_t set;
	pthread_t th;
	int i;

	scn_init(argc, argv, 1);
	if (geteuid() != 0)
		scn_fail("must start as root");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);

	CPU_ZERO(&set);
	t_cpu =
	    sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_ISSET(0, &set) && CPU_ISSET(1, &set)
		? 1
		: 0;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (setpriority(PRIO_PROCESS, 0, NICE) < 0 || sched_setscheduler(0, SCHED_BATCH, &sp) < 0 ||
	    prctl(PR_SET_TIMERSLACK, SLACK) < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 ||
	    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0 || setitimer(ITIMER_REAL, &it, NULL) < 0 ||
	    sched_setaffinity(0, sizeof(set), &set) < 0)
		scn_fail("setting the scheduling state failed: %s", strerror(errno));
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT) < 0 || prctl(PR_SET_SECUREBITS, SECBITS) < 0 ||
	    setgroups(2, groups) < 0 || setresgid(ID, ID, ID) < 0 || setresuid(ID, ID, ID) < 0)
		scn_fail("dropping to uid %d failed: %s", ID, strerror(errno));

	/* T: its own capabilities, nice, slack, affinity */
	if (pthread_create(&th, NULL, t_main, NULL))
		scn_fail("pthread_create failed");
	for (i = 0; i < 500 && !t_ready; i++)
		scn_msleep(10);
	if (t_ready != 1)
		scn_fail("thread T: %s", t_result[0] ? t_result : "not ready within 5 s");

	if (cap_set(BIT(CAP_NET_BIND_SERVICE), BIT(CAP_NET_BIND_SERVICE),
		    BIT(CAP_NET_BIND_SERVICE)) < 0 ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) < 0)
		scn_fail("capset failed: %s", strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		scn_fail("installing the seccomp filter failed: %s", strerror(errno));
	dumpable_at_ready = prctl(PR_GET_DUMPABLE);
	scn_log("uid %d, dumpable %d, T %d on CPU %d", (int)getuid(), dumpable_at_ready, (int)t_tid,
		t_cpu);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);
	verify();
	scn_pass();
}
