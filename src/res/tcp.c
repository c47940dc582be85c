/*
 * Established TCP connections, saved and rebuilt with TCP_REPAIR
 * (dump --tcp-established).
 *
 * Dump: stasis's duplicate of the socket is switched to repair mode, which
 * is a property of the socket, so the target's fd is in repair mode too:
 * the socket sends nothing from then on, and when the dumped tree is
 * killed it closes silently, without FIN or RST, so the peer keeps its end.
 * With repair mode on, the sequence numbers of both queues
 * (TCP_QUEUE_SEQ), their contents (MSG_PEEK: nothing is consumed), the
 * negotiated options (from TCP_INFO and TCP_MAXSEG), the timestamp clock
 * and the window are read.  Every socket put in repair mode is listed in
 * the dump state of tcp_res: at the end of a failed dump or a dump with
 * -R (dump_end), or from the rescue handler of an interrupted one
 * (dump_rescue), they are switched back (without a window probe, and with
 * SO_REUSEADDR put back, which the kernel clears when repair mode ends),
 * so the tree goes on untouched.
 *
 * SIGKILL of stasis runs none of that, and repair mode is the socket's,
 * not stasis's: tcp_guard.c hands every socket to a guardian process
 * before it goes into repair mode, and holds the processes that hold it
 * (SIGSTOP pending) so that none of the tree's code runs before the
 * guardian has put the sockets back.  A socket is in repair mode only
 * while it is read (tcp_dump_conn) and again from dump_end(kill) to the
 * kill, with its send queue selected but for an instant.
 *
 * Restore (called by inet.c for each connection): the new socket goes to
 * repair mode, gets its sequence numbers, is bound to the original local
 * address (repair mode lets it share the port with a listener), connects
 * without sending a SYN, gets its options, its receive queue, the part of
 * its send queue that had been sent (it is retransmitted if the peer never
 * got it), timestamp and window; repair mode ends once every socket of the
 * tree is built, and the bytes that had never been sent are then queued
 * like any write.
 *
 * A connection shut down for writing whose peer has not (FIN_WAIT1,
 * FIN_WAIT2) is saved the same way; its FIN takes one sequence number
 * after the send queue.  Restore starts the send queue one number lower
 * and replays the shutdown: in repair mode with the send queue selected
 * when the FIN had been sent (it counts as sent, unacknowledged, and the
 * peer's answer to the window probe acknowledges it again), or after the
 * unsent bytes when it was stuck behind them.
 *
 * The peer's FIN (CLOSE_WAIT, LAST_ACK) takes one number after the
 * receive queue.  Repair mode cannot put a received FIN into a socket, so
 * restore starts the receive queue one number lower and, once the socket
 * is out of repair mode, sends it the peer's FIN itself: one FIN+ACK
 * segment with the peer's addresses on a raw socket (SO_MARK
 * SK_INJECT_MARK, which the network lock lets by), acknowledging nothing
 * new; in LAST_ACK our FIN is then replayed by a plain shutdown.  CLOSING
 * (both FINs crossed) is refused by inet.c.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "inet.h"
#include "log.h"
#include "res.h"
#include "sk.h"
#include "tcp_guard.h"
#include "util.h"

#ifndef TCPOPT_MSS
#define TCPOPT_MSS	 2
#define TCPOPT_WINDOW	 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_TIMESTAMP 8
#endif

/* The sockets this dump put in repair mode, with what to put back. */
struct tcp_repaired {
	int fd; /* our duplicate */
	int reuse;
};

struct tcp_repair_list {
	struct tcp_repaired *v;
	size_t n;
	unsigned long *outside; /* socket inodes held by processes outside the tree */
	size_t nout, cap;
	bool scanned;
	struct tcp_guard guard; /* tcp_guard.c */
	bool killing;		/* dump_end(kill): the tree is killed, repair mode stays */
};

/* ------------------------------------------------------------- dump */

static struct tcp_repair_list *repair_list(struct dump_ctx *ctx)
{
	return res_dump_state(ctx, &tcp_res);
}

static bool in_tree(const struct dump_ctx *ctx, pid_t pid)
{
	size_t i;

	for (i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].pid == pid)
			return true;
	return pid == getpid();
}

