/*
 * Network namespaces: a namespace of the tree is saved as what its creator
 * must rebuild before any task makes a socket in it: its devices (the
 * loopback device and veth pairs, both ends inside or the peer end in the
 * dumper's namespace), their flags, MTU and hardware addresses, the
 * addresses and routes, the namespace's net sysctls and its nftables
 * ruleset.  Everything is read from inside through rtnetlink (libmnl),
 * /proc/sys/net and libnftables; the creator builds it the same way in a
 * new namespace, the devices with the indexes they had, the host end of a
 * veth moved back into the restorer's namespace under its old name, with
 * its addresses and bridge.  Devices of other kinds, policy routing rules
 * and routes with nexthop objects, encapsulation or several paths are
 * refused by name at dump.  (ns.c decides who is in which and who creates
 * it; see src/include/ns.h.)
 *
 * A namespace named at dump by --external net[INO]:KEY is saved as its key
 * only; restore puts the tree into the namespace given by --join-ns
 * net:PATH or --inherit-fd fd[N]:KEY.  --join-ns also puts a tree saved
 * with its namespace, or one that was in the dumper's, into an existing
 * namespace: then nothing of the saved content is built.  Joining is done
 * by stasis itself before anything is forked (netns_res below), so that
 * the network lock and every task are in the joined namespace.
 *
 * netns_res also tells the socket kinds (sk.h) where the tree's sockets
 * live at dump: their sock_diag dumps and the network lock go there.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ns.h"
#include "res.h"
#include "sk.h"
#include "util.h"

#define LINK_FLAGS  (IFF_UP | IFF_NOARP | IFF_PROMISC | IFF_ALLMULTI | IFF_MULTICAST | IFF_DEBUG)
#define MAX_ATTR    256 /* bytes of one saved attribute */
#define MAX_RULESET (4 << 20)
#ifndef IFAPROT_KERNEL_LO
#define IFAPROT_KERNEL_LO 1
#define IFAPROT_KERNEL_LL 2
#endif

/* ------------------------------------------------------------- rtnetlink */

struct nl {
	struct mnl_socket *s;
	unsigned int portid, seq;
	char buf[32768];
};

static struct nl *nl_open(void)
{
	struct nl *n = xzalloc(sizeof(*n));

	n->s = mnl_socket_open(NETLINK_ROUTE);
	if (!n->s || mnl_socket_bind(n->s, 0, MNL_SOCKET_AUTOPID) < 0) {
		pr_perror("cannot open an rtnetlink socket");
		if (n->s)
			mnl_socket_close(n->s);
		free(n);
		return NULL;
	}
	n->portid = mnl_socket_get_portid(n->s);
	n->seq = time(NULL);
	return n;
}

static void nl_close(struct nl *n)
{
	if (!n)
		return;
	mnl_socket_close(n->s);
	free(n);
}

/* A fresh message of type with flags in n->buf, its header family struct after it. */
static struct nlmsghdr *nl_msg(struct nl *n, int type, int flags, void **hdr, size_t hlen)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(n->buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++n->seq;
	*hdr = mnl_nlmsg_put_extra_header(nlh, hlen);
	return nlh;
}

/* Send nlh and read the answers until the dump ends or the ack: 0 or -errno. */
static int nl_talk(struct nl *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	unsigned int seq = nlh->nlmsg_seq;
	int r;

	/* NLM_F_DUMP shares bits with NLM_F_EXCL: a dump is a GET (type % 4 == 2) */
	if ((nlh->nlmsg_type & 3) != 2 || (nlh->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP)
		nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(n->s, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		r = mnl_socket_recvfrom(n->s, n->buf, sizeof(n->buf));
		if (r < 0)
			return -errno;
		r = mnl_cb_run(n->buf, r, seq, n->portid, cb, data);
		if (r < 0)
			return -errno;
		if (r == MNL_CB_STOP)
			return 0;
	}
}

/* ------------------------------------------------------------------ dump */

/* What the dump of one namespace collects while it looks inside. */
struct look {
	pid_t pid;
	NsEntry *e;
	const char *key;  /* --external: nothing else is saved */
	struct nl *host;  /* a socket in our own namespace */
	int ours;	  /* our namespace */
	int32_t our_nsid; /* our namespace as the tree's sees it (-1: none) */
	bool failed;
	/* per link of e->links: its IFLA_LINK and IFLA_LINK_NETNSID */
	int32_t *link, *link_nsid;
	uint32_t *master;
	bool *xdp;
	NetLink *host_link; /* while its host end is read */
	uint32_t host_master;
};

static void attr_bytes(ProtobufCBinaryData *b, const void *p, size_t len)
{
	b->data = xmalloc(len ? len : 1);
	memcpy(b->data, p, len);
	b->len = len;
}

static void add_attr(NetAttr ***v, size_t *n, const struct nlattr *a)
{
	NetAttr *na = xmalloc(sizeof(*na));

	net_attr__init(na);
	na->type = mnl_attr_get_type(a);
	attr_bytes(&na->data, mnl_attr_get_payload(a), mnl_attr_get_payload_len(a));
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = na;
}

static const char *link_name(const NsEntry *e, uint32_t ifindex)
{
	size_t i;

	for (i = 0; i < e->n_links; i++)
		if (e->links[i]->ifindex == ifindex)
			return e->links[i]->name;
	return "?";
}

static int link_kind_cb(const struct nlattr *a, void *data)
{
	NetLink *l = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND && !mnl_attr_validate(a, MNL_TYPE_STRING))
		l->kind = xstrdup(mnl_attr_get_str(a));
	return MNL_CB_OK;
}

static int xdp_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == IFLA_XDP_ATTACHED && mnl_attr_get_payload_len(a) >= 1 &&
	    mnl_attr_get_u8(a))
		*(bool *)data = true;
	return MNL_CB_OK;
}

struct link_attrs {
	NetLink *l;
	int32_t link, nsid;
	uint32_t master;
	bool xdp;
};

static int link_attr_cb(const struct nlattr *a, void *data)
{
	struct link_attrs *la = data;
	NetLink *l = la->l;

	switch (mnl_attr_get_type(a)) {
	case IFLA_IFNAME:
		if (!mnl_attr_validate(a, MNL_TYPE_STRING))
			l->name = xstrdup(mnl_attr_get_str(a));
		break;
	case IFLA_MTU:
		l->mtu = mnl_attr_get_u32(a);
		break;
	case IFLA_TXQLEN:
		l->has_txqlen = true;
		l->txqlen = mnl_attr_get_u32(a);
		break;
	case IFLA_ADDRESS:
		l->has_address = true;
		attr_bytes(&l->address, mnl_attr_get_payload(a), mnl_attr_get_payload_len(a));
		break;
	case IFLA_LINK:
		la->link = mnl_attr_get_u32(a);
		break;
	case IFLA_LINK_NETNSID:
		la->nsid = (int32_t)mnl_attr_get_u32(a);
		break;
	case IFLA_MASTER:
		la->master = mnl_attr_get_u32(a);
		break;
	case IFLA_LINKINFO:
		mnl_attr_parse_nested(a, link_kind_cb, l);
		break;
	case IFLA_XDP:
		mnl_attr_parse_nested(a, xdp_cb, &la->xdp);
		break;
	}
	return MNL_CB_OK;
}

