# tests/suites/share.sh - processes sharing what stasis rebuilds per
# process (src/res/share.c), sourced by tests/run.sh.

# test_share MODE WHAT: a child cloned with MODE's flag (no CLONE_THREAD)
# makes the dump fail naming both processes and WHAT they share; the tree
# runs on with the object still shared and no image is left.
test_share() {
	local rc kid
	need_stasis || return 1
	export SHARE_MODE=$1
	start_scenario share_tables
	rc=$?
	unset SHARE_MODE
	[ $rc = 0 ] || return 1
	read -r kid <"$TDIR/pids"
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of processes sharing $2" $? "$TDIR/err.err" || return 1
	grep -Eq "pid ($SCN_PID|$kid) and pid ($SCN_PID|$kid): share .*$2" "$TDIR/err.err" ||
		{ bad "the error does not name both processes and $2: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
# a shared fd table is saved (src/res/share.c): tests/suites/fid2.sh
register bad/share-fs test_share fs "cwd, root and umask"
register bad/share-vm test_share vm "address space"
register bad/share-sighand test_share sighand "address space"
