# tests/suites/rescue.sh - stasis dying in the middle of a dump must not take
# the target with it (sourced by tests/run.sh).

# test_dump_crash STAGE SCENARIO: the dump crashes on purpose
# (STASIS_TEST_CRASH) in its remote stage (registers changed, scratch
# memory mapped in the target) or its local one; the target must go on
# unchanged.
test_dump_crash() {
	local stage=$1 scn=$2 rc
	need_stasis || return 1
	start_scenario "$scn" || return 1
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	STASIS_TEST_CRASH=$stage stasis_cmd err dump -t "$SCN_PID" -D "$TDIR"
	rc=$?
	[ $rc -eq $((128 + 11)) ] || { bad "the dump exited with $rc, not by the SIGSEGV asked for"; return 1; }
	grep -q "putting the tree back" "$TDIR/err.err" ||
		{ bad "the crashing dump did not say it put the tree back: $(head -n 1 "$TDIR/err.err")"; return 1; }
	no_image_left "$TDIR" || return 1
	[ "$scn" = counter ] && { still_fine; return; }
	# the others do not log a count: alive, not stopped, and their own check
	sleep 0.2
	alive "$SCN_PID" || { bad "process $SCN_PID did not survive"; return 1; }
	stopped "$SCN_PID" && { bad "process $SCN_PID left stopped or traced"; return 1; }
	check_scenario
}

register bad/dump-crash-remote test_dump_crash remote counter
register bad/dump-crash-local test_dump_crash local counter
register bad/dump-crash-remote-threads test_dump_crash remote threads50
