/*
 * The dump driver: find the tree, freeze it, write one image, and then
 * either kill the tree (the default) or let it run on (-R).  Whatever
 * fails after the freeze, every task is put back exactly as it was and
 * the partial image is removed.
 *
 * Freezing: every thread of every process under the root is seized and
 * interrupted; thread lists are read again until a pass finds nothing
 * new, so tasks that fork or clone during the freeze are caught and the
 * dump is of one instant of the whole tree.  A pass interrupts every new
 * thread before it waits for the first stop, and reads a thread's
 * children once, after its stop (a stopped thread forks no more).
 *
 * Dumping runs in two stages on two threads.  The main thread, the ptrace
 * tracer, does what needs remote syscalls (task, signal, thread state), one
 * task after the other, pinned to the task's CPU.  A second thread takes
 * each task once the main thread is done with it and does what only needs
 * /proc and the task frozen (memory layout, records, fds, pages), so the
 * two halves of consecutive tasks overlap.  Only the second thread writes
 * the image while both run.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

static struct dump_task *find_task(struct dump_ctx *ctx, pid_t pid)
{
	size_t i;

	for (i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].pid == pid)
			return &ctx->tasks[i];
	return NULL;
}

bool dump_tree_has(const struct dump_ctx *ctx, pid_t pid)
{
	size_t i;

	for (i = 0; pid > 0 && i < ctx->ntasks; i++)
		if (ctx->tasks[i].pid == pid)
			return true;
	return false;
}

static bool dt_has_tid(struct dump_task *dt, pid_t tid)
{
	size_t i;

	for (i = 0; i < dt->nth; i++)
		if (dt->th[i].tid == tid)
			return true;
	return false;
}

static struct dump_task *add_task(struct dump_ctx *ctx, pid_t pid)
{
	struct dump_task *dt;

	ctx->tasks = xrealloc(ctx->tasks, (ctx->ntasks + 1) * sizeof(*ctx->tasks));
	dt = &ctx->tasks[ctx->ntasks++];
	memset(dt, 0, sizeof(*dt));
	dt->pid = pid;
	res_dump_task_states_init(dt);
	return dt;
}

/*
 * Wait for the stops of the threads interrupted and not waited for yet,
 * in every process; keep only the threads now frozen (one that exited
 * meanwhile is dropped), the leader first.
 */
static int freeze_drain(void *arg)
{
	struct dump_ctx *ctx = arg;
	size_t t, i;
	int ret = 0;

	for (t = 0; t < ctx->ntasks; t++) {
		struct dump_task *dt = &ctx->tasks[t];

		for (i = 0; i < dt->nth; i++) {
			struct dump_thread *th = &dt->th[i];
			int r;

			if (!th->waiting)
				continue;
			th->waiting = false;
			r = rtask_freeze_wait(&th->rt);
			if (!r)
				th->frozen = true;
			else if (r != -ESRCH) /* -ESRCH: exited meanwhile */
				ret = -1;
		}
	}
	return ret;
}

/* After a drain: only the frozen threads stay, the leader first. */
static void freeze_keep(struct dump_task *dt)
{
	size_t i, j;

	for (i = j = 0; i < dt->nth; i++)
		if (dt->th[i].frozen || dt->th[i].waiting)
			dt->th[j++] = dt->th[i];
	dt->nth = j;
	/* thread-group-wide remote calls run in the leader */
	for (i = 1; i < dt->nth; i++)
		if (dt->th[i].tid == dt->pid) {
			struct dump_thread tmp = dt->th[0];

			dt->th[0] = dt->th[i];
			dt->th[i] = tmp;
		}
}

/*
 * Seize and interrupt the threads of one process that are not yet: their
 * stops are waited for by freeze_drain, once every process of the pass
 * had its interrupts, so they come in parallel (rtask_freeze_begin).
 */
