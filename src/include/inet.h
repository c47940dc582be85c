/*
 * Inet sockets (TCP and UDP over IPv4 and IPv6), shared by the three files
 * that handle them: inet.c (what every inet socket has: addresses, options,
 * the fd ops entry, the restore of all of them together), tcp.c
 * (established connections through TCP_REPAIR) and udp.c (queued
 * datagrams).
 */
#ifndef STASIS_INET_H
#define STASIS_INET_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "files.h"
#include "inet.pb-c.h"

/* TCP states as the kernel numbers them (include/net/tcp_states.h). */
enum {
	TCP_ST_ESTABLISHED = 1,
	TCP_ST_SYN_SENT,
	TCP_ST_SYN_RECV,
	TCP_ST_FIN_WAIT1,
	TCP_ST_FIN_WAIT2,
	TCP_ST_TIME_WAIT,
	TCP_ST_CLOSE,
	TCP_ST_CLOSE_WAIT,
	TCP_ST_LAST_ACK,
	TCP_ST_LISTEN,
	TCP_ST_CLOSING,
};

/* "127.0.0.1:80" or "[::1]:80" for an address saved as 4 or 16 bytes. */
const char *inet_addr_str(const ProtobufCBinaryData *addr, uint32_t port, char *buf, size_t size);
/* Fill a sockaddr for family from saved bytes (a v4 one mapped for AF_INET6). */
socklen_t inet_make_addr(struct sockaddr_storage *ss, int family, const ProtobufCBinaryData *addr,
			 uint32_t port, uint32_t scope_id);
/* The addresses of an entry, for error lines: "127.0.0.1:80 -> 127.0.0.1:4711". */
const char *inet_sk_str(const InetSkEntry *ie, char *buf, size_t size);
const char *tcp_state_name(uint32_t state);
/*
 * A connection tcp.c saves and rebuilds in repair mode: established, shut
 * down by us (FIN_WAIT1/2), by the peer (CLOSE_WAIT) or by both, the peer
 * first (LAST_ACK).
 */
static inline bool tcp_state_repaired(uint32_t state)
{
	return state == TCP_ST_ESTABLISHED || state == TCP_ST_FIN_WAIT1 ||
	       state == TCP_ST_FIN_WAIT2 || state == TCP_ST_CLOSE_WAIT || state == TCP_ST_LAST_ACK;
}

struct tcp_info;

/*
 * tcp.c: established connections (dump in repair mode, restore); ti is
 * the TCP_INFO inet.c read, ie's options those that differ from a fresh
 * socket's (inet_sk_opt_int tells the value of one)
 */
int tcp_dump_conn(const struct fd_dump *d, InetSkEntry *ie, const struct tcp_info *ti);
int inet_sk_opt_int(const InetSkEntry *ie, int level, int name, int fresh);
/* restore: in repair mode, before bind (seqs), after connect (the rest) */
int tcp_repair_prepare(int fd, const InetSkEntry *ie);
/* *grown: a buffer was made larger for the moment (inet.c sets the sizes again) */
int tcp_repair_finish(int fd, const InetSkEntry *ie, bool *grown);
/* repair off (a window probe tells the peer we are back), then unsent data */
int tcp_repair_off(int fd, const InetSkEntry *ie, bool *grown);

/* udp.c: the internet checksum (sum 16-bit words into s; fold into the field) */
uint32_t inet_csum_add(const void *p, size_t len, uint32_t s);
uint16_t inet_csum_fold(uint32_t s);

/* udp.c: queued datagrams */
int udp_dump_queue(const struct fd_dump *d, InetSkEntry *ie);
int udp_fill_queue(pid_t pid, int fd, const InetSkEntry *ie);

#endif