static NetLink *parse_link(const struct nlmsghdr *nlh, struct link_attrs *la)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	NetLink *l = xmalloc(sizeof(*l));

	net_link__init(l);
	l->ifindex = ifi->ifi_index;
	l->flags = ifi->ifi_flags & LINK_FLAGS;
	*la = (struct link_attrs){ .l = l, .link = -1, .nsid = -1 };
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, la);
	if (!l->name)
		l->name = xsprintf("if%u", l->ifindex);
	return l;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct look *lk = data;
	NsEntry *e = lk->e;
	struct link_attrs la;
	NetLink *l;
	size_t n = e->n_links;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	l = parse_link(nlh, &la);
	e->links = xrealloc(e->links, (n + 1) * sizeof(*e->links));
	e->links[n] = l;
	e->n_links++;
	lk->link = xrealloc(lk->link, (n + 1) * sizeof(*lk->link));
	lk->link_nsid = xrealloc(lk->link_nsid, (n + 1) * sizeof(*lk->link_nsid));
	lk->master = xrealloc(lk->master, (n + 1) * sizeof(*lk->master));
	lk->xdp = xrealloc(lk->xdp, (n + 1) * sizeof(*lk->xdp));
	lk->link[n] = la.link;
	lk->link_nsid[n] = la.nsid;
	lk->master[n] = la.master;
	lk->xdp[n] = la.xdp;
	return MNL_CB_OK;
}

static int nsid_attr_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == NETNSA_NSID)
		*(int32_t *)data = (int32_t)mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

static int nsid_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type == RTM_NEWNSID)
		mnl_attr_parse(nlh, sizeof(struct rtgenmsg), nsid_attr_cb, data);
	return MNL_CB_OK;
}

/* Our namespace's id as the namespace of socket n sees it, -1 if it has none. */
static int32_t our_nsid(struct nl *n, int ours)
{
	struct rtgenmsg *g;
	struct nlmsghdr *nlh = nl_msg(n, RTM_GETNSID, 0, (void **)&g, sizeof(*g));
	int32_t id = -1;

	g->rtgen_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, NETNSA_FD, ours);
	if (nl_talk(n, nlh, nsid_cb, &id))
		return -1;
	return id;
}

/* An address of the host end (ifindex) of a veth, read in our namespace. */
struct addr_pick {
	NetAddr ***v;
	size_t *n;
	uint32_t ifindex; /* 0: all */
	bool host;	  /* the host end's: saved with ifindex 0 */
	struct look *lk;
};

static int addr_attr_cb(const struct nlattr *a, void *data)
{
	NetAddr *na = ((void **)data)[0];
	uint8_t *proto = ((void **)data)[1];

	switch (mnl_attr_get_type(a)) {
	case IFA_ADDRESS:
	case IFA_LOCAL:
	case IFA_LABEL:
	case IFA_BROADCAST:
	case IFA_RT_PRIORITY:
		if (mnl_attr_get_payload_len(a) <= MAX_ATTR)
			add_attr(&na->attrs, &na->n_attrs, a);
		break;
	case IFA_FLAGS:
		na->flags = mnl_attr_get_u32(a);
		break;
	case IFA_PROTO:
		*proto = mnl_attr_get_u8(a);
		break;
	}
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_pick *ap = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	uint8_t proto = 0;
	void *args[2];
	NetAddr *na;

	if (nlh->nlmsg_type != RTM_NEWADDR || (ap->ifindex && ifa->ifa_index != ap->ifindex))
		return MNL_CB_OK;
	na = xmalloc(sizeof(*na));
	net_addr__init(na);
	na->family = ifa->ifa_family;
	na->prefixlen = ifa->ifa_prefixlen;
	na->flags = ifa->ifa_flags;
	na->scope = ifa->ifa_scope;
	na->ifindex = ap->host ? 0 : ifa->ifa_index;
	args[0] = na;
	args[1] = &proto;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, args);
	/* the kernel makes these itself: 127.0.0.1 and ::1, fe80:: from the MAC */
	if (proto == IFAPROT_KERNEL_LO || proto == IFAPROT_KERNEL_LL ||
	    (na->family == AF_INET6 && !(na->flags & IFA_F_PERMANENT))) {
		net_addr__free_unpacked(na, NULL);
		return MNL_CB_OK;
	}
	na->flags &= ~(IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_OPTIMISTIC | IFA_F_DEPRECATED);
	*ap->v = xrealloc(*ap->v, (*ap->n + 1) * sizeof(**ap->v));
	(*ap->v)[(*ap->n)++] = na;
	return MNL_CB_OK;
}

static int dump_addrs(struct nl *n, struct addr_pick *ap)
{
	struct ifaddrmsg *ifa;
	struct nlmsghdr *nlh = nl_msg(n, RTM_GETADDR, NLM_F_DUMP, (void **)&ifa, sizeof(*ifa));

	ifa->ifa_family = AF_UNSPEC;
	return nl_talk(n, nlh, addr_cb, ap);
}

/* The host end of a veth: its own link message, read in our namespace. */
static int host_link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct look *lk = data;
	NetHostEnd *h;
	struct link_attrs la;
	NetLink *l;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	l = parse_link(nlh, &la);
	h = xmalloc(sizeof(*h));
	net_host_end__init(h);
	h->name = l->name;
	l->name = NULL;
	h->has_address = l->has_address;
	h->address = l->address;
	l->address.data = NULL;
	h->mtu = l->mtu;
	h->flags = l->flags;
	lk->host_master = la.master;
	net_link__free_unpacked(l, NULL);
	lk->host_link->host_end = h;
	return MNL_CB_OK;
}

static int master_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_attrs la;
	NetLink *l;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	l = parse_link(nlh, &la);
	*(char **)data = l->name;
	l->name = NULL;
	net_link__free_unpacked(l, NULL);
	return MNL_CB_OK;
}

