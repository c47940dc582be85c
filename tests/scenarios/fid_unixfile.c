/*
 * fid_unixfile: the files of bound unix sockets keep their mode, owner,
 * group and times.  A listening stream socket at WORKDIR/lsock (mode 0640,
 * owned by 4321:8765 when run as root) and a bound datagram socket at
 * WORKDIR/dsock (mode 0600) whose times are set to fixed values.
 *
 * The check: each file is a socket with the same mode, owner, group and
 * mtime, its atime not older (a connect to it touches its atime), the sockets keep their names.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "scenario.h"

struct sock_file {
	const char *name;
	int type;
	mode_t mode;
	struct stat st;
	int fd;
};

static struct sock_file files[] = {
	{ "lsock", SOCK_STREAM, 0640, { 0 }, -1 },
	{ "dsock", SOCK_DGRAM, 0600, { 0 }, -1 },
};

static void make_one(struct sock_file *f, int n)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timespec ts[2] = { { 1000000000 + n * 1000, 123456789 },
				  { 1100000000 + n * 1000, 987654321 } };

	strcpy(sun.sun_path, f->name);
	unlink(f->name);
	f->fd = socket(AF_UNIX, f->type, 0);
	if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    (f->type == SOCK_STREAM && listen(f->fd, 4)) || chmod(f->name, f->mode) ||
	    (getuid() == 0 && chown(f->name, 4321 + n, 8765 + n)) ||
	    utimensat(AT_FDCWD, f->name, ts, 0) || stat(f->name, &f->st)) {
		scn_log("setup %s: %s", f->name, strerror(errno));
		exit(2);
	}
}

static const char *check_one(const struct sock_file *f)
{
	static char why[256];
	struct stat st;

	if (stat(f->name, &st)) {
		snprintf(why, sizeof(why), "%s: %s", f->name, strerror(errno));
		return why;
	}
	if (!S_ISSOCK(st.st_mode) || st.st_mode != f->st.st_mode || st.st_uid != f->st.st_uid ||
	    st.st_gid != f->st.st_gid) {
		snprintf(why, sizeof(why), "%s: mode %o owner %u:%u, was %o %u:%u", f->name,
			 st.st_mode, st.st_uid, st.st_gid, f->st.st_mode, f->st.st_uid,
			 f->st.st_gid);
		return why;
	}
	if (st.st_mtim.tv_sec != f->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != f->st.st_mtim.tv_nsec ||
	    st.st_atim.tv_sec < f->st.st_atim.tv_sec) {
		snprintf(why, sizeof(why), "%s: mtime %ld.%09ld atime %ld, was %ld.%09ld %ld",
			 f->name, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_atim.tv_sec,
			 f->st.st_mtim.tv_sec, f->st.st_mtim.tv_nsec, f->st.st_atim.tv_sec);
		return why;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *why;
	size_t i;

	scn_init(argc, argv, 1);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		make_one(&files[i], (int)i);
	scn_ready_then_wait();

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		why = check_one(&files[i]);
		SCN_CHECK(!why, "%s", why);
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		socklen_t len = sizeof(sun);

		SCN_CHECK(!getsockname(files[i].fd, (struct sockaddr *)&sun, &len) &&
			      !strcmp(sun.sun_path, files[i].name),
			  "%s: the socket lost its name", files[i].name);
	}
	scn_pass();
}
