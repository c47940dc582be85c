/*
 * Terminals and job control.
 *
 * A pseudo-terminal pair whose master (/dev/ptmx) is held in the tree is
 * saved once, as a tty_entry: its index, the termios of the slave, the
 * window size, packet mode, lock state, the bytes in flight both ways, and
 * the session it is the controlling terminal of with its foreground group.
 * Each open file description of the master (FILE_PTMX), of the slave or of
 * /dev/tty (FILE_TTY) names the pair by index.  A slave whose master is
 * not in the tree is an external object (files.c): with -j it is
 * reconnected to the restorer's terminal.
 *
 * Reading a terminal consumes what it reads, so the dump takes the bytes
 * in flight and puts them back at once: the slave's input is read through
 * a peer of the slave (TIOCGPTPEER) with the line discipline set raw for
 * the moment and pushed back with TIOCSTI, which feeds the line
 * discipline directly; the master's input is read from the master and
 * written again to the slave with output processing off.  A failed or -R
 * dump leaves the terminal as it found it.  Restore does the same on a new
 * pair at the same index (/dev/ptmx is opened until the kernel hands out
 * that index; a taken index is refused).
 *
 * Sessions: the session leader acquires its controlling terminal
 * (TIOCSCTTY) right after setsid(), before it forks the members of its
 * session, so they inherit it; the foreground group is set once every
 * group exists, by a remote ioctl in the leader.  A task in a job-control
 * stop is restored stopped (SIGSTOP queued before it is released), so
 * SIGCONT continues it.
 */
#include <asm/termbits.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "proc.h"
#include "res.h"
#include "util.h"

#define PTY_SLAVE_MAJOR 136  /* 136..143 */
#define TTY_BUF		4095 /* what a line discipline holds (N_TTY_BUF_SIZE - 1) */
/*
 * Bytes beyond a full line discipline wait in the tty's flip buffers, and
 * how many of them fit back depends on how they were written: stasis only
 * takes what a line discipline surely holds again, and refuses more before
 * it takes anything.
 */
#define TTY_KEEP      4000
#define STR_(x)	      #x
#define STR(x)	      STR_(x)
#define K_O_LARGEFILE 0100000 /* the kernel's; glibc defines O_LARGEFILE as 0 on 64-bit */

struct tty_seen {
	uint32_t index;
	pid_t pid; /* a task holding the master, and its fd */
	int fd;
	uint32_t sid; /* the session it is the controlling terminal of */
	int fg_pgrp;
	bool saved;
};

static bool is_pty_slave(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) >= PTY_SLAVE_MAJOR &&
	       major(st->st_rdev) < PTY_SLAVE_MAJOR + 8;
}

static uint32_t slave_index(dev_t rdev)
{
	return (major(rdev) - PTY_SLAVE_MAJOR) * 256 + minor(rdev);
}

/* The devpts instance of /dev/pts: the only one stasis restores ptys in. */
static bool host_devpts(dev_t dev)
{
	struct stat st;

	return !stat("/dev/pts", &st) && st.st_dev == dev;
}

static bool is_ptmx(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(5, 2);
}

static bool is_dev_tty(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(5, 0);
}

/* ------------------------------------------------------------ the scan */

static struct tty_seen *tty_find(struct dump_ctx *ctx, uint32_t index)
{
	size_t i;

	for (i = 0; i < ctx->nttys; i++)
		if (ctx->ttys[i].index == index)
			return &ctx->ttys[i];
	return NULL;
}

/* One fd of the tree: if it is a pty master, note its index. */
static int scan_master(struct dump_ctx *ctx, pid_t pid, int fd, const char *fd_path)
{
	char link[64], name[32], buf[32], *info;
	const char *v;
	ssize_t n;

	n = readlink(fd_path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = '\0';
	if (strcmp(link, "/dev/ptmx") && strcmp(link, "/dev/pts/ptmx"))
		return 0;
	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	info = read_proc(pid, name, NULL);
	v = info ? status_field(info, "tty-index") : NULL;
	if (v && !tty_find(ctx, atoi(v))) {
		snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(v, "\n"), v);
		ctx->ttys = xrealloc(ctx->ttys, (ctx->nttys + 1) * sizeof(*ctx->ttys));
		ctx->ttys[ctx->nttys++] =
		    (struct tty_seen){ .index = atoi(buf), .pid = pid, .fd = fd };
	}
	free(info);
	return 0;
}

