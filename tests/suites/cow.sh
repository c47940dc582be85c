# tests/suites/cow.sh - private pages a parent and its children still
# share copy-on-write after fork (sourced by tests/run.sh).
#
# The cow scenario's parent fills 64 MiB and forks three workers (one
# reads, one rewrites 1 MiB, one drops 4 MiB); each checks its own view
# after the restore, and the parent's write after the restore must stay
# its own.  Here the runner checks that the sharing is real: the sum of
# the four processes' Pss (smaps_rollup) after the restore is what it was
# before (about 64 MiB), not four copies (about 250 MiB); and the page
# frames of the parent and the reading worker are the same for its
# untouched pages (pagemap, as root).

# cow_pss: the sum of the Pss of the scenario and its workers, in KiB.
cow_pss() {
	local p sum=0 v
	for p in "$SCN_PID" $(cat "$TDIR/pids"); do
		v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) ||
			{ echo 0; return; }
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# cow_frames PID: the page frame numbers of the scenario's 64 MiB mapping
# in PID, one per line, pages 300-1000 (untouched by every worker).
cow_frames() {
	local addr
	addr=$((16#$(cat "$TDIR/cow.addr")))
	python3 - "$1" "$addr" <<'PY'
import struct, sys
pid, addr = int(sys.argv[1]), int(sys.argv[2])
with open("/proc/%d/pagemap" % pid, "rb") as f:
    f.seek((addr // 4096 + 300) * 8)
    data = f.read(700 * 8)
for (e,) in struct.iter_unpack("<Q", data):
    print(e & ((1 << 55) - 1) if e >> 63 else "absent")
PY
}

# cow_shared WHAT: the sharing after WHAT is as it was before.
cow_shared() {
	local after r
	after=$(cow_pss)
	[ "$after" -le $((COW_PSS_BEFORE * 5 / 4 + 4096)) ] ||
		{ bad "$1: Pss of the four processes is $after KiB, was $COW_PSS_BEFORE KiB before the dump (pages copied, not shared)"; return 1; }
	read -r r _ <"$TDIR/pids"
	if [ "$(id -u)" = 0 ]; then
		cow_frames "$SCN_PID" >"$TDIR/frames.parent"
		cow_frames "$r" >"$TDIR/frames.reader"
		grep -q absent "$TDIR/frames.parent" && { bad "$1: pages of the parent are not present"; return 1; }
		cmp -s "$TDIR/frames.parent" "$TDIR/frames.reader" ||
			{ bad "$1: the parent's and the reading worker's untouched pages are different page frames"; return 1; }
	fi
	return 0
}

# test_cow MODE: once (dump, restore) or leave-running (dump -R, kill,
# restore); every process checks its own memory, and the sharing holds.
test_cow() {
	local rc
	need_stasis || return 1
	start_scenario cow || return 1
	snapshot_scenario before || return 1
	COW_PSS_BEFORE=$(cow_pss)
	cow_shared "before the dump" || return 1
	case $1 in
	once) cr_cycle 1 ;;
	leave-running) leave_running ;;
	esac
	rc=$?
	[ $rc = 0 ] || return $rc
	cow_shared "after restore" || return 1
	grep -qs "pages shared with the parent" "$TDIR"/dump*.log ||
		{ bad "no dump log counts pages shared with the parent"; return 1; }
	check_scenario
}

# test_cow_copy: the parent's restore child does not build the mapping
# before its forks (STASIS_TEST_COW_NO_PREFORK=1 stands for a mapping
# colliding with stasis's own): each worker's copy is filled from the
# parent's pages and its own; every view is still right.
test_cow_copy() {
	local rc
	STASIS_TEST_COW_NO_PREFORK=1 test_cr cow once
	rc=$?
	[ $rc = 0 ] || return $rc
	grep -qs "copied from its parent's pages" "$TDIR"/restore*.log ||
		{ bad "no restore log says a mapping was copied"; return 1; }
}

register cow/once test_cow once
register cow/leave-running test_cow leave-running
register cow/copy test_cow_copy
# a copy restored into a new PID namespace next to the running original:
# every view of the copy is right (its sharing is not measured here, the
# original's Pss is counted in with it)
register cow/pidns test_cr cow pidns
