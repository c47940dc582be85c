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
# The same with --user --map-root-user: the controller builds the
# network (ns_net.c) and a host side of it, in our user namespace, takes
# the host's mounts for the restore child (ns_mnt.c).
register "ns12c/container-userns/x2" test_container userns 2

# ct_inside PID: the container's view from inside that a copy must share:
# hostname, its network (links, addresses, routes) and its mount table
# (mount point, type, source and options; ids and peer groups are new).
ct_inside() {
	nsenter -t "$1" -u hostname || return 1
	nsenter -t "$1" -n sh -c 'ip -o link | sed "s/@if[0-9]*:/:/; s/ link-netnsid [0-9]*//"
		ip -o addr | sed "s/ tentative//"; ip route' || return 1
	awk '{ for (i = 7; $i != "-"; i++); print $5, $6, $(i + 1), $(i + 2), $(i + 3) }' \
		"/proc/$1/mountinfo"
}

# The container restored next to its running original (dump -R, then
# restore --pidns --veth-pair ctv0=stch1): the copy is PID 1 of a new PID
# namespace, shares the original's inside view (hostname, network, mount
# table), its host end stch1 has the host end's address, and it passes
# its own check from inside (SysV objects, POSIX queue, tmpfs files, bind
# mounts); then so does the original, untouched.
CT_COPY_END=stch1
test_container_copy() {
	local rc
	need_stasis || return 1
	ip link del "$CT_COPY_END" 2>/dev/null
	ct_start
	rc=$?
	[ $rc = 0 ] && { ct_copy; rc=$?; }
	ct_cleanup
	ip link del "$CT_COPY_END" 2>/dev/null
	return $rc
}
ct_copy() {
	local orig=$SCN_PID cpy rc
	ct_inside "$orig" >"$TDIR/inside.before" 2>&1 || { bad "cannot read the container's view"; return 1; }
	dump "$orig" "$TDIR/img" -R || return 1
	stasis_cmd restore restore -D "$TDIR/img" -d --pidns --veth-pair "ctv0=$CT_COPY_END" \
		--pidfile "$TDIR/pidfile" -v4 -o "$TDIR/restore.log"
	rc=$?
	cpy=$(cat "$TDIR/pidfile" 2>/dev/null)
	if [[ $cpy =~ ^[0-9]+$ ]] && [ -e "/proc/$cpy" ]; then
		track "$cpy"
		track_tree "$cpy"
	fi
	rc_ok "restore --pidns next to the original" $rc "$TDIR/restore.err" || return 1
	[[ $cpy =~ ^[0-9]+$ ]] && [ "$cpy" != "$orig" ] ||
		{ bad "pidfile holds '$cpy', expected the copy's PID as we see it"; return 1; }
	[ "$(ns_pid "$cpy")" = 1 ] || { bad "the copy $cpy is not PID 1 of its namespace"; return 1; }
	ct_inside "$cpy" >"$TDIR/inside.copy" 2>&1
	diff -u "$TDIR/inside.before" "$TDIR/inside.copy" >"$TDIR/inside.diff" ||
		{ bad "the copy's view from inside differs from the original's"; head -n 20 "$TDIR/inside.diff" >>"$DETAILS"; return 1; }
	ip -o addr show dev "$CT_COPY_END" 2>/dev/null | grep -q "inet 10.199.81.1/30" ||
		{ bad "the copy's host end $CT_COPY_END has not the host end's address"; return 1; }
	# (the copy's check names its PID as it finds itself in our /proc)
	SCN_PID=$cpy check_scenario "$cpy" || { REASON="the copy: $REASON"; return 1; }
	ct_inside "$orig" >"$TDIR/inside.after" 2>&1
	diff -u "$TDIR/inside.before" "$TDIR/inside.after" >"$TDIR/inside.diff" ||
		{ bad "the original's view changed"; head -n 20 "$TDIR/inside.diff" >>"$DETAILS"; return 1; }
	check_scenario "$orig"
}
register "ns12c/container/copy-beside-original" test_container_copy