/*
 * Which pty masters the tree holds, and which of them is the controlling
 * terminal of a session led in the tree.  Done once, when the first
 * terminal shows up.
 */
static int ttys_scan(struct dump_ctx *ctx)
{
	size_t i;

	if (ctx->ttys_scanned)
		return ctx->ttys_scanned < 0 ? -1 : 0;
	ctx->ttys_scanned = -1;
	if (files_for_each_tree_fd(ctx, scan_master))
		return -1;
	for (i = 0; i < ctx->ntasks; i++) {
		struct proc_stat st;
		struct tty_seen *t;
		pid_t pid = ctx->tasks[i].pid;

		if (ctx->tasks[i].zombie || proc_parse_stat(pid, &st))
			continue;
		if (st.sid != pid || !st.tty_nr)
			continue;
		t = is_pty_slave(&(struct stat){ .st_mode = S_IFCHR, .st_rdev = st.tty_nr })
			? tty_find(ctx, slave_index(st.tty_nr))
			: NULL;
		if (t) {
			t->sid = pid;
			t->fg_pgrp = st.tpgid;
		}
	}
	ctx->ttys_scanned = 1;
	return 0;
}

static bool in_tree(struct dump_ctx *ctx, pid_t pid)
{
	size_t i;

	for (i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].pid == pid)
			return true;
	return false;
}

/* ------------------------------------------------------ the pair's state */

static int set_termios(int master, const struct termios2 *t)
{
	if (ioctl(master, TCSETS2, t)) {
		pr_perror("cannot set a terminal's termios");
		return -1;
	}
	return 0;
}

/*
 * Termios under which bytes go into the slave's line discipline exactly
 * as they were found there: no echo, no signals, no input translation,
 * no special characters but the line ends; output unprocessed.  ICANON
 * (and so the line structure) stays as it is.
 */
static struct termios2 inject_termios(const struct termios2 *t)
{
	struct termios2 r = *t;
	static const int off[] = { VINTR, VQUIT, VERASE,   VKILL,    VEOF,    VSTART,
				   VSTOP, VSUSP, VREPRINT, VDISCARD, VWERASE, VLNEXT };
	size_t i;

	r.c_iflag &= ~(INLCR | IGNCR | ICRNL | IUCLC | ISTRIP | PARMRK | IMAXBEL);
	r.c_oflag &= ~OPOST;
	r.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOPRT | ECHOKE | ISIG | IEXTEN);
	for (i = 0; i < ARRAY_SIZE(off); i++)
		r.c_cc[off[i]] = 0; /* _POSIX_VDISABLE */
	return r;
}

/* Everything readable now (VMIN 0: a read returns what there is). */
static struct termios2 raw_termios(const struct termios2 *t)
{
	struct termios2 r = inject_termios(t);

	r.c_lflag &= ~ICANON;
	r.c_cc[VMIN] = 0;
	r.c_cc[VTIME] = 0;
	return r;
}

/* Read what fd has now (it does not block: nonblocking or VMIN 0). */
static int drain(int fd, ProtobufCBinaryData *out)
{
	size_t cap = 4096;

	out->data = xmalloc(cap);
	out->len = 0;
	for (;;) {
		ssize_t n;

		if (out->len == cap) {
			cap *= 2;
			out->data = xrealloc(out->data, cap);
		}
		n = read(fd, out->data + out->len, cap - out->len);
		if (n > 0) {
			out->len += n;
			continue;
		}
		if (n == 0 || errno == EAGAIN || errno == EIO)
			return 0;
		if (errno != EINTR) {
			pr_perror("cannot read a terminal's pending bytes");
			return -1;
		}
	}
}

static int inq(int fd)
{
	int n = 0;

	return ioctl(fd, FIONREAD, &n) ? -1 : n;
}

/*
 * Put bytes back: into the slave's input with TIOCSTI (synchronous, no
 * flip buffer), into the master's input by writing them to the slave;
 * wait until the master's line discipline has them.  Termios must be
 * inject_termios() of the real one.
 */
