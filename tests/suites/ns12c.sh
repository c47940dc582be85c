# tests/suites/ns12c.sh - what a container's namespaces hold beyond the
# namespaces themselves (issue 12): POSIX message queues of the tree's own
# IPC namespace (src/res/mqueue.c), ptys of its own devpts instance
# (src/res/tty.c), and the combined container of unshare(1).

# POSIX queues of an IPC namespace of the tree's own: every queue of the
# namespace (held, unheld, empty, deleted), rebuilt in a new one.  The
# queues live and die with the scenario's namespace: nothing to clean up.
# (not --pidns: the copy next to the original has another namespace, whose
# internal mqueue mount has another mnt_id in fdinfo)
for m in once x3 leave-running; do
	register "ns12c/mq_ipcns/$m" test_cr mq_ipcns $m
done

# A queue of the tree's namespace with an mq_notify registration is refused
# by name; the tree runs on with every message (its own check).
test_mq_ipcns_notify() {
	need_stasis || return 1
	echo notify >"$TDIR/mode"
	start_scenario mq_ipcns || return 1
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	dump_refused "dump of a queue with mq_notify" "POSIX message queue /n .*mq_notify" || return 1
	snapshot "$SCN_PID" "$TDIR/state.after" || return 1
	compare_state "$TDIR/state.before" "$TDIR/state.after" "after the failure" "$DETAILS" || return 1
	check_scenario
}
register "ns12c/mq_ipcns-notify" test_mq_ipcns_notify

# Ptys of a devpts of the tree's own (a container's /dev/pts): the same
# indexes in the new instance of the restored mount namespace, with their
# termios, window size and bytes in flight.
for m in once x3; do
	register "ns12c/devpts_pty/$m" test_cr devpts_pty $m
done

# Ptys of the host's /dev/pts and of the tree's own devpts at once: their
# indexes would clash, so the dump refuses by name; the tree runs on.
test_devpts_mix() {
	need_stasis || return 1
	echo mix >"$TDIR/mode"
	start_scenario devpts_pty || return 1
	dump_refused "dump of ptys of two devpts instances" "ptys of two devpts instances" || return 1
	check_scenario
}
register "ns12c/devpts_pty-two-instances" test_devpts_mix

# ---------------------------------------------------------------- container
CT_HOST_END=stch0

# ct_cleanup: the host end of the veth (its peer goes with it), whatever
# is left of the tree (tracked PIDs only).
ct_cleanup() {
	kill_trees "${TEST_PIDS[@]}" >/dev/null 2>&1
	ip link del "$CT_HOST_END" 2>/dev/null
	return 0
}