static int freeze_threads(struct dump_ctx *ctx, struct dump_task *dt, bool *changed)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", dt->pid);
	d = opendir(path);
	if (!d) {
		if (dt->nth)
			return 0; /* it died under us; reported when used */
		pr_err("no process with pid %d\n", dt->pid);
		return -1;
	}
	while ((de = readdir(d)) && !ret) {
		pid_t tid = atoi(de->d_name);
		struct dump_thread *th;
		bool waiting = false;
		int r;

		if (tid <= 0 || dt_has_tid(dt, tid))
			continue;
		dt->th = xrealloc(dt->th, (dt->nth + 1) * sizeof(*dt->th));
		th = &dt->th[dt->nth];
		memset(th, 0, sizeof(*th));
		th->tid = tid;
		r = fault_at(FAULT_DUMP_SEIZE)
			? -errno
			: rtask_freeze_begin(&th->rt, tid, &waiting, freeze_drain, ctx);
		if (r == -ESRCH)
			continue; /* exited meanwhile */
		if (r) {
			ret = -1;
			break;
		}
		th->frozen = !waiting;
		th->waiting = waiting;
		dt->nth++;
		*changed = true;
	}
	closedir(d);
	return ret;
}

static int add_children(struct dump_ctx *ctx, size_t idx, bool *changed)
{
	struct dump_task *dt = &ctx->tasks[idx];
	size_t i;

	for (i = 0; i < dt->nth; i++) {
		char name[64], *list, *p, *end;

		/* read once it is stopped, a thread's children are final */
		if (!dt->th[i].frozen || dt->th[i].kids_read)
			continue;
		dt->th[i].kids_read = true;
		snprintf(name, sizeof(name), "task/%d/children", dt->th[i].tid);
		list = read_proc(dt->pid, name, NULL);
		for (p = list; p && *p; p = end) {
			pid_t child = strtol(p, &end, 10);

			if (end == p)
				break;
			if (child > 0 && !find_task(ctx, child)) {
				struct proc_stat st;

				add_task(ctx, child)->zombie =
				    !proc_parse_stat(child, &st) && st.state == 'Z';
				dt = &ctx->tasks[idx]; /* the array may have moved */
				*changed = true;
			}
		}
		free(list);
	}
	return 0;
}

static int freeze_tree(struct dump_ctx *ctx, pid_t root)
{
	bool changed = true;
	size_t i;

	add_task(ctx, root);
	while (changed) {
		int ret = 0;

		changed = false;
		for (i = 0; i < ctx->ntasks && !ret; i++)
			if (!ctx->tasks[i].zombie)
				ret = freeze_threads(ctx, &ctx->tasks[i], &changed);
		/* also after a failure: every thread seized is frozen, to be let go */
		if (freeze_drain(ctx))
			ret = -1;
		for (i = 0; i < ctx->ntasks; i++)
			freeze_keep(&ctx->tasks[i]);
		for (i = 0; i < ctx->ntasks && !ret; i++)
			if (!ctx->tasks[i].zombie)
				ret = add_children(ctx, i, &changed);
		if (ret)
			return -1;
	}
	for (i = 0; i < ctx->ntasks; i++)
		if (!ctx->tasks[i].nth && !ctx->tasks[i].zombie) {
			/* exited between the scan and the seize: look again */
			struct proc_stat st;

			if (!proc_parse_stat(ctx->tasks[i].pid, &st) && st.state == 'Z') {
				ctx->tasks[i].zombie = true;
				continue;
			}
			pr_err("pid %d vanished during the freeze\n", ctx->tasks[i].pid);
			return -1;
		}
	if (ctx->tasks[0].zombie) {
		pr_err("pid %d is a zombie; nothing to dump\n", root);
		return -1;
	}
	return 0;
}

static int check_tree_supported(struct dump_ctx *ctx)
{
	TaskEntry **tes = xzalloc(ctx->ntasks * sizeof(*tes));
	size_t i;
	int ret;

	for (i = 0; i < ctx->ntasks; i++)
		tes[i] = ctx->tasks[i].te;
	ret = tree_check_sessions(tes, ctx->ntasks, ctx->tasks[0].pid);
	free(tes);
	return ret;
}