static int ino_cmp(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/* The sockets of one process outside the tree, added to l->outside. */
static void scan_process(struct tcp_repair_list *l, const char *pid)
{
	char path[300], link[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);

		if (n < 9 || strncmp(link, "socket:[", 8))
			continue;
		link[n] = '\0';
		if (l->nout == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 256;
			l->outside = xrealloc(l->outside, l->cap * sizeof(*l->outside));
		}
		l->outside[l->nout++] = strtoul(link + 8, NULL, 10);
	}
	if (d)
		closedir(d);
}

/*
 * Is the socket also held by a process outside the tree?  Repair mode
 * would stay on for that process after the dump.  One scan of /proc, at
 * the first connection of a dump.
 */
static bool held_outside(const struct fd_dump *d)
{
	struct tcp_repair_list *l = repair_list(d->ctx);
	unsigned long ino = d->st.st_ino;
	struct dirent *de;
	DIR *proc;

	if (!l->scanned) {
		l->scanned = true;
		proc = opendir("/proc");
		while (proc && (de = readdir(proc)))
			if (de->d_name[0] >= '1' && de->d_name[0] <= '9' &&
			    !in_tree(d->ctx, atoi(de->d_name)))
				scan_process(l, de->d_name);
		if (proc)
			closedir(proc);
		if (l->nout)
			sort_array(l->outside, l->nout, sizeof(*l->outside), ino_cmp);
	}
	return l->nout && bsearch(&ino, l->outside, l->nout, sizeof(ino), ino_cmp);
}

/* reuse: the socket's SO_REUSEADDR, put back with repair mode's end */
static int repair_on(const struct fd_dump *d, int reuse)
{
	struct tcp_repair_list *l = repair_list(d->ctx);
	int on = TCP_REPAIR_ON, sndq = TCP_SEND_QUEUE, fd;

	if (l->n >= GUARD_MAX) {
		pr_err("pid %d fd %d: more than %d TCP connections in the tree\n", d->pid, d->fd,
		       GUARD_MAX);
		return -1;
	}
	/*
	 * The guardian holds it first, and the processes that hold it are held
	 * (tcp_guard.c): from then on, stasis may die at any moment.
	 */
	if (tcp_guard_socket(&l->guard, d->lfd, reuse) ||
	    tcp_guard_hold(&l->guard, d->ctx, d->st.st_ino))
		return -1;
	fd = fcntl(d->lfd, F_DUPFD_CLOEXEC, 0);
	/* the send queue selected at once: see dump_state */
	if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &sndq, sizeof(sndq))) {
		pr_perror("pid %d fd %d: cannot switch the TCP socket to repair mode", d->pid,
			  d->fd);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = (struct tcp_repaired){ fd, reuse };
	return 0;
}

/*
 * STASIS_TEST_CRASH=tcp-repair-kill:N: stasis dies of SIGKILL while its
 * Nth connection is in repair mode, the N-1 before it handed to the
 * guardian too (tests/suites/netperf.sh: the guardian puts them back).
 */
static void test_kill_in_repair(size_t n)
{
	static long at = -1;

	if (at < 0) {
		const char *want = getenv("STASIS_TEST_CRASH");

		at = want && !strncmp(want, "tcp-repair-kill:", 16) ? atol(want + 16) : 0;
	}
	if (at > 0 && (size_t)at == n)
		raise(SIGKILL);
}

/* Switch a socket back (no window probe) and put SO_REUSEADDR back. */
static void repair_off(struct tcp_repaired *r)
{
	int off = TCP_REPAIR_OFF_NO_WP;

	if (setsockopt(r->fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) ||
	    (r->reuse && setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &r->reuse, sizeof(r->reuse))))
		pr_perror("cannot switch a TCP socket back from repair mode");
}

static void repair_off_all(struct tcp_repair_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		repair_off(&l->v[i]);
}

/*
 * Before the tree is killed: repair mode again, so the sockets close
 * silently.  Our duplicates are closed at once: the tree's fds, then,
 * hold the last references, and the work of freeing a socket is done by
 * the tree's exit, not by stasis (the guardian holds them until the
 * kill).
 */
static void repair_on_all(struct tcp_repair_list *l)
{
	int on = TCP_REPAIR_ON, sndq = TCP_SEND_QUEUE;
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (setsockopt(l->v[i].fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) ||
		    setsockopt(l->v[i].fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &sndq, sizeof(sndq)))
			pr_perror("cannot switch a TCP socket to repair mode for the kill");
		close(l->v[i].fd);
	}
	l->n = 0;
}