static int put_back(int master, int slave, const ProtobufCBinaryData *to_slave,
		    const ProtobufCBinaryData *to_master)
{
	size_t i, done = 0;
	int tries;

	for (i = 0; i < to_slave->len; i++)
		if (ioctl(slave, TIOCSTI, &to_slave->data[i])) {
			pr_perror("cannot put typed-ahead bytes back into a terminal (TIOCSTI)");
			return -1;
		}
	for (tries = 0; done < to_master->len;) {
		ssize_t n = write(slave, to_master->data + done, to_master->len - done);

		if (n > 0) {
			done += n;
		} else if (n < 0 && errno == EAGAIN && ++tries < 20) {
			poll(&(struct pollfd){ .fd = slave, .events = POLLOUT }, 1, 100);
		} else if (n < 0 && errno != EINTR) {
			pr_perror("cannot put output back into a terminal");
			return -1;
		}
	}
	/* the bytes reach the master's line discipline through a workqueue */
	for (tries = 0; to_master->len && tries < 1000; tries++) {
		poll(&(struct pollfd){ .fd = master, .events = POLLIN }, 1, 0);
		if (inq(master) >= (int)min(to_master->len, (size_t)TTY_BUF))
			return 0;
		usleep(1000);
	}
	if (to_master->len) {
		pr_err("terminal output put back did not arrive at the master\n");
		return -1;
	}
	return 0;
}

/* A new fd on the slave of the pair (the pair may be locked). */
static int slave_peer(int master, int flags)
{
	int lock = 0, unlock = 0, fd;

	if (ioctl(master, TIOCGPTLCK, &lock))
		lock = 0;
	if (lock)
		ioctl(master, TIOCSPTLCK, &unlock);
	/* like open(2) would: O_LARGEFILE in, O_CLOEXEC not in the file's flags */
	fd = ioctl(master, TIOCGPTPEER, flags | O_NOCTTY | K_O_LARGEFILE);
	if (fd < 0)
		pr_perror("cannot open the slave of a pty");
	if (lock)
		ioctl(master, TIOCSPTLCK, &lock);
	return fd;
}

/*
 * Take the bytes in flight both ways and put them straight back; the
 * caller saves them.  Packet mode is off meanwhile (a termios change in
 * packet mode would queue a status byte for the master's reader).
 */
static int take_in_flight(int master, const struct termios2 *t, int pkt, TtyEntry *te,
			  const char **why)
{
	struct termios2 raw = raw_termios(t), inj = inject_termios(t);
	int slave, off = 0, on = 1, fl, ret = -1;
	struct stat st;

	te->to_slave.data = te->to_master.data = NULL;
	poll(&(struct pollfd){ .fd = master, .events = POLLIN }, 1, 0);
	if (inq(master) >= TTY_KEEP) {
		*why = "more than " STR(TTY_KEEP) " bytes of output wait for the master's reader";
		return -1;
	}
	if (pkt && ioctl(master, TIOCPKT, &off)) {
		pr_perror("cannot leave packet mode");
		return -1;
	}
	slave = slave_peer(master, O_RDWR | O_NONBLOCK);
	if (slave < 0)
		goto out;
	if (fstat(slave, &st) || !host_devpts(st.st_dev)) {
		*why = "a pty of another devpts instance than /dev/pts";
		close(slave);
		goto out;
	}
	if (inq(slave) >= TTY_KEEP) {
		*why = "more than " STR(TTY_KEEP) " bytes typed ahead wait for the slave's reader";
		goto out_termios;
	}
	/* raw, an unfinished canonical line counts too (if refused, it is a pushed line) */
	if (set_termios(master, &raw))
		goto out_termios;
	if (inq(slave) >= TTY_KEEP) {
		*why = "more than " STR(TTY_KEEP) " bytes typed ahead wait for the slave's reader";
		goto out_termios;
	}
	if (drain(slave, &te->to_slave))
		goto out_termios;
	fl = fcntl(master, F_GETFL);
	if (fl < 0 || fcntl(master, F_SETFL, fl | O_NONBLOCK)) {
		pr_perror("cannot read a pty master");
		goto out_termios;
	}
	/* the descriptor is the task's own: its flags go back at once */
	ret = drain(master, &te->to_master);
	fcntl(master, F_SETFL, fl);
	if (ret)
		goto out_termios;
	ret = -1;
	if (set_termios(master, &inj) || put_back(master, slave, &te->to_slave, &te->to_master))
		goto out_termios;
	ret = 0;
out_termios:
	if (set_termios(master, t))
		ret = -1;
	close(slave);
out:
	if (pkt && ioctl(master, TIOCPKT, &on))
		ret = -1;
	return ret;
}

