// SPDX-License-Identifier: MIT
/*
 * threads50 - 50 named threads, each with its own signal mask, blocked in
 * a different kind of call (3 of them spin):
 *
 *   cond     pthread_cond_wait until 'go'
 *   sem      sem_wait
 *   sigwait  sigwait({SIGUSR1}), SIGUSR1 blocked
 *   poll     poll(NULL, 0, 1 hour), woken by a SIGWINCH handler
 *   sleep    nanosleep(1 hour), woken by a SIGWINCH handler
 *   join     pthread_join of the 'sleep' thread created just before it
 *   mutex    pthread_mutex_lock of a mutex the main thread holds
 *   spin     counting in a loop until 'stop'
 *
 * Every worker blocks SIGUSR1, SIGUSR2 (the check goes to the main thread),
 * SIGWINCH (except poll and sleep) and SIGRTMIN + idx % 28.
 *
 * Check (main thread): /proc/self/task holds exactly the main thread and
 * the 50 TIDs the workers got from gettid() at start (as the last field of
 * NSpid: in a new PID namespace, after `stasis restore --pidns`, /proc is
 * the host's and names the threads by their host TIDs); their comm and SigBlk
 * are those of 'ready'; no blocked worker woke up early; the spinners still
 * spin.  Then it wakes everybody in a controlled way (broadcast, sem_post,
 * pthread_kill SIGUSR1 / SIGWINCH, unlock, stop) and every worker must
 * report the right return value (and, for poll and sleep, EINTR from its
 * own handler, with most of the hour left), its TID from gettid() and its
 * signal mask unchanged; all threads are joined within 5 s.
 */
#include "scenario.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>

#define NT	   50
#define NSPIN	   3
#define HOUR	   3600
#define STACK_SIZE (256 << 10)

enum kind { K_COND, K_SEM, K_SIGWAIT, K_POLL, K_SLEEP, K_JOIN, K_MUTEX, K_SPIN };
static const char *const kind_name[] = { "cond",  "sem",  "sigwait", "poll",
					 "sleep", "join", "mutex",   "spin" };

struct worker {
	int idx;
	enum kind kind;
	pthread_t th;
	int joined_by_worker; /* a 'join' worker joins this one */
	char name[16];
	pid_t tid;		    /* gettid() at start */
	pid_t proc_tid;		    /* its TID in /proc/self/task (found by map_tasks) */
	sigset_t mask;		    /* its signal mask at start */
	char sigblk[32];	    /* SigBlk of /proc/self/task/TID/status at ready */
	volatile int started, done; /* done: finished, see res */
	volatile int handled;	    /* SIGWINCH handler runs in this thread */
	volatile unsigned long spins;
	char res[200]; /* "" = fine, else what went wrong */
};

static struct worker w[NT];
static pthread_mutex_t cond_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond_cv = PTHREAD_COND_INITIALIZER;
static int go;
static sem_t sem;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop;
static __thread struct worker *self;

static void on_winch(int sig)
{
	if (self)
		self->handled++;
}

static enum kind kind_of(int i)
{
	return i < NSPIN ? K_SPIN : (enum kind)((i - NSPIN) % 7);
}