/*
 * The tree is killed (repair mode on again, so the sockets close silently)
 * or goes on (repair mode off, the guardian told so and gone).
 */
static void tcp_dump_end(struct dump_ctx *ctx, bool kill)
{
	struct tcp_repair_list *l = repair_list(ctx);

	l->killing = kill;
	if (kill) {
		repair_on_all(l);
		return;
	}
	repair_off_all(l);
	tcp_guard_unhold(&l->guard, ctx); /* while the guardian still watches */
	tcp_guard_stop(&l->guard, 'O');
}

/* In a signal handler (the dump is interrupted): repair off, the held go on. */
static void tcp_dump_rescue(struct dump_ctx *ctx)
{
	struct tcp_repair_list *l = repair_list(ctx);
	int off = TCP_REPAIR_OFF_NO_WP;
	size_t i;

	for (i = 0; l && i < l->n; i++) {
		setsockopt(l->v[i].fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off));
		if (l->v[i].reuse)
			setsockopt(l->v[i].fd, SOL_SOCKET, SO_REUSEADDR, &l->v[i].reuse,
				   sizeof(l->v[i].reuse));
	}
	if (l)
		tcp_guard_rescue(&l->guard);
}

static void tcp_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct tcp_repair_list *l = state;
	size_t i;

	/* after kill_all: the SIGKILLs are out, repair mode must stay */
	tcp_guard_stop(&l->guard, l->killing ? 'K' : 'O');
	tcp_guard_fini(&l->guard);
	for (i = 0; i < l->n; i++)
		close(l->v[i].fd);
	free(l->v);
	free(l->outside);
}

static int tcp_get(const struct fd_dump *d, int opt, void *val, socklen_t size, const char *what)
{
	socklen_t len = size;

	if (getsockopt(d->lfd, IPPROTO_TCP, opt, val, &len)) {
		pr_perror("pid %d fd %d: cannot read the %s of a TCP connection", d->pid, d->fd,
			  what);
		return -1;
	}
	return 0;
}

/* A queue's sequence number and lengths (SIOCOUTQNSD only for the send queue). */
struct queue_shape {
	uint32_t seq;
	int len, nsd;
};

static int queue_shape(const struct fd_dump *d, int q, struct queue_shape *s)
{
	s->len = s->nsd = 0;
	if (tcp_get(d, TCP_QUEUE_SEQ, &s->seq, sizeof(s->seq), "queue sequence"))
		return -1;
	if (ioctl(d->lfd, q == TCP_RECV_QUEUE ? SIOCINQ : SIOCOUTQ, &s->len) ||
	    (q == TCP_SEND_QUEUE && ioctl(d->lfd, SIOCOUTQNSD, &s->nsd))) {
		pr_perror("pid %d fd %d: cannot read the queue lengths of a TCP connection", d->pid,
			  d->fd);
		return -1;
	}
	return 0;
}

/* how often a queue is read again when a packet changed it meanwhile */
#define QUEUE_TRIES 20

/*
 * One queue in repair mode: its sequence number and its bytes.  fin: the
 * send queue ends with our unacknowledged FIN (FIN_WAIT1), which the
 * kernel's counts include but which has no byte of its own; *fin_unsent
 * says whether it was sent.
 *
 * The tree's packets are held from the lock on, but one sent before it
 * may still be on its way through loopback: an ACK that frees the head of
 * the send queue, or data that lengthens the receive queue, between the
 * lengths and the bytes.  Each is what it was before or after that
 * packet, never a mix: the shape is read before and after the bytes and
 * all of it taken again until the two agree.
 */
