# tests/suites/fidelity.sh - state that must come back exactly or be
# refused at dump (issue 10), sourced by tests/run.sh.  Scenarios:
# tests/scenarios/fid_*.c.

# a job stopped by SIGTSTP stays stopped by SIGTSTP; a SIGTRAP handler
# survives (raise and int3 reach it)
for m in once x3 leave-running; do
	register "fid_sig/$m" test_cr fid_sig $m
done

# the files of bound unix sockets keep mode, owner, group and times
for m in once x3 leave-running pidns; do
	register "fid_unixfile/$m" test_cr fid_unixfile $m
done

# madvise hints, MAP_DROPPABLE and the open mode behind a private file
# mapping come back (the runner compares smaps VmFlags too)
for m in once x3 leave-running pidns; do
	register "fid_mm/$m" test_cr fid_mm $m
done

# a mapping sealed with mseal() is refused at dump, naming it; the
# scenario runs on unharmed
test_fid_mseal() {
	need_stasis || return 1
	FID_MM_SEAL=1 start_scenario fid_mm || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a process with a sealed mapping" $? "$TDIR/err.err" || return 1
	grep -q "sealed (mseal)" "$TDIR/err.err" ||
		{ bad "the error does not name the sealed mapping: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register fid_mm/mseal-refused test_fid_mseal

# a pty slave keeps the owner and mode given to its node (no --pidns copy:
# the original holds the pty index the copy needs)
for m in once x3 leave-running; do
	register "fid_pty/$m" test_cr fid_pty $m
done

# deleted files keep set-id bits, owner, times, and their name even when a
# new file has taken it
for m in once x3 leave-running pidns; do
	register "fid_ghost/$m" test_cr fid_ghost $m
done
