# tests/suites/fsobj.sh - files that are not plain paths: memfds, deleted
# files, /dev/shm objects, O_PATH fds, file locks; the file checks of
# restore; a python multiprocessing Pool.

for m in once x3 leave-running pidns; do
	register "fs_memfd/$m" test_cr fs_memfd $m
done
for m in once x3 leave-running pidns; do
	register "fs_ghost/$m" test_cr fs_ghost $m
	register "fs_shm/$m" test_cr fs_shm $m
done
for m in once x3 leave-running pidns; do
	register "fs_opath/$m" test_cr fs_opath $m
done

# test_cr_locks MODE: test_cr of fs_locks, dumped with --file-locks
test_cr_locks() {
	local DUMP_OPTS=--file-locks
	test_cr fs_locks "$1"
}
# (no pidns: the original keeps its locks, so a copy cannot take them)
for m in once x3 leave-running; do
	register "fs_locks/$m" test_cr_locks $m
done

# fs_unchanged: the scenario process is the same one, running, not stopped,
# unchanged from outside, and its own check passes.
fs_unchanged() {
	sleep 0.2
	{ [ "$(proc_start "$SCN_PID")" = "$SCN_START" ] && alive "$SCN_PID"; } ||
		{ bad "process $SCN_PID did not survive"; return 1; }
	stopped "$SCN_PID" && { bad "process $SCN_PID left stopped or traced (state $(proc_state "$SCN_PID"))"; return 1; }
	compare_scenario before after "after the failure" || return 1
	check_scenario
}

# test_dump_locks_refused: without --file-locks a tree holding locks is
# refused with a message that names the option; the tree runs on.
test_dump_locks_refused() {
	need_stasis || return 1
	start_scenario fs_locks || return 1
	snapshot_scenario before || return 1
	mkdir -p "$TDIR/img"
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a tree holding file locks" $? "$TDIR/err.err" || return 1
	grep -q -- '--file-locks' "$TDIR/err.err" ||
		{ bad "the error does not mention --file-locks: $ERR_LINE"; return 1; }
	grep -qw "$SCN_PID" "$TDIR/err.err" || { bad "the error does not name pid $SCN_PID: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	fs_unchanged
}
register bad/dump-file-locks test_dump_locks_refused

# test_restore_size_changed: a file the process has open grew after the
# dump: restore refuses it (naming the file) and leaves nothing running;
# --skip-file-check restores anyway; once the file is back to its size a
# plain restore works and the process passes its check.
test_restore_size_changed() {
	local img=$TDIR/img
	need_stasis || return 1
	start_scenario fs_opath || return 1
	snapshot_scenario before || return 1
	dump "$SCN_PID" "$img" || return 1
	wait_gone "$SCN_PID" || { bad "process $SCN_PID still there after the dump"; return 1; }
	tree_gone "$img" || return 1
	echo more >>"$TDIR/data"
	stasis_cmd err restore -D "$img" -d
	expect_error "restore with a file that changed size" $? "$TDIR/err.err" || return 1
	adopt_image "$img" "$SCN_PID"
	grep -q "data" "$TDIR/err.err" && grep -q "size" "$TDIR/err.err" ||
		{ bad "the error does not name the file and its size: $ERR_LINE"; return 1; }
	grep -q -- "--skip-file-check" "$TDIR/err.err" ||
		{ bad "the error does not mention --skip-file-check: $ERR_LINE"; return 1; }
	sleep 0.2
	alive "$SCN_PID" && { bad "the refused restore left pid $SCN_PID running"; return 1; }
	tree_gone "$img" || return 1
	N_CMD=$((N_CMD + 1))
	stasis_cmd "restore$N_CMD" restore -D "$img" -d --skip-file-check -v4 -o "$TDIR/restore$N_CMD.log"
	rc_ok "restore --skip-file-check" $? "$TDIR/restore$N_CMD.err" || return 1
	adopt_image "$img" "$SCN_PID"
	alive "$SCN_PID" || { bad "restore --skip-file-check succeeded but pid $SCN_PID is not running"; return 1; }
	cat "$TDIR/restore$N_CMD.err" "$TDIR/restore$N_CMD.log" 2>/dev/null | grep -qi "changed size" ||
		{ bad "restore --skip-file-check did not warn about the size"; return 1; }
	kill_tree "$img" || return 1
	truncate -s 11 "$TDIR/data" || { bad "cannot truncate $TDIR/data"; return 1; }
	restore_detached "$img" "$SCN_PID" || return 1
	after_restore || return 1
	check_scenario
}
register bad/restore-file-size-changed test_restore_size_changed
