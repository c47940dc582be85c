# Unix sockets: pairs, queues, names, listeners (src/res/unix.c).
for m in once x3 leave-running; do
	register "unix_dgram/$m" test_cr unix_dgram $m
done
for m in once x3 leave-running pidns; do
	register "unix_stream/$m" test_cr unix_stream $m
done
for m in once x3 leave-running pidns; do
	register "unix_listen/$m" test_cr unix_listen $m
done

# A connection waiting in the accept queue already holds data: refused
# (it cannot be read without accepting it), and the failed dump leaves
# every queue as it was (the scenario's own check reads them all).
test_unix_embryo_data() {
	need_stasis || return 1
	UNIX_LISTEN_DATA=1 start_scenario unix_listen || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a listener with data in a pending connection" $? "$TDIR/err.err" ||
		return 1
	grep -q "accept queue" "$TDIR/err.err" ||
		{ bad "the error does not name the accept queue: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}

# The dumped subtree (child C alone) holds unix sockets whose peers are in
# its parent: refused without --ext-unix-sk, and C is left unharmed.
test_unix_ext_refused() {
	local c
	need_stasis || return 1
	start_scenario unix_ext || return 1
	read -r c <"$TDIR/pids"
	stasis_cmd err dump -t "$c" -D "$TDIR/img"
	expect_error "dump of a socket connected outside the tree" $? "$TDIR/err.err" || return 1
	grep -q -- "outside the tree (use --ext-unix-sk)" "$TDIR/err.err" ||
		{ bad "the error does not say why: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}

# With --ext-unix-sk, C (connected to its parent's listener by path) is
# dumped alone and restored: it connects to the listener again.
test_unix_ext_reconnect() {
	local c
	need_stasis || return 1
	UNIX_EXT_NOPAIR=1 start_scenario unix_ext || return 1
	read -r c <"$TDIR/pids"
	dump "$c" "$TDIR/img" --ext-unix-sk || return 1
	wait_gone "$c" || { bad "C ($c) still there after the dump"; return 1; }
	tree_gone "$TDIR/img" || return 1
	restore_detached "$TDIR/img" "$c" || return 1
	check_scenario
}

register bad/unix-embryo-data test_unix_embryo_data
register bad/unix-ext-refused test_unix_ext_refused
register unix_ext/reconnect test_unix_ext_reconnect
for m in once leave-running; do
	register "unix_epoll/$m" test_cr unix_epoll $m
done
