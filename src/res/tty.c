/*
 * Terminals: pty pairs and the fd kinds on them (FILE_PTMX, FILE_TTY);
 * which device numbers are terminals is known here alone.
 *
 * A pseudo-terminal pair whose master (/dev/ptmx) is held in the tree is
 * saved once, as a tty_entry: its index, the termios of the slave, the
 * window size, packet mode, lock state, the bytes in flight both ways, and
 * the session it is the controlling terminal of with its foreground group.
 * Each open file description of the master (FILE_PTMX), of the slave or of
 * /dev/tty (FILE_TTY) names the pair by index.  A slave whose master is
 * not in the tree is an external object (fs_plain.c): with -j it is
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
 * A tree in a mount namespace of its own may hold ptys of a devpts of its
 * own (a container's /dev/pts, mounted newinstance), which ns_mnt.c
 * mounts anew at restore.  Such a pair is saved the same way, with the
 * ptmx node its master was opened by (/dev/ptmx or pts/ptmx, as the tree
 * names it); the restore opens that node in the rebuilt mount namespace,
 * so the pair comes back at its index in the new instance.  Indexes are
 * per instance, so the ptys of the tree must all be of one instance:
 * the host's /dev/pts, or one devpts the tree mounts.
 *
 * Sessions and job control are in tty_job.c.
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
#include "ns.h"
#include "proc.h"
#include "res.h"
#include "tty.h"
#include "util.h"

#define TTY_MAJOR	4    /* virtual consoles, serial ports */
#define TTYAUX_MAJOR	5    /* /dev/tty, /dev/console, /dev/ptmx */
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

const TtyEntry *tty_pair(struct image *img, uint32_t index)
{
	struct tty_image *ti = res_image_state(img, &tty_res);
	size_t i;

	for (i = 0; i < ti->n; i++)
		if (ti->v[i]->index == index)
			return ti->v[i];
	return NULL;
}

bool tty_is_terminal(const struct stat *st)
{
	unsigned int maj = major(st->st_rdev);

	return S_ISCHR(st->st_mode) && (maj == TTY_MAJOR || maj == TTYAUX_MAJOR ||
					(maj >= PTY_SLAVE_MAJOR && maj < PTY_SLAVE_MAJOR + 8));
}

bool tty_is_pty_slave(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) >= PTY_SLAVE_MAJOR &&
	       major(st->st_rdev) < PTY_SLAVE_MAJOR + 8;
}

uint32_t tty_slave_index(dev_t rdev)
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
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(TTYAUX_MAJOR, 2);
}

static bool is_dev_tty(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(TTYAUX_MAJOR, 0);
}

/* ------------------------------------------------------------ the scan */

struct tty_seen *tty_find(struct dump_ctx *ctx, uint32_t index)
{
	struct tty_dump *td = res_dump_state(ctx, &tty_res);
	size_t i;

	for (i = 0; i < td->n; i++)
		if (td->v[i].index == index)
			return &td->v[i];
	return NULL;
}

/* The devpts instance of the pair whose master is pid's fd (0: unknown). */
static dev_t pair_devpts(pid_t pid, int fd)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0), m = -1, s = -1;
	struct stat st = { 0 };

	if (pidfd >= 0)
		m = syscall(__NR_pidfd_getfd, pidfd, fd, 0);
	if (m >= 0)
		s = tty_slave_peer(m, O_RDONLY | O_NONBLOCK);
	if (s < 0 || fstat(s, &st))
		st.st_dev = 0;
	if (s >= 0)
		close(s);
	if (m >= 0)
		close(m);
	if (pidfd >= 0)
		close(pidfd);
	return st.st_dev;
}

