# tests/suites/ns12u.sh - the mount table of a container in a user
# namespace of its own (issue 12): the host side that takes the host's
# mounts for its restore child (src/res/ns_mnt.c).  The container itself
# and its cycles are ns12c's (ct_start, ct_cleanup; ns12c/container-userns).

# ns12u_host_side_gone LOG: the host side the restore logged has exited.
ns12u_host_side_gone() {
	local hs i
	hs=$(sed -n 's/.*the host.s mounts: taken by pid \([0-9]*\).*/\1/p' "$1" | tail -n 1)
	[ -n "$hs" ] || { bad "the restore did not log its host side"; return 1; }
	for ((i = 0; i < 50; i++)); do
		[ "$(cat "/proc/$hs/comm" 2>/dev/null)" = stasis-mnthost ] || return 0
		sleep 0.1
	done
	bad "the host side (pid $hs) is still there after the restore ended"
	return 1
}

# ns12u_stage_gone LOG: the directory the restore logged for the tree's
# root is gone (another restore's may come and go meanwhile).
ns12u_stage_gone() {
	local d
	d=$(sed -n "s/.*the tree's root: built on \(.*\)$/\1/p" "$1" | tail -n 1)
	[ -z "$d" ] || [ ! -e "$d" ] || { bad "the restore left its $d"; return 1; }
}

# ns12u_veth_gone: the host end of the container's veth went with the
# failed restore's network namespace (its destruction is asynchronous).
ns12u_veth_gone() {
	local i
	for ((i = 0; i < 50; i++)); do
		ip link show "$CT_HOST_END" >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	bad "the host end $CT_HOST_END of the veth is left"
	return 1
}

# A restore of the user-namespaced container failing at each step around
# the mount table (the host side made, the namespace made, the table
# built and entered, the files opened) leaves nothing: no task, no host
# side, no /tmp/.stasis-root.*, no veth; the next restore works and the
# container checks itself.
test_ns12u_fault() {
	local p img=$TDIR/img n=0
	for p in restore:mnt:root_fork restore:ns:child_early restore:mnt:child_early \
		restore:files:child_late; do
		n=$((n + 1))
		fault_run "$p" f$n restore -D "$img" -d -v4 -o "$TDIR/f$n.log"
		adopt_image "$img" "$SCN_PID"
		# late in the child its stderr is the container's: the log says it too
		grep -qF "fault injected at $p " "$TDIR/f$n.log" && FAULT_HIT=1
		[ $FAULT_HIT = 1 ] && [ $FAULT_RC != 0 ] ||
			{ bad "$p: the fault was not injected (rc $FAULT_RC)"; return 1; }
		tree_gone "$img" || { REASON="$p: after the failed restore: $REASON"; return 1; }
		ns12u_host_side_gone "$TDIR/f$n.log" || { REASON="$p: $REASON"; return 1; }
		ns12u_stage_gone "$TDIR/f$n.log" || { REASON="$p: $REASON"; return 1; }
		ns12u_veth_gone || { REASON="$p: $REASON"; return 1; }
	done
	restore_detached "$img" "$SCN_PID" || return 1
	ns12u_host_side_gone "$TDIR/restore$N_CMD.log" && ns12u_stage_gone "$TDIR/restore$N_CMD.log" ||
		return 1
	check_scenario
}

ns12u_fault() {
	local rc
	need_stasis || return 1
	ct_start userns
	rc=$?
	if [ $rc = 0 ]; then
		dump "$SCN_PID" "$TDIR/img" && wait_gone "$SCN_PID" && test_ns12u_fault
		rc=$?
	fi
	ct_cleanup
	return $rc
}
register "ns12u/container-userns-fault" ns12u_fault

# The container's bind of the host directory given as external
# (--ext-mount-map on both sides): the host side binds the path the
# restore names, here the same directory.
ns12u_ext() {
	local rc
	need_stasis || return 1
	ct_start userns
	rc=$?
	if [ $rc = 0 ]; then
		DUMP_OPTS="--ext-mount-map $TDIR/ct/b:ctb" \
			RESTORE_OPTS="--ext-mount-map ctb:$TDIR/ct/src" ct_cycles 1
		rc=$?
		if [ $rc = 0 ] && ! "$STASIS" show --json -D "$TDIR/img1" 2>/dev/null |
			grep -q '"how": *"MNT_EXTERNAL", *"host_path": *"ctb"'; then
			bad "the image does not hold the bind as external"
			rc=1
		fi
		[ $rc = 0 ] && { check_scenario; rc=$?; }
	fi
	ct_cleanup
	return $rc
}
register "ns12u/container-userns-ext" ns12u_ext