static int dump_queue(const struct fd_dump *d, int q, uint32_t *seq, ProtobufCBinaryData *data,
		      uint32_t *unsent, bool fin, bool *fin_unsent)
{
	struct queue_shape before, after;
	int tries, len = 0;
	ssize_t n = 0;

	if (setsockopt(d->lfd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q))) {
		pr_perror("pid %d fd %d: cannot select a TCP queue", d->pid, d->fd);
		return -1;
	}
	data->data = NULL;
	for (tries = 0; tries < QUEUE_TRIES; tries++) {
		if (queue_shape(d, q, &before))
			return -1;
		len = fin && before.len > 0 ? before.len - 1 : before.len;
		free(data->data);
		data->data = xmalloc(len + 1);
		n = len ? recv(d->lfd, data->data, len + 1, MSG_PEEK | MSG_DONTWAIT) : 0;
		if (queue_shape(d, q, &after))
			return -1;
		if (!memcmp(&before, &after, sizeof(before)) && n == len)
			break;
	}
	if (n != len) {
		pr_err("pid %d fd %d: read %zd of the %d bytes of a TCP %s queue\n", d->pid, d->fd,
		       n, len, q == TCP_RECV_QUEUE ? "receive" : "send");
		return -1;
	}
	if (tries == QUEUE_TRIES) {
		pr_err("pid %d fd %d: a TCP %s queue kept changing while it was read\n", d->pid,
		       d->fd, q == TCP_RECV_QUEUE ? "receive" : "send");
		return -1;
	}
	if (fin)
		*fin_unsent = before.nsd > 0; /* the FIN is last: unsent if anything is */
	*seq = before.seq;
	data->len = len;
	if (unsent)
		*unsent = fin && before.nsd > 0 ? before.nsd - 1 : before.nsd;
	return 0;
}

/*
 * The receive queue's bytes, peeked before repair mode: a plain MSG_PEEK
 * reads the same bytes, and the receive queue is then selected in repair
 * mode only for the instant its sequence number takes.  (Should stasis die
 * while a socket is in repair mode, the tree runs on with it for a moment
 * (see the top): its writes then go to the selected queue, and into its
 * own receive queue they would be lost to the peer.)  Lengths before and
 * after agree, as in dump_queue.
 */
static int peek_rcvq(const struct fd_dump *d, ProtobufCBinaryData *data)
{
	int before = 0, after = 0, tries;
	ssize_t n = 0;

	data->data = NULL;
	for (tries = 0; tries < QUEUE_TRIES; tries++) {
		if (ioctl(d->lfd, SIOCINQ, &before))
			break;
		free(data->data);
		data->data = xmalloc(before + 1);
		n = before ? recv(d->lfd, data->data, before + 1, MSG_PEEK | MSG_DONTWAIT) : 0;
		if (ioctl(d->lfd, SIOCINQ, &after))
			break;
		if (before == after && n == before)
			break;
	}
	if (tries == QUEUE_TRIES || before != after || n != before) {
		pr_perror("pid %d fd %d: cannot read the receive queue of a TCP connection", d->pid,
			  d->fd);
		return -1;
	}
	data->len = before;
	return 0;
}

/*
 * In repair mode: the receive queue's sequence number, read between two
 * equal lengths that match the bytes peeked, and the send queue selected
 * again at once.  1: a packet came in since the peek (the caller reads the
 * queue again, in repair mode).
 */
static int rcv_seq(const struct fd_dump *d, size_t len, uint32_t *seq)
{
	int q = TCP_RECV_QUEUE, a = -1, b = -1, ret = 0;

	if (setsockopt(d->lfd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q))) {
		pr_perror("pid %d fd %d: cannot select a TCP queue", d->pid, d->fd);
		return -1;
	}
	if (ioctl(d->lfd, SIOCINQ, &a) ||
	    tcp_get(d, TCP_QUEUE_SEQ, seq, sizeof(*seq), "queue sequence") ||
	    ioctl(d->lfd, SIOCINQ, &b))
		ret = -1;
	else if (a != b || (size_t)a != len)
		ret = 1;
	q = TCP_SEND_QUEUE;
	if (setsockopt(d->lfd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q))) {
		pr_perror("pid %d fd %d: cannot select a TCP queue", d->pid, d->fd);
		return -1;
	}
	return ret;
}

/*
 * ti: TCP_INFO as read before (repair mode changes none of what is taken
 * from it).  Called in repair mode with t->rcvq peeked; the send queue
 * stays selected (only TCP_QUEUE_SEQ would tell), so that should stasis
 * die now, what the tree writes meanwhile is queued as sent and goes out
 * as a retransmission.
 */