/* The signals 1..64 on which two sets differ (0 if none). */
static int mask_diff(const sigset_t *a, const sigset_t *b)
{
	int sig;

	for (sig = 1; sig < NSIG; sig++) {
		if (sig == 32 || sig == 33) /* reserved by glibc */
			continue;
		if (sigismember(a, sig) != sigismember(b, sig))
			return sig;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *me = arg;
	struct timespec ts = { HOUR, 0 }, rem = { 0, 0 };
	sigset_t set, now;
	void *ret;
	int r, sig, e;

	self = me;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN + me->idx % 28);
	if (me->kind != K_POLL && me->kind != K_SLEEP)
		sigaddset(&set, SIGWINCH);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	pthread_sigmask(SIG_BLOCK, NULL, &me->mask);
	pthread_setname_np(pthread_self(), me->name);
	me->tid = gettid();
	__atomic_store_n(&me->started, 1, __ATOMIC_SEQ_CST);

	switch (me->kind) {
	case K_COND:
		pthread_mutex_lock(&cond_mx);
		while (!go)
			pthread_cond_wait(&cond_cv, &cond_mx);
		pthread_mutex_unlock(&cond_mx);
		break;
	case K_SEM:
		if (sem_wait(&sem) < 0)
			snprintf(me->res, sizeof(me->res), "sem_wait: %s", strerror(errno));
		break;
	case K_SIGWAIT:
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sig = 0;
		r = sigwait(&set, &sig);
		if (r || sig != SIGUSR1)
			snprintf(me->res, sizeof(me->res), "sigwait returned %d, signal %d", r,
				 sig);
		break;
	case K_POLL:
		r = poll(NULL, 0, HOUR * 1000);
		e = errno;
		if (r != -1 || e != EINTR || me->handled != 1)
			snprintf(me->res, sizeof(me->res),
				 "poll returned %d (%s), handler ran %d times in this thread", r,
				 strerror(e), me->handled);
		break;
	case K_SLEEP:
		r = nanosleep(&ts, &rem);
		e = errno;
		if (r != -1 || e != EINTR || me->handled != 1 || rem.tv_sec < HOUR - 600)
			snprintf(me->res, sizeof(me->res),
				 "nanosleep returned %d (%s), handler ran %d times, %lds left", r,
				 strerror(e), me->handled, (long)rem.tv_sec);
		break;
	case K_JOIN:
		ret = NULL;
		r = pthread_join(w[me->idx - 1].th, &ret);
		if (r || ret != &w[me->idx - 1])
			snprintf(me->res, sizeof(me->res), "pthread_join(%s): %s, value %p",
				 w[me->idx - 1].name, strerror(r), ret);
		break;
	case K_MUTEX:
		r = pthread_mutex_lock(&held);
		if (r)
			snprintf(me->res, sizeof(me->res), "pthread_mutex_lock: %s", strerror(r));
		else
			pthread_mutex_unlock(&held);
		break;
	case K_SPIN:
		while (!stop)
			me->spins++;
		break;
	}

	if (!me->res[0] && gettid() != me->tid)
		snprintf(me->res, sizeof(me->res), "gettid() is %d, was %d", (int)gettid(),
			 (int)me->tid);
	pthread_sigmask(SIG_BLOCK, NULL, &now);
	if (!me->res[0] && (sig = mask_diff(&now, &me->mask)))
		snprintf(me->res, sizeof(me->res), "signal mask changed (signal %d)", sig);
	__atomic_store_n(&me->done, 1, __ATOMIC_SEQ_CST);
	return me;
}

/* Read a small /proc file into buf (without the trailing newline). */
/* SigBlk of a thread, from /proc/self/task/TID/status (TID as /proc names it). */
static int read_sigblk(pid_t tid, char *out, size_t size)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	if (scn_read_small(path, buf, sizeof(buf)) < 0 || !(p = strstr(buf, "\nSigBlk:\t")))
		return -1;
	p += strlen("\nSigBlk:\t");
	snprintf(out, size, "%.16s", p);
	return 0;
}

/* The TID of /proc/self/task/TID as we see it: the last field of NSpid. */
static pid_t our_tid(pid_t proc_tid)
{
	char path[64], buf[4096], *p, *e;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)proc_tid);
	if (scn_read_small(path, buf, sizeof(buf)) < 0 || !(p = strstr(buf, "\nNSpid:")))
		return -1;
	p += strlen("\nNSpid:");
	e = strchr(p, '\n');
	if (!e)
		e = p + strlen(p);
	while (e > p && (e[-1] < '0' || e[-1] > '9'))
		e--;
	while (e > p && e[-1] >= '0' && e[-1] <= '9')
		e--;
	return e > p ? atoi(e) : -1;
}

/*
 * List /proc/self/task: set proc_tid of every worker found there (0 if
 * not), return the number of threads, or -1 with *unknown set to a thread
 * that is neither the main thread nor a worker.
 */
static int map_tasks(pid_t *unknown)
{
	struct dirent *de;
	DIR *d;
	pid_t tid, proc_tid;
	int i, tasks = 0;

	for (i = 0; i < NT; i++)
		w[i].proc_tid = 0;
	d = opendir("/proc/self/task");
	if (!d) {
		*unknown = -1;
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		proc_tid = atoi(de->d_name);
		tid = our_tid(proc_tid);
		tasks++;
		if (tid == getpid())
			continue;
		for (i = 0; i < NT && w[i].tid != tid; i++)
			;
		if (i == NT) {
			closedir(d);
			*unknown = tid;
			return -1;
		}
		w[i].proc_tid = proc_tid;
	}
	closedir(d);
	return tasks;
}

