# Many TCP connections at once (issue 11): bench/netconns holds N
# established connections over 127.0.0.1 with 4 KiB unread each way, its
# peer outside the tree.  What the speed-ups of that path must not break:
# every byte of every connection after a restore, and the TCP guardian
# (src/res/tcp.c), which now sleeps until stasis is gone and only then
# reads the sockets queued to it, when stasis dies with one connection in
# repair mode and the others waiting in the guardian's queue.  The
# timings are bench/net.sh's (make bench-net), not a test's.

# netperf_bin: NETCONNS is bench/netconns, built into BUILD/bench when
# missing or older than its source; else REASON (skip).
netperf_bin() {
	NETCONNS=$BUILD/bench/netconns
	if [ ! -x "$NETCONNS" ] || [ "$REPO/bench/netconns.c" -nt "$NETCONNS" ]; then
		command -v "${CC:-gcc}" >/dev/null || { REASON="no C compiler to build bench/netconns"; return 77; }
		mkdir -p "$BUILD/bench"
		"${CC:-gcc}" -O2 -Wall -o "$NETCONNS" "$REPO/bench/netconns.c" 2>"$TDIR/cc.err" ||
			{ bad "cannot build bench/netconns: $(head -n 1 "$TDIR/cc.err")"; return 1; }
	fi
	return 0
}

# netperf_start N: the server (NP_SRV, in the tree) and its peer (NP_PEER)
# with N connections, both tracked, in TDIR/nc.
netperf_start() {
	local n=$1 dir=$TDIR/nc
	mkdir -p "$dir"
	(close_extra_fds; exec setsid "$NETCONNS" serve "$n" "$dir") </dev/null >>"$TDIR/log" 2>&1 &
	NP_SRV=$!
	disown "$NP_SRV" # no "Killed" job notices when a dump kills it
	track "$NP_SRV"
	wait_file "$dir/port" 10 "$NP_SRV" || { bad "netconns serve $n does not listen"; return 1; }
	(close_extra_fds; exec setsid "$NETCONNS" peer "$n" "$dir") </dev/null >>"$TDIR/log" 2>&1 &
	NP_PEER=$!
	disown "$NP_PEER"
	track "$NP_PEER"
	wait_file "$dir/peer.ready" 10 "$NP_PEER" || { bad "netconns peer $n not ready"; return 1; }
	wait_file "$dir/serve.ready" 10 "$NP_SRV" || { bad "netconns serve $n not ready"; return 1; }
}

# netperf_verdicts N: both sides read every byte of every connection.
netperf_verdicts() {
	local n=$1 dir=$TDIR/nc r
	kill -USR1 "$NP_SRV" "$NP_PEER"
	for r in serve peer; do
		wait_file "$dir/$r.verdict" 10 || { bad "$r gave no verdict"; return 1; }
		[ "$(cat "$dir/$r.verdict")" = "ok $n" ] ||
			{ bad "$r: $(cat "$dir/$r.verdict")"; return 1; }
	done
}

# 200 connections: dump (killed), restore, every byte both ways.
test_netperf_conns() {
	need_stasis || return 1
	command -v nft >/dev/null || { REASON="nft (nftables) is not installed"; return 77; }
	netperf_bin || return $?
	netperf_start 200 || return 1
	dump "$NP_SRV" "$TDIR/img" --tcp-established || return 1
	wait_gone "$NP_SRV" || { bad "the server is still there after the dump"; return 1; }
	[ -n "$(nft_stasis_tables "$NP_SRV")" ] || { bad "no network lock between dump and restore"; return 1; }
	restore_detached "$TDIR/img" "$NP_SRV" || return 1
	[ -z "$(nft_stasis_tables "$NP_SRV")" ] || { bad "the network lock is left after the restore"; return 1; }
	netperf_verdicts 200
}
register netperf/conns-200 test_netperf_conns

# stasis dies of SIGKILL with its 150th connection in repair mode and 149
# handed to the guardian before it: the guardian switches them back, the
# lock goes with stasis's netlink socket, every byte is still read.
test_netperf_guardian() {
	local rc
	need_stasis || return 1
	command -v nft >/dev/null || { REASON="nft (nftables) is not installed"; return 77; }
	netperf_bin || return $?
	netperf_start 200 || return 1
	STASIS_TEST_CRASH=tcp-repair-kill:150 stasis_cmd kill dump -t "$NP_SRV" -D "$TDIR/img" --tcp-established
	rc=$?
	[ $rc -eq 137 ] && ! grep -q "timed out" "$TDIR/kill.err" ||
		{ bad "the dump exited with $rc, not by the SIGKILL asked for"; return 1; }
	no_image_left "$TDIR/img" || return 1
	[ -z "$(nft_stasis_tables "$NP_SRV")" ] || { bad "a lock is left after the killed dump"; return 1; }
	sleep 0.2 # the kernel lets the tree go; the guardian had its hang-up
	if pgrep -f "dump -t $NP_SRV " >/dev/null; then
		bad "a guardian of the killed dump is still there: $(pgrep -af "dump -t $NP_SRV ")"
		return 1
	fi
	netperf_verdicts 200
}
register netperf/guardian-kill test_netperf_guardian