static int write_header(struct dump_ctx *ctx)
{
	ImageHeader h = IMAGE_HEADER__INIT;
	struct utsname u;
	char host[256] = "";

	uname(&u);
	gethostname(host, sizeof(host) - 1);
	h.arch = u.machine;
	h.page_size = PAGE_SIZE;
	h.kernel_release = u.release;
	h.tool_version = STASIS_VERSION;
	h.created_sec = time(NULL);
	h.root_pid = ctx->opts->pid;
	h.hostname = host;
	return img_write_msg(&ctx->w, IMG_HEADER, &h.base);
}

const char *dump_thread_status(struct dump_task *dt, struct dump_thread *th)
{
	char name[64];

	if (!th->status) {
		snprintf(name, sizeof(name), "task/%d/status", th->tid);
		th->status = read_proc(dt->pid, name, NULL);
		if (!th->status)
			pr_perror("cannot read the status of tid %d", th->tid);
	}
	return th->status;
}

static void dump_task_free(struct dump_task *dt)
{
	size_t i;

	for (i = 0; i < dt->nth; i++)
		free(dt->th[i].status);
	res_dump_task_states_fini(dt);
	if (dt->te)
		protobuf_c_message_free_unpacked(&dt->te->base, NULL);
	for (i = 0; i < dt->nth; i++)
		if (dt->th[i].core)
			protobuf_c_message_free_unpacked(&dt->th[i].core->base, NULL);
	free(dt->th);
	dt->te = NULL;
	dt->th = NULL;
}

/*
 * STASIS_TEST_CRASH=STAGE: crash on purpose there (see rescue_arm);
 * STAGE-kill: die of SIGKILL there, which no handler sees (the kernel
 * alone lets the tree go, see src/ptrace/inject.c); STAGE-stop: stop
 * there (SIGSTOP) until the test, having looked around, sends SIGCONT.
 */
static void test_crash(const char *stage)
{
	const char *want = getenv("STASIS_TEST_CRASH");
	size_t n = strlen(stage);

	if (!want || strncmp(want, stage, n))
		return;
	if (!want[n])
		raise(SIGSEGV);
	if (!strcmp(want + n, "-kill"))
		raise(SIGKILL);
	if (!strcmp(want + n, "-stop"))
		raise(SIGSTOP);
}

/*
 * Stage 1, main thread, scratch mapping in place: what needs remote
 * syscalls.  Every thread gets its resume stub first (see src/ptrace/inject.c),
 * and rests in it from one remote call to the next until it is put back.
 */
static int dump_remote_state(struct dump_ctx *ctx, struct dump_task *dt)
{
	size_t i;

	for (i = 1; i < dt->nth; i++)
		if (rtask_adopt(&dt->th[i].rt, dt_rt(dt), i))
			return -1;
	if (rtask_seal(dt_rt(dt)))
		return -1;
	for (i = 0; i < dt->nth; i++)
		rtask_rest_in_stub(&dt->th[i].rt);
	if (res_stage(dump_remote, ctx, dt))
		return -1;
	for (i = 0; i < dt->nth; i++) {
		dt->th[i].core = xmalloc(sizeof(*dt->th[i].core));
		*dt->th[i].core = (ThreadCore)THREAD_CORE__INIT;
	}
	if (res_stage(dump_threads, ctx, dt))
		return -1;
	for (i = 0; i < dt->nth; i++) {
		struct dump_thread *th = &dt->th[i];

		if (i == dt->nth / 2)
			test_crash("threads"); /* some threads done, some not yet */
		if (res_stage(dump_thread, ctx, dt, th))
			return -1;
	}
	return 0;
}

/* An argument of dump_threads_call for the thread whose slot is at. */
static unsigned long thread_arg(unsigned long a, unsigned long at)
{
	return a >= THREAD_SCRATCH ? at + (a - THREAD_SCRATCH) : a;
}

