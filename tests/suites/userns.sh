# tests/suites/userns.sh - user namespaces (sourced by tests/run.sh).

# start_userns MODE: start userns_tree with USERNS_MODE=MODE (and the
# caller's USERNS_NEST); UA is A, the root's child, as the host sees it.
start_userns() {
	local rc
	command -v unshare >/dev/null 2>&1 || apt-get install -y util-linux >/dev/null 2>&1
	command -v unshare >/dev/null 2>&1 || { REASON="no unshare(1) (util-linux)"; return 77; }
	export USERNS_MODE=$1
	start_scenario userns_tree
	rc=$?
	unset USERNS_MODE USERNS_NEST
	[ $rc = 0 ] || return 1
	UA=$(children "$SCN_PID" | tr ' ' '\n' | head -n 1)
	[ -n "$UA" ] || { bad "the scenario has no child A"; return 1; }
	return 0
}

# userns_restore N: restore -d image N of the tree: the root comes back
# at its PID, its child A at PID 2 inside (another PID outside: tasks in
# a user namespace cannot choose their PID in ours), neither stopped.
userns_restore() {
	local img=$TDIR/img$1 rc got p
	N_CMD=$((N_CMD + 1))
	stasis_cmd "restore$N_CMD" restore -D "$img" -d --pidfile "$TDIR/pidfile$N_CMD" \
		-v4 -o "$TDIR/restore$N_CMD.log"
	rc=$?
	adopt "$SCN_PID"
	[ -e "/proc/$SCN_PID" ] && track_tree "$SCN_PID"
	rc_ok "restore" $rc "$TDIR/restore$N_CMD.err" || return 1
	got=$(cat "$TDIR/pidfile$N_CMD" 2>/dev/null)
	[ "$got" = "$SCN_PID" ] || { bad "pidfile holds '$got', expected $SCN_PID"; return 1; }
	UA=$(ns_find "$SCN_PID" 2) || { bad "the restored tree has no PID 2 inside"; return 1; }
	for p in "$SCN_PID" "$UA"; do
		stopped "$p" && { bad "restored process $p is stopped or traced"; return 1; }
	done
	[ -s "$TDIR/restore$N_CMD.err" ] &&
		{ bad "restore said: $(head -n 1 "$TDIR/restore$N_CMD.err")"; return 1; }
	return 0
}

# test_userns MODE N: N dump/restore cycles of the tree in its own user
# (and PID) namespace; the root and A look from outside as before (ids
# as the host sees them, capabilities, maps and setgroups of the
# namespace), and each sees itself inside as before (its check).
test_userns() {
	local mode=$1 n=$2 i
	need_stasis || return 1
	start_userns "$mode" || return $?
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	snapshot "$UA" "$TDIR/state.before.a" || return 1
	grep -q "^user own" "$TDIR/state.before" || { bad "the scenario is not in a user namespace of its own"; return 1; }
	for ((i = 1; i <= n; i++)); do
		dump "$SCN_PID" "$TDIR/img$i" || { REASON="cycle $i: $REASON"; return 1; }
		wait_gone "$SCN_PID" && wait_gone "$UA" ||
			{ bad "cycle $i: the tree is still there after the dump"; return 1; }
		userns_restore "$i" || { REASON="cycle $i: $REASON"; return 1; }
		sleep 0.1
		snapshot "$SCN_PID" "$TDIR/state.after$i" || return 1
		compare_state "$TDIR/state.before" "$TDIR/state.after$i" "cycle $i: the root" "$DETAILS" || return 1
		snapshot "$UA" "$TDIR/state.after$i.a" || return 1
		compare_state "$TDIR/state.before.a" "$TDIR/state.after$i.a" "cycle $i: A" "$DETAILS" || return 1
	done
	check_scenario
}
register userns_tree/unshare-x2 test_userns unshare 2
register userns_tree/multi-x2 test_userns multi 2
register userns_tree/uts-once test_userns uts 1

# The tree (two-range maps) restored with --pidns next to its running
# original after dump -R: the copy is in a new user namespace with the
# same maps and PID 1 of a new PID namespace, looks from outside like the
# original did, and both pass their checks (the copy first).
test_userns_copy() {
	local cpy ca orig rc
	need_stasis || return 1
	start_userns multi || return $?
	orig=$SCN_PID
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	snapshot "$UA" "$TDIR/state.before.a" || return 1
	dump "$SCN_PID" "$TDIR/img" -R || return 1
	N_CMD=$((N_CMD + 1))
	stasis_cmd "restore$N_CMD" restore -D "$TDIR/img" -d --pidns --pidfile "$TDIR/pidfile" \
		-v4 -o "$TDIR/restore$N_CMD.log"
	rc=$?
	cpy=$(cat "$TDIR/pidfile" 2>/dev/null)
	if [[ $cpy =~ ^[0-9]+$ ]] && [ "$cpy" != "$orig" ] && [ -e "/proc/$cpy" ]; then
		track "$cpy"
		track_tree "$cpy"
	fi
	rc_ok "restore --pidns" $rc "$TDIR/restore$N_CMD.err" || return 1
	[[ $cpy =~ ^[0-9]+$ ]] && [ "$cpy" != "$orig" ] ||
		{ bad "pidfile holds '$cpy', expected the copy's PID as we see it"; return 1; }
	[ "$(ns_pid "$cpy")" = 1 ] || { bad "the copy $cpy is not PID 1 of its namespace"; return 1; }
	[ "$(readlink "/proc/$cpy/ns/user")" != "$(readlink "/proc/$orig/ns/user")" ] ||
		{ bad "the copy shares the original's user namespace"; return 1; }
	ca=$(ns_find "$cpy" 2) || { bad "the copy has no PID 2 inside"; return 1; }
	sleep 0.1
	snapshot "$cpy" "$TDIR/state.copy" || return 1
	compare_state "$TDIR/state.before" "$TDIR/state.copy" "the copy's root" "$DETAILS" || return 1
	snapshot "$ca" "$TDIR/state.copy.a" || return 1
	compare_state "$TDIR/state.before.a" "$TDIR/state.copy.a" "the copy's A" "$DETAILS" || return 1
	SCN_PID=$cpy
	check_scenario "$cpy"
	rc=$?
	SCN_PID=$orig
	[ $rc = 0 ] || { REASON="the copy: $REASON"; return 1; }
	check_scenario
}
register userns_tree/pidns-copy test_userns_copy

