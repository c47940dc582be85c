# tests/suites/netns.sh - network namespaces (src/res/ns_net.c) and
# migration between two of them (sourced by tests/run.sh).  Every address
# used lives in a namespace the test makes (10.199.77.0/30 on the veth
# between the host and the tree, 10.77.0.0/16 between the namespaces of
# the migration test); every namespace and veth is removed at the end of
# each test, failed or not.

NETNS_HOST_END=stxh0
NETNS_COPY_END=stxh1
NETNS_LIST="stxA stxB stxC stxD"

# netns_cleanup: kill what the test left in its namespaces, remove them
# and the host end of the tree's veth.
netns_cleanup() {
	local n p
	for n in $NETNS_LIST; do
		[ -e "/run/netns/$n" ] || continue
		for p in $(ip netns pids "$n" 2>/dev/null); do
			is_tracked "$p" && kill -9 "$p" 2>/dev/null
		done
		ip netns del "$n" 2>/dev/null
	done
	ip link del "$NETNS_HOST_END" 2>/dev/null
	ip link del "$NETNS_COPY_END" 2>/dev/null
	return 0
}

# netns_view PID: the network namespace of PID as it sees it (devices
# without the index of a peer in another namespace, addresses without
# the transient "tentative" of duplicate address detection, routes,
# sysctls, ruleset).
netns_view() {
	nsenter -t "$1" -n sh -c 'ip -o link | sed "s/@if[0-9]*:/:/"; ip -o addr | sed "s/ tentative//"; ip route;
		ip -6 route; sysctl net.ipv4.tcp_keepalive_time net.ipv4.conf.stxn0.rp_filter \
		net.ipv6.conf.stxn0.hop_limit net.ipv4.ip_local_port_range; nft list ruleset'
}