static int dump_state(const struct fd_dump *d, TcpConnEntry *t, uint32_t state,
		      const struct tcp_info *ti)
{
	struct tcp_repair_window w;
	bool fin_unsent = false;
	int r;

	r = rcv_seq(d, t->rcvq.len, &t->rcv_seq);
	if (r > 0) {
		free(t->rcvq.data);
		/* SIOCINQ leaves a received FIN out; SIOCOUTQ counts ours until acknowledged */
		r = dump_queue(d, TCP_RECV_QUEUE, &t->rcv_seq, &t->rcvq, NULL, false, NULL);
	}
	if (r || tcp_get(d, TCP_REPAIR_WINDOW, &w, sizeof(w), "window") ||
	    dump_queue(d, TCP_SEND_QUEUE, &t->snd_seq, &t->sndq, &t->unsent,
		       state == TCP_ST_FIN_WAIT1 || state == TCP_ST_LAST_ACK, &fin_unsent))
		return -1;
	t->snd_wl1 = w.snd_wl1;
	t->snd_wnd = w.snd_wnd;
	t->max_window = w.max_window;
	t->rcv_wnd = w.rcv_wnd;
	t->rcv_wup = w.rcv_wup;
	t->has_fin_unsent =
	    state == TCP_ST_FIN_WAIT1 || state == TCP_ST_FIN_WAIT2 || state == TCP_ST_LAST_ACK;
	t->fin_unsent = fin_unsent;
	t->has_peer_fin = state == TCP_ST_CLOSE_WAIT || state == TCP_ST_LAST_ACK;
	t->peer_fin = t->has_peer_fin;
	return 0;
}

/* What needs no repair mode: MSS, timestamp, the options (from TCP_INFO). */
static int dump_plain(const struct fd_dump *d, TcpConnEntry *t, const struct tcp_info *ti)
{
	int mss = 0;

	if (tcp_get(d, TCP_MAXSEG, &mss, sizeof(mss), "MSS") ||
	    tcp_get(d, TCP_TIMESTAMP, &t->timestamp, sizeof(t->timestamp), "timestamp"))
		return -1;
	t->mss = mss;
	t->has_snd_mss = true;
	t->snd_mss = ti->tcpi_snd_mss;
	t->options = ti->tcpi_options;
	t->snd_wscale = ti->tcpi_snd_wscale;
	t->rcv_wscale = ti->tcpi_rcv_wscale;
	return peek_rcvq(d, &t->rcvq);
}

/* May we put a socket of ours into repair mode (a normal user may not)? */
static bool repair_allowed(void)
{
	static int ok = -1;
	int fd, on = 1;

	if (ok < 0) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ok = fd < 0 || !setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) ||
		     errno != EPERM;
		if (fd >= 0)
			close(fd);
	}
	return ok;
}

/*
 * What needs repair mode, in it: out of it at once (the tree is frozen and
 * its packets held, nothing moves), back in only for the kill (dump_end).
 * Should stasis die, the kernel lets the tree go at once, maybe before the
 * guardian had its turn: repair mode must be on as briefly as can be.
 */
static int dump_repaired(const struct fd_dump *d, InetSkEntry *ie, const struct tcp_info *ti,
			 int reuse)
{
	struct tcp_repair_list *l = repair_list(d->ctx);
	int ret;

	if (repair_on(d, reuse))
		return -1;
	test_kill_in_repair(l->n);
	ret = dump_state(d, ie->tcp, ie->state, ti);
	repair_off(&l->v[l->n - 1]);
	return ret;
}

