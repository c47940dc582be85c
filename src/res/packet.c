/*
 * Packet sockets (AF_PACKET, raw and cooked): what a capture tool, a DHCP
 * client or an LLDP daemon holds to see frames of an interface.
 *
 * Dump, from stasis's duplicate of the fd and the kernel's packet_diag
 * (sock_diag for AF_PACKET): type, the ethertype it receives, the
 * interface it is bound to (by name: indexes differ between hosts), the
 * PACKET_* options that differ from a fresh socket's (version, reserve,
 * auxdata, origdev, vnet header, timestamps, loss, qdisc bypass, ignoring
 * outgoing frames) and the copy threshold, its interface memberships
 * (promiscuous, all-multicast, multicast and unicast addresses, each as
 * often as it was added), its fanout group, a classic BPF filter
 * (SO_GET_FILTER; an eBPF one is refused), buffer sizes, priority and
 * mark.  Refused by name: mmap'ed rings (PACKET_RX_RING/TX_RING), a socket
 * of another network namespace.  Frames waiting to be read are the
 * network's, not the program's: they are dropped, as a network may drop
 * any frame, with a warning line naming the socket.
 *
 * Restore, in the task that opens it: socket, options, filter, bind,
 * memberships, fanout (which needs the socket bound), in that order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/packet_diag.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "sk.h"
#include "log.h"
#include "util.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define FILTER_MAX 4096 /* BPF_MAXINSNS */

static const int pk_opts[] = {
	PACKET_VERSION,	 PACKET_RESERVE,    PACKET_AUXDATA,	 PACKET_ORIGDEV,
	PACKET_VNET_HDR, PACKET_TIMESTAMP,  PACKET_QDISC_BYPASS, PACKET_IGNORE_OUTGOING,
	PACKET_LOSS,	 PACKET_TX_HAS_OFF,
};

/* ------------------------------------------------------------- dump */

static bool packet_match(const struct fd_dump *d)
{
	return S_ISSOCK(d->st.st_mode) && sk_kind(d)->family == AF_PACKET;
}

static int refuse(const struct fd_dump *d, const char *why)
{
	pr_err("pid %d fd %d (%s): packet socket %s\n", d->pid, d->fd, d->link, why);
	return -1;
}

/* What packet_diag says of one socket. */
struct pk_diag {
	uint32_t ino;
	bool found, ring;
	uint32_t copy_thresh;
	PacketSkEntry *pe; /* memberships go here */
	int err;
};

static int diag_attr(const struct nlattr *a, void *data)
{
	struct pk_diag *pd = data;
	const void *p = mnl_attr_get_payload(a);
	uint16_t len = mnl_attr_get_payload_len(a);
	size_t i;

	switch (mnl_attr_get_type(a)) {
	case PACKET_DIAG_INFO:
		if (len >= sizeof(struct packet_diag_info))
			pd->copy_thresh = ((const struct packet_diag_info *)p)->pdi_copy_thresh;
		break;
	case PACKET_DIAG_RX_RING:
	case PACKET_DIAG_TX_RING:
		pd->ring = true;
		break;
	case PACKET_DIAG_MCLIST:
		for (i = 0; i + sizeof(struct packet_diag_mclist) <= len;
		     i += sizeof(struct packet_diag_mclist)) {
			const struct packet_diag_mclist *m = (const void *)((const char *)p + i);
			PacketMclist *e = xmalloc(sizeof(*e));
			char name[IF_NAMESIZE] = "";

			packet_mclist__init(e);
			if (!if_indextoname(m->pdmc_index, name))
				pd->err = ENODEV;
			e->ifname = xstrdup(name);
			e->type = m->pdmc_type;
			e->count = m->pdmc_count;
			if (m->pdmc_alen && m->pdmc_alen <= sizeof(m->pdmc_addr)) {
				e->has_addr = true;
				e->addr.len = m->pdmc_alen;
				e->addr.data = xmalloc(m->pdmc_alen);
				memcpy(e->addr.data, m->pdmc_addr, m->pdmc_alen);
			}
			pd->pe->mclist =
			    xrealloc(pd->pe->mclist, (pd->pe->n_mclist + 1) * sizeof(e));
			pd->pe->mclist[pd->pe->n_mclist++] = e;
		}
		break;
	}
	return MNL_CB_OK;
}

static int diag_msg(const struct nlmsghdr *nlh, void *data)
{
	const struct packet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	struct pk_diag *pd = data;

	if (m->pdiag_ino != pd->ino || pd->found)
		return MNL_CB_OK;
	pd->found = true;
	return mnl_attr_parse(nlh, sizeof(*m), diag_attr, pd);
}