static int tty_save(struct dump_ctx *ctx, struct tty_seen *s, int master, pid_t pid, int fd)
{
	TtyEntry te = TTY_ENTRY__INIT;
	const char *why = NULL;
	struct termios2 t;
	struct winsize ws;
	int pkt = 0, lck = 0, ret = -1;

	if (ioctl(master, TCGETS2, &t) || ioctl(master, TIOCGWINSZ, &ws) ||
	    ioctl(master, TIOCGPKT, &pkt) || ioctl(master, TIOCGPTLCK, &lck)) {
		pr_perror("pid %d fd %d: cannot read the state of /dev/pts/%u", pid, fd, s->index);
		return -1;
	}
	if (pkt && poll(&(struct pollfd){ .fd = master, .events = POLLPRI }, 1, 0) == 1) {
		pr_err("pid %d fd %d: a packet-mode status byte is pending on pty %u; not "
		       "supported\n",
		       pid, fd, s->index);
		return -1;
	}
	te.index = s->index;
	te.iflag = t.c_iflag;
	te.oflag = t.c_oflag;
	te.cflag = t.c_cflag;
	te.lflag = t.c_lflag;
	te.line = t.c_line;
	te.cc.data = t.c_cc;
	te.cc.len = sizeof(t.c_cc);
	te.ispeed = t.c_ispeed;
	te.ospeed = t.c_ospeed;
	te.rows = ws.ws_row;
	te.cols = ws.ws_col;
	te.xpixel = ws.ws_xpixel;
	te.ypixel = ws.ws_ypixel;
	te.packet = pkt;
	te.locked = lck;
	if (s->sid) {
		te.has_sid = te.has_fg_pgrp = true;
		te.sid = s->sid;
		te.fg_pgrp = s->fg_pgrp > 0 ? s->fg_pgrp : 0;
	}
	if (take_in_flight(master, &t, pkt, &te, &why)) {
		if (why)
			pr_err("pid %d fd %d: /dev/pts/%u: %s; not supported\n", pid, fd, s->index,
			       why);
		else
			pr_err("pid %d fd %d: cannot save the bytes in flight of /dev/pts/%u\n",
			       pid, fd, s->index);
		goto out;
	}
	pr_debug("/dev/pts/%u: %zu byte(s) in flight to the slave, %zu to the master\n", s->index,
		 te.to_slave.len, te.to_master.len);
	if (img_write_msg(&ctx->w, IMG_TTY, &te.base))
		goto out;
	s->saved = true;
	ret = 0;
out:
	free(te.to_slave.data);
	free(te.to_master.data);
	return ret;
}

/* ------------------------------------------------------------ fd kinds */

static bool ptmx_match(const struct fd_dump *d)
{
	return is_ptmx(&d->st);
}

static int ptmx_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct tty_seen *s;
	unsigned int index;

	if (ioctl(d->lfd, TIOCGPTN, &index)) {
		pr_perror("pid %d fd %d: cannot read the pty index", d->pid, d->fd);
		return -1;
	}
	if (ttys_scan(d->ctx))
		return -1;
	s = tty_find(d->ctx, index);
	if (!s) {
		pr_err("pid %d fd %d: pty master %u was not found in the scan of the tree\n",
		       d->pid, d->fd, index);
		return -1;
	}
	fe->has_tty_index = true;
	fe->tty_index = index;
	fe->has_dev = fe->has_ino = false;
	return s->saved ? 0 : tty_save(d->ctx, s, d->lfd, d->pid, d->fd);
}