# test_userns_refused MODE WHAT PATTERN: the dump of the tree is refused
# with a line matching PATTERN; no image is left, the tree runs on.
test_userns_refused() {
	local mode=$1 what=$2 pattern=$3
	need_stasis || return 1
	[ "$mode" = nested ] && { mode=unshare; export USERNS_NEST=1; }
	start_userns "$mode" || return $?
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of $what" $? "$TDIR/err.err" || return 1
	grep -qE "$pattern" "$TDIR/err.err" ||
		{ bad "the error does not say '$pattern': $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register bad/userns-nested test_userns_refused nested "a tree with a nested user namespace" \
	"in different user namespaces"
register bad/userns-no-pidns test_userns_refused nopid "a user namespace without its PID namespace" \
	"user namespace of its own .* but in stasis's PID namespace"
register bad/userns-uts-owner test_userns_refused utsfirst "a UTS namespace owned by another user namespace" \
	"its UTS namespace .* is owned by another user namespace"

# An unprivileged user (nobody) who is root of a user and PID namespace
# of its own (a rootless container): `stasis check` there says that
# /proc/PID/map_files is closed (the kernel wants CAP_CHECKPOINT_RESTORE
# in the initial user namespace) but not required, and exits 0; the dump
# of its own sleeper finds the files behind the mappings by path, device
# and inode, and the restore gives the sleeper its PID back (the PID
# namespace is ours there, so set_tid is allowed without a new one).
test_userns_unpriv() {
	local rc
	need_stasis || return 1
	command -v setpriv >/dev/null 2>&1 || { REASON="no setpriv(1) (util-linux)"; return 77; }
	chmod 0711 "$ROOT"
	chmod 0777 "$TDIR"
	cat >"$TDIR/unpriv.sh" <<-'SCRIPT'
		cd "$1" || exit 2
		"$2" check >check.out 2>&1
		echo "check rc=$?" >>check.out
		sleep 100 </dev/null >/dev/null 2>&1 &
		p=$!
		"$2" dump -t $p -D img >dump.out 2>dump.err
		echo "dump rc=$?" >>dump.out
		wait $p 2>/dev/null
		kill -0 $p 2>/dev/null && echo "sleeper runs on" >>dump.out
		"$2" restore -D img -d --pidfile pidfile >restore.out 2>restore.err
		echo "restore rc=$?" >>restore.out
		q=$(cat pidfile 2>/dev/null)
		[ "$q" = "$p" ] && echo "same pid" >>restore.out
		[ "$(cat /proc/$q/comm 2>/dev/null)" = sleep ] && echo "sleeper restored" >>restore.out
		[ -n "$q" ] && kill -9 "$q"
		exit 0
	SCRIPT
	run_timed 30 "$TDIR/unpriv.out" "$TDIR/unpriv.err" setpriv --reuid=65534 --regid=65534 --clear-groups -- \
		unshare --user --map-root-user --pid --fork --mount --mount-proc bash "$TDIR/unpriv.sh" "$TDIR" "$STASIS"
	rc=$?
	[ $rc = 0 ] || { bad "the unprivileged run failed (exit $rc): $(head -n 1 "$TDIR/unpriv.err")"; return 1; }
	grep -q "map_files.* no: closed to us" "$TDIR/check.out" ||
		{ bad "stasis check does not say that map_files is closed: $(grep map_files "$TDIR/check.out")"; return 1; }
	grep -q "check rc=0" "$TDIR/check.out" || { bad "stasis check fails in a rootless container: $(tail -n 2 "$TDIR/check.out" | head -n 1)"; return 1; }
	grep -q "dump rc=0" "$TDIR/dump.out" || { bad "the dump in a rootless container failed: $(head -n 1 "$TDIR/dump.err")"; return 1; }
	grep -q "sleeper runs on" "$TDIR/dump.out" && { bad "the sleeper runs on after its dump"; return 1; }
	grep -q "restore rc=0" "$TDIR/restore.out" || { bad "the restore in a rootless container failed: $(head -n 1 "$TDIR/restore.err")"; return 1; }
	grep -q "same pid" "$TDIR/restore.out" || { bad "the sleeper did not get its PID back"; return 1; }
	grep -q "sleeper restored" "$TDIR/restore.out" || { bad "the restored process is not the sleeper"; return 1; }
	[ -s "$TDIR/restore.err" ] && { bad "restore said: $(head -n 1 "$TDIR/restore.err")"; return 1; }
	return 0
}
register userns/unpriv-check test_userns_unpriv
