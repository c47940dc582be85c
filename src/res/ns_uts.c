/*
 * UTS namespaces: a namespace of the tree is saved as its hostname and
 * domain name, read from inside, and its creator sets both in a new one.
 * (ns.c decides who is in which and who creates it; see src/include/ns.h.)
 */
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "log.h"
#include "ns.h"
#include "util.h"

static int look_uts(pid_t pid, NsEntry *e)
{
	struct utsname u;

	if (uname(&u)) {
		pr_perror("pid %d: uname", pid);
		return -1;
	}
	e->hostname = xstrdup(u.nodename);
	e->domainname = xstrdup(u.domainname);
	return 0;
}

static int uts_describe(const struct ns_view *v, size_t task, NsEntry *e)
{
	return ns_look_inside(ns_view_pid(v, task), &uts_ns_kind, e, look_uts);
}

static bool uts_valid(const NsEntry *e)
{
	return e->hostname && e->domainname && strlen(e->hostname) <= HOST_NAME_MAX &&
	       strlen(e->domainname) <= HOST_NAME_MAX;
}

static int uts_create(struct rst_ctx *c, const NsEntry *e)
{
	if (unshare(CLONE_NEWUTS)) {
		pr_perror("cannot create a UTS namespace");
		return -1;
	}
	if (sethostname(e->hostname, strlen(e->hostname)) ||
	    setdomainname(e->domainname, strlen(e->domainname))) {
		pr_perror("cannot set the hostname '%s'", e->hostname);
		return -1;
	}
	return 0;
}

const struct ns_kind uts_ns_kind = {
	.name = "uts",
	.label = "UTS",
	.nstype = CLONE_NEWUTS,
	.kind = NS_KIND__NS_UTS,
	NS_TE_FIELD(uts_ns),
	.inherits = NS_K_UTS,
	.describe = uts_describe,
	.valid = uts_valid,
	.create = uts_create,
};
