# tests/suites/eintr.sh - timed calls across checkpoints (sourced by
# tests/run.sh): a thread frozen in a call with a relative timeout goes
# back into it with the time it had left, never sees EINTR, and wakes at
# its original deadline.  Scenario: tests/scenarios/sig_timed.c (threads
# in epoll_wait(-1), epoll_wait(5000), sigtimedwait(5 s), poll(5000),
# nanosleep(5 s) and FUTEX_WAIT(5 s), looping, counting EINTRs).
# src/ptrace/deadline.c needs /proc/timer_list (root).

# Bound on how far from its deadline a timed call may wake, ms.  The
# calls' own timer slack is up to 5 ms (epoll_wait, poll: 0.1% of 5 s).
EINTR_BOUND_MS=${EINTR_BOUND_MS:-100}

# wait_wakes N SECONDS: the log holds N "wake" lines per timed waiter.
wait_wakes() {
	local limit=$(($(now_ms) + $2 * 1000)) w
	for w in 'epoll_wait(5000)' sigtimedwait poll nanosleep futex; do
		until [ "$(grep -cF "wake $w " "$TDIR/log")" -ge "$1" ]; do
			[ "$(now_ms)" -lt "$limit" ] || { bad "$w woke fewer than $1 times in time"; return 1; }
			sleep 0.05
		done
	done
}

# sleep_until MS: until now_ms reaches MS.
sleep_until() {
	local left=$(($1 - $(now_ms)))
	[ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
	return 0
}

# test_timed DUMPS ROUNDS: per 5 s period of the waiters, DUMPS dumps with
# -R 1 s into the period, then a dump and a restore 1.5 s into the next
# one; ROUNDS such pairs of periods.  No EINTR, every wakeup within
# EINTR_BOUND_MS of its deadline (checked by the scenario).
test_timed() {
	local dumps=$1 rounds=$2 t0 r i img
	need_stasis || return 1
	[ -r /proc/timer_list ] || { REASON="no readable /proc/timer_list"; return 77; }
	echo "$EINTR_BOUND_MS" >"$TDIR/bound"
	echo $((2 * rounds)) >"$TDIR/wakes"
	start_scenario sig_timed || return 1
	t0=$(now_ms)
	for r in $(seq 0 $((rounds - 1))); do
		sleep_until $((t0 + r * 10000 + 1000))
		for i in $(seq 1 "$dumps"); do
			img=$TDIR/imgR
			dump "$SCN_PID" "$img" -R || return 1
			rm -rf "$img"
		done
		sleep_until $((t0 + r * 10000 + 6500))
		img=$TDIR/img$r
		dump "$SCN_PID" "$img" || return 1
		tree_gone "$img" || return 1
		restore_detached "$img" "$SCN_PID" || return 1
		rm -rf "$img"
	done
	wait_wakes $((2 * rounds)) 12 || return 1
	grep -q '^eintr' "$TDIR/log" && { bad "EINTR seen: $(grep '^eintr' "$TDIR/log" | sort | uniq -c | tr '\n' ' ')"; return 1; }
	check_scenario
}

register eintr/timed test_timed 5 1

# the issue's 50 dumps with -R in a row, and several rounds, for soak runs
if [ -n "${STASIS_SOAK:-}" ]; then
	register soak/eintr-timed-x50 test_timed 50 3
fi
