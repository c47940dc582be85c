# tests/suites/ipc.sh - SysV IPC objects of the host namespace (shared
# memory, semaphores, message queues) and a PostgreSQL server that uses
# SysV shared memory.

# ipc_cleanup: remove the objects the sysv_ipc scenario listed in
# WORKDIR/ipcids ("shm A B sem S msg Q"), whatever is left of them.
ipc_cleanup() {
	local w
	[ -r "$TDIR/ipcids" ] || return 0
	read -r -a w <"$TDIR/ipcids"
	ipcrm -m "${w[1]}" -m "${w[2]}" -s "${w[4]}" -q "${w[6]}" 2>/dev/null
	return 0
}

# test_sysv MODE: test_cr of sysv_ipc; its objects are removed in the end.
test_sysv() {
	local rc
	test_cr sysv_ipc "$1"
	rc=$?
	ipc_cleanup
	return $rc
}
# (no leave-running or pidns: a copy next to the original would need the
# original's ids, which it still holds in the one host namespace)
for m in once x3; do
	register "sysv_ipc/$m" test_sysv $m
done

# take_shm_id ID: a segment of ours holding ID (shm_next_id picks it);
# prints its id.
take_shm_id() {
	echo "$1" >/proc/sys/kernel/shm_next_id || return 1
	python3 -c 'import ctypes; print(ctypes.CDLL(None).shmget(0, 4096, 0o1600))'

}

# test_sysv_id_taken: a segment's id is taken on the host by the time of
# the restore: the restore fails with one line naming the id and leaves
# nothing behind; once the id is free, the image restores.
test_sysv_id_taken() {
	local ida got rc
	need_stasis || return 1
	command -v python3 >/dev/null || { SKIP="python3 is not installed"; return 2; }
	start_scenario sysv_ipc || { ipc_cleanup; return 1; }
	ida=$(awk '{print $2}' "$TDIR/ipcids")
	dump "$SCN_PID" "$TDIR/img" || { ipc_cleanup; return 1; }
	wait_gone "$SCN_PID" && tree_gone "$TDIR/img" || { ipc_cleanup; return 1; }
	got=$(take_shm_id "$ida")
	[ "$got" = "$ida" ] || { ipcrm -m "$got" 2>/dev/null; ipc_cleanup; bad "could not take id $ida (got $got)"; return 1; }
	stasis_cmd rst restore -D "$TDIR/img" -d
	rc=$?
	adopt_image "$TDIR/img" "$SCN_PID"
	ipcrm -m "$got"
	expect_error "restore with shm id $ida taken" $rc "$TDIR/rst.err" || { ipc_cleanup; return 1; }
	grep -q "id $ida is taken" "$TDIR/rst.err" ||
		{ ipc_cleanup; bad "the error does not name id $ida: $ERR_LINE"; return 1; }
	[ "$(wc -l <"$TDIR/rst.err")" = 1 ] || { ipc_cleanup; bad "more than one error line"; return 1; }
	alive "$SCN_PID" && { ipc_cleanup; bad "pid $SCN_PID runs after a failed restore"; return 1; }
	restore_detached "$TDIR/img" "$SCN_PID" || { ipc_cleanup; return 1; }
	check_scenario
	rc=$?
	ipc_cleanup
	return $rc
}
register "bad/sysv_id_taken" test_sysv_id_taken
