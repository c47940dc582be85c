# Unix sockets: pairs, queues, names, listeners (src/res/unix.c).
# unix_dgram has no pidns mode: its abstract names are per network
# namespace, and the original still holds them (restore fails, EADDRINUSE).
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
for m in once leave-running pidns; do
	register "unix_epoll/$m" test_cr unix_epoll $m
done

# A descriptor in flight (SCM_RIGHTS) is refused; the message and its
# descriptor are still there after the failed dump.
test_unix_scm_rights() {
	need_stasis || return 1
	start_scenario unix_scm || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a socket with a descriptor in flight" $? "$TDIR/err.err" || return 1
	grep -q "SCM_RIGHTS" "$TDIR/err.err" ||
		{ bad "the error does not name SCM_RIGHTS: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}

# With --ext-unix-sk, C's end of a socketpair whose other end is outside
# cannot be recreated: restore names the --inherit-fd key it needs, leaves
# nothing running; with --inherit-fd, C gets the fd given (here /dev/null:
# the point is which object C's fd becomes).
test_unix_ext_inherit() {
	local c key n
	need_stasis || return 1
	start_scenario unix_ext || return 1
	read -r c <"$TDIR/pids"
	dump "$c" "$TDIR/img" --ext-unix-sk || return 1
	wait_gone "$c" || { bad "C ($c) still there after the dump"; return 1; }
	tree_gone "$TDIR/img" || return 1
	stasis_cmd err restore -D "$TDIR/img" -d
	expect_error "restore of an unnamed outside peer without --inherit-fd" $? \
		"$TDIR/err.err" || return 1
	key=$(grep -o 'fd\[N\]:socket:\[[0-9]*\]' "$TDIR/err.err" | head -n 1)
	[ -n "$key" ] || { bad "the error does not name the --inherit-fd key: $ERR_LINE"; return 1; }
	key=${key#fd\[N\]:}
	sleep 0.2
	[ -e "/proc/$c" ] && { adopt "$c"; bad "process $c exists after the failed restore"; return 1; }
	N_CMD=$((N_CMD + 1))
	# the runner closes extra fds before a command: open fd 9 inside it
	run_timed "$T_STASIS" "$TDIR/restore$N_CMD.out" "$TDIR/restore$N_CMD.err" \
		bash -c 'exec 9</dev/null && exec "$0" "$@"' "$STASIS" restore -D "$TDIR/img" -d \
		--inherit-fd "fd[9]:$key" -v4 -o "$TDIR/restore$N_CMD.log"
	n=$?
	adopt_image "$TDIR/img" "$c"
	rc_ok "restore --inherit-fd" $n "$TDIR/restore$N_CMD.err" || return 1
	for n in /proc/"$c"/fd/*; do
		[ "$(readlink "$n")" = /dev/null ] && [ "${n##*/}" -gt 2 ] && return 0
	done
	bad "C ($c) has no fd above 2 on the inherited /dev/null: $(ls -l /proc/"$c"/fd | tr '\n' ' ')"
}

register bad/unix-scm-rights test_unix_scm_rights
register unix_ext/inherit-fd test_unix_ext_inherit

# unix_listen with seqpacket sockets (listen, accept, pending, records).
test_unix_listen_seqpacket() {
	local rc
	export UNIX_LISTEN_TYPE=seqpacket
	test_cr unix_listen "$1"
	rc=$?
	unset UNIX_LISTEN_TYPE
	return $rc
}

for m in once leave-running; do
	register "unix_listen-seqpacket/$m" test_unix_listen_seqpacket $m
done

# A pending connection whose client has closed: the bytes it may have left
# cannot be seen without accepting it, so the dump is refused; the failed
# dump leaves the queue as it was (the scenario accepts all of it).
test_unix_embryo_closed() {
	local rc
	need_stasis || return 1
	export UNIX_LISTEN_CLOSED=1
	start_scenario unix_listen
	rc=$?
	unset UNIX_LISTEN_CLOSED
	[ $rc = 0 ] || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a listener with a pending connection from a closed client" $? \
		"$TDIR/err.err" || return 1
	grep -q "closed" "$TDIR/err.err" ||
		{ bad "the error does not say the client is closed: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	UNIX_LISTEN_CLOSED=1 check_scenario
}

register bad/unix-embryo-closed test_unix_embryo_closed