# ct_start [USERNS]: the container scenario under unshare(1) with every
# namespace but cgroup and time (and a user namespace with USERNS), its
# network built from outside as ip(8) would: a veth to the host, the
# inner end 10.199.81.2/30 with a route to 10.199.82.0/24 via the host
# end 10.199.81.1.  Sets SCN_PID (the container's init as we see it).
ct_start() {
	local bin=$BUILD/tests/container pid ns=(--fork --pid --mount --net --ipc --uts)
	command -v unshare >/dev/null 2>&1 || apt-get install -y util-linux >/dev/null 2>&1
	command -v unshare >/dev/null 2>&1 || { REASON="no unshare(1) (util-linux)"; return 77; }
	command -v ip >/dev/null 2>&1 || apt-get install -y iproute2 >/dev/null 2>&1
	command -v ip >/dev/null 2>&1 || { REASON="no ip(8) (iproute2)"; return 77; }
	[ -n "${1:-}" ] && ns+=(--user --map-root-user)
	SCN_NAME=container
	[ -x "$bin" ] || { bad "missing $bin (run make)"; return 1; }
	ip link del "$CT_HOST_END" 2>/dev/null
	mkdir -p "$TDIR/ct/t" "$TDIR/ct/b" "$TDIR/ct/src" && echo host >"$TDIR/ct/src/f"
	rm -f "$TDIR/ready" "$TDIR/result" "$TDIR/unshared" "$TDIR/netready"
	(close_extra_fds
		cd "$TDIR" && exec setsid unshare "${ns[@]}" "$bin" "$TDIR") </dev/null >>"$TDIR/log" 2>&1 &
	pid=$!
	disown "$pid"
	track "$pid"
	wait_file "$TDIR/unshared" "$WAIT_READY" "$pid" || { bad "the container did not start: $(tail -n 2 "$TDIR/log")"; return 1; }
	pid=$(children "$pid" | head -n 1)
	[ -n "$pid" ] || { bad "unshare has no child"; return 1; }
	track_tree "$pid"
	ip link add "$CT_HOST_END" type veth peer name ctv0 netns "$pid" || { bad "cannot make the veth"; return 1; }
	nsenter -t "$pid" -n sh -ec '
		ip link set lo up
		ip addr add 10.199.81.2/30 dev ctv0
		ip link set ctv0 up
		ip route add 10.199.82.0/24 via 10.199.81.1' || { bad "cannot set up the container's network"; return 1; }
	ip addr add 10.199.81.1/30 dev "$CT_HOST_END" && ip link set "$CT_HOST_END" up ||
		{ bad "cannot set up the host end"; return 1; }
	touch "$TDIR/netready"
	wait_file "$TDIR/ready" "$WAIT_READY" "$pid" || { bad "the container is not ready: $(tail -n 2 "$TDIR/log")"; return 1; }
	read -r SCN_PID SCN_TOKEN <"$TDIR/ready"
	[ "$SCN_PID" = "$pid" ] || { bad "the container's init is $SCN_PID, not $pid"; return 1; }
	SCN_START=$(proc_start "$SCN_PID")
	track_tree "$SCN_PID"
}

# ct_cycles N: N dumps and restores of the running container; after each
# the host end of the veth is there again with its address, and the
# container's init looks from outside as before.
ct_cycles() {
	local i
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	for ((i = 1; i <= $1; i++)); do
		dump "$SCN_PID" "$TDIR/img$i" || { REASON="cycle $i: $REASON"; return 1; }
		wait_gone "$SCN_PID" || { bad "cycle $i: the container is still there after the dump"; return 1; }
		tree_gone "$TDIR/img$i" || return 1
		restore_detached "$TDIR/img$i" "$SCN_PID" || { REASON="cycle $i: $REASON"; return 1; }
		ip -o addr show dev "$CT_HOST_END" 2>/dev/null | grep -q "inet 10.199.81.1/30" ||
			{ bad "cycle $i: the host end of the veth lost its address"; return 1; }
		SCN_START=$(proc_start "$SCN_PID")
		snapshot "$SCN_PID" "$TDIR/state.after$i" || return 1
		# the snapshot names the network namespace by inode: a new one
		sed -i -E 's/^net net:\[[0-9]+\]$/net own/' "$TDIR/state.before" "$TDIR/state.after$i"
		compare_state "$TDIR/state.before" "$TDIR/state.after$i" "cycle $i" "$DETAILS" || return 1
	done
}

# test_container [USERNS] N: the issue's combined container, N cycles,
# then its own check from inside; cleaned up whatever happens.
test_container() {
	local rc userns=
	[ "$1" = userns ] && { userns=1; shift; }
	need_stasis || return 1
	ct_start "$userns"
	rc=$?
	[ $rc = 0 ] && { ct_cycles "$1" && check_scenario; rc=$?; }
	ct_cleanup
	return $rc
}
register "ns12c/container/x2" test_container 2
# The same with --user --map-root-user: the network is rebuilt (the
# controller builds it, ns_net.c), but the mount table is not yet (the
# restore child cannot bind the host's / from inside the new user
# namespace: EINVAL), so it runs only when asked (NS12C_USERNS=1).
[ -n "${NS12C_USERNS:-}" ] && register "ns12c/container-userns/x2" test_container userns 2