static int read_host_end(struct look *lk, NetLink *l, uint32_t ifindex)
{
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh = nl_msg(lk->host, RTM_GETLINK, 0, (void **)&ifi, sizeof(*ifi));
	struct addr_pick ap = { .ifindex = ifindex, .host = true, .lk = lk };
	int r;

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	lk->host_link = l;
	r = nl_talk(lk->host, nlh, host_link_cb, lk);
	if (r || !l->host_end) {
		pr_err("pid %d: cannot read the host end (index %u) of veth %s: %s\n", lk->pid,
		       ifindex, l->name, strerror(-r));
		return -1;
	}
	if (lk->host_master) {
		nlh = nl_msg(lk->host, RTM_GETLINK, 0, (void **)&ifi, sizeof(*ifi));
		ifi->ifi_family = AF_UNSPEC;
		ifi->ifi_index = lk->host_master;
		lk->host_master = 0;
		if (nl_talk(lk->host, nlh, master_cb, &l->host_end->master) ||
		    !l->host_end->master) {
			pr_err("pid %d: cannot read the bridge of the host end of veth %s\n",
			       lk->pid, l->name);
			return -1;
		}
	}
	ap.v = &l->host_end->addrs;
	ap.n = &l->host_end->n_addrs;
	return dump_addrs(lk->host, &ap) ? -1 : 0;
}

/* Every device is the loopback or a veth whose peer we can rebuild. */
static int check_links(struct look *lk)
{
	NsEntry *e = lk->e;
	size_t i;

	for (i = 0; i < e->n_links; i++) {
		NetLink *l = e->links[i];

		if (lk->xdp[i]) {
			pr_err("pid %d: network device %s has an XDP program attached; not "
			       "supported\n",
			       lk->pid, l->name);
			return -1;
		}
		if (lk->master[i]) {
			pr_err("pid %d: network device %s is enslaved to %s in its network "
			       "namespace; not supported\n",
			       lk->pid, l->name, link_name(e, lk->master[i]));
			return -1;
		}
		if (!l->kind && l->ifindex == 1 && !strcmp(l->name, "lo"))
			continue;
		if (!l->kind || strcmp(l->kind, "veth")) {
			pr_err("pid %d: network device %s (%s) in its network namespace: only the "
			       "loopback device and veth pairs are saved\n",
			       lk->pid, l->name, l->kind ? l->kind : "no kind");
			return -1;
		}
		if (lk->link[i] <= 0) {
			pr_err("pid %d: veth %s has no peer; not supported\n", lk->pid, l->name);
			return -1;
		}
		if (lk->link_nsid[i] < 0) { /* both ends inside */
			l->has_peer_ifindex = true;
			l->peer_ifindex = lk->link[i];
			continue;
		}
		if (lk->our_nsid < 0 || lk->link_nsid[i] != lk->our_nsid) {
			pr_err("pid %d: veth %s has its peer in a third network namespace (nsid "
			       "%d), neither the tree's nor ours; not supported (dump with "
			       "--external net[INO]:KEY to leave the namespace out)\n",
			       lk->pid, l->name, lk->link_nsid[i]);
			return -1;
		}
		if (read_host_end(lk, l, lk->link[i]))
			return -1;
	}
	return 0;
}

static int route_attr_cb(const struct nlattr *a, void *data)
{
	void **args = data;
	NetRoute *r = args[0];
	const char **bad = args[1];

	switch (mnl_attr_get_type(a)) {
	case RTA_DST:
	case RTA_SRC:
	case RTA_GATEWAY:
	case RTA_OIF:
	case RTA_PRIORITY:
	case RTA_PREFSRC:
	case RTA_METRICS:
	case RTA_PREF:
	case RTA_TABLE:
		if (mnl_attr_get_payload_len(a) <= MAX_ATTR)
			add_attr(&r->attrs, &r->n_attrs, a);
		break;
	case RTA_MULTIPATH:
		*bad = "several paths";
		break;
	case RTA_ENCAP:
		*bad = "an encapsulation";
		break;
	case RTA_VIA:
		*bad = "a gateway of another family";
		break;
	case RTA_NH_ID:
		*bad = "a nexthop object";
		break;
	}
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct look *lk = data;
	const struct rtmsg *rm = mnl_nlmsg_get_payload(nlh);
	const char *bad = NULL;
	void *args[2];
	NetRoute *r;
	NsEntry *e = lk->e;

	if (nlh->nlmsg_type != RTM_NEWROUTE || rm->rtm_table == RT_TABLE_LOCAL ||
	    rm->rtm_protocol == RTPROT_KERNEL || rm->rtm_protocol == RTPROT_RA ||
	    (rm->rtm_flags & RTM_F_CLONED))
		return MNL_CB_OK;
	r = xmalloc(sizeof(*r));
	net_route__init(r);
	r->family = rm->rtm_family;
	r->dst_len = rm->rtm_dst_len;
	r->src_len = rm->rtm_src_len;
	r->tos = rm->rtm_tos;
	r->table = rm->rtm_table;
	r->protocol = rm->rtm_protocol;
	r->scope = rm->rtm_scope;
	r->type = rm->rtm_type;
	r->flags = rm->rtm_flags & RTNH_F_ONLINK;
	args[0] = r;
	args[1] = &bad;
	mnl_attr_parse(nlh, sizeof(*rm), route_attr_cb, args);
	if (bad) {
		pr_err("pid %d: an %s route (/%u, table %u) of its network namespace has %s; not "
		       "supported\n",
		       lk->pid, r->family == AF_INET ? "IPv4" : "IPv6", r->dst_len, r->table, bad);
		net_route__free_unpacked(r, NULL);
		lk->failed = true;
		return MNL_CB_OK;
	}
	e->routes = xrealloc(e->routes, (e->n_routes + 1) * sizeof(*e->routes));
	e->routes[e->n_routes++] = r;
	return MNL_CB_OK;
}

static int dump_routes(struct nl *n, struct look *lk, int family)
{
	struct rtmsg *rm;
	struct nlmsghdr *nlh = nl_msg(n, RTM_GETROUTE, NLM_F_DUMP, (void **)&rm, sizeof(*rm));
	int r;

	rm->rtm_family = family;
	r = nl_talk(n, nlh, route_cb, lk);
	if (r == -EAFNOSUPPORT)
		return 0;
	if (r)
		pr_err("pid %d: cannot read the routes of its network namespace: %s\n", lk->pid,
		       strerror(-r));
	return r || lk->failed ? -1 : 0;
}

struct rules {
	struct look *lk;
	int family;
	bool odd;
};

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rules *ru = data;
	const struct fib_rule_hdr *fr = mnl_nlmsg_get_payload(nlh);
	struct nlattr *a;
	uint32_t prio = 0;

	if (nlh->nlmsg_type != RTM_NEWRULE)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(*fr)) if (mnl_attr_get_type(a) == FRA_PRIORITY) prio =
	    mnl_attr_get_u32(a);
	/* the kernel's own: local at 0, main at 32766, default (v4) at 32767 */
	if (!((prio == 0 && fr->table == RT_TABLE_LOCAL) ||
	      (prio == 32766 && fr->table == RT_TABLE_MAIN) ||
	      (prio == 32767 && fr->table == RT_TABLE_DEFAULT && ru->family == AF_INET)))
		ru->odd = true;
	return MNL_CB_OK;
}

