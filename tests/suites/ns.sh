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
