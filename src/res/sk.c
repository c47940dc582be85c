/*
 * Helpers of the socket kinds (netlink.c, packet.c): integer socket
 * options, and the network namespace a socket belongs to.
 */
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk.h"

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
	ok = !fstat(ns, &a) && !stat("/proc/self/ns/net", &b) && a.st_ino == b.st_ino &&
	     a.st_dev == b.st_dev;
	close(ns);
	return ok;
}