int tcp_dump_conn(const struct fd_dump *d, InetSkEntry *ie, const struct tcp_info *ti)
{
	/* both in the option table: read there (a fresh socket has 0 and -1) */
	int peek_off = inet_sk_opt_int(ie, SOL_SOCKET, SO_PEEK_OFF, -1);
	int reuse = inet_sk_opt_int(ie, SOL_SOCKET, SO_REUSEADDR, 0);
	int off = -1;
	char buf[160];
	int ret;

	if (!repair_allowed()) {
		pr_err("pid %d fd %d: established TCP connection %s: saving it needs TCP_REPAIR, "
		       "which needs CAP_NET_ADMIN\n",
		       d->pid, d->fd, inet_sk_str(ie, buf, sizeof(buf)));
		return -1;
	}
	if (!d->ctx->opts->tcp_established) {
		pr_err("pid %d fd %d: established TCP connection %s (dump with --tcp-established "
		       "to save it)\n",
		       d->pid, d->fd, inet_sk_str(ie, buf, sizeof(buf)));
		return -1;
	}
	if (held_outside(d)) {
		pr_err("pid %d fd %d: TCP connection %s is also held by a process outside the "
		       "tree; not supported\n",
		       d->pid, d->fd, inet_sk_str(ie, buf, sizeof(buf)));
		return -1;
	}
	/* urgent data lives outside the queues repair mode can read */
	if (recv(d->lfd, buf, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) >= 0) {
		pr_err("pid %d fd %d: TCP connection %s has urgent data (MSG_OOB) pending; not "
		       "supported\n",
		       d->pid, d->fd, inet_sk_str(ie, buf, sizeof(buf)));
		return -1;
	}
	ie->tcp = xmalloc(sizeof(*ie->tcp));
	tcp_conn_entry__init(ie->tcp);
	/* a peek offset would make MSG_PEEK start there and move it */
	if (peek_off >= 0)
		setsockopt(d->lfd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
	ret = dump_plain(d, ie->tcp, ti);
	if (!ret)
		ret = dump_repaired(d, ie, ti, reuse);
	if (peek_off >= 0 &&
	    setsockopt(d->lfd, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off))) {
		pr_perror("pid %d fd %d: cannot put back the peek offset", d->pid, d->fd);
		ret = -1;
	}
	if (!ret && ie->tcp->unsent > ie->tcp->sndq.len) {
		pr_err("pid %d fd %d: TCP send queue holds %zu bytes, %u of them unsent\n", d->pid,
		       d->fd, ie->tcp->sndq.len, ie->tcp->unsent);
		ret = -1;
	}
	return ret;
}

/* ---------------------------------------------------------- restore */

static int set_tcp(int fd, int opt, const void *val, socklen_t len, const char *what)
{
	if (setsockopt(fd, IPPROTO_TCP, opt, val, len)) {
		pr_perror("cannot set the %s of a restored TCP connection", what);
		return -1;
	}
	return 0;
}

static int set_queue(int fd, int q)
{
	return set_tcp(fd, TCP_REPAIR_QUEUE, &q, sizeof(q), "repair queue");
}

int tcp_repair_prepare(int fd, const InetSkEntry *ie)
{
	const TcpConnEntry *t = ie->tcp;
	uint32_t rcv = t->rcv_seq - (uint32_t)t->rcvq.len - (t->peer_fin ? 1 : 0);
	/* our FIN, if any, is replayed after the queue: it takes a number back */
	uint32_t snd = t->snd_seq - (uint32_t)t->sndq.len - (t->has_fin_unsent ? 1 : 0);
	int on = TCP_REPAIR_ON, mss = t->snd_mss ? t->snd_mss : t->mss;

	/*
	 * The segment size in use (bounded by half the peer's largest window,
	 * which repair cannot set before connect): the repair connect computes
	 * it from this MSS; TCP_REPAIR_OPTIONS sets the peer's MSS after.
	 * Timestamps take 12 bytes of each segment.
	 */
	if (t->has_snd_mss && (t->options & TCPI_OPT_TIMESTAMPS))
		mss += 12;
	mss = min(mss, 32767); /* MAX_TCP_WINDOW */
	if (set_tcp(fd, TCP_MAXSEG, &mss, sizeof(mss), "MSS") ||
	    set_tcp(fd, TCP_REPAIR, &on, sizeof(on), "repair mode") ||
	    set_queue(fd, TCP_RECV_QUEUE) ||
	    set_tcp(fd, TCP_QUEUE_SEQ, &rcv, sizeof(rcv), "receive sequence") ||
	    set_queue(fd, TCP_SEND_QUEUE) ||
	    set_tcp(fd, TCP_QUEUE_SEQ, &snd, sizeof(snd), "send sequence"))
		return -1;
	return 0; /* bind and connect do not look at the queue selected */
}

static int set_options(int fd, const TcpConnEntry *t)
{
	struct tcp_repair_opt o[4];
	int n = 0;

	o[n++] = (struct tcp_repair_opt){ TCPOPT_MSS, t->mss };
	if (t->options & TCPI_OPT_WSCALE)
		o[n++] =
		    (struct tcp_repair_opt){ TCPOPT_WINDOW, t->snd_wscale | (t->rcv_wscale << 16) };
	if (t->options & TCPI_OPT_SACK)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERM, 0 };
	if (t->options & TCPI_OPT_TIMESTAMPS)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	return set_tcp(fd, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0]), "options");
}

