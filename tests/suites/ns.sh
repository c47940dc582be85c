# tests/suites/ns.sh - namespaces stasis saves (sourced by tests/run.sh).

# ns_uts_time: a root in its own UTS namespace whose children are born in
# a time namespace with offsets, and a child in that time namespace with a
# UTS namespace of its own: names and clocks are the same after restore
# (the child watches its clocks every 5 ms: a lost offset moves them by
# days), also restored next to the running original.
register ns_uts_time/once test_cr ns_uts_time once
register ns_uts_time/x3 test_cr ns_uts_time x3
register ns_uts_time/leave-running test_cr ns_uts_time leave-running

# A UTS namespace entered by setns from a sibling has no task that
# creates it at restore: refused by name at dump, the tree runs on.
test_ns_shared_uts() {
	local rc
	need_stasis || return 1
	export NS_MODE=shared-uts
	start_scenario ns_uts_time
	rc=$?
	unset NS_MODE
	[ $rc = 0 ] || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a tree sharing a UTS namespace sideways" $? "$TDIR/err.err" || return 1
	grep -q "both entered UTS namespace" "$TDIR/err.err" ||
		{ bad "the error does not name the shared UTS namespace: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register bad/ns-shared-uts test_ns_shared_uts

# pidns_tree: the root is PID 1 of its own PID namespace (a container's
# init) with a child in a group of its own and a threaded child; restored
# into a new PID namespace with the same numbers inside and outside.
register pidns_tree/once test_cr pidns_tree once
register pidns_tree/x3 test_cr pidns_tree x3

# The same tree restored with --pidns next to its running original (after
# dump -R): the copy is PID 1 of a new namespace with the same numbers
# inside, other numbers outside; it looks like the original from outside
# and passes its own check, and so does the original afterwards.
test_pidns_tree_copy() {
	local img=$TDIR/img cpy p rc orig=$SCN_PID
	need_stasis || return 1
	start_scenario pidns_tree || return 1
	orig=$SCN_PID
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	dump "$SCN_PID" "$img" -R || return 1
	stasis_cmd restore restore -D "$img" -d --pidns --pidfile "$TDIR/pidfile" -v4 -o "$TDIR/restore.log"
	rc=$?
	cpy=$(cat "$TDIR/pidfile" 2>/dev/null)
	if [[ $cpy =~ ^[0-9]+$ ]] && [ -e "/proc/$cpy" ]; then
		track "$cpy"
		track_tree "$cpy"
	fi
	rc_ok "restore --pidns" $rc "$TDIR/restore.err" || return 1
	[[ $cpy =~ ^[0-9]+$ ]] && [ "$cpy" != "$orig" ] ||
		{ bad "pidfile holds '$cpy', expected the copy's PID as we see it"; return 1; }
	[ "$(ns_pid "$cpy")" = 1 ] || { bad "the copy $cpy is not PID 1 of its namespace"; return 1; }
	for p in $cpy $(descendants "$cpy"); do
		stopped "$p" && { bad "process $p of the copy is stopped or traced"; return 1; }
	done
	snapshot "$cpy" "$TDIR/state.copy" || return 1
	compare_state "$TDIR/state.before" "$TDIR/state.copy" "the copy" "$DETAILS" || return 1
	SCN_PID=$cpy
	check_scenario "$cpy"
	rc=$?
	SCN_PID=$orig
	[ $rc = 0 ] || { REASON="the copy: $REASON"; return 1; }
	check_scenario
}
register pidns_tree/pidns-copy test_pidns_tree_copy

# Dumping a task of a PID namespace whose init is not in the tree is
# refused by name; the tree runs on.
test_ns_pid_not_init() {
	local a
	need_stasis || return 1
	start_scenario pidns_tree || return 1
	read -r a _ <"$TDIR/pids"
	stasis_cmd err dump -t "$a" -D "$TDIR/img"
	expect_error "dump of a task of a PID namespace without its init" $? "$TDIR/err.err" || return 1
	grep -q "pid $a: is pid 2 of its PID namespace, whose init is not in the tree" "$TDIR/err.err" ||
		{ bad "the error does not name pid $a and its namespace's init: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register bad/ns-pid-not-init test_ns_pid_not_init

# ns_cgroup: a cgroup namespace whose roots are cgroups the test made (one
# per hierarchy mounted here), a child below them: restored with the same
# roots (what the tree sees inside) and the same cgroups (what we see).
test_ns_cgroup() {
	local rc d
	CG_DIRS=$(cg_dirs | tr "\n" " ")
	[ -n "$CG_DIRS" ] || { REASON="no cgroup2 or memory hierarchy mounted"; return 77; }
	for d in $CG_DIRS; do
		mkdir -p "$d/kid" || { REASON="cannot make cgroup $d"; cg_kid_cleanup; return 77; }
	done
	export CG_DIRS
	test_cr ns_cgroup "$1"
	rc=$?
	unset CG_DIRS
	kill_tree "$TDIR/img" >/dev/null 2>&1
	cg_kid_cleanup
	return $rc
}
# cg_kid_cleanup: remove the test's cgroups, waiting a little for the
# child (killed by its parent-death signal) to leave them.
cg_kid_cleanup() {
	local d i
	for d in $(cg_dirs); do
		for ((i = 0; i < 50; i++)); do
			[ -d "$d/kid" ] || break
			rmdir "$d/kid" 2>/dev/null || sleep 0.05
		done
	done
	cg_cleanup
}
register ns_cgroup/once test_ns_cgroup once
register ns_cgroup/x3 test_ns_cgroup x3
