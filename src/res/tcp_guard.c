/*
 * What keeps a tree whole should stasis die while it dumps established TCP
 * connections (tcp.c): the guardian and the hold.
 *
 * Repair mode is the socket's, not stasis's, and SIGKILL of stasis runs no
 * handler.  The guardian is a small process of the dump's own (forked at
 * the first connection, its own session, every other fd closed, never
 * traced); each socket is handed to it (SCM_RIGHTS) before it goes into
 * repair mode.  It sleeps until stasis's end of the socketpair closes (it
 * is not woken per message: they wait in its queue); then, unless stasis
 * said first in a page they share that it ended things itself ('O') or
 * that the tree is killed ('K', once the SIGKILLs are out: the sockets
 * must then close in repair mode, silently), it switches every socket back
 * and lets the held processes go on.
 *
 * The hold: the kernel lets the tree go the moment stasis's tracer thread
 * exits, and the guardian only wakes when the last of stasis's threads has
 * closed its files; a thread of the tree that reads a socket still in
 * repair mode in between gets EPERM (CI's soak saw a stream broken so).
 * So before a connection goes into repair mode every process of the tree
 * that holds it is sent SIGSTOP, which stays pending while the process is
 * traced: should stasis die, the process stops at once, in the kernel,
 * before any of its code runs, and the guardian, once the sockets are
 * back, sends it SIGCONT.  When stasis does not die, the SIGSTOP is taken
 * back before the tree is released (tcp_guard_unhold, in the tracer
 * thread): one thread of the process, every signal blocked, is let run
 * until it dequeues it, its delivery suppressed, and stopped again by an
 * interrupt, all inside the kernel's signal path.  Nothing of it is left:
 * no stop, no SIGCONT, no notice to the parent.  A process is held once
 * per dump, and only once stasis's remote calls in it are done (a pending
 * SIGSTOP would end one).  Not held: a process in a job-control stop
 * (it stays stopped when stasis dies) or with a SIGSTOP of its own pending
 * (the same).  What stays exposed: a SIGSTOP sent to a held process by
 * someone else during the dump merges with ours and is taken back with it;
 * should stasis die, the parent of a held process sees it stop and go on,
 * and one that blocks SIGCONT keeps it pending, as after a ^Z and fg.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sk.h"
#include "stasis.h"
#include "tcp_guard.h"
#include "util.h"

/*
 * Bytes of the guardian's queue per message: 5 bytes and one fd cost an
 * skb's truesize (well under 1 KiB) against the sender's buffer; twice
 * that, so that GUARD_MAX messages never block.
 */
#define GUARD_SNDBUF (GUARD_MAX * 2048)

/* The page stasis and the guardian share. */
struct guard_page {
	char how;	/* 'O', 'K', or 0: stasis is gone */
	uint32_t nheld; /* the first nheld processes handed over are held */
};

static void guard_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * One message of the queue: 'F' (a socket and its SO_REUSEADDR, put
 * back with repair mode's end) or 'P' (a pidfd of a process that may be
 * held).  0 when the queue is empty.
 */
static char guard_recv(int sk, int *fd, int *arg)
{
	char buf[1 + sizeof(int)], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;

	for (;;) {
		ssize_t r = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		c = CMSG_FIRSTHDR(&mh);
		if (r != sizeof(buf) || !c || c->cmsg_type != SCM_RIGHTS)
			continue;
		memcpy(fd, CMSG_DATA(c), sizeof(int));
		memcpy(arg, buf + 1, sizeof(int));
		return buf[0];
	}
}

/*
 * The guardian (a fork of a multi-threaded stasis: system calls only).
 * slow_ms (STASIS_TEST_GUARD_SLOW, tests): it waits that long before it
 * acts, so that the tree surely runs first.
 */