# netns_client DIR ADDR PORT [NETNS]: a client (in NETNS, default ours)
# that says hello and, for N = 1 2 3, once DIR/goN exists, says pingN
# and writes the answer to DIR/answerN (see tests/suites/inet.sh).
netns_client() {
	local d=$1 addr=$2 port=$3 ns=${4:-}
	(close_extra_fds
		exec ${ns:+nsenter --net=/run/netns/$ns} bash -c '
		d=$1
		exec 3<>"/dev/tcp/$2/$3" || exit 1
		echo hello >&3
		read -r -t 10 l <&3
		echo "$l" >"$d/welcome"
		for i in 1 2 3; do
			while [ ! -e "$d/go$i" ]; do sleep 0.05; done
			echo "ping$i" >&3
			read -r -t 10 l <&3 || l="nothing (read: $?)"
			echo "$l" >"$d/answer$i.tmp"
			mv "$d/answer$i.tmp" "$d/answer$i"
		done
		exec sleep 60' client "$d" "$addr" "$port") </dev/null >>"$TDIR/client.log" 2>&1 &
	CLIENT_PID=$!
	disown "$CLIENT_PID"
	track "$CLIENT_PID"
}

# netns_answer N WANT: round N of the client got WANT.
netns_answer() {
	local ans
	touch "$TDIR/go$1"
	wait_file "$TDIR/answer$1" 10 "$CLIENT_PID" || { bad "the client wrote no answer $1"; return 1; }
	ans=$(cat "$TDIR/answer$1")
	[ "$ans" = "$2" ] || { bad "round $1: the client got '$ans', expected $2"; return 1; }
}

# netns_start_tree: the scenario in a namespace of its own, built from
# outside as `unshare --net` plus ip(8) would: lo up, a veth to the host
# (10.199.77.2/30 inside, .1 here), a route, an IPv6 address, sysctls, an
# nftables table; then its client on the host.  EXTRA: more commands run
# inside before it goes on.
netns_start_tree() {
	local pid bin=$BUILD/tests/netns_tree
	SCN_NAME=netns_tree
	rm -f "$TDIR/ready" "$TDIR/result"
	(close_extra_fds
		cd "$TDIR" && NETNS_ADDR=10.199.77.2 exec setsid "$bin" "$TDIR") </dev/null >>"$TDIR/log" 2>&1 &
	pid=$!
	disown "$pid"
	track "$pid"
	wait_file "$TDIR/unshared" "$WAIT_READY" "$pid" || { bad "netns_tree did not unshare"; return 1; }
	ip link add "$NETNS_HOST_END" type veth peer name stxn0 netns "$pid" || { bad "cannot make the veth"; return 1; }
	nsenter -t "$pid" -n sh -ec '
		ip link set lo up
		ip addr add 10.199.77.2/30 dev stxn0
		ip -6 addr add fd77:199::2/64 dev stxn0 nodad
		ip link set stxn0 mtu 1400 up
		ip route add 10.199.78.0/24 via 10.199.77.1
		sysctl -qw net.ipv4.tcp_keepalive_time=1234 net.ipv4.conf.stxn0.rp_filter=2 \
			net.ipv6.conf.stxn0.hop_limit=33 net.ipv4.ip_local_port_range="20000 30000"
		nft add table inet stxfilter
		nft add chain inet stxfilter input "{ type filter hook input priority 0; }"
		nft add rule inet stxfilter input tcp dport 9 counter drop
		'"${EXTRA:-}" || { bad "cannot set up the tree's namespace"; return 1; }
	ip addr add 10.199.77.1/30 dev "$NETNS_HOST_END" && ip link set "$NETNS_HOST_END" up ||
		{ bad "cannot set up the host end"; return 1; }
	touch "$TDIR/netready"
	wait_file "$TDIR/listening" "$WAIT_READY" "$pid" || { bad "netns_tree does not listen"; return 1; }
	netns_client "$TDIR" 10.199.77.2 7101
	wait_file "$TDIR/ready" "$WAIT_READY" "$pid" || { bad "netns_tree not ready"; return 1; }
	read -r SCN_PID SCN_TOKEN <"$TDIR/ready"
	SCN_START=$(proc_start "$SCN_PID")
	[ "$(cat "$TDIR/welcome" 2>/dev/null)" = welcome ] || { bad "the client got no welcome"; return 1; }
}

# A tree in its own network namespace with a veth to the host, dumped
# and restored: what it sees of its namespace (devices, addresses,
# routes, sysctls, ruleset) is the same, the host end is back with its
# address, its client on the host keeps its connection through the veth,
# and its sockets inside (a TCP pair over lo, UDP with a datagram queued,
# an abstract unix name) work; no lock table is left.
test_netns_tree() {
	local rc tables
	need_stasis || return 1
	netns_cleanup
	tables=$(nft_stasis_tables)
	netns_tree_cycle
	rc=$?
	[ $rc = 0 ] && [ -n "$(nft_tables_left "$tables" "${TEST_PIDS[@]%%:*}")" ] && { bad "a network lock table was left"; rc=1; }
	kill_trees "${TEST_PIDS[@]}" >/dev/null 2>&1
	netns_cleanup
	return $rc
}
netns_tree_cycle() {
	local i
	netns_start_tree || return 1
	netns_view "$SCN_PID" >"$TDIR/net.before" 2>&1 || { bad "cannot read the tree's namespace"; return 1; }
	for i in 1 2; do
		dump "$SCN_PID" "$TDIR/img$i" --tcp-established || return 1
		grep -q "network lock: table inet stasis-held-.* holds [1-9][0-9]* TCP socket" "$TDIR/dump$N_CMD.log" ||
			{ bad "dump $i did not lock the tree's TCP sockets"; return 1; }
		wait_gone "$SCN_PID" || { bad "the tree is still there after dump $i"; return 1; }
		tree_gone "$TDIR/img$i" || return 1
		restore_detached "$TDIR/img$i" "$SCN_PID" || return 1
		netns_view "$SCN_PID" >"$TDIR/net.after$i" 2>&1
		diff -u "$TDIR/net.before" "$TDIR/net.after$i" >"$TDIR/net.diff$i" ||
			{ bad "the tree's network namespace differs after restore $i"; DETAILS=$(head -n 20 "$TDIR/net.diff$i"); return 1; }
		ip -o addr show dev "$NETNS_HOST_END" 2>/dev/null | grep -q "inet 10.199.77.1/30" ||
			{ bad "the host end $NETNS_HOST_END lost its address after restore $i"; return 1; }
		netns_answer $i "pong$i" || return 1
	done
	check_scenario
}
register netns_tree/own test_netns_tree

# test_netns_refused KIND: a tree whose namespace holds a device or
# route stasis does not save (KIND: bridge, rule, multipath) is refused
# by name, and runs on with its client.
test_netns_refused() {
	local rc what words EXTRA
	case $1 in
	bridge)
		what="a bridge" words="network device stxbr0 (bridge)"
		EXTRA="ip link add stxbr0 type bridge" ;;
	rule)
		what="a policy routing rule" words="policy routing rules"
		EXTRA="ip rule add from 10.199.77.2 table 77" ;;
	multipath)
		what="a multipath route" words="several paths"
		EXTRA="ip route add 10.199.79.0/24 nexthop via 10.199.77.1 weight 1 nexthop via 10.199.77.1 weight 2" ;;
	esac
	need_stasis || return 1
	netns_cleanup
	netns_start_tree && netns_refused_dump "$what" "$words"
	rc=$?
	kill_trees "${TEST_PIDS[@]}" >/dev/null 2>&1
	netns_cleanup
	return $rc
}
netns_refused_dump() {
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img" --tcp-established
	expect_error "dump of a tree whose namespace has $1" $? "$TDIR/err.err" || return 1
	grep -q "pid $SCN_PID: .*$2" "$TDIR/err.err" ||
		{ bad "the error does not name pid $SCN_PID and '$2': $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	netns_answer 1 pong1 || return 1
	check_scenario
}
register bad/netns-bridge test_netns_refused bridge
register bad/netns-rule test_netns_refused rule
register bad/netns-multipath test_netns_refused multipath

# --join-ns with a path that is no network namespace: one line, nothing runs.
test_netns_join_bad() {
	need_stasis || return 1
	start_scenario sleeper || return 1
	dump "$SCN_PID" "$TDIR/img" || return 1
	wait_gone "$SCN_PID" || return 1
	stasis_cmd err restore -D "$TDIR/img" -d --join-ns net:/proc/self/ns/uts
	expect_error "restore --join-ns into a UTS namespace" $? "$TDIR/err.err" || return 1
	grep -q "join-ns net:/proc/self/ns/uts: cannot enter it as a network namespace" "$TDIR/err.err" ||
		{ bad "the error does not name the option: $ERR_LINE"; return 1; }
	alive "$SCN_PID" && { bad "something runs at $SCN_PID"; return 1; }
	stasis_cmd err2 restore -D "$TDIR/img" -d --join-ns mnt:/x
	expect_error "restore --join-ns mnt:" $? "$TDIR/err2.err" || return 1
	grep -q "bad --join-ns 'mnt:/x'" "$TDIR/err2.err" || { bad "bad --join-ns not named: $ERR_LINE"; return 1; }
	return 0
}
register bad/netns-join-bad test_netns_join_bad

# ------------------------------------------------------------ migration

# netns_hosts: namespaces stxA and stxB ("two hosts") with the same
# service address 10.77.0.1, and a client namespace stxC joined to each
# by a veth, its route to the service address through stxA's.
netns_hosts() {
	local h
	for h in stxA stxB stxC; do ip netns add $h || return 1; done
	for h in A B; do
		ip link add stxC$h netns stxC type veth peer name stx${h}c netns stx$h || return 1
		ip -n stx$h link set lo up
		ip -n stx$h addr add 10.77.0.1/32 dev stx${h}c
		ip -n stx$h link set stx${h}c up
		ip -n stx$h route add 10.77.1.0/24 dev stx${h}c || return 1
		ip -n stxC addr add 10.77.1.2/32 dev stxC$h
		ip -n stxC link set stxC$h up
	done
	ip -n stxC link set lo up
	ip -n stxC route add 10.77.0.1/32 dev stxCA src 10.77.1.2
}

# netns_serve_in NS: the server scenario in namespace NS (nsenter --net:
# the mount namespace stays ours), listening on 10.77.0.1:7201, and its
# client in stxC.
netns_serve_in() {
	local bin=$BUILD/tests/netns_tree pid
	SCN_NAME=netns_tree
	rm -f "$TDIR/ready" "$TDIR/result"
	(close_extra_fds
		cd "$TDIR" && NETNS_SERVE_ADDR=10.77.0.1 NETNS_PORT=7201 \
			exec nsenter --net=/run/netns/$1 setsid "$bin" "$TDIR") </dev/null >>"$TDIR/log" 2>&1 &
	pid=$!
	disown "$pid"
	track "$pid"
	wait_file "$TDIR/listening" "$WAIT_READY" "$pid" || { bad "the server does not listen in $1"; return 1; }
	netns_client "$TDIR" 10.77.0.1 7201 stxC
	wait_file "$TDIR/ready" "$WAIT_READY" "$pid" || { bad "the server is not ready"; return 1; }
	read -r SCN_PID SCN_TOKEN <"$TDIR/ready"
	SCN_START=$(proc_start "$SCN_PID")
	[ "$(cat "$TDIR/welcome" 2>/dev/null)" = welcome ] || { bad "the client got no welcome"; return 1; }
	netns_answer 1 pong1
}

# in_ns NS NAME ARGS...: stasis ARGS in namespace NS (no NS: ours); with
# FD7=PATH, PATH is open at its fd 7.
in_ns() {
	local ns=$1 name=$2
	shift 2
	N_CMD=$((N_CMD + 1))
	# shellcheck disable=SC2016
	run_timed "$T_STASIS" "$TDIR/$name.out" "$TDIR/$name.err" \
		${ns:+nsenter --net=/run/netns/$ns} bash -c '[ -z "$0" ] || exec 7<"$0"; exec "$@"' \
		"${FD7:-}" "$STASIS" "$@" -v4 -o "$TDIR/$name.log"
}

# test_netns_migrate HOW: a server with an established client connection
# dumped in stxA and restored in stxB, the client's route switched to B
# in between: the connection survives and the server answers.  HOW:
#   dumper-in-A   stasis runs in A for the dump, in B for the restore;
#   join-ns       the dump runs here (A external: --external net[INO]:a),
#                 the restore here with --join-ns net:/run/netns/stxB;
#   inherit-fd    the same, B given as --inherit-fd fd[N]:a;
#   no-address    as join-ns, into stxD that lacks the service address:
#                 refused naming the socket and the address.
test_netns_migrate() {
	local rc
	need_stasis || return 1
	netns_cleanup
	netns_migrate "$1"
	rc=$?
	kill_trees "${TEST_PIDS[@]}" >/dev/null 2>&1
	netns_cleanup
	return $rc
}
netns_migrate() {
	local how=$1 ino rc
	netns_hosts || { bad "cannot make the namespaces"; return 1; }
	netns_serve_in stxA || return 1
	ino=$(stat -L -c %i /run/netns/stxA)
	if [ "$how" = dumper-in-A ]; then
		in_ns stxA dump dump -t "$SCN_PID" -D "$TDIR/img" --tcp-established
	else
		in_ns "" dump dump -t "$SCN_PID" -D "$TDIR/img" --tcp-established --external "net[$ino]:a"
	fi
	rc_ok dump $? "$TDIR/dump.err" || return 1
	wait_gone "$SCN_PID" || { bad "the server is still there after the dump"; return 1; }
	tree_gone "$TDIR/img" || return 1
	ip -n stxC route replace 10.77.0.1/32 dev stxCB src 10.77.1.2 || return 1
	case $how in
	dumper-in-A) in_ns stxB restore restore -D "$TDIR/img" -d ;;
	join-ns) in_ns "" restore restore -D "$TDIR/img" -d --join-ns net:/run/netns/stxB ;;
	inherit-fd) FD7=/run/netns/stxB in_ns "" restore restore -D "$TDIR/img" -d --inherit-fd "fd[7]:a" ;;
	no-address)
		ip netns add stxD && ip -n stxD link set lo up
		in_ns "" restore restore -D "$TDIR/img" -d --join-ns net:/run/netns/stxD
		expect_error "restore into a namespace without the service address" $? "$TDIR/restore.err" || return 1
		grep -q "10.77.0.1:7201" "$TDIR/restore.err" && grep -q "Cannot assign requested address" "$TDIR/restore.err" ||
			{ bad "the error does not name the socket's address: $ERR_LINE"; return 1; }
		alive "$SCN_PID" && { bad "something of the failed restore runs"; return 1; }
		return 0
		;;
	esac
	rc=$?
	adopt_image "$TDIR/img" "$SCN_PID"
	rc_ok restore $rc "$TDIR/restore.err" || return 1
	[ "$(ip netns identify "$SCN_PID")" = stxB ] || { bad "the server is not in stxB but in '$(ip netns identify "$SCN_PID")'"; return 1; }
	netns_answer 2 pong2 || return 1
	alive "$CLIENT_PID" || { bad "the client died"; return 1; }
	check_scenario
}
register netns_migrate/dumper-in-A test_netns_migrate dumper-in-A
register netns_migrate/join-ns test_netns_migrate join-ns
register netns_migrate/inherit-fd test_netns_migrate inherit-fd
register bad/netns-no-address test_netns_migrate no-address