int dump_threads_call(struct dump_task *dt, long nr, const unsigned long a[3], long *rets,
		      thread_slot *slots)
{
	const struct rtask *lead = dt_rt(dt);
	size_t per = lead->scratch_len / THREAD_SCRATCH_SLOT, i, k, from;
	struct rtask **ts = xmalloc(dt->nth * sizeof(*ts));
	unsigned long(*args)[6] = xmalloc(dt->nth * sizeof(*args));
	int ret = 0;

	/* the threads share the leader's area: a slot each, as many at once as fit */
	for (from = 0; from < dt->nth && !ret; from += per) {
		size_t n = min(per, dt->nth - from);

		for (i = 0; i < n; i++) {
			struct rtask *t = &dt->th[from + i].rt;

			ts[i] = t;
			for (k = 0; k < 6; k++)
				args[i][k] =
				    k < 3
					? thread_arg(a[k], lead->scratch + i * THREAD_SCRATCH_SLOT)
					: 0;
		}
		ret = remote_syscall_each(ts, n, nr, (const unsigned long(*)[6])args, rets + from);
		/* the slots lie one after the other: one read for all */
		if (!ret && slots)
			ret = remote_read(dt->pid, lead->scratch, slots + from, n * sizeof(*slots));
	}
	free(args);
	free(ts);
	return ret;
}

/* Every thread gets its registers and mask back, the leader last (it removes the area). */
static int dump_task_putback(struct dump_task *dt)
{
	int ret = 0;
	size_t i;

	for (i = 1; i < dt->nth; i++)
		if (rtask_putback(&dt->th[i].rt))
			ret = -1;
	return rtask_uninject(dt_rt(dt)) ? -1 : ret;
}

static int dump_task_remote(struct dump_ctx *ctx, struct dump_task *dt)
{
	int ret;

	if (dt->zombie)
		return 0;
	pin_to_cpu(last_cpu_of(dt->pid));
	if (fault_at(FAULT_DUMP_INJECT) || rtask_inject(dt_rt(dt), dt->nth))
		return -1;
	test_crash("remote");
	ret = dump_remote_state(ctx, dt);
	if (dump_task_putback(dt))
		ret = -1;
	unpin();
	return ret;
}

/* Stage 2, second thread: layout, records, fds and pages of a frozen task. */
static int dump_task_local(struct dump_ctx *ctx, struct dump_task *dt)
{
	size_t i;

	if (dt->zombie)
		/* a zombie is its identity and exit status: only its task record */
		return res_stage(dump_zombie, ctx, dt) ||
			       img_write_msg(&ctx->w, IMG_TASK, &dt->te->base)
			   ? -1
			   : 0;
	test_crash("local");
	if (res_stage(dump_local, ctx, dt))
		return -1;
	if (img_write_msg(&ctx->w, IMG_TASK, &dt->te->base))
		return -1;
	for (i = 0; i < dt->nth; i++)
		if (img_write_msg(&ctx->w, IMG_THREAD_CORE, &dt->th[i].core->base))
			return -1;
	if (res_stage(dump_write, ctx, dt))
		return -1;
	test_crash("records"); /* the task's records written, its pages not */
	return res_stage(dump_data, ctx, dt);
}

struct dump_stages {
	struct dump_ctx *ctx;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t handed; /* tasks stage 1 is done with */
	bool stop;     /* stage 1 failed: stop at once */
	int err;       /* stage 2 failed */
};