# A bind of one of our namespace files in the table (as `ip netns add`
# leaves in the host's, which every container started meanwhile copies):
# bound again from the host, and refused by name when the file has come
# to name another namespace; the refused restore leaves nothing.  With
# and without a user namespace (the host side binds it, or the restore
# child).
ns12u_nsfile() {
	local rc f=$TDIR/ns12u-netns userns=${1:-}
	need_stasis || return 1
	touch "$f" && mount --bind /proc/self/ns/net "$f" || { bad "cannot bind our netns file"; return 1; }
	ct_start "$userns"
	rc=$?
	if [ $rc = 0 ]; then
		ct_cycles 1
		rc=$?
	fi
	if [ $rc = 0 ]; then
		dump "$SCN_PID" "$TDIR/img2" && wait_gone "$SCN_PID" && tree_gone "$TDIR/img2"
		rc=$?
	fi
	if [ $rc = 0 ]; then
		umount "$f" && mount --bind /proc/self/ns/ipc "$f"
		N_CMD=$((N_CMD + 1))
		stasis_cmd "restore$N_CMD" restore -D "$TDIR/img2" -d -v4 -o "$TDIR/restore$N_CMD.log"
		expect_error "restore with the netns file naming another namespace" $? \
			"$TDIR/restore$N_CMD.err" || rc=1
		adopt_image "$TDIR/img2" "$SCN_PID"
		[ $rc = 0 ] && ! grep -q "is no longer net:\[[0-9]*\] but another namespace" "$TDIR/restore$N_CMD.err" &&
			{ bad "the refusal does not say why: $ERR_LINE"; rc=1; }
		[ $rc = 0 ] && { tree_gone "$TDIR/img2" || rc=1; }
		umount "$f" && mount --bind /proc/self/ns/net "$f"
		[ $rc = 0 ] && { restore_detached "$TDIR/img2" "$SCN_PID" && check_scenario; rc=$?; }
	fi
	ct_cleanup
	umount "$f" 2>/dev/null
	return $rc
}
register "ns12u/container-userns-nsfile" ns12u_nsfile userns
register "ns12u/container-nsfile" ns12u_nsfile

# Every restore fault point the user-namespaced container reaches, each
# failed once: nothing left after any of them (no task, host side, stage
# directory, veth), the image unchanged; one restore at the end works.
# About a second a point: only with NS12U_ALL_FAULTS=1.
ns12u_every_point() {
	local rc img=$TDIR/img p n=0 k=0 hash points missed=()
	need_stasis || return 1
	ct_start userns
	rc=$?
	[ $rc = 0 ] && { dump "$SCN_PID" "$img" && wait_gone "$SCN_PID"; rc=$?; }
	if [ $rc = 0 ]; then
		hash=$(sha256sum <"$img/$IMG_NAME")
		STASIS_FAULT_TRACE=$TDIR/trace stasis_cmd trace restore -D "$img" -d
		rc=$?
		adopt_image "$img" "$SCN_PID"
		[ $rc = 0 ] || bad "the traced restore failed: $(head -n 1 "$TDIR/trace.err")"
		kill_tree "$img" && ns12u_veth_gone || rc=1
	fi
	if [ $rc = 0 ]; then
		points=$(fault_reached_points restore "$TDIR/trace")
		points=$(sed '/^-$/,$d' <<<"$points")
		for p in $points; do
			k=$((k + 1))
			fault_run "$p" f$k restore -D "$img" -d -v4 -o "$TDIR/f$k.log"
			adopt_image "$img" "$SCN_PID"
			grep -qF "fault injected at $p " "$TDIR/f$k.log" && FAULT_HIT=1
			if [ $FAULT_HIT = 0 ] && [ $FAULT_RC = 0 ]; then
				missed+=("$p")
				kill_tree "$img" && ns12u_veth_gone || { rc=1; break; }
				continue
			fi
			cp "$TDIR/f$k.err" "$TDIR/f.err"
			fault_outcome "$p" "restore -d" || { rc=1; break; }
			n=$((n + 1))
			tree_gone "$img" || { REASON="$p: after the failed restore: $REASON"; rc=1; break; }
			[ "$(sha256sum <"$img/$IMG_NAME")" = "$hash" ] ||
				{ bad "$p: the failed restore changed the image"; rc=1; break; }
			if grep -q "the host.s mounts: taken by pid" "$TDIR/f$k.log"; then
				ns12u_host_side_gone "$TDIR/f$k.log" || { REASON="$p: $REASON"; rc=1; break; }
			fi
			ns12u_stage_gone "$TDIR/f$k.log" || { REASON="$p: $REASON"; rc=1; break; }
			ns12u_veth_gone || { REASON="$p: $REASON"; rc=1; break; }
		done
		[ $rc = 0 ] && echo "    restore: $n points reached and held; not reached: ${missed[*]}"
	fi
	[ $rc = 0 ] && { restore_detached "$img" "$SCN_PID" && check_scenario; rc=$?; }
	ct_cleanup
	return $rc
}
[ -n "${NS12U_ALL_FAULTS:-}" ] && register "ns12u/container-userns-every-fault" ns12u_every_point