static void __attribute__((noreturn))
guard_main(int sk, const volatile struct guard_page *page, long slow_ms)
{
	struct pollfd p = { .fd = sk, .events = 0 }; /* only the hang-up wakes it */
	int off = TCP_REPAIR_OFF_NO_WP, pidfds[GUARD_MAX], npid = 0, fd, arg;
	uint32_t i, nheld;
	char what;

	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	what = __atomic_load_n(&page->how, __ATOMIC_ACQUIRE);
	if (what == 'O' || what == 'K')
		_exit(0);
	if (slow_ms > 0)
		guard_sleep_ms(slow_ms);
	while ((what = guard_recv(sk, &fd, &arg))) {
		if (what == 'P' && npid < GUARD_MAX) {
			pidfds[npid++] = fd;
			continue;
		}
		if (what == 'F') {
			setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off));
			if (arg)
				setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &arg, sizeof(arg));
		}
		close(fd);
	}
	/* the sockets are back: the held processes may go on */
	nheld = __atomic_load_n(&page->nheld, __ATOMIC_ACQUIRE);
	for (i = 0; i < nheld && i < (uint32_t)npid; i++)
		syscall(__NR_pidfd_send_signal, pidfds[i], SIGCONT, NULL, 0);
	_exit(0);
}

static int guard_start(struct tcp_guard *g)
{
	const char *slow = getenv("STASIS_TEST_GUARD_SLOW");
	int sp[2], size = GUARD_SNDBUF;
	struct guard_page *page;
	pid_t pid;

	if (g->pid > 0)
		return 0;
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		pr_perror("cannot map the TCP guardian's page");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp)) {
		pr_perror("cannot create the TCP guardian's socketpair");
		goto out_unmap;
	}
	/* the guardian does not read until the end: room for every message */
	if (setsockopt(sp[0], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)))
		setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	pid = fork();
	if (pid < 0) {
		pr_perror("cannot fork the TCP guardian");
		close(sp[0]);
		close(sp[1]);
		goto out_unmap;
	}
	if (pid == 0) {
		/* nothing of stasis's but its end: not the nft owner socket, not the image */
		if (sp[1] != 3 && dup2(sp[1], 3) < 0)
			_exit(1);
		syscall(__NR_close_range, 0, 2, 0);
		syscall(__NR_close_range, 4, ~0U, 0);
		setsid(); /* a terminal's signals to stasis's group do not reach it */
		guard_main(3, page, slow ? atol(slow) : 0);
	}
	close(sp[1]);
	g->sk = sp[0];
	g->pid = pid;
	g->page = page;
	return 0;
out_unmap:
	munmap(page, 4096);
	return -1;
}

/* One message to the guardian (it does not wake up for it). */
static int guard_send(struct tcp_guard *g, char what, int fd, int arg)
{
	char buf[1 + sizeof(int)], cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	if (g->nmsg >= GUARD_MAX) {
		pr_err("more than %d TCP connections and processes holding them in the tree\n",
		       GUARD_MAX);
		return -1;
	}
	buf[0] = what;
	memcpy(buf + 1, &arg, sizeof(int));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	/* never blocks: the guardian reads only once we are gone */
	if (sendmsg(g->sk, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)iov.iov_len) {
		pr_perror("cannot hand a %s to the TCP guardian",
			  what == 'F' ? "socket" : "process");
		return -1;
	}
	g->nmsg++;
	return 0;
}

int tcp_guard_socket(struct tcp_guard *g, int fd, int reuse)
{
	return guard_start(g) || guard_send(g, 'F', fd, reuse) ? -1 : 0;
}

/* ------------------------------------------------------------ the hold */