/* The controlling terminal of pid as a pty index; -1: none, -2: not a pty. */
static long ctty_index(pid_t pid, struct proc_stat *st)
{
	memset(st, 0, sizeof(*st));
	if (proc_parse_stat(pid, st) || !st->tty_nr)
		return -1;
	if (!is_pty_slave(&(struct stat){ .st_mode = S_IFCHR, .st_rdev = st->tty_nr }))
		return -2;
	return slave_index(st->tty_nr);
}

static bool tty_match(const struct fd_dump *d)
{
	if (is_pty_slave(&d->st))
		return host_devpts(d->st.st_dev) && !ttys_scan(d->ctx) &&
		       tty_find(d->ctx, slave_index(d->st.st_rdev));
	/* /dev/tty: the task's controlling terminal, in the tree or the shell's */
	return is_dev_tty(&d->st);
}

static int tty_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct proc_stat st;
	long idx;

	fe->has_dev = fe->has_ino = false;
	if (is_pty_slave(&d->st)) {
		fe->has_tty_index = true;
		fe->tty_index = slave_index(d->st.st_rdev);
		return 0;
	}
	fe->has_tty_dev_tty = fe->tty_dev_tty = true;
	idx = ctty_index(d->pid, &st);
	if (idx == -1) {
		pr_err("pid %d fd %d: /dev/tty of a process without a controlling terminal; not "
		       "supported\n",
		       d->pid, d->fd);
		return -1;
	}
	if (ttys_scan(d->ctx))
		return -1;
	if (idx >= 0 && tty_find(d->ctx, idx)) {
		fe->has_tty_index = true;
		fe->tty_index = idx;
	} else if (in_tree(d->ctx, st.sid)) {
		pr_err("pid %d fd %d: /dev/tty is a terminal outside the tree of a session inside "
		       "it; not supported\n",
		       d->pid, d->fd);
		return -1;
	}
	return 0;
}

/* --------------------------------------------------------- restore side */

/* A new pty master with the given index, or -1 if it is taken. */
static int ptmx_at_index(struct rst_ctx *c, uint32_t index)
{
	int *held = NULL, n = 0, fd = -1, i;
	unsigned int got;

	for (;;) {
		fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("pid %u: cannot open /dev/ptmx", c->t->te->pid);
			break;
		}
		/* one restore task at a time hunts for its index */
		if (!n && flock(fd, LOCK_EX)) {
			pr_perror("cannot lock /dev/ptmx");
			close(fd);
			fd = -1;
			break;
		}
		if (ioctl(fd, TIOCGPTN, &got)) {
			pr_perror("TIOCGPTN");
			close(fd);
			fd = -1;
			break;
		}
		if (got == index)
			break;
		held = xrealloc(held, (n + 1) * sizeof(*held));
		held[n++] = fd;
		if (got > index) {
			pr_err("pid %u: /dev/pts/%u is in use by another process; restore needs it "
			       "free\n",
			       c->t->te->pid, index);
			fd = -1;
			break;
		}
	}
	if (fd >= 0 && !n)
		flock(fd, LOCK_UN);
	for (i = 0; i < n; i++)
		close(held[i]);
	free(held);
	return fd;
}

static int ptmx_open(struct rst_ctx *c, const FileEntry *fe)
{
	const TtyEntry *e = image_tty(c->img, fe->tty_index);
	struct termios2 t, inj;
	struct winsize ws;
	int m, s = -1, zero = 0, one = 1;

	if (!e) {
		pr_err("pid %u: image lacks the state of pty %u\n", c->t->te->pid, fe->tty_index);
		return -1;
	}
	m = ptmx_at_index(c, e->index);
	if (m < 0)
		return -1;
	memset(&t, 0, sizeof(t));
	t.c_iflag = e->iflag;
	t.c_oflag = e->oflag;
	t.c_cflag = e->cflag;
	t.c_lflag = e->lflag;
	t.c_line = e->line;
	memcpy(t.c_cc, e->cc.data, min(e->cc.len, sizeof(t.c_cc)));
	t.c_ispeed = e->ispeed;
	t.c_ospeed = e->ospeed;
	inj = inject_termios(&t);
	ws = (struct winsize){ e->rows, e->cols, e->xpixel, e->ypixel };
	if (ioctl(m, TIOCSPTLCK, &zero))
		goto err;
	s = slave_peer(m, O_RDWR | O_NONBLOCK);
	if (s < 0 || set_termios(m, &inj) || put_back(m, s, &e->to_slave, &e->to_master) ||
	    set_termios(m, &t))
		goto err;
	if (ioctl(m, TIOCSWINSZ, &ws) || (e->packet && ioctl(m, TIOCPKT, &one)) ||
	    (e->locked && ioctl(m, TIOCSPTLCK, &one)) ||
	    fcntl(m, F_SETFL, fe->flags & (O_NONBLOCK | O_APPEND | O_ASYNC))) {
		pr_perror("pid %u: cannot set up /dev/pts/%u", c->t->te->pid, e->index);
		goto err;
	}
	close(s);
	return m;
err:
	pr_err("pid %u: cannot restore pty %u\n", c->t->te->pid, e->index);
	if (s >= 0)
		close(s);
	close(m);
	return -1;
}