/*
 * Queue len bytes: in repair mode into the selected queue, else as a write.
 * A receive queue a little larger than the receive buffer (the kernel lets
 * it overshoot) gets room for the moment; inet.c sets the size again after.
 */
static int send_all(int fd, const uint8_t *data, size_t len, const char *what, bool *grown)
{
	int room = (int)min(len * 2 + (1 << 16), (size_t)1 << 29);
	size_t done = 0;
	bool tried = false;

	while (done < len) {
		ssize_t n = send(fd, data + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == ENOMEM && !tried) {
			tried = *grown = true;
			setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &room, sizeof(room));
			continue;
		}
		if (n <= 0) {
			pr_perror("cannot queue %zu bytes into the %s of a restored TCP connection",
				  len - done, what);
			return -1;
		}
		done += n;
	}
	return 0;
}

/*
 * Room for the send queue while it is filled (inet.c sets the real size
 * after), unless the restored buffer (twice the size set) holds it twice
 * over already; true if it was made.
 */
static bool make_room(int fd, const InetSkEntry *ie)
{
	const TcpConnEntry *t = ie->tcp;
	int snd = (int)min(t->sndq.len * 2 + (1 << 20), (size_t)1 << 29);

	if (ie->has_sndbuf && t->sndq.len * 2 + (1 << 16) <= 2 * (uint64_t)ie->sndbuf)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd));
	return true;
}

int tcp_repair_finish(int fd, const InetSkEntry *ie, bool *grown)
{
	const TcpConnEntry *t = ie->tcp;
	struct tcp_repair_window w = { t->snd_wl1, t->snd_wnd, t->max_window, t->rcv_wnd,
				       t->rcv_wup };
	size_t sent = t->sndq.len - t->unsent;
	int no_mss = 0;

	/* the peer's FIN is not in yet: the window cannot start after it */
	if (t->peer_fin && (int32_t)(w.rcv_wup - (t->rcv_seq - 1)) > 0)
		w.rcv_wup = t->rcv_seq - 1;

	if (make_room(fd, ie))
		*grown = true;
	if (set_options(fd, t) || set_tcp(fd, TCP_MAXSEG, &no_mss, sizeof(no_mss), "MSS") ||
	    set_queue(fd, TCP_RECV_QUEUE) ||
	    send_all(fd, t->rcvq.data, t->rcvq.len, "receive queue", grown) ||
	    set_queue(fd, TCP_SEND_QUEUE) || send_all(fd, t->sndq.data, sent, "send queue", grown))
		return -1;
	/* a FIN that had been sent: counts as sent, as the queue before it */
	if (t->has_fin_unsent && !t->fin_unsent && !t->peer_fin && shutdown(fd, SHUT_WR)) {
		pr_perror("cannot replay the FIN of a restored TCP connection");
		return -1;
	}
	/* the send queue stays selected: nothing below, nor repair mode's end, looks */
	if (t->options & TCPI_OPT_TIMESTAMPS &&
	    set_tcp(fd, TCP_TIMESTAMP, &t->timestamp, sizeof(t->timestamp), "timestamp"))
		return -1;
	return set_tcp(fd, TCP_REPAIR_WINDOW, &w, sizeof(w), "window");
}

static bool is_mapped(const ProtobufCBinaryData *a)
{
	static const uint8_t pre[12] = { [10] = 0xff, [11] = 0xff };

	return a->len == 16 && !memcmp(a->data, pre, 12);
}

