// SPDX-License-Identifier: MIT
/*
 * signals - signal state that must survive checkpoint/restore:
 *
 *   - SIGUSR1: counting handler, SA_RESTART | SA_ONSTACK, SIGWINCH in its mask;
 *     raised once before 'ready' (count 1)
 *   - SIGHUP ignored
 *   - SIGINT and SIGRTMIN+2 blocked; SIGINT pending for the thread (raise),
 *     SIGRTMIN+2 queued twice for the process with values 1111 and 2222
 *   - an alternate signal stack in .bss
 *
 * Check: the dispositions, blocked mask, pending set and sigaltstack are
 * unchanged; SIGUSR1 still runs the handler on the alternate stack; the
 * queued signals come out with their values, in order, and SIGINT is there.
 */
#include "scenario.h"

#define ALTSTACK_SIZE (64 << 10)

static char altstack[ALTSTACK_SIZE] __attribute__((aligned(64)));
static volatile sig_atomic_t usr1_count;
static volatile sig_atomic_t usr1_on_altstack;

static void on_usr1(int sig)
{
	char here;

	usr1_count++;
	usr1_on_altstack = &here >= altstack && &here < altstack + ALTSTACK_SIZE;
}

/* The signals that must be blocked (and pending) at check time. */
static void expected_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGRTMIN + 2);
}

static void check_set(const sigset_t *got, const sigset_t *want, const char *what)
{
	int sig;

	for (sig = 1; sig < NSIG; sig++) {
		if (sig == 32 || sig == 33) /* reserved by glibc */
			continue;
		SCN_CHECK(sigismember(got, sig) == sigismember(want, sig), "%s: signal %d is %s",
			  what, sig, sigismember(got, sig) ? "set" : "not set");
	}
}

static void take_queued(int value)
{
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 2);
	sig = sigtimedwait(&set, &si, &zero);
	SCN_CHECK(sig == SIGRTMIN + 2, "SIGRTMIN+2 (value %d) not pending: %s", value,
		  strerror(errno));
	SCN_CHECK(si.si_code == SI_QUEUE && si.si_value.sival_int == value && si.si_pid == getpid(),
		  "SIGRTMIN+2: code %d value %d pid %d, expected SI_QUEUE value %d pid %d",
		  si.si_code, si.si_value.sival_int, (int)si.si_pid, value, (int)getpid());
}

static void verify(void)
{
	struct timespec zero = { 0, 0 };
	struct sigaction sa;
	sigset_t set, want;
	stack_t ss;

	/* dispositions */
	SCN_CHECK(sigaction(SIGUSR1, NULL, &sa) == 0, "sigaction query failed");
	SCN_CHECK(sa.sa_handler == on_usr1, "SIGUSR1 handler is %p, expected %p",
		  (void *)sa.sa_handler, (void *)on_usr1);
	SCN_CHECK((sa.sa_flags & (SA_RESTART | SA_ONSTACK | SA_SIGINFO)) ==
		      (SA_RESTART | SA_ONSTACK),
		  "SIGUSR1 flags are %#x", sa.sa_flags);
	SCN_CHECK(sigismember(&sa.sa_mask, SIGWINCH) && !sigismember(&sa.sa_mask, SIGQUIT),
		  "SIGUSR1 handler mask changed");
	SCN_CHECK(sigaction(SIGHUP, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN,
		  "SIGHUP is no longer ignored");
	SCN_CHECK(sigaction(SIGTERM, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL,
		  "SIGTERM is no longer SIG_DFL");

	/* blocked and pending sets */
	expected_set(&want);
	SCN_CHECK(sigprocmask(SIG_BLOCK, NULL, &set) == 0, "sigprocmask query failed");
	check_set(&set, &want, "blocked mask");
	SCN_CHECK(sigpending(&set) == 0, "sigpending failed");
	check_set(&set, &want, "pending set");

	/* alternate stack */
	SCN_CHECK(sigaltstack(NULL, &ss) == 0, "sigaltstack query failed");
	SCN_CHECK(ss.ss_sp == altstack && ss.ss_size == ALTSTACK_SIZE && ss.ss_flags == 0,
		  "sigaltstack is sp %p size %zu flags %#x, expected %p %d 0", ss.ss_sp, ss.ss_size,
		  ss.ss_flags, (void *)altstack, ALTSTACK_SIZE);

	/* the handler still runs, on the alternate stack */
	SCN_CHECK(usr1_count == 1, "SIGUSR1 count is %d before raise, expected 1", (int)usr1_count);
	usr1_on_altstack = 0;
	raise(SIGUSR1);
	SCN_CHECK(usr1_count == 2, "SIGUSR1 handler did not run (count %d)", (int)usr1_count);
	SCN_CHECK(usr1_on_altstack, "SIGUSR1 handler did not run on the alternate stack");

	/* the queued signals, with their values, in order; then SIGINT */
	take_queued(1111);
	take_queued(2222);
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 2);
	SCN_CHECK(sigtimedwait(&set, NULL, &zero) < 0 && errno == EAGAIN,
		  "a third SIGRTMIN+2 was pending");
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	SCN_CHECK(sigtimedwait(&set, NULL, &zero) == SIGINT, "SIGINT was not pending");
	SCN_CHECK(sigpending(&set) == 0, "sigpending failed");
	sigemptyset(&want);
	check_set(&set, &want, "pending set after draining");
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	union sigval val;
	sigset_t set;
	stack_t ss;

	scn_init(argc, argv, 1);

	ss.ss_sp = altstack;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) < 0)
		scn_fail("sigaltstack: %s", strerror(errno));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGWINCH);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		scn_fail("sigaction SIGUSR1: %s", strerror(errno));
	signal(SIGHUP, SIG_IGN);

	expected_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	raise(SIGINT); /* thread-directed: SigPnd */
	val.sival_int = 1111;
	sigqueue(getpid(), SIGRTMIN + 2, val); /* process-directed: ShdPnd */
	val.sival_int = 2222;
	sigqueue(getpid(), SIGRTMIN + 2, val);
	raise(SIGUSR1);
	if (usr1_count != 1 || !usr1_on_altstack)
		scn_fail("SIGUSR1 setup failed");
	scn_ready();

	while (!scn_check)
		scn_msleep(5);
	verify();
	scn_pass();
}