/* One fd of the tree: if it is a pty master, note its index. */
static int scan_master(struct dump_ctx *ctx, pid_t pid, int fd, const char *fd_path)
{
	char link[PATH_MAX], name[32], buf[32], *info;
	struct tty_seen *t;
	struct stat st;
	const char *v;
	dev_t dev;
	ssize_t n;

	n = readlink(fd_path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = '\0';
	if (strcmp(link, "/dev/ptmx") && strcmp(link, "/dev/pts/ptmx") &&
	    (stat(fd_path, &st) || !is_ptmx(&st)))
		return 0; /* the ptmx node of another devpts is named by its mount */
	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	info = read_proc(pid, name, NULL);
	v = info ? status_field(info, "tty-index") : NULL;
	/* one entry per pair: per index and instance (devpts_check refuses two) */
	dev = v ? pair_devpts(pid, fd) : 0;
	t = v ? tty_find(ctx, atoi(v)) : NULL;
	if (v && (!t || t->devpts != dev)) {
		struct tty_dump *td = res_dump_state(ctx, &tty_res);

		snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(v, "\n"), v);
		td->v = xrealloc(td->v, (td->n + 1) * sizeof(*td->v));
		t = &td->v[td->n++];
		*t = (struct tty_seen){ .index = atoi(buf), .pid = pid, .fd = fd };
		t->ptmx = xstrdup(link);
		t->devpts = dev;
	}
	free(info);
	return 0;
}

/*
 * Which pty masters the tree holds, and which of them is the controlling
 * terminal of a session led in the tree.  Done once, when the first
 * terminal shows up (ptmx_fd_ops.prescan, through fd_prescan()).
 */
static int ttys_scan(struct dump_ctx *ctx)
{
	size_t i;

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
		t = tty_is_pty_slave(&(struct stat){ .st_mode = S_IFCHR, .st_rdev = st.tty_nr })
			? tty_find(ctx, tty_slave_index(st.tty_nr))
			: NULL;
		if (t) {
			t->sid = pid;
			t->fg_pgrp = st.tpgid;
		}
	}
	return 0;
}

int tty_scan_once(struct dump_ctx *ctx)
{
	return fd_prescan(ctx, &ptmx_fd_ops);
}