/* [IP header][TCP header]: the peer's FIN+ACK to the socket; its length. */
static size_t fin_segment(uint8_t *pkt, const InetSkEntry *ie, bool v4, uint8_t *dst)
{
	const TcpConnEntry *t = ie->tcp;
	size_t hl = v4 ? sizeof(struct iphdr) : sizeof(struct ip6_hdr);
	struct tcphdr *th = (struct tcphdr *)(pkt + hl);
	const uint8_t *src = ie->dst_addr.data + (v4 && ie->dst_addr.len == 16 ? 12 : 0);
	uint32_t una = t->snd_seq - (uint32_t)t->sndq.len - (t->has_fin_unsent ? 1 : 0), s;

	memcpy(dst, ie->src_addr.data + (v4 && ie->src_addr.len == 16 ? 12 : 0), v4 ? 4 : 16);
	memset(pkt, 0, hl + sizeof(*th));
	th->source = htons(ie->dst_port);
	th->dest = htons(ie->src_port);
	th->seq = htonl(t->rcv_seq - 1); /* where the restored receive queue ends */
	th->ack_seq = htonl(una);	 /* acknowledges nothing new */
	th->doff = sizeof(*th) / 4;
	th->fin = th->ack = 1;
	th->window = htons(min(t->snd_wnd >> t->snd_wscale, 65535U));
	s = inet_csum_add(src, v4 ? 4 : 16, 0);
	s = inet_csum_add(dst, v4 ? 4 : 16, s) + IPPROTO_TCP + sizeof(*th);
	th->check = inet_csum_fold(inet_csum_add(th, sizeof(*th), s));
	if (v4) {
		struct iphdr *ip = (struct iphdr *)pkt;

		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->tot_len = htons(hl + sizeof(*th));
		memcpy(&ip->saddr, src, 4);
		memcpy(&ip->daddr, dst, 4);
	} else {
		struct ip6_hdr *ip = (struct ip6_hdr *)pkt;

		ip->ip6_flow = htonl(6U << 28);
		ip->ip6_plen = htons(sizeof(*th));
		ip->ip6_nxt = IPPROTO_TCP;
		ip->ip6_hlim = 64;
		memcpy(&ip->ip6_src, src, 16);
		memcpy(&ip->ip6_dst, dst, 16);
	}
	return hl + sizeof(*th);
}

/* Send the socket its peer's FIN (see the top) and wait until it took it. */
static int replay_peer_fin(int fd, const InetSkEntry *ie)
{
	bool v4 = ie->dst_addr.len == 4 || is_mapped(&ie->dst_addr);
	uint8_t pkt[sizeof(struct ip6_hdr) + sizeof(struct tcphdr)], dst[16];
	struct sockaddr_storage ss = { 0 };
	size_t len = fin_segment(pkt, ie, v4, dst);
	int raw, i, ret;

	raw = socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (raw < 0 || sk_set_int(raw, SOL_SOCKET, SO_MARK, SK_INJECT_MARK)) {
		pr_perror("cannot open a raw socket to replay the peer's FIN");
		if (raw >= 0)
			close(raw);
		return -1;
	}
	ss.ss_family = v4 ? AF_INET : AF_INET6;
	if (v4)
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, dst, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, dst, 16);
	ret = sendto(raw, pkt, len, 0, (struct sockaddr *)&ss, sizeof(ss)) == (ssize_t)len ? 0 : -1;
	if (ret)
		pr_perror("cannot send a restored TCP connection its peer's FIN");
	close(raw);
	for (i = 0; !ret && i < 200; i++) {
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);

		if (!getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) &&
		    ti.tcpi_state == TCP_ST_CLOSE_WAIT)
			return 0;
		usleep(5000);
	}
	if (!ret)
		pr_err("a restored TCP connection did not take its peer's FIN\n");
	return -1;
}

int tcp_repair_off(int fd, const InetSkEntry *ie, bool *grown)
{
	const TcpConnEntry *t = ie->tcp;
	size_t sent = t->sndq.len - t->unsent;
	int off = TCP_REPAIR_OFF;

	if (set_tcp(fd, TCP_REPAIR, &off, sizeof(off), "repair mode (off)") ||
	    send_all(fd, t->sndq.data + sent, t->unsent, "send queue (unsent part)", grown))
		return -1;
	if (t->peer_fin && replay_peer_fin(fd, ie))
		return -1;
	/* a FIN stuck behind unsent bytes (behind them again), or after the peer's */
	if (t->has_fin_unsent && (t->fin_unsent || t->peer_fin) && shutdown(fd, SHUT_WR)) {
		pr_perror("cannot replay the FIN of a restored TCP connection");
		return -1;
	}
	return 0;
}

/*
 * The sockets a dump put in repair mode: kept so when the tree is killed,
 * switched back when it goes on (-R, a failed or interrupted dump).
 */
const struct res_ops tcp_res = {
	.name = "tcp",
	.dump_state_size = sizeof(struct tcp_repair_list),
	.dump_end = tcp_dump_end,
	.dump_rescue = tcp_dump_rescue,
	.dump_fini = tcp_dump_fini,
};
