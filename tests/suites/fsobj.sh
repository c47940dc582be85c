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
	# shellcheck disable=SC2034 # read by dump() in run.sh
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
	{ grep -q "data" "$TDIR/err.err" && grep -q "size" "$TDIR/err.err"; } ||
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

# ---------------------------------------------------------------- programs

# pool_py DIR: a python multiprocessing Pool (fork start method, 4
# workers) mapping a slow function over 200 items; results go to
# DIR/results, progress (items done) to DIR/progress.  A Pool holds pipes,
# helper threads and sem_open semaphores (unlinked /dev/shm files mapped
# shared by every worker).
pool_py() {
	cat >"$1/pool.py" <<'PY'
import os, time
import multiprocessing as mp


def slow(x):
    time.sleep(0.05)
    return (x * x * 2654435761) % 1000003


def put(name, text):
    with open(name + ".tmp", "w") as f:
        f.write(text)
    os.rename(name + ".tmp", name)


if __name__ == "__main__":
    mp.set_start_method("fork")
    with mp.Pool(4) as pool:
        put("ready", "%d\n" % os.getpid())
        res = []
        for r in pool.imap(slow, range(200)):
            res.append(r)
            if len(res) % 10 == 0:
                put("progress", "%d\n" % len(res))
    put("results", "".join("%d\n" % r for r in res))
PY
}

# test_python_pool: the Pool dumped mid-work and restored finishes with
# the same results as an uninterrupted run.
test_python_pool() {
	local py img=$TDIR/img1 ndone=0 limit n
	need_stasis || return 1
	py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
	{ [ -n "$py" ] && [ -x "$py" ]; } || { REASON="python3 not installed"; return 77; }
	"$py" -c 'import multiprocessing.synchronize' 2>/dev/null ||
		{ REASON="python3 lacks multiprocessing.synchronize (sem_open)"; return 77; }
	mkdir -p "$TDIR/ref" "$TDIR/run"
	pool_py "$TDIR/ref"
	pool_py "$TDIR/run"
	# the reference: the same program, never interrupted
	run_timed 60 "$TDIR/ref.out" "$TDIR/ref.err" env -C "$TDIR/ref" "$py" pool.py
	rc_ok "the uninterrupted python pool" $? "$TDIR/ref.err" || return 1
	[ -s "$TDIR/ref/results" ] || { bad "the uninterrupted pool wrote no results"; return 1; }
	start_prog "$TDIR/run" python "$py" pool.py || return 1
	wait_file "$TDIR/run/ready" "$WAIT_READY" "$SCN_PID" || { bad "python not ready within ${WAIT_READY}s"; return 1; }
	# dump in the middle of the work
	limit=$(($(now_ms) + 10000))
	while :; do
		{ read -r ndone <"$TDIR/run/progress"; } 2>/dev/null
		[ "${ndone:-0}" -ge 40 ] && break
		alive "$SCN_PID" || { bad "python died before the dump"; return 1; }
		[ "$(now_ms)" -lt $limit ] || { bad "the pool made no progress (${ndone:-0} items)"; return 1; }
		sleep 0.05
	done
	track_tree "$SCN_PID"
	n=$(descendants "$SCN_PID" | wc -w)
	[ "$n" -ge 4 ] || { bad "python has $n child processes, expected 4 workers"; return 1; }
	dump "$SCN_PID" "$img" || return 1
	grep -q "saved /dev/shm/sem\..* (deleted)" "$TDIR/dump$N_CMD.log" ||
		{ bad "the dump saved no unlinked sem_open semaphore (what this test is about)"; return 1; }
	read -r ndone <"$TDIR/run/progress"
	[ "$ndone" -lt 200 ] || { bad "the pool had finished before the dump"; return 1; }
	[ -e "$TDIR/run/results" ] && { bad "the pool had written its results before the dump"; return 1; }
	wait_gone "$SCN_PID" || { bad "python still there after the dump"; return 1; }
	tree_gone "$img" || return 1
	restore_detached "$img" "$SCN_PID" || return 1
	wait_file "$TDIR/run/results" 30 "$SCN_PID" ||
		{ bad "the restored pool did not finish within 30 s (progress $(cat "$TDIR/run/progress"))"; return 1; }
	wait_gone "$SCN_PID" || { bad "python did not exit after finishing"; return 1; }
	cmp -s "$TDIR/ref/results" "$TDIR/run/results" ||
		{ bad "the restored pool's results differ from an uninterrupted run's"; return 1; }
	return 0
}
register prog/python-pool test_python_pool
for m in once x3 leave-running pidns; do
	register "fs_exe/$m" test_cr fs_exe $m
done