static int holder_cmp(const void *a, const void *b)
{
	const struct tree_sk *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Which processes of the tree hold which sockets: sorted by inode. */
static void scan_holders(struct tcp_guard *g, struct dump_ctx *ctx)
{
	g->scanned = true;
	g->held = xmalloc(ctx->ntasks + 1);
	memset(g->held, 0, ctx->ntasks + 1);
	g->holders = sk_tree_fds(ctx, &g->nholders);
	if (g->nholders)
		sort_array(g->holders, g->nholders, sizeof(*g->holders), holder_cmp);
}

/* Is SIGSTOP pending for the process or one of its threads? */
static bool stop_pending(struct dump_task *dt)
{
	const unsigned long long bit = 1ULL << (SIGSTOP - 1);
	char path[80], *st;
	const char *v;
	bool pending = true;
	size_t i;

	for (i = 0; i < dt->nth; i++) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", dt->pid, dt->th[i].tid);
		st = read_file(path, NULL);
		if (!st)
			return true;
		v = status_field(st, "SigPnd");
		pending = !v || (strtoull(v, NULL, 16) & bit);
		if (!pending && i == 0) {
			v = status_field(st, "ShdPnd");
			pending = !v || (strtoull(v, NULL, 16) & bit);
		}
		free(st);
		if (pending)
			return true;
	}
	return false;
}

/* Does the process need our hold, and may it have it? */
static bool holdable(struct dump_task *dt)
{
	size_t i;

	if (dt->zombie)
		return false;
	for (i = 0; i < dt->nth; i++)
		if (!dt->th[i].frozen || dt->th[i].rt.stop_sig)
			return false; /* a job-control stop: it stays stopped */
	return !stop_pending(dt);
}

/* Hold task t of the tree (SIGSTOP pending), the guardian told first. */
static int hold_task(struct tcp_guard *g, struct dump_ctx *ctx, size_t t)
{
	struct dump_task *dt = &ctx->tasks[t];
	int pidfd;

	/* stasis's remote calls in it are done first: a SIGSTOP would end one */
	while (__atomic_load_n(&ctx->remote_done, __ATOMIC_ACQUIRE) <= t)
		usleep(20);
	if (!holdable(dt)) {
		g->held[t] = -1;
		return 0;
	}
	pidfd = syscall(__NR_pidfd_open, dt->pid, 0);
	if (pidfd < 0) {
		pr_perror("pid %d: cannot open a pidfd", dt->pid);
		return -1;
	}
	if (guard_send(g, 'P', pidfd, 0)) {
		close(pidfd);
		return -1;
	}
	g->pidfds = xrealloc(g->pidfds, (g->nheld + 1) * sizeof(*g->pidfds));
	g->order = xrealloc(g->order, (g->nheld + 1) * sizeof(*g->order));
	g->pidfds[g->nheld] = pidfd;
	g->order[g->nheld] = t;
	g->nheld++;
	/* the guardian counts it before it is held: a SIGCONT too many is harmless */
	__atomic_store_n(&g->page->nheld, (uint32_t)g->nheld, __ATOMIC_RELEASE);
	if (syscall(__NR_pidfd_send_signal, pidfd, SIGSTOP, NULL, 0)) {
		pr_perror("pid %d: cannot hold it for its TCP connections", dt->pid);
		return -1;
	}
	g->held[t] = 1;
	pr_debug("pid %d: held (SIGSTOP pending) while its TCP connections are read\n", dt->pid);
	return 0;
}

int tcp_guard_hold(struct tcp_guard *g, struct dump_ctx *ctx, unsigned long ino)
{
	struct tree_sk key = { .ino = ino }, *h;
	size_t i;

	if (guard_start(g))
		return -1;
	if (!g->scanned)
		scan_holders(g, ctx);
	h = g->nholders ? bsearch(&key, g->holders, g->nholders, sizeof(key), holder_cmp) : NULL;
	if (!h)
		return 0;
	while (h > g->holders && h[-1].ino == ino)
		h--;
	for (i = h - g->holders; i < g->nholders && g->holders[i].ino == ino; i++)
		if (!g->held[g->holders[i].task] && hold_task(g, ctx, g->holders[i].task))
			return -1;
	return 0;
}