# The tree's namespace external at dump, restore without saying where it
# goes: one line naming the key and both options.
test_netns_external_missing() {
	local rc
	need_stasis || return 1
	netns_cleanup
	netns_hosts && netns_serve_in stxA && netns_external_missing
	rc=$?
	kill_trees "${TEST_PIDS[@]}" >/dev/null 2>&1
	netns_cleanup
	return $rc
}
netns_external_missing() {
	local ino
	ino=$(stat -L -c %i /run/netns/stxA)
	in_ns "" dump dump -t "$SCN_PID" -D "$TDIR/img" --tcp-established -R --external "net[$ino]:a"
	rc_ok dump $? "$TDIR/dump.err" || return 1
	in_ns "" restore restore -D "$TDIR/img" -d
	expect_error "restore of an external namespace without --join-ns" $? "$TDIR/restore.err" || return 1
	grep -q "external at dump (net\[$ino\]:a): give --join-ns net:PATH or --inherit-fd fd\[N\]:a" "$TDIR/restore.err" ||
		{ bad "the error does not name the key and the options: $ERR_LINE"; return 1; }
	netns_answer 2 pong2 || return 1
	# without --external, the veth to the third namespace is refused
	in_ns "" dump2 dump -t "$SCN_PID" -D "$TDIR/img2" --tcp-established
	expect_error "dump of a namespace with a veth to a third one" $? "$TDIR/dump2.err" || return 1
	grep -q "veth stxAc has its peer in a third network namespace" "$TDIR/dump2.err" ||
		{ bad "the error does not name the veth: $ERR_LINE"; return 1; }
	check_scenario
}
register bad/netns-external-missing test_netns_external_missing

