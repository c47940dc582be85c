/*
 * netconns - the target of bench/net.sh: one process holding N established
 * TCP connections over 127.0.0.1, with unread data both ways, and the
 * process at the other ends (outside the dumped tree).
 *
 *   netconns serve N DIR    listen on a port the kernel picks (DIR/port),
 *                           accept N connections, close the listener, write
 *                           BYTES of a pattern on each, then DIR/serve.ready
 *   netconns peer N DIR     connect N times to DIR/port, write BYTES of
 *                           the pattern on each, then DIR/peer.ready
 *
 * Neither side reads until SIGUSR1: then it reads BYTES from each of its
 * connections, checks the pattern (which differs per connection and per
 * direction) and writes "ok N" (or what was wrong) to DIR/ROLE.verdict.
 * With N = 0, serve holds no socket at all (the baseline of the bench).
 * Both then wait for SIGKILL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BYTES 4096

static volatile sig_atomic_t check;

static void on_usr1(int sig)
{
	check = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "netconns: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* the byte at offset I of connection C in direction D (0 serve->peer) */
static unsigned char pattern(int c, int d, int i)
{
	return (unsigned char)(c * 7 + d * 101 + i * 13 + (i >> 8));
}

static void put(const char *dir, const char *name, const char *text)
{
	char tmp[4096], path[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) || rename(tmp, path))
		die(path);
}

static void write_all(int fd, int c, int d)
{
	unsigned char buf[BYTES];
	ssize_t n;
	int i, off = 0;

	for (i = 0; i < BYTES; i++)
		buf[i] = pattern(c, d, i);
	while (off < BYTES) {
		n = write(fd, buf + off, BYTES - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write");
		off += n;
	}
}

/* read BYTES from fd; 0 if they are the pattern of connection c */
static int read_check(int fd, int c, int d)
{
	unsigned char buf[BYTES];
	ssize_t n;
	int i, off = 0;

	while (off < BYTES) {
		n = read(fd, buf + off, BYTES - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += n;
	}
	for (i = 0; i < BYTES; i++)
		if (buf[i] != pattern(c, d, i))
			return -1;
	return 0;
}

static void wait_and_check(const char *dir, const char *role, int *fds, int n, int d)
{
	char text[128];
	int i;

	while (!check)
		pause();
	for (i = 0; i < n; i++)
		if (read_check(fds[i], i, d)) {
			snprintf(text, sizeof(text),
				 "connection %d: its %d bytes are wrong or short", i, BYTES);
			break;
		}
	if (i == n)
		snprintf(text, sizeof(text), "ok %d", n);
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "\n");
	char name[64];
	snprintf(name, sizeof(name), "%s.verdict", role);
	put(dir, name, text);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct rlimit rl;
	socklen_t len = sizeof(a);
	char text[64], path[4096];
	int n, i, l, *fds;
	FILE *f;

	if (argc != 4 || (strcmp(argv[1], "serve") && strcmp(argv[1], "peer"))) {
		fprintf(stderr, "usage: netconns serve|peer N DIR\n");
		return 2;
	}
	n = atoi(argv[2]);
	signal(SIGUSR1, on_usr1);
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)n + 16) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fds = calloc(n + 1, sizeof(*fds));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!strcmp(argv[1], "serve")) {
		if (n > 0) {
			l = socket(AF_INET, SOCK_STREAM, 0);
			if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, n) ||
			    getsockname(l, (struct sockaddr *)&a, &len))
				die("listen");
			snprintf(text, sizeof(text), "%d\n", ntohs(a.sin_port));
			put(argv[3], "port", text);
			for (i = 0; i < n; i++) {
				fds[i] = accept(l, NULL, NULL);
				if (fds[i] < 0)
					die("accept");
			}
			close(l);
			/* the peer numbers its connections in the order it made them */
			for (i = 0; i < n; i++)
				write_all(fds[i], i, 0);
		}
		put(argv[3], "serve.ready", "ready\n");
		wait_and_check(argv[3], "serve", fds, n, 1);
	}
	snprintf(path, sizeof(path), "%s/port", argv[3]);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%d", &i) != 1)
		die(path);
	fclose(f);
	a.sin_port = htons(i);
	for (i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof(a)))
			die("connect");
	}
	for (i = 0; i < n; i++)
		write_all(fds[i], i, 1);
	put(argv[3], "peer.ready", "ready\n");
	wait_and_check(argv[3], "peer", fds, n, 0);
	return 0;
}
