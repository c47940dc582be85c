// SPDX-License-Identifier: MIT
/*
 * pkt_sock - packet sockets as capture tools hold them:
 *   fd 3  SOCK_DGRAM for ETH_P_IP, bound to lo, a classic BPF filter that
 *         keeps only UDP to port PORT, PACKET_AUXDATA on, a promiscuous
 *         membership on lo, SO_RCVBUF set, O_NONBLOCK
 *   fd 4  SOCK_RAW for ETH_P_ALL, bound to lo, in a fanout group (hash),
 *         with a filter that drops every frame
 * Check: each socket is bound to the same interface and protocol, with
 * the same options, filter length, membership and fanout; a UDP datagram
 * sent to 127.0.0.1:PORT arrives on fd 3 through the filter, and nothing
 * on fd 4.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "scenario.h"

#define PORT	  47312
#define FANOUT_ID 4242

struct pk_state {
	int ifindex, protocol, auxdata, fanout, flags, rcvbuf;
	socklen_t filter_len;
};

static struct pk_state saved[5];

static int pk_open(int want, int type, int proto)
{
	int fd = socket(AF_PACKET, type, htons(proto));
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(proto) };

	if (fd < 0)
		scn_fail("packet socket: %s", strerror(errno));
	sll.sll_ifindex = if_nametoindex("lo");
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
		scn_fail("bind to lo: %s", strerror(errno));
	if (fd != want) {
		if (dup2(fd, want) < 0)
			scn_fail("dup2: %s", strerror(errno));
		close(fd);
	}
	return want;
}

static void attach(int fd, struct sock_filter *f, unsigned short n)
{
	struct sock_fprog prog = { .len = n, .filter = f };

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		scn_fail("SO_ATTACH_FILTER: %s", strerror(errno));
}

static void drain(int fd)
{
	char buf[2048];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
}

static void take_state(int fd, struct pk_state *st)
{
	struct sockaddr_ll sll;
	socklen_t len = sizeof(sll);
	int v;

	memset(st, 0, sizeof(*st));
	if (getsockname(fd, (struct sockaddr *)&sll, &len))
		scn_fail("getsockname fd %d: %s", fd, strerror(errno));
	st->ifindex = sll.sll_ifindex;
	st->protocol = ntohs(sll.sll_protocol);
	len = sizeof(v);
	v = 0;
	getsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &v, &len);
	st->auxdata = v;
	len = sizeof(v);
	v = 0;
	getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &v, &len);
	st->fanout = v;
	len = sizeof(v);
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len);
	st->rcvbuf = v;
	st->filter_len = 0;
	getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &st->filter_len);
	st->flags = fcntl(fd, F_GETFL);
}

static void send_probe(void)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || sendto(s, "probe", 5, 0, (struct sockaddr *)&to, sizeof(to)) != 5)
		scn_fail("send the probe: %s", strerror(errno));
	close(s);
}

int main(int argc, char **argv)
{
	/* cooked IPv4: protocol at byte 9, destination port at 22 (no IP options) */
	struct sock_filter udp_port[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 3),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 22),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PORT, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_filter none[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct packet_mreq mr = { .mr_type = PACKET_MR_PROMISC };
	int fd, rcvbuf = 131072, i;
	char buf[2048];
	ssize_t n = -1;

	scn_init(argc, argv, 1);
	fd = pk_open(3, SOCK_DGRAM, ETH_P_IP);
	attach(fd, udp_port, sizeof(udp_port) / sizeof(udp_port[0]));
	setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &(int){ 1 }, sizeof(int));
	mr.mr_ifindex = if_nametoindex("lo");
	if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)))
		scn_fail("PACKET_ADD_MEMBERSHIP: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	drain(fd);
	fd = pk_open(4, SOCK_RAW, ETH_P_ALL);
	attach(fd, none, 1);
	if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT,
		       &(int){ FANOUT_ID | (PACKET_FANOUT_HASH << 16) }, sizeof(int)))
		scn_fail("PACKET_FANOUT: %s", strerror(errno));
	drain(fd);
	for (fd = 3; fd <= 4; fd++)
		take_state(fd, &saved[fd]);
	scn_log("packet sockets ready");
	scn_ready();

	while (!scn_check)
		scn_msleep(10);

	for (fd = 3; fd <= 4; fd++) {
		struct pk_state now;

		take_state(fd, &now);
		SCN_CHECK(now.ifindex == saved[fd].ifindex && now.protocol == saved[fd].protocol,
			  "fd %d: bound to ifindex %d protocol %#x, was %d %#x", fd, now.ifindex,
			  now.protocol, saved[fd].ifindex, saved[fd].protocol);
		SCN_CHECK(now.auxdata == saved[fd].auxdata, "fd %d: PACKET_AUXDATA %d, was %d", fd,
			  now.auxdata, saved[fd].auxdata);
		SCN_CHECK(now.fanout == saved[fd].fanout, "fd %d: fanout %#x, was %#x", fd,
			  now.fanout, saved[fd].fanout);
		SCN_CHECK(now.filter_len == saved[fd].filter_len, "fd %d: filter of %u, was %u", fd,
			  now.filter_len, saved[fd].filter_len);
		SCN_CHECK(now.rcvbuf == saved[fd].rcvbuf, "fd %d: SO_RCVBUF %d, was %d", fd,
			  now.rcvbuf, saved[fd].rcvbuf);
		SCN_CHECK(now.flags == saved[fd].flags, "fd %d: flags %#x, were %#x", fd, now.flags,
			  saved[fd].flags);
	}
	SCN_CHECK(saved[4].fanout == (FANOUT_ID | (PACKET_FANOUT_HASH << 16)),
		  "fd 4: fanout %#x at start", saved[4].fanout);
	send_probe();
	for (i = 0; i < 200 && n < 0; i++) {
		n = recv(3, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			scn_msleep(5);
	}
	SCN_CHECK(n >= 28 + 5 && !memcmp(buf + 28, "probe", 5),
		  "fd 3: the probe did not come through its filter (got %zd bytes)", n);
	SCN_CHECK(recv(4, buf, sizeof(buf), MSG_DONTWAIT) < 0, "fd 4: a frame got past its filter");
	scn_pass();
}
