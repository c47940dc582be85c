# tests/suites/netlink.sh - netlink sockets (sourced by tests/run.sh).

# nl_sock holds route, uevent, generic and sock_diag sockets, bound and
# in groups; after restore each is bound to the same port id and groups
# and still talks to the kernel (the scenario's own check).
register nl_sock/once test_cr nl_sock once
register nl_sock/x3 test_cr nl_sock x3
register nl_sock/leave-running test_cr nl_sock leave-running

# A netlink socket with an unread answer is refused by name (the answer
# cannot be put back); the scenario runs on with its sockets as they were.
test_nl_unread() {
	local rc
	need_stasis || return 1
	export NL_MODE=unread
	start_scenario nl_sock
	rc=$?
	unset NL_MODE
	[ $rc = 0 ] || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a netlink socket with an unread message" $? "$TDIR/err.err" || return 1
	grep -q "pid $SCN_PID fd 3.*NETLINK_ROUTE socket has unread messages" "$TDIR/err.err" ||
		{ bad "the error does not name pid $SCN_PID fd 3 and its unread messages: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register bad/netlink-unread test_nl_unread