void tty_dump_fini(struct dump_ctx *ctx, void *state)
{
	struct tty_dump *td = state;
	size_t i;

	for (i = 0; i < td->n; i++)
		free(td->v[i].ptmx);
	free(td->v);
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
 * May we put bytes into a terminal's input with TIOCSTI?  The kernel wants
 * CAP_SYS_ADMIN (in the initial user namespace) for a terminal that is not
 * our controlling one, and refuses everybody when dev.tty.legacy_tiocsti
 * is 0 but for it.  Tried once on a pair of our own.
 */
static bool tiocsti_allowed(void)
{
	static int ok = -1;
	int m, s, zero = 0;
	char c = 'x';

	if (ok >= 0)
		return ok;
	ok = 0;
	m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return ok;
	if (!ioctl(m, TIOCSPTLCK, &zero)) {
		s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (s >= 0) {
			ok = !ioctl(s, TIOCSTI, &c);
			close(s);
		}
	}
	close(m);
	return ok;
}

/*
 * Put bytes back: into the slave's input with TIOCSTI (synchronous, no
 * flip buffer), into the master's input by writing them to the slave;
 * wait until the master's line discipline has them.  Termios must be
 * inject_termios() of the real one.
 */
static int feed_slave(int master, int slave, const ProtobufCBinaryData *b,
		      const struct termios2 *t);

static int put_back(int master, int slave, const ProtobufCBinaryData *to_slave,
		    const ProtobufCBinaryData *to_master, const struct termios2 *t)
{
	size_t done = 0;
	int tries;

	if (feed_slave(master, slave, to_slave, t))
		return -1;
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

/* Does b hold the end of a canonical line (a newline, VEOL, VEOL2)? */
static bool has_line_end(const ProtobufCBinaryData *b, const struct termios2 *t)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		if (b->data[i] == '\n' || (t->c_cc[VEOL] && b->data[i] == t->c_cc[VEOL]) ||
		    (t->c_cc[VEOL2] && b->data[i] == t->c_cc[VEOL2]))
			return true;
	return false;
}

/*
 * The slave's input back: with TIOCSTI where we may, else (a normal user)
 * written to the master, which the line discipline takes the same way (t
 * is inject_termios(): no echo, no signals) but later, from the pty's
 * flip buffer.  Done is then: all of it readable (not canonical), or, for
 * an unfinished canonical line, which nothing shows, a poll of the slave,
 * which waits for the flip buffer's work while no line is complete.  Whole
 * canonical lines are refused at dump (tty_save); here too.
 */
static int feed_slave(int master, int slave, const ProtobufCBinaryData *b, const struct termios2 *t)
{
	bool canon = t->c_lflag & ICANON;
	size_t i, done = 0;
	int tries;

	if (!b->len)
		return 0;
	if (tiocsti_allowed()) {
		for (i = 0; i < b->len; i++)
			if (ioctl(slave, TIOCSTI, &b->data[i])) {
				pr_perror("cannot put typed-ahead bytes back into a terminal "
					  "(TIOCSTI)");
				return -1;
			}
		return 0;
	}
	if (canon && has_line_end(b, t)) {
		pr_err("cannot put whole typed-ahead lines back into a terminal: TIOCSTI needs "
		       "CAP_SYS_ADMIN\n");
		return -1;
	}
	for (tries = 0; done < b->len;) {
		ssize_t n = write(master, b->data + done, b->len - done);

		if (n > 0)
			done += n;
		else if (n < 0 && errno == EAGAIN && ++tries < 20)
			poll(&(struct pollfd){ .fd = master, .events = POLLOUT }, 1, 100);
		else if (n < 0 && errno != EINTR) {
			pr_perror("cannot put typed-ahead bytes back into a terminal");
			return -1;
		}
	}
	for (tries = 0; tries < 1000; tries++) {
		poll(&(struct pollfd){ .fd = slave, .events = POLLIN }, 1, 0);
		if (canon || inq(slave) >= (int)b->len)
			return 0;
		usleep(1000);
	}
	pr_err("typed-ahead bytes put back did not arrive at the terminal\n");
	return -1;
}

/* A new fd on the slave of the pair (the pair may be locked). */
int tty_slave_peer(int master, int flags)
{
	int lock = 0, unlock = 0, fd;

	if (ioctl(master, TIOCGPTLCK, &lock))
		lock = 0;
	if (lock)
		ioctl(master, TIOCSPTLCK, &unlock);
	/*
	 * O_LARGEFILE only when asked: open(2) adds it, TIOCGPTPEER (what
	 * glibc's openpty uses, so sshd's sessions) does not, and F_SETFL
	 * cannot change it afterwards.  O_CLOEXEC is not in the file's flags.
	 */
	fd = ioctl(master, TIOCGPTPEER, flags | O_NOCTTY);
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
static int take_in_flight(int master, dev_t want, const struct termios2 *t, int pkt, TtyEntry *te,
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
	slave = tty_slave_peer(master, O_RDWR | O_NONBLOCK);
	if (slave < 0)
		goto out;
	if (fstat(slave, &st) || st.st_dev != want) {
		*why = "its devpts instance changed during the dump";
		close(slave);
		goto out;
	}
	if (inq(slave) >= TTY_KEEP) {
		*why = "more than " STR(TTY_KEEP) " bytes typed ahead wait for the slave's reader";
		goto out_termios;
	}
	/*
	 * Whole canonical lines typed ahead go back as lines through TIOCSTI
	 * only (feed_slave): without it (a normal user) they are refused
	 * here, before the switch to raw below would make them one line.
	 */
	if ((t->c_lflag & ICANON) && inq(slave) > 0 && !tiocsti_allowed()) {
		*why = "whole lines typed ahead wait for the slave's reader, and putting them "
		       "back as lines (TIOCSTI) needs CAP_SYS_ADMIN";
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
	if (set_termios(master, &inj) ||
	    put_back(master, slave, &te->to_slave, &te->to_master, &inj))
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

/* The slave's node in its devpts: its mode and owner come back. */
static int slave_node_attrs(int master, unsigned int index, bool host, TtyEntry *te)
{
	char path[32];
	struct stat st;
	int s, ret;

	snprintf(path, sizeof(path), "/dev/pts/%u", index);
	if (host) {
		if (stat(path, &st))
			return -1;
	} else {
		/* another instance: its node through a peer of the slave */
		s = tty_slave_peer(master, O_RDONLY | O_NONBLOCK);
		if (s < 0)
			return -1;
		ret = fstat(s, &st);
		close(s);
		if (ret)
			return -1;
	}
	te->has_slave_mode = te->has_slave_uid = te->has_slave_gid = true;
	te->slave_mode = st.st_mode & 07777;
	te->slave_uid = st.st_uid;
	te->slave_gid = st.st_gid;
	return 0;
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
	if (!host_devpts(s->devpts))
		te.ptmx = s->ptmx;
	if (slave_node_attrs(master, s->index, host_devpts(s->devpts), &te)) {
		pr_perror("pid %d fd %d: cannot stat /dev/pts/%u", pid, fd, s->index);
		return -1;
	}
	if (s->sid) {
		te.has_sid = te.has_fg_pgrp = true;
		te.sid = s->sid;
		te.fg_pgrp = s->fg_pgrp > 0 ? s->fg_pgrp : 0;
	}
	if (take_in_flight(master, s->devpts, &t, pkt, &te, &why)) {
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

/*
 * The pair is of the host's /dev/pts or of a devpts the tree mounts (and
 * the restore mounts anew), and every pair of the tree of the same one.
 */
static int devpts_check(const struct fd_dump *d, const struct tty_seen *s)
{
	struct tty_dump *td = res_dump_state(d->ctx, &tty_res);
	size_t i;

	if (!s->devpts) {
		pr_err("pid %d fd %d: cannot find the devpts instance of pty %u\n", d->pid, d->fd,
		       s->index);
		return -1;
	}
	if (!host_devpts(s->devpts) &&
	    (!mnt_dump_dev_rebuilt(s->devpts) || s->ptmx[0] != '/' || !s->ptmx[1])) {
		pr_err("pid %d fd %d: pty %u is of a devpts instance that is neither /dev/pts nor "
		       "one the tree mounts; not supported\n",
		       d->pid, d->fd, s->index);
		return -1;
	}
	for (i = 0; i < td->n; i++)
		if (td->v[i].devpts != s->devpts) {
			pr_err("pid %d fd %d: the tree holds ptys of two devpts instances (pty %u "
			       "and pty %u); not supported\n",
			       d->pid, d->fd, s->index, td->v[i].index);
			return -1;
		}
	return 0;
}

static int ptmx_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct tty_seen *s;
	unsigned int index;

	if (ioctl(d->lfd, TIOCGPTN, &index)) {
		pr_perror("pid %d fd %d: cannot read the pty index", d->pid, d->fd);
		return -1;
	}
	if (tty_scan_once(d->ctx))
		return -1;
	s = tty_find(d->ctx, index);
	if (!s) {
		pr_err("pid %d fd %d: pty master %u was not found in the scan of the tree\n",
		       d->pid, d->fd, index);
		return -1;
	}
	if (!s->saved && devpts_check(d, s))
		return -1;
	fe->ptmx = xmalloc(sizeof(*fe->ptmx));
	tty_file_entry__init(fe->ptmx);
	fe->ptmx->has_index = true;
	fe->ptmx->index = index;
	return s->saved ? 0 : tty_save(d->ctx, s, d->lfd, d->pid, d->fd);
}

/* The controlling terminal of pid as a pty index; -1: none, -2: not a pty. */
long tty_ctty_index(pid_t pid, struct proc_stat *st)
{
	memset(st, 0, sizeof(*st));
	if (proc_parse_stat(pid, st) || !st->tty_nr)
		return -1;
	if (!tty_is_pty_slave(&(struct stat){ .st_mode = S_IFCHR, .st_rdev = st->tty_nr }))
		return -2;
	return tty_slave_index(st->tty_nr);
}

static bool tty_match(const struct fd_dump *d)
{
	struct tty_seen *s;

	if (tty_is_pty_slave(&d->st)) {
		if (tty_scan_once(d->ctx))
			return false;
		s = tty_find(d->ctx, tty_slave_index(d->st.st_rdev));
		/* the index of a pair in the tree, and the same instance */
		return s && s->devpts == d->st.st_dev;
	}
	/* /dev/tty: the task's controlling terminal, in the tree or the shell's */
	return is_dev_tty(&d->st);
}

static int tty_dump(const struct fd_dump *d, FileEntry *fe)
{
	TtyFileEntry *tf = xmalloc(sizeof(*tf));
	struct proc_stat st;
	long idx;

	tty_file_entry__init(tf);
	fe->tty = tf;
	if (tty_is_pty_slave(&d->st)) {
		tf->has_index = true;
		tf->index = tty_slave_index(d->st.st_rdev);
		return 0;
	}
	tf->has_dev_tty = tf->dev_tty = true;
	idx = tty_ctty_index(d->pid, &st);
	if (idx == -1) {
		pr_err("pid %d fd %d: /dev/tty of a process without a controlling terminal; not "
		       "supported\n",
		       d->pid, d->fd);
		return -1;
	}
	if (tty_scan_once(d->ctx))
		return -1;
	if (idx >= 0 && tty_find(d->ctx, idx)) {
		tf->has_index = true;
		tf->index = idx;
	} else if (dump_tree_has(d->ctx, st.sid)) {
		pr_err("pid %d fd %d: /dev/tty is a terminal outside the tree of a session inside "
		       "it; not supported\n",
		       d->pid, d->fd);
		return -1;
	}
	return 0;
}

/* --------------------------------------------------------- restore side */

/* A new pty master with the given index, or -1 if it is taken. */
static int ptmx_at_index(struct rst_ctx *c, uint32_t index, const char *ptmx)
{
	int *held = NULL, n = 0, fd = -1, i;
	unsigned int got;

	for (;;) {
		fd = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("pid %u: cannot open %s", c->t->te->pid, ptmx);
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
	const TtyEntry *e = tty_pair(c->img, fe->ptmx->index);
	struct termios2 t, inj;
	struct winsize ws;
	int m, s = -1, zero = 0, one = 1;

	if (!e) {
		pr_err("pid %u: image lacks the state of pty %u\n", c->t->te->pid, fe->ptmx->index);
		return -1;
	}
	if (e->ptmx && (e->ptmx[0] != '/' || strstr(e->ptmx, "/../"))) {
		pr_err("pid %u: image has a bad ptmx node '%s' for pty %u\n", c->t->te->pid,
		       e->ptmx, e->index);
		return -1;
	}
	m = ptmx_at_index(c, e->index, e->ptmx ? e->ptmx : "/dev/ptmx");
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
	s = tty_slave_peer(m, O_RDWR | O_NONBLOCK);
	if (s < 0 ||
	    (e->has_slave_uid &&
	     fchown(s, e->slave_uid, e->has_slave_gid ? e->slave_gid : (gid_t)-1)) ||
	    (e->has_slave_mode && fchmod(s, e->slave_mode)) || set_termios(m, &inj) ||
	    put_back(m, s, &e->to_slave, &e->to_master, &inj) || set_termios(m, &t))
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
	FileEntry **files;
	size_t i, n;

	files = image_files(img, &n);
	for (i = 0; i < n; i++)
		if (files[i]->type == FILE_TYPE__FILE_PTMX && files[i]->ptmx->index == index)
			return files[i];
	return NULL;
}

/* The master of pty index in this task (opened here if its turn has not come). */
int tty_master_here(struct rst_ctx *c, uint32_t index)
{
	const FileEntry *m = master_of(c->img, index);
	int slot, fd;

	if (!m) {
		pr_err("pid %u: image lacks the master of pty %u\n", c->t->te->pid, index);
		return -1;
	}
	slot = c->shared_base + m->id;
	if (fd_shared_placed(c, m->id))
		return slot;
	fd = ptmx_open(c, m);
	if (fd < 0 || fd_place_shared(c, m->id, fd))
		return -1;
	return slot;
}

int tty_open(struct rst_ctx *c, const FileEntry *fe)
{
	int m, fd, flags = fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC);
	const TtyFileEntry *tf = fe->tty;

	if (tf->dev_tty) {
		const TtyEntry *e = tf->has_index ? tty_pair(c->img, tf->index) : NULL;

		if (!tf->has_index && c->opts->detached)
			return open("/dev/null", (flags & O_ACCMODE) | O_CLOEXEC);
		if (e && e->has_sid && getsid(0) != image_own_pid(c->img, e->sid)) {
			pr_err("pid %u: cannot reopen /dev/tty outside session %u\n", c->t->te->pid,
			       e->sid);
			return -1;
		}
		fd = open("/dev/tty", flags | O_CLOEXEC);
		if (fd < 0)
			pr_perror("pid %u: cannot open /dev/tty (%s)", c->t->te->pid,
				  tf->has_index ? "its session's terminal"
						: "stasis has no controlling terminal");
		return fd;
	}
	m = tty_master_here(c, tf->index);
	if (m < 0)
		return -1;
	fd = tty_slave_peer(m, flags & (O_ACCMODE | O_NONBLOCK | K_O_LARGEFILE));
	if (fd >= 0 && fcntl(fd, F_SETFL, flags & (O_NONBLOCK | O_APPEND | O_ASYNC))) {
		pr_perror("cannot set the flags of /dev/pts/%u", tf->index);
		close(fd);
		return -1;
	}
	return fd;
}

/* ----------------------------------------------------- planning, loading */

/* A slave or /dev/tty of a pty in the tree: its master is opened above its users. */
static void tty_plan(struct fd_plan *p, const FileEntry *fe)
{
	const FileEntry *m =
	    fe->tty->has_index ? master_of(fd_plan_image(p), fe->tty->index) : NULL;

	if (m)
		fd_plan_join(p, m->id, fe->id);
}

/* A pty master: opened above the leader of the session whose terminal it is too. */
static void ptmx_plan(struct fd_plan *p, const FileEntry *fe)
{
	struct image *img = fd_plan_image(p);
	const TtyEntry *e = tty_pair(img, fe->ptmx->index);
	struct rst_task *t = e && e->has_sid ? image_task(img, e->sid) : NULL;

	if (t && !t->te->zombie)
		fd_plan_use(p, fe->id, t);
}

/* /dev/tty in a session leader is opened after it has its terminal. */
static bool tty_open_later(struct rst_ctx *c, const FileEntry *fe)
{
	TaskEntry *te = c->t->te;

	return fe->tty->dev_tty && fe->tty->has_index && te->sid == te->pid &&
	       getsid(0) != te_pid_inside(te);
}

int tty_load(struct image *img, const struct img_rec_hdr *h, void *msg)
{
	struct tty_image *ti = res_image_state(img, &tty_res);

	ti->v = xrealloc(ti->v, (ti->n + 1) * sizeof(*ti->v));
	ti->v[ti->n++] = msg;
	return 0;
}

void tty_image_fini(struct image *img, void *state)
{
	struct tty_image *ti = state;
	size_t i;

	for (i = 0; i < ti->n; i++)
		tty_entry__free_unpacked(ti->v[i], NULL);
	free(ti->v);
}

const struct fd_ops ptmx_fd_ops = {
	.type = FILE_TYPE__FILE_PTMX,
	.kind = FILE_ENTRY__KIND_PTMX,
	.name = "pty master",
	.prescan = ttys_scan,
	.match = ptmx_match,
	.dump = ptmx_dump,
	.lock = &flock_fd_lock,
	.plan = ptmx_plan,
	.open = ptmx_open,
};

/* shares the masters' scan (fd_prescan(&ptmx_fd_ops)) */
const struct fd_ops tty_fd_ops = {
	.type = FILE_TYPE__FILE_TTY,
	.kind = FILE_ENTRY__KIND_TTY,
	.name = "terminal",
	.match = tty_match,
	.dump = tty_dump,
	.lock = &flock_fd_lock,
	.plan = tty_plan,
	.open_later = tty_open_later,
	.open = tty_open,
};
