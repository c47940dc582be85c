/*
 * Unix sockets (stream, datagram, seqpacket): names, peers, listen queues,
 * unread data, shutdown state and options.  One fd kind and one resource
 * kind; the work is in unix_scan.c (the host's sockets, listed once per
 * dump with sock_diag, and the groups of sockets restored together),
 * unix_dump.c (one socket) and unix_restore.c (one group).
 */
#include "res.h"
#include "unix_sk.h"

const struct fd_ops unix_fd_ops = {
	.type = FILE_TYPE__FILE_UNIX,
	.kind = FILE_ENTRY__KIND_UNIX_SK,
	.name = "unix socket",
	.match = unix_match,
	.dump = unix_dump,
	.lock = &flock_fd_lock,
	.group = unix_group,
	.open = unix_open,
	.inherit_key = unix_inherit_key,
};

/* The host's unix sockets, listed once per dump (sock_diag) and grouped. */
const struct res_ops unix_res = {
	.name = "unix",
	.dump_state_size = sizeof(struct unix_table),
	.dump_fini = unix_dump_fini,
};