static void verify(void)
{
	char path[64], buf[64];
	unsigned long spins[NSPIN];
	int i, n, tasks, t;
	pid_t tid;

	/* the thread set, names and masks are those of 'ready' */
	tasks = map_tasks(&tid);
	SCN_CHECK(tasks >= 0, "unknown thread %d in /proc/self/task", (int)tid);
	SCN_CHECK(tasks == NT + 1, "%d threads in /proc/self/task, expected %d", tasks, NT + 1);
	SCN_CHECK(gettid() == getpid(), "main thread has TID %d, PID %d", (int)gettid(),
		  (int)getpid());
	SCN_CHECK(scn_read_small("/proc/self/comm", buf, sizeof(buf)) == 0 &&
		      !strcmp(buf, "threads50"),
		  "main thread name '%s', expected 'threads50'", buf);
	for (i = 0; i < NT; i++) {
		SCN_CHECK(w[i].proc_tid > 0, "thread %s (TID %d) is gone", w[i].name,
			  (int)w[i].tid);
		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)w[i].proc_tid);
		SCN_CHECK(scn_read_small(path, buf, sizeof(buf)) == 0, "thread %s (TID %d) is gone",
			  w[i].name, (int)w[i].tid);
		SCN_CHECK(!strcmp(buf, w[i].name), "thread %d is named '%s', expected '%s'",
			  (int)w[i].tid, buf, w[i].name);
		SCN_CHECK(read_sigblk(w[i].proc_tid, buf, sizeof(buf)) == 0 &&
			      !strcmp(buf, w[i].sigblk),
			  "thread %s: SigBlk %s, was %s at ready", w[i].name, buf, w[i].sigblk);
		if (w[i].kind != K_SPIN)
			SCN_CHECK(!w[i].done, "thread %s woke up before it was told (%s)",
				  w[i].name, w[i].res[0] ? w[i].res : "no error");
	}
	for (i = 0; i < NSPIN; i++)
		spins[i] = w[i].spins;
	scn_msleep(50);
	for (i = 0; i < NSPIN; i++)
		SCN_CHECK(w[i].spins > spins[i], "spinner %s stuck at %lu", w[i].name, spins[i]);

	/* wake everybody up */
	pthread_mutex_lock(&cond_mx);
	go = 1;
	pthread_cond_broadcast(&cond_cv);
	pthread_mutex_unlock(&cond_mx);
	for (i = 0; i < NT; i++) {
		switch (w[i].kind) {
		case K_SEM:
			sem_post(&sem);
			break;
		case K_SIGWAIT:
			pthread_kill(w[i].th, SIGUSR1);
			break;
		case K_POLL:
		case K_SLEEP:
			pthread_kill(w[i].th, SIGWINCH);
			break;
		default:
			break;
		}
	}
	pthread_mutex_unlock(&held);
	stop = 1;

	for (t = 0; t < 500; t++) {
		for (i = n = 0; i < NT; i++)
			n += w[i].done;
		if (n == NT)
			break;
		scn_msleep(10);
	}
	for (i = 0; i < NT; i++)
		SCN_CHECK(w[i].done, "thread %s (%s, TID %d) did not wake up within 5 s", w[i].name,
			  kind_name[w[i].kind], (int)w[i].tid);
	for (i = 0; i < NT; i++)
		SCN_CHECK(!w[i].res[0], "thread %s (%s): %s", w[i].name, kind_name[w[i].kind],
			  w[i].res);
	for (i = 0; i < NT; i++) {
		void *ret = NULL;

		if (w[i].joined_by_worker)
			continue;
		n = pthread_join(w[i].th, &ret);
		SCN_CHECK(n == 0 && ret == &w[i], "pthread_join(%s): %s", w[i].name, strerror(n));
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	pthread_attr_t attr;
	sigset_t set;
	pid_t tid;
	int i, n, tries;

	scn_init(argc, argv, 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_winch; /* no SA_RESTART: poll and nanosleep see EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, NULL);
	/* only the workers get SIGUSR1 and SIGWINCH (thread-directed) */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sem_init(&sem, 0, 0);
	pthread_mutex_lock(&held);

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, STACK_SIZE);
	for (i = 0; i < NT; i++) {
		w[i].idx = i;
		w[i].kind = kind_of(i);
		snprintf(w[i].name, sizeof(w[i].name), "w%02d-%s", i, kind_name[w[i].kind]);
		if (w[i].kind == K_JOIN)
			w[i - 1].joined_by_worker = 1;
		n = pthread_create(&w[i].th, &attr, worker_main, &w[i]);
		if (n)
			scn_fail("pthread_create %d: %s", i, strerror(n));
	}
	for (tries = 0; tries < 500; tries++) {
		for (i = n = 0; i < NT; i++)
			n += __atomic_load_n(&w[i].started, __ATOMIC_SEQ_CST);
		if (n == NT)
			break;
		scn_msleep(10);
	}
	if (n != NT)
		scn_fail("only %d of %d threads started within 5 s", n, NT);
	scn_msleep(100); /* let them reach their blocking calls */
	if (map_tasks(&tid) != NT + 1)
		scn_fail("/proc/self/task does not list the %d threads", NT + 1);
	for (i = 0; i < NT; i++)
		if (read_sigblk(w[i].proc_tid, w[i].sigblk, sizeof(w[i].sigblk)) < 0)
			scn_fail("cannot read SigBlk of thread %d", (int)w[i].tid);
	scn_ready();

	while (!scn_check)
		scn_msleep(10);
	verify();
	scn_pass();
}