/* Policy routing rules are not saved: refuse any but the kernel's. */
static int check_rules(struct nl *n, struct look *lk, int family)
{
	struct fib_rule_hdr *fr;
	struct nlmsghdr *nlh = nl_msg(n, RTM_GETRULE, NLM_F_DUMP, (void **)&fr, sizeof(*fr));
	struct rules ru = { lk, family, false };

	fr->family = family;
	if (nl_talk(n, nlh, rule_cb, &ru))
		return 0; /* no such family here */
	if (!ru.odd)
		return 0;
	pr_err("pid %d: its network namespace has %s policy routing rules (ip rule); not "
	       "supported\n",
	       lk->pid, family == AF_INET ? "IPv4" : "IPv6");
	return -1;
}

/* --------------------------------------------------------------- sysctls */

/* Top-level net sysctls of a namespace that change how its sockets behave. */
static const char *const net_sysctls[] = {
	"net/core/somaxconn",
	"net/ipv4/ip_forward",
	"net/ipv4/ip_default_ttl",
	"net/ipv4/ip_local_port_range",
	"net/ipv4/ip_local_reserved_ports",
	"net/ipv4/ip_nonlocal_bind",
	"net/ipv4/ip_unprivileged_port_start",
	"net/ipv4/ping_group_range",
	"net/ipv4/tcp_congestion_control",
	"net/ipv4/tcp_ecn",
	"net/ipv4/tcp_fastopen",
	"net/ipv4/tcp_fin_timeout",
	"net/ipv4/tcp_keepalive_intvl",
	"net/ipv4/tcp_keepalive_probes",
	"net/ipv4/tcp_keepalive_time",
	"net/ipv4/tcp_max_syn_backlog",
	"net/ipv4/tcp_mtu_probing",
	"net/ipv4/tcp_no_metrics_save",
	"net/ipv4/tcp_retries1",
	"net/ipv4/tcp_retries2",
	"net/ipv4/tcp_rmem",
	"net/ipv4/tcp_sack",
	"net/ipv4/tcp_syn_retries",
	"net/ipv4/tcp_synack_retries",
	"net/ipv4/tcp_syncookies",
	"net/ipv4/tcp_timestamps",
	"net/ipv4/tcp_tw_reuse",
	"net/ipv4/tcp_window_scaling",
	"net/ipv4/tcp_wmem",
	"net/ipv4/udp_rmem_min",
	"net/ipv4/udp_wmem_min",
	"net/ipv6/ip_nonlocal_bind",
};

static void add_sysctl(NsEntry *e, const char *name, char *value)
{
	NsSysctl *s = xzalloc(sizeof(*s));

	ns_sysctl__init(s);
	s->name = xstrdup(name);
	value[strcspn(value, "\n")] = '\0';
	s->value = value;
	e->sysctls = xrealloc(e->sysctls, (e->n_sysctls + 1) * sizeof(*e->sysctls));
	e->sysctls[e->n_sysctls++] = s;
}

/*
 * One sysctl file (name relative to dirfd; saved as prefix/name), if it is
 * writable and reads: opened for writing too, which the kernel refuses for
 * read-only ones, so that each file costs three calls (a few hundred of
 * them per namespace).  Nothing is written.
 */
static void read_sysctl_at(NsEntry *e, int dirfd, const char *prefix, const char *name)
{
	char buf[4096], full[320];
	int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return; /* e.g. an unset ipv6 stable_secret */
	buf[n] = '\0';
	snprintf(full, sizeof(full), "%s%s%s", prefix, *prefix ? "/" : "", name);
	add_sysctl(e, full, xstrdup(buf));
}

/* Every writable file of one conf directory (net/ipv4/conf/all ...). */
static void read_conf_dir(NsEntry *e, const char *dir)
{
	char path[256];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/sys/%s", dir);
	d = opendir(path);
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			read_sysctl_at(e, dirfd(d), dir, de->d_name);
	if (d)
		closedir(d);
}

static void read_sysctls(NsEntry *e)
{
	static const char *const fams[] = { "ipv4", "ipv6" };
	int sys = open("/proc/sys", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char dir[128];
	size_t i, f;

	for (i = 0; sys >= 0 && i < ARRAY_SIZE(net_sysctls); i++)
		read_sysctl_at(e, sys, "", net_sysctls[i]);
	if (sys >= 0)
		close(sys);
	for (f = 0; f < ARRAY_SIZE(fams); f++) {
		snprintf(dir, sizeof(dir), "net/%s/conf/all", fams[f]);
		read_conf_dir(e, dir);
		snprintf(dir, sizeof(dir), "net/%s/conf/default", fams[f]);
		read_conf_dir(e, dir);
		for (i = 0; i < e->n_links; i++) {
			snprintf(dir, sizeof(dir), "net/%s/conf/%s", fams[f], e->links[i]->name);
			read_conf_dir(e, dir);
		}
	}
}

/* ---------------------------------------------------------------- nftables */

static struct nft_ctx *nft_new(void)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);

	if (nft) {
		nft_ctx_buffer_output(nft);
		nft_ctx_buffer_error(nft);
	}
	return nft;
}

static const char *nft_err(struct nft_ctx *nft)
{
	const char *e = nft_ctx_get_error_buffer(nft);

	return e && *e ? e : "nft command failed";
}