# dump -R of a tree in its own network namespace: the lock in that
# namespace is lifted, the client on the host goes on being answered on
# the same connection, and the tree passes its own check.
test_netns_tree_R() {
	local rc
	need_stasis || return 1
	netns_cleanup
	netns_tree_R
	rc=$?
	kill_trees "${TEST_PIDS[@]}" >/dev/null 2>&1
	netns_cleanup
	return $rc
}
netns_tree_R() {
	netns_start_tree || return 1
	dump "$SCN_PID" "$TDIR/img" -R --tcp-established || return 1
	nsenter -t "$SCN_PID" -n nft list tables | grep -q stasis- &&
		{ bad "a lock table is left in the tree's namespace after dump -R"; return 1; }
	netns_answer 1 pong1 || return 1
	netns_answer 2 pong2 || return 1
	check_scenario
}
register netns_tree/dump-R test_netns_tree_R

# A restore that fails after the root built the namespace (a fault after
# ns's child_early): nothing of it is left (the host end of the veth goes
# with the namespace), and the next restore brings the tree and its
# client's connection back.
test_netns_restore_fault() {
	local rc
	need_stasis || return 1
	netns_cleanup
	netns_restore_fault
	rc=$?
	kill_trees "${TEST_PIDS[@]}" >/dev/null 2>&1
	netns_cleanup
	return $rc
}
netns_restore_fault() {
	local i
	netns_start_tree || return 1
	dump "$SCN_PID" "$TDIR/img" --tcp-established || return 1
	wait_gone "$SCN_PID" || { bad "the tree is still there after the dump"; return 1; }
	tree_gone "$TDIR/img" || return 1
	STASIS_FAULT=restore:ns:child_early stasis_cmd f restore -D "$TDIR/img" -d
	expect_error "restore with a fault after the namespace was built" $? "$TDIR/f.err" || return 1
	grep -qF "fault injected at restore:ns:child_early" "$TDIR/f.err" || { bad "the fault was not injected: $ERR_LINE"; return 1; }
	for ((i = 0; i < 40; i++)); do
		ip link show "$NETNS_HOST_END" >/dev/null 2>&1 || break
		sleep 0.05
	done
	ip link show "$NETNS_HOST_END" >/dev/null 2>&1 && { bad "the host end $NETNS_HOST_END is left after the failed restore"; return 1; }
	tree_gone "$TDIR/img" || return 1
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	netns_answer 1 pong1 || return 1
	check_scenario
}
register bad/netns-restore-fault test_netns_restore_fault

