/*
 * Helpers of the socket kinds (netlink.c, packet.c, unix_scan.c): integer
 * socket options, the network namespace a socket belongs to, and the
 * sock_diag dump that lists a family's sockets.  The tree's sockets live in
 * the tree's network namespace, which may not be ours (res/ns_net.c sets
 * it with sk_set_netns): sockets are compared with it and the sock_diag
 * socket is opened in it.
 */
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <sched.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sk.h"
#include "util.h"

static int sk_netns = -1; /* the tree's network namespace; -1: ours */

void sk_set_netns(int fd)
{
	if (sk_netns >= 0)
		close(sk_netns);
	sk_netns = fd;
}

int sk_netns_fd(void)
{
	return sk_netns;
}

/* Open a netlink socket of the given bus in the tree's network namespace. */
struct mnl_socket *sk_mnl_open(int bus)
{
	struct mnl_socket *nl;
	int ours;

	if (sk_netns < 0)
		return mnl_socket_open(bus);
	ours = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ours < 0 || setns(sk_netns, CLONE_NEWNET)) {
		pr_perror("cannot enter the tree's network namespace");
		if (ours >= 0)
			close(ours);
		return NULL;
	}
	nl = mnl_socket_open(bus);
	if (setns(ours, CLONE_NEWNET)) {
		pr_perror("cannot go back to our own network namespace");
		abort();
	}
	close(ours);
	return nl;
}

int sk_get_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	return getsockopt(fd, level, name, &v, &len) ? -1 : v;
}

int sk_set_int(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val));
}

bool sk_in_our_netns(int fd)
{
	struct stat a, b;
	int ns = ioctl(fd, SIOCGSKNS);
	bool ok;

	if (ns < 0)
		return false;
	ok = !fstat(ns, &a) &&
	     !(sk_netns >= 0 ? fstat(sk_netns, &b) : stat("/proc/self/ns/net", &b)) &&
	     a.st_ino == b.st_ino && a.st_dev == b.st_dev;
	close(ns);
	return ok;
}

int sk_diag_dump(const void *req, size_t len, mnl_cb_t cb, void *data)
{
	struct mnl_socket *nl = sk_mnl_open(NETLINK_SOCK_DIAG);
	size_t bufsz = 32768;
	char *buf = xmalloc(bufsz);
	unsigned int seq = 1, portid;
	struct nlmsghdr *nlh;
	int ret = -1, n;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		pr_perror("cannot open a sock_diag netlink socket");
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	memcpy(mnl_nlmsg_put_extra_header(nlh, len), req, len);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		pr_perror("sock_diag request");
		goto out;
	}
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, bufsz);
		if (n > 0)
			n = mnl_cb_run(buf, n, seq, portid, cb, data);
		if (n < 0) {
			pr_perror("sock_diag answer");
			goto out;
		}
		if (n == MNL_CB_STOP)
			break;
	}
	ret = 0;
out:
	if (nl)
		mnl_socket_close(nl);
	free(buf);
	return ret;
}