/* The ruleset of the namespace we are in, less stasis's own tables. */
static int read_ruleset(struct look *lk)
{
	struct nft_ctx *nft = nft_new();
	char *tables, *line, *save = NULL, *out = NULL, fam[32], name[256];
	size_t len = 0;
	FILE *f;
	int ret = -1;

	if (!nft || nft_run_cmd_from_buffer(nft, "list tables")) {
		pr_err("pid %d: cannot list the nftables tables of its network namespace: %s\n",
		       lk->pid, nft ? nft_err(nft) : "no nft context");
		goto out;
	}
	tables = xstrdup(nft_ctx_get_output_buffer(nft));
	f = open_memstream(&out, &len);
	for (line = strtok_r(tables, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *t;

		if (sscanf(line, "table %31s %255s", fam, name) != 2 ||
		    !strncmp(name, "stasis-", 7))
			continue;
		{
			char *cmd = xsprintf("list table %s %s", fam, name);
			int r = nft_run_cmd_from_buffer(nft, cmd);

			free(cmd);
			if (r) {
				pr_err("pid %d: cannot list nftables table %s %s: %s\n", lk->pid,
				       fam, name, nft_err(nft));
				fclose(f);
				free(tables);
				goto out;
			}
		}
		t = nft_ctx_get_output_buffer(nft);
		if (strstr(t, "flags owner") || strstr(t, ",owner")) {
			pr_err("pid %d: nftables table %s %s of its network namespace belongs to a "
			       "process's netlink socket (flags owner); not supported\n",
			       lk->pid, fam, name);
			fclose(f);
			free(tables);
			goto out;
		}
		fputs(t, f);
	}
	fclose(f);
	free(tables);
	if (len > MAX_RULESET) {
		pr_err("pid %d: the nftables ruleset of its network namespace is %zu bytes; more "
		       "than stasis saves\n",
		       lk->pid, len);
		goto out;
	}
	/* what restore would refuse is refused now: the text must read back */
	nft_ctx_set_dry_run(nft, true);
	if (len && nft_run_cmd_from_buffer(nft, out)) {
		pr_err("pid %d: the nftables ruleset of its network namespace does not read back "
		       "(%.*s); not supported\n",
		       lk->pid, (int)strcspn(nft_err(nft), "\n"), nft_err(nft));
		goto out;
	}
	if (len) {
		lk->e->nft_ruleset = out;
		out = NULL;
	}
	ret = 0;
out:
	free(out);
	if (nft)
		nft_ctx_free(nft);
	return ret;
}

/* Legacy iptables rules are not saved: refuse a namespace with tables loaded. */
static int check_xtables(pid_t pid)
{
	static const char *const files[] = { "ip_tables_names", "ip6_tables_names",
					     "arp_tables_names" };
	size_t i;
	char *v;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		char name[64];

		snprintf(name, sizeof(name), "net/%s", files[i]);
		v = read_proc(pid, name, NULL);
		if (v && *v) {
			pr_err("pid %d: its network namespace has legacy iptables tables (%.*s); "
			       "not supported (nftables rules are saved)\n",
			       pid, (int)strcspn(v, "\n"), v);
			free(v);
			return -1;
		}
		free(v);
	}
	return 0;
}

/* ------------------------------------------------------- dump: describe */

static struct look *cur_look; /* ns_look_inside's callback takes (pid, e) only */

static int look_net(pid_t pid, NsEntry *e)
{
	struct look *lk = cur_look;
	struct nl *n = nl_open();
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh;
	struct addr_pick ap = { .lk = lk };
	int ret = -1, r;

	if (!n)
		return -1;
	nlh = nl_msg(n, RTM_GETLINK, NLM_F_DUMP, (void **)&ifi, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	if ((r = nl_talk(n, nlh, link_cb, lk))) {
		pr_err("pid %d: cannot read the devices of its network namespace: %s\n", pid,
		       strerror(-r));
		goto out;
	}
	lk->our_nsid = our_nsid(n, lk->ours);
	if (check_links(lk))
		goto out;
	ap.v = &e->addrs;
	ap.n = &e->n_addrs;
	if ((r = dump_addrs(n, &ap))) {
		pr_err("pid %d: cannot read the addresses of its network namespace: %s\n", pid,
		       strerror(-r));
		goto out;
	}
	if (dump_routes(n, lk, AF_INET) || dump_routes(n, lk, AF_INET6) ||
	    check_rules(n, lk, AF_INET) || check_rules(n, lk, AF_INET6))
		goto out;
	read_sysctls(e);
	ret = read_ruleset(lk);
out:
	nl_close(n);
	return ret;
}

/* The key of --external net[INO]:KEY for this namespace, or NULL. */
static const char *external_key(const struct dump_opts *o, uint64_t ino)
{
	int i;

	for (i = 0; i < o->n_externals; i++) {
		const char *x = o->externals[i];

		if (!strncmp(x, "net[", 4) && strtoull(x + 4, NULL, 10) == ino)
			return strstr(x, "]:") + 2;
	}
	return NULL;
}

static int net_describe(const struct ns_view *v, size_t task, NsEntry *e)
{
	pid_t pid = ns_view_pid(v, task);
	struct look lk = { .pid = pid, .e = e, .ours = -1 };
	int ret = -1;

	lk.key = external_key(v->ctx->opts, e->id);
	if (lk.key) {
		e->external_key = xstrdup(lk.key);
		return 0;
	}
	if (check_xtables(pid))
		return -1;
	lk.ours = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	lk.host = nl_open();
	if (lk.ours < 0 || !lk.host) {
		pr_perror("cannot open our own network namespace");
		goto out;
	}
	cur_look = &lk;
	ret = ns_look_inside(pid, &net_ns_kind, e, look_net);
	cur_look = NULL;
out:
	if (lk.ours >= 0)
		close(lk.ours);
	nl_close(lk.host);
	free(lk.link);
	free(lk.link_nsid);
	free(lk.master);
	free(lk.xdp);
	return ret;
}

/* ------------------------------------------------------------ load: valid */

static const NetLink *find_link(const NsEntry *e, uint32_t ifindex)
{
	size_t i;

	for (i = 0; i < e->n_links; i++)
		if (e->links[i]->ifindex == ifindex)
			return e->links[i];
	return NULL;
}

static bool name_ok(const char *s)
{
	return s && *s && strlen(s) < IFNAMSIZ && !strchr(s, '/') && strcmp(s, ".") &&
	       strcmp(s, "..");
}

static bool attrs_ok(NetAttr **a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i]->data.len > MAX_ATTR || a[i]->type > 0xffff)
			return false;
	return true;
}

/* "net/..." without a way out of /proc/sys/net, a value on one line. */
static bool sysctl_ok(const NsSysctl *s)
{
	return !strncmp(s->name, "net/", 4) && !strstr(s->name, "..") && strlen(s->name) < 200 &&
	       !strchr(s->value, '\n') && strlen(s->value) < 4096;
}

