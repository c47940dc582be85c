# tests/suites/signal.sh - a freeze the program cannot notice (sourced by
# tests/run.sh): no EINTR caused by stasis, no signal lost while stasis
# holds a task.  Scenario: tests/scenarios/sig_wait.c.

# threads in epoll_wait(-1), epoll_pwait(-1) and sigwaitinfo never see
# EINTR, after one or three restores or 50 dumps with -R (no --pidns copy:
# the runner wants a copy that is seen running, and this one only waits)
for m in once x3 leave-running leave-running-x50; do
	register "sig_wait/$m" test_cr sig_wait $m
done

# wait_log_line FILE LINE SECONDS: FILE gets a line LINE in time.
wait_log_line() {
	local limit=$(($(now_ms) + $3 * 1000))
	until grep -qx "$2" "$1" 2>/dev/null; do
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.01
	done
}

# test_signal_at_release MODE ROUNDS: SIGUSR1 sent at once after
# `restore -d` (or `dump -R`) returns, ROUNDS times in a row, each reaches
# the main thread waiting in `while (!flag) pause();`.
test_signal_at_release() {
	local mode=$1 rounds=$2 i img
	need_stasis || return 1
	start_scenario sig_wait || return 1
	for i in $(seq 1 "$rounds"); do
		img=$TDIR/img$i
		if [ "$mode" = restore ]; then
			dump "$SCN_PID" "$img" || return 1
			wait_gone "$SCN_PID" || { bad "round $i: $SCN_PID still there after the dump"; return 1; }
			N_CMD=$((N_CMD + 1))
			stasis_cmd "restore$N_CMD" restore -D "$img" -d -o "$TDIR/restore$N_CMD.log" &&
				kill -USR1 "$SCN_PID"
			adopt_image "$img" "$SCN_PID"
			alive "$SCN_PID" || { bad "round $i: restore failed"; return 1; }
		else
			dump "$SCN_PID" "$img" -R && kill -USR1 "$SCN_PID" || return 1
		fi
		wait_log_line "$TDIR/log" "usr1 $i" 2 ||
			{ bad "round $i: SIGUSR1 sent right after $mode returned was not seen within 2 s"; return 1; }
		rm -rf "$img"
	done
	check_scenario
}

# test_signal_during_restore ROUNDS: SIGUSR1 sent at a random moment while
# a 256 MiB process is being restored (its PID exists from the first fork
# on) is delivered once the process runs.
test_signal_during_restore() {
	local rounds=$1 i img rpid
	need_stasis || return 1
	echo 256 >"$TDIR/bigmem"
	start_scenario sig_wait || return 1
	for i in $(seq 1 "$rounds"); do
		img=$TDIR/img$i
		dump "$SCN_PID" "$img" || return 1
		wait_gone "$SCN_PID" || { bad "round $i: $SCN_PID still there after the dump"; return 1; }
		N_CMD=$((N_CMD + 1))
		stasis_cmd "restore$N_CMD" restore -D "$img" -d -o "$TDIR/restore$N_CMD.log" &
		rpid=$!
		# somewhere in the restore: 0-150 ms after it started
		sleep "0.$(printf %03d $((RANDOM % 150)))"
		until kill -USR1 "$SCN_PID" 2>/dev/null; do
			kill -0 "$rpid" 2>/dev/null || break
			sleep 0.001
		done
		wait "$rpid" || { adopt_image "$img" "$SCN_PID"; bad "round $i: restore failed"; return 1; }
		adopt_image "$img" "$SCN_PID"
		kill -0 "$SCN_PID" 2>/dev/null || { bad "round $i: not running after restore"; return 1; }
		wait_log_line "$TDIR/log" "usr1 $i" 3 ||
			{ bad "round $i: SIGUSR1 sent during the restore was lost"; return 1; }
		rm -rf "$img"
	done
	check_scenario
}

register sig_wait/signal-during-restore test_signal_during_restore 10
register sig_wait/signal-after-restore test_signal_at_release restore 20
register sig_wait/signal-after-dump-R test_signal_at_release dump-R 20