static int wait_stop(pid_t tid, int *status)
{
	while (waitpid(tid, status, __WALL) < 0)
		if (errno != EINTR)
			return -1;
	return WIFSTOPPED(*status) ? 0 : -1;
}

/*
 * Take our SIGSTOP back through thread tid of a held process, all its
 * signals blocked so that nothing else is dequeued: an interrupt first
 * (a thread resting in a syscall-exit stop would otherwise return to its
 * code: a signal pending while it was traced woke no one), then on into
 * the dequeue of the SIGSTOP, whose delivery is suppressed, and an
 * interrupt again, asked for while it sits in that stop so that it is not
 * lost.  The thread ends in an interrupt stop inside the kernel's signal
 * path with its registers untouched.
 */
static int take_back(pid_t tid)
{
	uint64_t all = ~0ULL, own;
	int status, step, ret = -1;

	if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(own), &own) ||
	    ptrace(PTRACE_SETSIGMASK, tid, sizeof(all), &all))
		return -1;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0))
		goto out_mask;
	for (step = 0; step < 8; step++) {
		if (ptrace(PTRACE_CONT, tid, 0, 0) || wait_stop(tid, &status))
			goto out_mask;
		if ((status >> 16) == PTRACE_EVENT_STOP && WSTOPSIG(status) == SIGTRAP)
			continue; /* our interrupt: on to the dequeue */
		if ((status >> 16) || WSTOPSIG(status) != SIGSTOP)
			goto out_mask; /* not what a held, frozen thread does */
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) || ptrace(PTRACE_CONT, tid, 0, 0) ||
		    wait_stop(tid, &status))
			goto out_mask;
		if ((status >> 16) == PTRACE_EVENT_STOP && WSTOPSIG(status) == SIGTRAP)
			ret = 0;
		break;
	}
out_mask:
	if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(own), &own))
		ret = -1;
	return ret;
}

void tcp_guard_unhold(struct tcp_guard *g, struct dump_ctx *ctx)
{
	size_t i, j;

	for (i = 0; i < g->nheld; i++) {
		struct dump_task *dt = &ctx->tasks[g->order[i]];

		for (j = 0; j < dt->nth && !dt->th[j].frozen; j++)
			;
		if (j < dt->nth && !take_back(dt->th[j].tid)) {
			pr_debug("pid %d: its SIGSTOP taken back through thread %d\n", dt->pid,
				 dt->th[j].tid);
			continue;
		}
		/* a SIGCONT takes the SIGSTOP away too, but is seen */
		pr_err("pid %d: cannot take back the SIGSTOP that held it; sending SIGCONT\n",
		       dt->pid);
		syscall(__NR_pidfd_send_signal, g->pidfds[i], SIGCONT, NULL, 0);
	}
	if (g->page)
		__atomic_store_n(&g->page->nheld, 0, __ATOMIC_RELEASE);
	tcp_guard_drop_holds(g);
}

void tcp_guard_rescue(struct tcp_guard *g)
{
	size_t i;

	for (i = 0; g->page && i < g->nheld; i++)
		syscall(__NR_pidfd_send_signal, g->pidfds[i], SIGCONT, NULL, 0);
}

void tcp_guard_drop_holds(struct tcp_guard *g)
{
	size_t i;

	for (i = 0; i < g->nheld; i++)
		close(g->pidfds[i]);
	g->nheld = 0;
}

void tcp_guard_stop(struct tcp_guard *g, char how)
{
	if (g->pid <= 0)
		return;
	__atomic_store_n(&g->page->how, how, __ATOMIC_RELEASE);
	close(g->sk);
	while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
		;
	munmap(g->page, 4096);
	g->page = NULL;
	g->pid = 0;
}

void tcp_guard_fini(struct tcp_guard *g)
{
	tcp_guard_drop_holds(g);
	free(g->pidfds);
	free(g->order);
	free(g->holders);
	free(g->held);
}