static bool net_valid(const NsEntry *e)
{
	size_t i, j;

	if (e->external_key)
		return *e->external_key && !e->n_links;
	for (i = 0; i < e->n_links; i++) {
		const NetLink *l = e->links[i];
		const NetLink *p = l->has_peer_ifindex ? find_link(e, l->peer_ifindex) : NULL;

		/* the loopback device, or a veth with one peer: inside (pointing back) or ours */
		if (!l->kind ? l->ifindex != 1 || strcmp(l->name ? l->name : "", "lo") ||
				   l->host_end || l->has_peer_ifindex
			     : !l->host_end == !l->has_peer_ifindex ||
				   (l->has_peer_ifindex &&
				    (!p || p == l || !p->kind || !p->has_peer_ifindex ||
				     p->peer_ifindex != l->ifindex)))
			return false;
		for (j = 0; j < i; j++)
			if (e->links[j]->ifindex == l->ifindex ||
			    !strcmp(e->links[j]->name, l->name))
				return false;
		if (!name_ok(l->name) || !l->ifindex || l->address.len > 32 ||
		    (l->kind && strcmp(l->kind, "veth")) ||
		    (l->host_end && (!name_ok(l->host_end->name) || l->host_end->address.len > 32 ||
				     (l->host_end->master && !name_ok(l->host_end->master)))))
			return false;
		for (j = 0; l->host_end && j < l->host_end->n_addrs; j++)
			if (!attrs_ok(l->host_end->addrs[j]->attrs, l->host_end->addrs[j]->n_attrs))
				return false;
	}
	for (i = 0; i < e->n_addrs; i++)
		if (!attrs_ok(e->addrs[i]->attrs, e->addrs[i]->n_attrs))
			return false;
	for (i = 0; i < e->n_routes; i++)
		if (!attrs_ok(e->routes[i]->attrs, e->routes[i]->n_attrs) ||
		    e->routes[i]->dst_len > 128)
			return false;
	for (i = 0; i < e->n_sysctls; i++)
		if (!sysctl_ok(e->sysctls[i]))
			return false;
	return !e->nft_ruleset || strlen(e->nft_ruleset) <= MAX_RULESET;
}

/* -------------------------------------------------------- restore: create */

static void put_link_props(struct nlmsghdr *nlh, const char *name, uint32_t mtu,
			   const ProtobufCBinaryData *addr, bool has_txq, uint32_t txq)
{
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (addr && addr->len)
		mnl_attr_put(nlh, IFLA_ADDRESS, addr->len, addr->data);
	if (has_txq)
		mnl_attr_put_u32(nlh, IFLA_TXQLEN, txq);
}

/* The name the host end of veth l gets here: its own, or --veth-pair's. */
static const char *host_end_name(const struct restore_opts *o, const NetLink *l)
{
	int i;

	for (i = 0; i < o->n_veth_pairs; i++)
		if (!strcmp(o->veth_pairs[i].in, l->name))
			return o->veth_pairs[i].out;
	return l->host_end->name;
}

/* A veth pair: l inside, its peer inside too or (host >= 0) in the namespace host. */
static int make_veth(struct nl *n, const NsEntry *e, const NetLink *l, int host,
		     const struct restore_opts *o)
{
	const NetLink *p = l->has_peer_ifindex ? find_link(e, l->peer_ifindex) : NULL;
	struct ifinfomsg *ifi, *pifi;
	struct nlattr *info, *data, *peer;
	struct nlmsghdr *nlh;
	int r, tries;

	for (tries = 0;; tries++) {
		nlh =
		    nl_msg(n, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, (void **)&ifi, sizeof(*ifi));
		ifi->ifi_index = l->ifindex;
		put_link_props(nlh, l->name, l->mtu, &l->address, l->has_txqlen, l->txqlen);
		info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
		mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
		data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
		peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
		pifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifi));
		if (p) {
			pifi->ifi_index = p->ifindex;
			put_link_props(nlh, p->name, p->mtu, &p->address, p->has_txqlen, p->txqlen);
		} else {
			const NetHostEnd *h = l->host_end;

			put_link_props(nlh, host_end_name(o, l), h->mtu, &h->address, false, 0);
			mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, host);
		}
		mnl_attr_nest_end(nlh, peer);
		mnl_attr_nest_end(nlh, data);
		mnl_attr_nest_end(nlh, info);
		r = nl_talk(n, nlh, NULL, NULL);
		/* the host end of the dumped tree's pair goes with its namespace, a bit later */
		if (r != -EEXIST || p || tries >= 100)
			break;
		usleep(20000);
	}
	if (r == -EEXIST && !p)
		pr_err("cannot create veth %s: its host end %s exists in our network namespace "
		       "(the original still runs? name it with --veth-pair %s=NAME)\n",
		       l->name, host_end_name(o, l), l->name);
	else if (r)
		pr_err("cannot create veth %s (peer %s%s): %s\n", l->name,
		       p ? p->name : host_end_name(o, l), p ? "" : " in our network namespace",
		       strerror(-r));
	return r ? -1 : 0;
}

/* Flags (and MTU, txqueuelen) of an existing device. */
static int set_link(struct nl *n, uint32_t ifindex, const char *name, uint32_t flags, uint32_t mtu,
		    bool has_txq, uint32_t txq, uint32_t master)
{
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh = nl_msg(n, RTM_NEWLINK, 0, (void **)&ifi, sizeof(*ifi));
	int r;

	ifi->ifi_index = ifindex;
	ifi->ifi_flags = flags & LINK_FLAGS;
	ifi->ifi_change = LINK_FLAGS;
	if (!ifindex)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (has_txq)
		mnl_attr_put_u32(nlh, IFLA_TXQLEN, txq);
	if (master)
		mnl_attr_put_u32(nlh, IFLA_MASTER, master);
	r = nl_talk(n, nlh, NULL, NULL);
	if (r)
		pr_err("cannot set the flags and MTU of network device %s: %s\n", name,
		       strerror(-r));
	return r ? -1 : 0;
}

static void addr_text(const NetAddr *a, char *buf, size_t size)
{
	size_t i;

	snprintf(buf, size, "?");
	for (i = 0; i < a->n_attrs; i++)
		if ((a->attrs[i]->type == IFA_LOCAL || a->attrs[i]->type == IFA_ADDRESS) &&
		    a->attrs[i]->data.len == (a->family == AF_INET ? 4u : 16u))
			inet_ntop(a->family, a->attrs[i]->data.data, buf, size);
}

static int add_addr(struct nl *n, const NetAddr *a, uint32_t ifindex, const char *dev)
{
	struct ifaddrmsg *ifa;
	struct nlmsghdr *nlh =
	    nl_msg(n, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, (void **)&ifa, sizeof(*ifa));
	uint32_t flags = a->flags | (a->family == AF_INET6 ? IFA_F_NODAD : 0);
	char buf[INET6_ADDRSTRLEN];
	size_t i;
	int r;

	ifa->ifa_family = a->family;
	ifa->ifa_prefixlen = a->prefixlen;
	ifa->ifa_flags = flags & 0xff;
	ifa->ifa_scope = a->scope;
	ifa->ifa_index = ifindex;
	for (i = 0; i < a->n_attrs; i++)
		mnl_attr_put(nlh, a->attrs[i]->type, a->attrs[i]->data.len, a->attrs[i]->data.data);
	mnl_attr_put_u32(nlh, IFA_FLAGS, flags);
	r = nl_talk(n, nlh, NULL, NULL);
	if (r) {
		addr_text(a, buf, sizeof(buf));
		pr_err("cannot add address %s/%u to network device %s: %s\n", buf, a->prefixlen,
		       dev, strerror(-r));
	}
	return r ? -1 : 0;
}