static const FileEntry *master_of(struct image *img, uint32_t index)
{
	size_t i;

	for (i = 0; i < img->nfiles; i++)
		if (img->files[i]->type == FILE_TYPE__FILE_PTMX &&
		    img->files[i]->tty_index == index)
			return img->files[i];
	return NULL;
}

/* The master of pty index in this task (opened here if its turn has not come). */
static int master_here(struct rst_ctx *c, uint32_t index)
{
	const FileEntry *m = master_of(c->img, index);
	int slot, fd;

	if (!m) {
		pr_err("pid %u: image lacks the master of pty %u\n", c->t->te->pid, index);
		return -1;
	}
	slot = c->shared_base + m->id;
	if (fcntl(slot, F_GETFD) >= 0)
		return slot;
	fd = ptmx_open(c, m);
	if (fd < 0)
		return -1;
	if (move_fd(fd, slot) < 0) {
		pr_perror("cannot place a pty master");
		close(fd);
		return -1;
	}
	return slot;
}

static int tty_open(struct rst_ctx *c, const FileEntry *fe)
{
	int m, fd, flags = fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC);

	if (fe->tty_dev_tty) {
		const TtyEntry *e = fe->has_tty_index ? image_tty(c->img, fe->tty_index) : NULL;

		if (!fe->has_tty_index && c->opts->detached)
			return open("/dev/null", (flags & O_ACCMODE) | O_CLOEXEC);
		if (e && e->has_sid && getsid(0) != (pid_t)e->sid) {
			pr_err("pid %u: cannot reopen /dev/tty outside session %u\n", c->t->te->pid,
			       e->sid);
			return -1;
		}
		fd = open("/dev/tty", flags | O_CLOEXEC);
		if (fd < 0)
			pr_perror("pid %u: cannot open /dev/tty (%s)", c->t->te->pid,
				  fe->has_tty_index ? "its session's terminal"
						    : "stasis has no controlling terminal");
		return fd;
	}
	m = master_here(c, fe->tty_index);
	if (m < 0)
		return -1;
	fd = slave_peer(m, flags & (O_ACCMODE | O_NONBLOCK | K_O_LARGEFILE));
	if (fd >= 0 && fcntl(fd, F_SETFL, flags & (O_NONBLOCK | O_APPEND | O_ASYNC))) {
		pr_perror("cannot set the flags of /dev/pts/%u", fe->tty_index);
		close(fd);
		return -1;
	}
	return fd;
}

const struct fd_ops ptmx_fd_ops = {
	FILE_TYPE__FILE_PTMX, "pty master", ptmx_match, ptmx_dump, ptmx_open,
};

const struct fd_ops tty_fd_ops = {
	FILE_TYPE__FILE_TTY, "terminal", tty_match, tty_dump, tty_open,
};

/* ------------------------------------------------- files_plan helpers */

/* For a slave or /dev/tty of a pty in the tree: the index of its master's file. */
long tty_master_index(struct image *img, const FileEntry *fe)
{
	size_t lo = 0, hi = img->nmasters;

	if (fe->type != FILE_TYPE__FILE_TTY || !fe->has_tty_index)
		return -1;
	/* the first master with that index (image_load sorted them) */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (img->files[img->masters[mid]]->tty_index < fe->tty_index)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < img->nmasters && img->files[img->masters[lo]]->tty_index == fe->tty_index)
		return img->masters[lo];
	return -1;
}

