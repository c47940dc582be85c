# tests/suites/eintr3.sh - socket calls timed by SO_RCVTIMEO/SO_SNDTIMEO
# across checkpoints (sourced by tests/run.sh): a thread frozen in recv,
# read, accept or send on a socket with a timeout (inet and unix) goes back into the call
# with the time it had left (deadline.c's sock_release), never sees EINTR,
# and wakes at its original deadline; a recv without a timeout restarts.
# Scenario: tests/scenarios/sock_timed.c (2 s timeouts).

# eintr3_wait_wakes N SECONDS NAMES...: the log holds N "wake NAME" lines per name.
eintr3_wait_wakes() {
	local n=$1 limit=$(($(now_ms) + $2 * 1000)) w
	shift 2
	for w in "$@"; do
		until [ "$(grep -cF "wake $w " "$TDIR/log")" -ge "$n" ]; do
			[ "$(now_ms)" -lt "$limit" ] || { bad "$w woke fewer than $n times in time"; return 1; }
			sleep 0.05
		done
	done
}

EINTR3_TIMED='udp_recv udp_read tcp_recv accept unix_recv main_recvmsg'

# test_eintr3_sock MODE DUMPS: sock_timed (MODE send: with the blocked
# TCP send too); DUMPS dumps with -R in a row from 0.6 s into the first
# 2 s period, then a dump and a restore 1 s into a later one.  No EINTR,
# no return of the untimed recv, every wakeup within bounds of its
# deadline (checked by the scenario), and a SIGUSR1 sent to the restored
# main thread is the program's own EINTR, answered.
test_eintr3_sock() {
	local mode=$1 dumps=$2 t0 i periods DUMP_OPTS=--tcp-established
	need_stasis || return 1
	echo "${EINTR3_BOUND_MS:-100}" >"$TDIR/bound"
	[ "$mode" = send ] && echo 1 >"$TDIR/send"
	start_scenario sock_timed || return 1
	t0=$(now_ms)
	eintr_sleep_until $((t0 + 600))
	for i in $(seq 1 "$dumps"); do
		dump "$SCN_PID" "$TDIR/imgR" -R || return 1
		rm -rf "$TDIR/imgR"
	done
	# 1 s into the next period that leaves room for it
	periods=$((($(now_ms) - t0) / 2000 + 1))
	eintr_sleep_until $((t0 + periods * 2000 + 1000))
	dump "$SCN_PID" "$TDIR/img" || return 1
	tree_gone "$TDIR/img" || return 1
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	# shellcheck disable=SC2086
	eintr3_wait_wakes $((periods + 1)) $((periods * 2 + 6)) $EINTR3_TIMED || return 1
	[ "$mode" = send ] && { eintr3_wait_wakes $((periods + 1)) 4 tcp_send || return 1; }
	kill -USR1 "$SCN_PID" || return 1
	eintr_wait_line "usr1 1" 3 || { bad "the restored main thread did not answer SIGUSR1"; return 1; }
	grep -qE '^(eintr|.* returned)' "$TDIR/log" &&
		{ bad "seen: $(grep -E '^(eintr|.* returned)' "$TDIR/log" | sort | uniq -c | tr '\n' ' ')"; return 1; }
	grep -q "socket call asleep" "$TDIR"/dump*.log ||
		{ bad "no socket call was re-issued asleep (see dump logs)"; return 1; }
	check_scenario
}

register eintr3/sock-timed test_eintr3_sock plain 5
register eintr3/sock-timed-send test_eintr3_sock send 2
register eintr3/sock-timed-x50 test_eintr3_sock plain 50

# test_eintr3_sock_signal ROUNDS: SIGUSR1 sent to sock_timed's main thread
# (in recvmsg with SO_RCVTIMEO, a handler without SA_RESTART) 0-30 ms into
# a `dump -R`, while its threads may be frozen, re-issued or kept traced
# asleep in their socket calls: every signal is answered once, the main
# thread's EINTRs are its own, the threads see none.
test_eintr3_sock_signal() {
	local rounds=$1 i pid DUMP_OPTS=--tcp-established
	need_stasis || return 1
	echo 100 >"$TDIR/bound"
	echo 0 >"$TDIR/wakes"
	start_scenario sock_timed || return 1
	sleep 0.3
	for i in $(seq 1 "$rounds"); do
		mkdir -p "$TDIR/imgR"
		"$STASIS" dump -t "$SCN_PID" -D "$TDIR/imgR" -R $DUMP_OPTS -v4 -o "$TDIR/dump$i.log" \
			2>"$TDIR/dump$i.err" &
		pid=$!
		sleep "0.0$((RANDOM % 30 / 10))$((RANDOM % 10))"
		kill -USR1 "$SCN_PID" || { wait "$pid"; return 1; }
		wait "$pid" || { bad "dump -R $i failed: $(head -n 1 "$TDIR/dump$i.err")"; return 1; }
		rm -rf "$TDIR/imgR"
		eintr_wait_line "usr1 $i" 2 || { bad "round $i: SIGUSR1 sent during dump -R was not answered"; return 1; }
	done
	grep -qE '^(eintr|.* returned)' "$TDIR/log" &&
		{ bad "seen: $(grep -E '^(eintr|.* returned)' "$TDIR/log" | sort | uniq -c | tr '\n' ' ')"; return 1; }
	check_scenario
}

register eintr3/sock-signal-during-dump test_eintr3_sock_signal 20

# longer runs for soak (make soak)
if [ -n "${STASIS_SOAK:-}" ]; then
	register soak/eintr3-sock-signal-during-dump test_eintr3_sock_signal 200
	register soak/eintr3-sock-timed-send-x50 test_eintr3_sock send 50
fi