static int add_route(struct nl *n, const NetRoute *rt)
{
	struct rtmsg *rm;
	struct nlmsghdr *nlh =
	    nl_msg(n, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, (void **)&rm, sizeof(*rm));
	size_t i;
	int r;

	rm->rtm_family = rt->family;
	rm->rtm_dst_len = rt->dst_len;
	rm->rtm_src_len = rt->src_len;
	rm->rtm_tos = rt->tos;
	rm->rtm_table = rt->table < 256 ? rt->table : RT_TABLE_UNSPEC;
	rm->rtm_protocol = rt->protocol;
	rm->rtm_scope = rt->scope;
	rm->rtm_type = rt->type;
	rm->rtm_flags = rt->flags;
	for (i = 0; i < rt->n_attrs; i++)
		mnl_attr_put(nlh, rt->attrs[i]->type, rt->attrs[i]->data.len,
			     rt->attrs[i]->data.data);
	r = nl_talk(n, nlh, NULL, NULL);
	if (r && r != -EEXIST) {
		pr_err("cannot add a route (family %u, /%u, table %u) to the new network "
		       "namespace: %s\n",
		       rt->family, rt->dst_len, rt->table, strerror(-r));
		return -1;
	}
	return 0;
}

/* Write a sysctl of the new namespace where it differs from what it had. */
static int write_sysctl(const NsSysctl *s)
{
	char path[256], *cur;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/%s", s->name);
	cur = read_file(path, NULL);
	if (!cur) {
		pr_err("network sysctl %s of the tree's namespace does not exist here\n", s->name);
		return -1;
	}
	cur[strcspn(cur, "\n")] = '\0';
	if (!strcmp(cur, s->value)) {
		free(cur);
		return 0;
	}
	free(cur);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, s->value, strlen(s->value)) != (ssize_t)strlen(s->value)) {
		pr_perror("cannot set %s to '%s' in the new network namespace", path, s->value);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* all first (it carries over to the devices), then default, then the devices. */
static int write_sysctls(const NsEntry *e)
{
	static const char *const pass[] = { "/conf/all/", "/conf/default/", "/conf/" };
	size_t i, p;

	for (i = 0; i < e->n_sysctls; i++)
		if (!strstr(e->sysctls[i]->name, "/conf/") && write_sysctl(e->sysctls[i]))
			return -1;
	for (p = 0; p < ARRAY_SIZE(pass); p++)
		for (i = 0; i < e->n_sysctls; i++) {
			const char *nm = e->sysctls[i]->name;
			bool in = strstr(nm, pass[p]) &&
				  (p == 2 ? !strstr(nm, pass[0]) && !strstr(nm, pass[1]) : true);

			if (in && write_sysctl(e->sysctls[i]))
				return -1;
		}
	return 0;
}

static int load_ruleset(const char *text)
{
	struct nft_ctx *nft = nft_new();
	int ret = 0;

	if (!nft || nft_run_cmd_from_buffer(nft, text)) {
		pr_err("cannot load the nftables ruleset of the tree's network namespace: %.*s\n",
		       nft ? (int)strcspn(nft_err(nft), "\n") : 15,
		       nft ? nft_err(nft) : "no nft context");
		ret = -1;
	}
	if (nft)
		nft_ctx_free(nft);
	return ret;
}

static int name_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type == RTM_NEWLINK)
		*(uint32_t *)data =
		    ((const struct ifinfomsg *)mnl_nlmsg_get_payload(nlh))->ifi_index;
	return MNL_CB_OK;
}

/* The index of device name in the namespace of socket n, 0 if none. */
static uint32_t index_of(struct nl *n, const char *name)
{
	struct ifinfomsg *ifi;
	struct nlmsghdr *nlh = nl_msg(n, RTM_GETLINK, 0, (void **)&ifi, sizeof(*ifi));
	uint32_t idx = 0;

	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return nl_talk(n, nlh, name_cb, &idx) ? 0 : idx;
}

/* The host end of a veth, in our namespace: addresses, bridge, flags. */
static int setup_host_end(struct nl *host, const NetHostEnd *h, const char *name)
{
	uint32_t idx = index_of(host, name), master = 0;
	size_t i;

	if (!idx) {
		pr_err("the host end %s of a veth of the tree is not in our network namespace\n",
		       name);
		return -1;
	}
	if (h->master && !(master = index_of(host, h->master))) {
		pr_err("bridge %s of the host end %s of a veth of the tree does not exist here\n",
		       h->master, name);
		return -1;
	}
	for (i = 0; i < h->n_addrs; i++)
		if (add_addr(host, h->addrs[i], idx, name))
			return -1;
	return set_link(host, idx, name, h->flags, 0, false, 0, master);
}

static int build_net(const NsEntry *e, struct nl *n, struct nl *host, int hostns,
		     const struct restore_opts *o)
{
	size_t i;

	for (i = 0; i < e->n_links; i++) {
		const NetLink *l = e->links[i];

		if (l->kind && (l->host_end || l->peer_ifindex > l->ifindex) &&
		    make_veth(n, e, l, hostns, o))
			return -1;
	}
	for (i = 0; i < e->n_links; i++) /* down still: the addresses first */
		if (set_link(n, e->links[i]->ifindex, e->links[i]->name, 0, e->links[i]->mtu,
			     e->links[i]->has_txqlen, e->links[i]->txqlen, 0))
			return -1;
	if (write_sysctls(e))
		return -1;
	for (i = 0; i < e->n_addrs; i++) {
		const NetLink *l = find_link(e, e->addrs[i]->ifindex);

		if (add_addr(n, e->addrs[i], e->addrs[i]->ifindex, l ? l->name : "?"))
			return -1;
	}
	for (i = 0; i < e->n_links; i++)
		if (set_link(n, e->links[i]->ifindex, e->links[i]->name, e->links[i]->flags, 0,
			     false, 0, 0))
			return -1;
	for (i = 0; i < e->n_routes; i++)
		if (add_route(n, e->routes[i]))
			return -1;
	for (i = 0; i < e->n_links; i++)
		if (e->links[i]->host_end &&
		    setup_host_end(host, e->links[i]->host_end, host_end_name(o, e->links[i])))
			return -1;
	return e->nft_ruleset ? load_ruleset(e->nft_ruleset) : 0;
}