/* Ask packet_diag about the socket with inode ino (a dump; packet sockets are few). */
static int diag_query(struct pk_diag *pd)
{
	struct packet_diag_req req = {
		.sdiag_family = AF_PACKET,
		.pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG,
	};

	return sk_diag_dump(&req, sizeof(req), diag_msg, pd);
}

static void add_opt(PacketSkEntry *pe, int name, int val)
{
	PacketSkOpt *o = xmalloc(sizeof(*o));

	packet_sk_opt__init(o);
	o->name = name;
	o->val = val;
	pe->opts = xrealloc(pe->opts, (pe->n_opts + 1) * sizeof(*pe->opts));
	pe->opts[pe->n_opts++] = o;
}

static int dump_opts(const struct fd_dump *d, PacketSkEntry *pe)
{
	int fresh = socket(AF_PACKET, pe->type | SOCK_CLOEXEC, 0);
	size_t i;

	if (fresh < 0) {
		pr_perror("pid %d fd %d: cannot create a packet socket to compare options with",
			  d->pid, d->fd);
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(pk_opts); i++) {
		int v = sk_get_int(d->lfd, SOL_PACKET, pk_opts[i]);

		if (v >= 0 && v != sk_get_int(fresh, SOL_PACKET, pk_opts[i]))
			add_opt(pe, pk_opts[i], v);
	}
	close(fresh);
	return 0;
}

static int dump_filter(const struct fd_dump *d, PacketSkEntry *pe)
{
	struct sock_filter *f;
	socklen_t n = 0;
	size_t i;

	if (getsockopt(d->lfd, SOL_SOCKET, SO_GET_FILTER, NULL, &n))
		return errno == EINVAL ? refuse(d, "has an eBPF filter attached; not supported")
				       : 0;
	if (!n)
		return 0;
	if (n > FILTER_MAX)
		return refuse(d, "has a filter longer than BPF_MAXINSNS");
	f = xmalloc(n * sizeof(*f));
	if (getsockopt(d->lfd, SOL_SOCKET, SO_GET_FILTER, f, &n)) {
		free(f);
		pr_perror("pid %d fd %d: cannot read its socket filter", d->pid, d->fd);
		return -1;
	}
	pe->filter = xmalloc(n * sizeof(*pe->filter));
	for (i = 0; i < n; i++)
		memcpy(&pe->filter[i], &f[i], sizeof(f[i]));
	pe->n_filter = n;
	free(f);
	return 0;
}

static int packet_dump(const struct fd_dump *d, FileEntry *fe)
{
	struct pk_diag pd = { .ino = d->st.st_ino };
	struct sockaddr_ll sll = { 0 };
	socklen_t len = sizeof(sll);
	PacketSkEntry *pe;
	char ifname[IF_NAMESIZE];
	int v;

	if (!sk_in_our_netns(d->lfd))
		return refuse(d, "of another network namespace; not supported (network "
				 "namespaces are not saved yet)");
	pe = fe->packet_sk = xmalloc(sizeof(*pe));
	packet_sk_entry__init(pe);
	pe->type = sk_get_int(d->lfd, SOL_SOCKET, SO_TYPE);
	if (getsockname(d->lfd, (struct sockaddr *)&sll, &len)) {
		pr_perror("pid %d fd %d: getsockname of its packet socket", d->pid, d->fd);
		return -1;
	}
	pe->protocol = ntohs(sll.sll_protocol);
	if (sll.sll_ifindex) {
		if (!if_indextoname(sll.sll_ifindex, ifname))
			return refuse(d, "is bound to an interface that has no name");
		pe->ifname = xstrdup(ifname);
	}
	pd.pe = pe;
	if (diag_query(&pd))
		return -1;
	if (!pd.found)
		return refuse(d, "is not known to packet_diag (is the packet_diag module there?)");
	if (pd.ring)
		return refuse(d, "has an mmap'ed ring (PACKET_RX_RING/TX_RING); not supported");
	if (pd.err)
		return refuse(d, "is a member on an interface that has no name");
	if (pd.copy_thresh) {
		pe->has_copy_thresh = true;
		pe->copy_thresh = pd.copy_thresh;
	}
	v = sk_get_int(d->lfd, SOL_PACKET, PACKET_FANOUT);
	if (v > 0) {
		pe->has_fanout = true;
		pe->fanout = v;
	}
	pe->has_rcvbuf = pe->has_sndbuf = true;
	pe->rcvbuf = sk_get_int(d->lfd, SOL_SOCKET, SO_RCVBUF) / 2;
	pe->sndbuf = sk_get_int(d->lfd, SOL_SOCKET, SO_SNDBUF) / 2;
	v = sk_get_int(d->lfd, SOL_SOCKET, SO_PRIORITY);
	pe->has_priority = v > 0;
	pe->priority = v;
	v = sk_get_int(d->lfd, SOL_SOCKET, SO_MARK);
	pe->has_mark = v > 0;
	pe->mark = v;
	if (dump_opts(d, pe) || dump_filter(d, pe))
		return -1;
	{
		char byte;

		if (recv(d->lfd, &byte, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) >= 0)
			pr_warn("pid %d fd %d: frames waiting in its packet socket are not saved "
				"(dropped, as the network may drop any frame)\n",
				d->pid, d->fd);
	}
	return 0;
}