# The tree restored next to its running original (dump -R, then restore
# --pidns --veth-pair stxn0=stxh1 --tcp-close): the copy's new network namespace looks
# from inside as the original's does, its host end is stxh1 with the
# host end's address; without --veth-pair the restore fails with one line
# naming the option, and a --veth-pair naming no veth of the tree is
# refused; the copy gone, its host end is gone too and the original
# answers its client as before.
test_netns_copy() {
	local rc
	need_stasis || return 1
	netns_cleanup
	netns_copy
	rc=$?
	kill_trees "${TEST_PIDS[@]}" >/dev/null 2>&1
	netns_cleanup
	return $rc
}
netns_copy() {
	netns_start_tree || return 1
	netns_view "$SCN_PID" >"$TDIR/net.before" 2>&1 || { bad "cannot read the tree's namespace"; return 1; }
	dump "$SCN_PID" "$TDIR/img" -R --tcp-established || return 1
	stasis_cmd err restore -D "$TDIR/img" -d --pidns --veth-pair nosuch=stxh9
	expect_error "restore with a --veth-pair naming no veth" $? "$TDIR/err.err" || return 1
	grep -q -- "--veth-pair nosuch=stxh9: the tree has no veth nosuch" "$TDIR/err.err" ||
		{ bad "the error does not name the unknown veth: $ERR_LINE"; return 1; }
	stasis_cmd err2 restore -D "$TDIR/img" -d --pidns
	expect_error "restore next to the original without --veth-pair" $? "$TDIR/err2.err" || return 1
	grep -q -- "host end $NETNS_HOST_END exists.*--veth-pair stxn0=NAME" "$TDIR/err2.err" ||
		{ bad "the error does not point to --veth-pair: $ERR_LINE"; return 1; }
	# --tcp-close: a copy of the client's connection would talk to the
	# same client as the original does (and end it with its FIN)
	local RESTORE_OPTS="--veth-pair stxn0=$NETNS_COPY_END --tcp-close"
	restore_pidns "$TDIR/img" || return 1
	netns_view "$CPY_PID" >"$TDIR/net.copy" 2>&1
	diff -u "$TDIR/net.before" "$TDIR/net.copy" >"$TDIR/net.diff" ||
		{ bad "the copy's network namespace differs from the original's"; DETAILS=$(head -n 20 "$TDIR/net.diff"); return 1; }
	ip -o addr show dev "$NETNS_COPY_END" 2>/dev/null | grep -q "inet 10.199.77.1/30" ||
		{ bad "the copy's host end $NETNS_COPY_END has not the host end's address"; return 1; }
	ip -o addr show dev "$NETNS_HOST_END" 2>/dev/null | grep -q "inet 10.199.77.1/30" ||
		{ bad "the original's host end lost its address"; return 1; }
	kill -KILL "$CPY_INIT"
	wait_gone "$CPY_PID" 5 || { bad "the copy outlived its namespace's init"; return 1; }
	local _
	for _ in $(seq 300); do
		ip link show "$NETNS_COPY_END" >/dev/null 2>&1 || break
		sleep 0.1
	done
	ip link show "$NETNS_COPY_END" >/dev/null 2>&1 && { bad "the copy's host end is left after the copy is gone"; return 1; }
	netns_answer 1 pong1 || return 1
	netns_view "$SCN_PID" >"$TDIR/net.after" 2>&1
	diff -u "$TDIR/net.before" "$TDIR/net.after" >"$TDIR/net.diff" ||
		{ bad "the original's network namespace changed"; DETAILS=$(head -n 20 "$TDIR/net.diff"); return 1; }
	check_scenario
}
register netns_tree/copy-beside-original test_netns_copy