static void *stage2_main(void *arg)
{
	struct dump_stages *s = arg;
	size_t i;

	for (i = 0; i < s->ctx->ntasks; i++) {
		pthread_mutex_lock(&s->lock);
		while (s->handed <= i && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		pthread_mutex_unlock(&s->lock);
		if (s->stop)
			break;
		if (dump_task_local(s->ctx, &s->ctx->tasks[i])) {
			pthread_mutex_lock(&s->lock);
			s->err = -1;
			pthread_mutex_unlock(&s->lock);
			break;
		}
	}
	return NULL;
}

static void stages_hand(struct dump_stages *s, size_t handed, bool stop)
{
	pthread_mutex_lock(&s->lock);
	s->handed = handed;
	s->stop = stop;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static bool stages_failed(struct dump_stages *s)
{
	bool failed;

	pthread_mutex_lock(&s->lock);
	failed = s->err;
	pthread_mutex_unlock(&s->lock);
	return failed;
}

/* Dump every task of the frozen tree through both stages. */
static int dump_tasks(struct dump_ctx *ctx)
{
	struct dump_stages s = { .ctx = ctx };
	pthread_t thr;
	size_t i;
	int ret = 0;

	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	if (pthread_create(&thr, NULL, stage2_main, &s)) {
		pr_err("cannot start the dump thread\n");
		return -1;
	}
	for (i = 0; i < ctx->ntasks && !ret; i++) {
		ctx->tasks[i].te = xmalloc(sizeof(*ctx->tasks[i].te));
		*ctx->tasks[i].te = (TaskEntry)TASK_ENTRY__INIT;
		if (dump_task_remote(ctx, &ctx->tasks[i]) || stages_failed(&s))
			ret = -1;
		else
			stages_hand(&s, i + 1, false);
		__atomic_store_n(&ctx->remote_done, ret ? SIZE_MAX : i + 1, __ATOMIC_RELEASE);
	}
	if (ret)
		stages_hand(&s, s.handed, true);
	pthread_join(thr, NULL);
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.cond);
	return ret || s.err ? -1 : 0;
}

/*
 * Threads re-issued into a socket call first (pass 0): the socket's
 * timeout is shortened for their call's start, which nothing else of the
 * tree must see (deadline.c's sock_release); then every other.
 */
static bool release_first(const struct rtask *t)
{
	return t->reissue && sock_call(t->pid, &t->regs, NULL);
}

static void release_all(struct dump_ctx *ctx)
{
	size_t i, j;
	int pass;

	for (i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].nth)
			rtask_uninject(dt_rt(&ctx->tasks[i]));
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < ctx->ntasks; i++) {
			struct dump_task *dt = &ctx->tasks[i];

			for (j = 0; j < dt->nth; j++)
				if (dt->th[j].frozen && release_first(&dt->th[j].rt) == !pass) {
					rtask_release(&dt->th[j].rt);
					dt->th[j].frozen = false;
				}
		}
}

/* The dump is over, the tree still frozen: every kind's dump_end. */
static void dump_end(struct dump_ctx *ctx, bool kill)
{
	const struct res_ops *ops;
	size_t i;

	for_each_res(i, ops) if (ops->dump_end) ops->dump_end(ctx, kill);
}

static void kill_all(struct dump_ctx *ctx)
{
	size_t i, j;

	for (i = 0; i < ctx->ntasks; i++)
		if (!ctx->tasks[i].zombie)
			kill(ctx->tasks[i].pid, SIGKILL);
	/* detaching lets the kill proceed; the parents reap them */
	for (i = 0; i < ctx->ntasks; i++)
		for (j = 0; j < ctx->tasks[i].nth; j++)
			if (ctx->tasks[i].th[j].frozen) {
				ptrace(PTRACE_DETACH, ctx->tasks[i].th[j].tid, 0, 0);
				ctx->tasks[i].th[j].frozen = false;
			}
}

/*
 * stasis itself dying must not take the tree with it: a crash in any of
 * our threads, or SIGINT/SIGTERM/SIGHUP, ends up in the tracer thread,
 * which puts every task back as it was found (registers, signal mask,
 * borrowed code bytes; a scratch mapping may be left behind) and detaches
 * before we die of the original signal.  Best effort by nature: the heap
 * may be what crashed.  STASIS_TEST_CRASH=remote|local|records makes the
 * dump crash on purpose in its remote or local stage (records: after a
 * task's records, before its pages), for the tests.
 */
static struct dump_ctx *rescue_ctx;
static pid_t rescue_tid;
static volatile sig_atomic_t rescue_sig;
static const int rescue_sigs[] = { SIGSEGV, SIGBUS,  SIGILL, SIGFPE, SIGABRT,
				   SIGINT,  SIGTERM, SIGHUP, SIGUSR2 };