/* For a pty master: the leader of the session whose terminal it is. */
struct rst_task *tty_session_leader(struct image *img, const FileEntry *fe)
{
	const TtyEntry *e;
	struct rst_task *t;

	if (fe->type != FILE_TYPE__FILE_PTMX)
		return NULL;

	e = image_tty(img, fe->tty_index);
	t = e && e->has_sid ? image_task(img, e->sid) : NULL;
	return t && !t->te->zombie ? t : NULL;
}

/* /dev/tty in a session leader is opened after it has its terminal. */
bool tty_open_later(struct rst_ctx *c, const FileEntry *fe)
{
	TaskEntry *te = c->t->te;

	return fe->type == FILE_TYPE__FILE_TTY && fe->tty_dev_tty && fe->has_tty_index &&
	       te->sid == te->pid && getsid(0) != (pid_t)te->pid;
}

/*
 * In a session leader, right after setsid(): take the controlling
 * terminal, then open the /dev/tty files it holds for its subtree.
 */
int tty_child_session(struct rst_ctx *c)
{
	struct rst_task *t = c->t;
	const TtyEntry *e = NULL;
	size_t i;
	int m, s;

	for (i = 0; i < c->img->nttys; i++)
		if (c->img->ttys[i]->has_sid && c->img->ttys[i]->sid == t->te->pid)
			e = c->img->ttys[i];
	if (!e)
		return 0;
	m = master_here(c, e->index);
	if (m < 0)
		return -1;
	s = slave_peer(m, O_RDWR);
	if (s < 0)
		return -1;
	if (ioctl(s, TIOCSCTTY, 0)) {
		pr_perror("pid %u: cannot make /dev/pts/%u its controlling terminal", t->te->pid,
			  e->index);
		close(s);
		return -1;
	}
	close(s);
	for (i = 0; i < t->n_open; i++) {
		const FileEntry *fe = image_file(c->img, t->open_ids[i]);
		int fd, slot = c->shared_base + t->open_ids[i];

		if (!fe || fe->type != FILE_TYPE__FILE_TTY || !fe->tty_dev_tty ||
		    fcntl(slot, F_GETFD) >= 0)
			continue;
		fd = tty_open(c, fe);
		if (fd < 0 || move_fd(fd, slot) < 0) {
			pr_perror("pid %u: cannot place /dev/tty", t->te->pid);
			return -1;
		}
	}
	return 0;
}

/* Remote, in the session leader: make fg_pgrp its terminal's foreground group. */
static int set_fg_remote(struct rst_ctx *c, uint32_t index, uint32_t pgrp)
{
	static const char dev[] = "/dev/tty";
	unsigned long path = c->rt.scratch, arg = c->rt.scratch + 16;
	int32_t pg = pgrp;
	long fd, ret;

	if (remote_write(c->rt.pid, path, dev, sizeof(dev)) ||
	    remote_write(c->rt.pid, arg, &pg, sizeof(pg)) ||
	    remote_syscall(&c->rt, &fd, __NR_openat, AT_FDCWD, path, O_RDWR | O_NOCTTY, 0, 0, 0))
		return -1;
	if (fd < 0) {
		pr_err("pid %u: cannot open its terminal: %s\n", c->t->te->pid, strerror(-fd));
		return -1;
	}
	if (remote_syscall(&c->rt, &ret, __NR_ioctl, fd, TIOCSPGRP, arg, 0, 0, 0))
		return -1;
	remote_syscall(&c->rt, &fd, __NR_close, fd, 0, 0, 0, 0, 0);
	if (ret) {
		pr_err("pid %u: cannot make group %u the foreground of /dev/pts/%u: %s\n",
		       c->t->te->pid, pgrp, index, strerror(-ret));
		return -1;
	}
	return 0;
}

static bool group_exists(struct image *img, uint32_t pgrp)
{
	size_t i;

	for (i = 0; i < img->ntasks; i++)
		if (!img->tasks[i].te->zombie && img->tasks[i].te->pgid == pgrp)
			return true;
	return false;
}