# ns12u_locks PID OUT: for some mounts of PID's table, "MOUNTPOINT locked"
# or "MOUNTPOINT unlocked": whether root of its user namespace can
# unmount it, tried in a throwaway copy of its mount namespace for each
# (made in that user namespace, so the locks stay as they are; umount(8)
# needs the /proc of the copy).
ns12u_locks() {
	local m mps=(/proc /dev/pts /sys/fs/cgroup/unified "$TDIR/ct/t" "$TDIR/ct/b")
	for m in "${mps[@]}"; do
		if nsenter -t "$1" -U -m --preserve-credentials -- \
			unshare -m --propagation unchanged -- umount -l "$m" 2>/dev/null; then
			echo "$m unlocked"
		else
			echo "$m locked"
		fi
	done >"$2"
}

# The mounts unshare copied into the user-namespaced container are
# locked there (root inside cannot unmount them or clear their flags),
# those it made are not: the same after a restore.  bind-first: the
# container's first mount of its own is the bind of a host directory,
# which only the dump's probe tells from the copied binds before it.
ns12u_lock_test() {
	local rc
	need_stasis || return 1
	[ "${1:-}" = bind-first ] && export CT_BIND_FIRST=1
	ct_start userns
	rc=$?
	unset CT_BIND_FIRST
	if [ $rc = 0 ]; then
		ns12u_locks "$SCN_PID" "$TDIR/locks.before"
		grep -qx "/proc locked" "$TDIR/locks.before" && grep -qx "$TDIR/ct/t unlocked" "$TDIR/locks.before" &&
			grep -qx "$TDIR/ct/b unlocked" "$TDIR/locks.before" ||
			{ bad "the probe does not see the original's locks: $(tr '\n' ' ' <"$TDIR/locks.before")"; rc=1; }
	fi
	[ $rc = 0 ] && { ct_cycles 1; rc=$?; }
	# the dump probed them: the record says which (only the leading part can be rebuilt locked)
	if [ $rc = 0 ] && ! "$STASIS" show --json -D "$TDIR/img1" 2>/dev/null |
		grep -q '"mountpoint":"/proc",.*"locked":true'; then
		bad "the image does not hold /proc as locked"
		rc=1
	fi
	if [ $rc = 0 ]; then
		ns12u_locks "$SCN_PID" "$TDIR/locks.after"
		diff -u "$TDIR/locks.before" "$TDIR/locks.after" >"$TDIR/locks.diff" ||
			{ bad "the locks differ after the restore: $(grep '^[-+]/' "$TDIR/locks.diff" | tr '\n' ' ')"; rc=1; }
	fi
	[ $rc = 0 ] && { check_scenario; rc=$?; }
	ct_cleanup
	return $rc
}
register "ns12u/container-userns-locks" ns12u_lock_test
register "ns12u/container-userns-locks-bind-first" ns12u_lock_test bind-first

# A user-namespaced container with a peer group of its own (ct/t shared
# with its bind at ct/p, a tmpfs on ct/t/m and so on ct/p/m): the dump's
# lock probe, which unmounts in a copy of the namespace, must not reach
# the tree through the peer groups (dump -R: the original's table is
# unchanged), and the groups come back after a restore.
ns12u_shared() {
	local rc
	need_stasis || return 1
	export CT_SHARED=1
	ct_start userns
	rc=$?
	unset CT_SHARED
	if [ $rc = 0 ]; then
		normalize_mountinfo <"/proc/$SCN_PID/mountinfo" >"$TDIR/mounts.before"
		grep -q "ct/p/m (parent .*ct/p)" "$TDIR/mounts.before" ||
			{ bad "the container has no ct/p/m: $(grep ct/ "$TDIR/mounts.before" | tr '\n' ' ')"; rc=1; }
	fi
	[ $rc = 0 ] && { dump "$SCN_PID" "$TDIR/imgR" -R; rc=$?; }
	if [ $rc = 0 ]; then
		normalize_mountinfo <"/proc/$SCN_PID/mountinfo" >"$TDIR/mounts.after"
		diff -u "$TDIR/mounts.before" "$TDIR/mounts.after" >"$TDIR/mounts.diff" ||
			{ bad "the dump changed the running container's mounts: $(grep '^[-+]/' "$TDIR/mounts.diff" | tr '\n' ' ')"; rc=1; }
	fi
	[ $rc = 0 ] && { ct_cycles 1 && check_scenario; rc=$?; }
	ct_cleanup
	return $rc
}
register "ns12u/container-userns-shared" ns12u_shared