static void rescue_and_die(int sig)
{
	static const char msg[] = "stasis: dump interrupted; putting the tree back as it was\n";

	ssize_t n = write(2, msg, sizeof(msg) - 1);

	(void)n; /* nowhere else to say it */
	if (rescue_ctx) {
		const struct res_ops *ops;
		size_t i;

		for_each_res(i, ops) if (ops->dump_rescue) ops->dump_rescue(rescue_ctx);
		release_all(rescue_ctx);
	}
	signal(sig, SIG_DFL);
	raise(sig);
	_exit(128 + sig);
}

static void on_fatal(int sig)
{
	if (sig == SIGUSR2) /* sent by another thread of ours */
		rescue_and_die(rescue_sig ? rescue_sig : SIGSEGV);
	if (syscall(SYS_gettid) != rescue_tid) {
		rescue_sig = sig;
		syscall(SYS_tgkill, getpid(), rescue_tid, SIGUSR2);
		for (;;)
			pause();
	}
	rescue_and_die(sig);
}

static void rescue_arm(struct dump_ctx *ctx)
{
	struct sigaction sa = { .sa_handler = on_fatal };
	size_t i;

	rescue_ctx = ctx;
	rescue_tid = syscall(SYS_gettid);
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(rescue_sigs); i++)
		sigaddset(&sa.sa_mask, rescue_sigs[i]);
	for (i = 0; i < ARRAY_SIZE(rescue_sigs); i++)
		sigaction(rescue_sigs[i], &sa, NULL);
}

static void rescue_disarm(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rescue_sigs); i++)
		signal(rescue_sigs[i], SIG_DFL);
	rescue_ctx = NULL;
}

int cmd_dump(const struct dump_opts *o)
{
	struct dump_ctx ctx = { .opts = o };
	uint64_t t0 = now_ns();
	bool wrapped;
	size_t i;
	int ret = -1;

	if (o->pid <= 0 || !pid_exists(o->pid)) {
		pr_err("no process with pid %d\n", o->pid);
		return -1;
	}
	if (o->pid == getpid()) {
		pr_err("stasis cannot dump itself\n");
		return -1;
	}
	ret = dump_wrapped(o, &wrapped);
	if (wrapped)
		return ret;
	ret = -1;
	res_dump_states_init(&ctx);
	rescue_arm(&ctx);
	if (res_stage(dump_hold, &ctx) || freeze_tree(&ctx, o->pid) || fault_at(FAULT_DUMP_FREEZE))
		goto out_release;
	test_crash("frozen"); /* every task seized, a cgroup freezer still holding them */
	if (res_stage(dump_unhold, &ctx) || res_stage(dump_check, &ctx))
		goto out_release;
	pr_info("froze %zu process(es) in %.2f ms\n", ctx.ntasks, (now_ns() - t0) / 1e6);
	if (img_writer_open(&ctx.w, o->dir))
		goto out_release;
	if (write_header(&ctx))
		goto out_abort;
	if (dump_tasks(&ctx))
		goto out_abort;
	if (check_tree_supported(&ctx) || fault_at(FAULT_DUMP_TREE))
		goto out_abort;
	if (img_writer_commit(&ctx.w))
		goto out_release;
	/* dump/wrapped.c: the kill below may take us with the copy's namespace */
	if (dump_commit_fd >= 0 && write(dump_commit_fd, "C", 1) != 1)
		pr_perror("cannot say the image is committed");
	pr_info("dumped pid %d to %s/%s in %.2f ms\n", o->pid, o->dir, IMG_FILE_NAME,
		(now_ns() - t0) / 1e6);
	unpin();
	rescue_disarm();
	dump_end(&ctx, !o->leave_running);
	if (o->leave_running)
		release_all(&ctx);
	else
		kill_all(&ctx);
	ret = 0;
	goto out_free;
out_abort:
	img_writer_abort(&ctx.w);
out_release:
	rescue_disarm();
	dump_end(&ctx, false);
	release_all(&ctx);
	pr_info("dump of pid %d failed; the tree keeps running unchanged\n", o->pid);
out_free:
	for (i = 0; i < ctx.ntasks; i++)
		dump_task_free(&ctx.tasks[i]);
	free(ctx.tasks);
	res_dump_states_fini(&ctx);
	return ret;
}