/* ---------------------------------------------------------- restore */

static int ifindex_of(const char *name, const char **step)
{
	int i = if_nametoindex(name);

	if (!i) {
		*step = "finding its interface";
		errno = ENODEV;
	}
	return i;
}

static int build(int fd, const PacketSkEntry *pe, const char **step)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(pe->protocol) };
	size_t i;

	*step = "setting its options";
	for (i = 0; i < pe->n_opts; i++)
		if (sk_set_int(fd, SOL_PACKET, pe->opts[i]->name, pe->opts[i]->val))
			return -1;
	if ((pe->has_copy_thresh &&
	     sk_set_int(fd, SOL_PACKET, PACKET_COPY_THRESH, pe->copy_thresh)) ||
	    (pe->has_rcvbuf && sk_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, pe->rcvbuf)) ||
	    (pe->has_sndbuf && sk_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, pe->sndbuf)) ||
	    (pe->has_priority && sk_set_int(fd, SOL_SOCKET, SO_PRIORITY, pe->priority)) ||
	    (pe->has_mark && sk_set_int(fd, SOL_SOCKET, SO_MARK, pe->mark)))
		return -1;
	if (pe->n_filter) {
		struct sock_fprog prog = { .len = pe->n_filter };
		struct sock_filter *f = xmalloc(pe->n_filter * sizeof(*f));
		int r;

		for (i = 0; i < pe->n_filter; i++)
			memcpy(&f[i], &pe->filter[i], sizeof(f[i]));
		prog.filter = f;
		*step = "attaching its filter";
		r = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
		free(f);
		if (r)
			return -1;
	}
	/* bound, or receiving on every interface: bind gives the protocol either way */
	if (pe->ifname && !(sll.sll_ifindex = ifindex_of(pe->ifname, step)))
		return -1;
	*step = "binding it";
	if ((pe->ifname || pe->protocol) && bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
		return -1;
	for (i = 0; i < pe->n_mclist; i++) {
		const PacketMclist *m = pe->mclist[i];
		struct packet_mreq mr = { .mr_type = m->type };
		uint32_t k;

		if (!(mr.mr_ifindex = ifindex_of(m->ifname, step)))
			return -1;
		if (m->has_addr && m->addr.len <= sizeof(mr.mr_address)) {
			mr.mr_alen = m->addr.len;
			memcpy(mr.mr_address, m->addr.data, m->addr.len);
		}
		*step = "adding its interface memberships";
		for (k = 0; k < m->count && k < 1024; k++)
			if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)))
				return -1;
	}
	*step = "joining its fanout group";
	if (pe->has_fanout && sk_set_int(fd, SOL_PACKET, PACKET_FANOUT, pe->fanout))
		return -1;
	return 0;
}

static int packet_open(struct rst_ctx *c, const FileEntry *fe)
{
	const PacketSkEntry *pe = fe->packet_sk;
	const char *step = "creating it";
	int fd, err;

	if (!pe) {
		pr_err("pid %u: packet socket entry %u lacks its state\n", c->t->te->pid, fe->id);
		return -1;
	}
	/* protocol 0 until bound: no frame arrives before the filter is on */
	fd = socket(AF_PACKET, pe->type | SOCK_CLOEXEC, 0);
	if (fd >= 0 && !build(fd, pe, &step) &&
	    (step = "setting its file flags",
	     !fcntl(fd, F_SETFL, fe->flags & (O_NONBLOCK | O_ASYNC))))
		return fd;
	err = errno;
	pr_err("pid %u: packet socket%s%s: %s failed: %s\n", c->t->te->pid,
	       pe->ifname ? " on " : "", pe->ifname ? pe->ifname : "", step, strerror(err));
	if (fd >= 0)
		close(fd);
	return -1;
}

const struct fd_ops packet_fd_ops = {
	.type = FILE_TYPE__FILE_PACKET,
	.kind = FILE_ENTRY__KIND_PACKET_SK,
	.name = "packet socket",
	.match = packet_match,
	.dump = packet_dump,
	.open = packet_open,
};