/*
 * Controller, once every group exists: foreground groups of the
 * terminals in the tree; for a shell job restored in the foreground, the
 * restorer's terminal goes to the job's group if it had its terminal.
 */
int tty_restore_fg(struct rst_ctx *ctx, size_t n, size_t root)
{
	struct image *img = ctx[0].img;
	TaskEntry *rt = ctx[root].t->te;
	size_t i, j;

	for (i = 0; i < img->nttys; i++) {
		const TtyEntry *e = img->ttys[i];

		if (!e->has_sid || !e->fg_pgrp || !group_exists(img, e->fg_pgrp))
			continue;
		for (j = 0; j < n; j++)
			if (ctx[j].t->te->pid == e->sid && !ctx[j].t->te->zombie &&
			    set_fg_remote(&ctx[j], e->index, e->fg_pgrp))
				return -1;
	}
	if (rt->tty_fg && rt->pgid == rt->pid && rt->sid != rt->pid && !image_task(img, rt->sid) &&
	    !ctx[0].opts->detached && !ctx[0].opts->pidns && isatty(0) &&
	    tcgetpgrp(0) == getpgrp() && tcsetpgrp(0, ctx[root].host_pid)) {
		pr_perror("cannot give the terminal to the restored job");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------- tasks, job control */

/*
 * Per task at dump: job-control stop, whether its group had the
 * terminal, and the sessions stasis can rebuild.  A task whose session
 * and terminal are outside the tree is (part of) a shell job: say that -j
 * is needed.  (A session outside the tree without a terminal, as for a
 * subtree or a process started by a script, needs no -j: the tree joins
 * the restorer's session either way.)
 */
int tty_dump_task(struct dump_ctx *ctx, struct dump_task *dt)
{
	TaskEntry *te = dt->te;
	struct proc_stat st;
	long idx;

	if (dt->nth && dt->th[0].rt.stop_sig) {
		te->has_stop_sig = true;
		te->stop_sig = dt->th[0].rt.stop_sig;
	}
	idx = ctty_index(dt->pid, &st);
	if (st.tty_nr && st.tpgid > 0 && st.tpgid == st.pgid)
		te->has_tty_fg = te->tty_fg = true;
	if (st.tty_nr && st.sid != dt->pid && !in_tree(ctx, st.sid)) {
		if (!ctx->opts->shell_job) {
			char name[32];

			if (idx >= 0)
				snprintf(name, sizeof(name), "/dev/pts/%ld", idx);
			else
				snprintf(name, sizeof(name), "device %u:%u", major(st.tty_nr),
					 minor(st.tty_nr));
			pr_err(
			    "pid %d is a shell job: its terminal (%s) and session %d are outside "
			    "the tree; dump it with -j (--shell-job) and restore it with -j\n",
			    dt->pid, name, st.sid);
			return -1;
		}
		te->has_ext_ctty = te->ext_ctty = true;
	}
	if (st.sid == dt->pid && st.tty_nr) {
		if (ttys_scan(ctx))
			return -1;
		if (idx < 0 || !tty_find(ctx, idx)) {
			pr_err(
			    "pid %d: its controlling terminal (device %u:%u) is outside the tree; "
			    "not supported\n",
			    dt->pid, major(st.tty_nr), minor(st.tty_nr));
			return -1;
		}
	}
	return 0;
}

/* Restore: the image says a shell job; the user must say so too. */
int tty_check_shell_job(struct image *img, const struct restore_opts *o)
{
	size_t i;

	for (i = 0; i < img->ntasks && !o->shell_job; i++)
		if (img->tasks[i].te->ext_ctty) {
			pr_err("pid %u was dumped as a shell job (its session and terminal were "
			       "outside the tree); restore it with -j (--shell-job)\n",
			       img->tasks[i].te->pid);
			return -1;
		}
	return 0;
}

/* Controller, just before a task is released: a stopped job stays stopped. */
int tty_stop_job(struct rst_ctx *c)
{
	if (!c->t->te->stop_sig)
		return 0;
	if (kill(c->rt.pid, SIGSTOP)) {
		pr_perror("pid %u: cannot stop it again", c->t->te->pid);
		return -1;
	}
	return 0;
}