static int net_create(struct rst_ctx *c, const NsEntry *e)
{
	struct nl *host = NULL, *n = NULL;
	int hostns, ret = -1;

	if (net_ns_joined())
		return 0; /* we are in it already, and so is what we fork */
	hostns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	host = nl_open();
	if (hostns < 0 || !host) {
		pr_perror("cannot open our own network namespace");
		goto out;
	}
	if (unshare(CLONE_NEWNET)) {
		pr_perror("cannot create a network namespace");
		goto out;
	}
	/* the lock first: no peer may see a reset from a socket not built yet */
	if (netlock_hold_here(c->img) || !(n = nl_open()))
		goto out;
	ret = build_net(e, n, host, hostns, c->opts);
out:
	nl_close(n);
	nl_close(host);
	if (hostns >= 0)
		close(hostns);
	return ret;
}

/*
 * The root's clone made the namespace, in a user namespace of the tree's
 * own (at_fork_with_user): a veth's host end needs our rights over our
 * namespace, which no creator inside the new user namespace has, so the
 * controller builds it, this thread in the namespace meanwhile.
 */
static int net_set_up(struct rst_ctx *c, const NsEntry *e, pid_t pid)
{
	struct nl *host = NULL, *n = NULL;
	int hostns, theirs = -1, ret = -1;
	char path[64];

	hostns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	host = nl_open();
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (hostns >= 0)
		theirs = open(path, O_RDONLY | O_CLOEXEC);
	if (hostns < 0 || !host || theirs < 0) {
		pr_perror("cannot open our network namespace and pid %d's", pid);
		goto out;
	}
	if (setns(theirs, CLONE_NEWNET)) {
		pr_perror("cannot enter the network namespace of pid %d", pid);
		goto out;
	}
	if (!netlock_hold_here(c->img) && (n = nl_open()))
		ret = build_net(e, n, host, hostns, c->opts);
	nl_close(n);
	if (setns(hostns, CLONE_NEWNET)) {
		pr_perror("cannot go back to our own network namespace");
		abort(); /* this thread would build in the wrong namespace */
	}
out:
	nl_close(host);
	if (theirs >= 0)
		close(theirs);
	if (hostns >= 0)
		close(hostns);
	return ret;
}

const struct ns_kind net_ns_kind = {
	.name = "net",
	.label = "net",
	.nstype = CLONE_NEWNET,
	.kind = NS_KIND__NS_NET,
	NS_TE_FIELD(net_ns),
	.inherits = NS_K_NET,
	.one_per_tree = true,
	.at_fork_with_user = true,
	.describe = net_describe,
	.valid = net_valid,
	.create = net_create,
	.set_up = net_set_up,
};

/* --------------------------------------- netns_res: where the tree's sockets are */

static bool joined;

bool net_ns_joined(void)
{
	return joined;
}

static int ns_inode(const char *path, uint64_t *ino)
{
	struct stat st;

	if (stat(path, &st))
		return -1;
	*ino = st.st_ino;
	return 0;
}

/* Dump: the tree's sockets are in its root's network namespace. */
static int netns_dump_check(struct dump_ctx *ctx)
{
	char path[64];
	uint64_t ours, theirs;
	int i, fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", ctx->opts->pid);
	if (ns_inode("/proc/self/ns/net", &ours) || ns_inode(path, &theirs)) {
		pr_perror("pid %d: cannot read its network namespace", ctx->opts->pid);
		return -1;
	}
	for (i = 0; i < ctx->opts->n_externals; i++)
		if (strtoull(ctx->opts->externals[i] + 4, NULL, 10) != theirs) {
			pr_err("--external %s: the tree's network namespace is net[%" PRIu64
			       "]%s\n",
			       ctx->opts->externals[i], theirs,
			       theirs == ours ? ", which is ours (nothing to leave out)" : "");
			return -1;
		}
	if (theirs == ours)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("pid %d: cannot open its network namespace", ctx->opts->pid);
		return -1;
	}
	sk_set_netns(fd);
	return 0;
}

static void netns_dump_fini(struct dump_ctx *ctx, void *state)
{
	sk_set_netns(-1);
}

/* The record of the root's network namespace, if it has one. */
static const NsEntry *root_net(struct image *img)
{
	struct rst_task *root = image_task(img, img->hdr->root_pid);

	if (!root || !root->te->has_net_ns)
		return NULL;
	return ns_image_find(img, NS_KIND__NS_NET, root->te->net_ns);
}

/* Each --veth-pair IN=OUT names a veth of the tree whose other end was ours. */
static int check_veth_pairs(struct image *img, const struct restore_opts *o)
{
	NsEntry *const *ents;
	size_t n = ns_image_all(img, &ents), k, j;
	int i;

	for (i = 0; i < o->n_veth_pairs; i++) {
		bool found = false;

		for (k = 0; k < n && !found; k++)
			for (j = 0; ents[k]->kind == NS_KIND__NS_NET && j < ents[k]->n_links; j++)
				if (ents[k]->links[j]->host_end &&
				    !strcmp(ents[k]->links[j]->name, o->veth_pairs[i].in))
					found = true;
		if (!found) {
			pr_err("--veth-pair %s=%s: the tree has no veth %s with its other end in "
			       "the dumper's network namespace\n",
			       o->veth_pairs[i].in, o->veth_pairs[i].out, o->veth_pairs[i].in);
			return -1;
		}
	}
	return 0;
}

/* Restore: --join-ns net:PATH, or the fd given for an external namespace. */
static int netns_restore_check(struct image *img, const struct restore_opts *o)
{
	const NsEntry *e = root_net(img);
	const char *what = o->join_net;
	int fd = -1, i;
	bool own = false;

	if (check_veth_pairs(img, o))
		return -1;

	if (!what && e && e->external_key) {
		for (i = 0; i < o->n_inherit; i++)
			if (!strcmp(o->inherit[i].key, e->external_key))
				fd = o->inherit[i].fd;
		if (fd < 0) {
			pr_err("the tree's network namespace was external at dump (net[%" PRIu64
			       "]:%s): give --join-ns net:PATH or --inherit-fd fd[N]:%s\n",
			       e->id, e->external_key, e->external_key);
			return -1;
		}
		what = "the inherited fd";
	} else if (what) {
		fd = open(what, O_RDONLY | O_CLOEXEC);
		own = true;
		if (fd < 0) {
			pr_perror("--join-ns net:%s: cannot open it", what);
			return -1;
		}
	} else {
		return 0;
	}
	if (setns(fd, CLONE_NEWNET)) {
		pr_perror("--join-ns net:%s: cannot enter it as a network namespace", what);
		if (own)
			close(fd);
		return -1;
	}
	if (own)
		close(fd);
	joined = true;
	pr_info("restoring into network namespace %s\n", what);
	return 0;
}

const struct res_ops netns_res = {
	.name = "netns",
	.dump_check = netns_dump_check,
	.dump_fini = netns_dump_fini,
	.restore_check = netns_restore_check,
};
