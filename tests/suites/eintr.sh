# tests/suites/eintr.sh - timed calls across checkpoints (sourced by
# tests/run.sh): a thread frozen in a call with a relative timeout goes
# back into it with the time it had left, never sees EINTR, and wakes at
# its original deadline.  Scenario: tests/scenarios/sig_timed.c (threads
# in epoll_wait(-1) and, 5 s each, epoll_wait, epoll_pwait2, sigtimedwait,
# poll, nanosleep, clock_nanosleep, FUTEX_WAIT, pthread_cond_timedwait,
# select and ppoll, looping, counting EINTRs).
# src/ptrace/deadline.c needs /proc/timer_list (root).

# Bound on how far from its deadline a timed call may wake, ms.  The
# calls' own timer slack is up to 5 ms (epoll_wait, poll: 0.1% of 5 s).
EINTR_BOUND_MS=${EINTR_BOUND_MS:-100}

# eintr_wait_wakes N SECONDS: the log holds N "wake" lines per timed waiter.
eintr_wait_wakes() {
	local limit=$(($(now_ms) + $2 * 1000)) w
	for w in 'epoll_wait(5000)' epoll_pwait2 sigtimedwait poll nanosleep clock_nanosleep futex \
		pthread_cond_timedwait select ppoll; do
		until [ "$(grep -cF "wake $w " "$TDIR/log")" -ge "$1" ]; do
			[ "$(now_ms)" -lt "$limit" ] || { bad "$w woke fewer than $1 times in time"; return 1; }
			sleep 0.05
		done
	done
}

# eintr_sleep_until MS: until now_ms reaches MS.
eintr_sleep_until() {
	local left=$(($1 - $(now_ms)))
	[ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
	return 0
}

# test_eintr_timed DUMPS ROUNDS: per 5 s period of the waiters, DUMPS dumps with
# -R 1 s into the period, then a dump and a restore 1.5 s into the next
# one; ROUNDS such pairs of periods.  No EINTR, every wakeup within
# EINTR_BOUND_MS of its deadline (checked by the scenario).
test_eintr_timed() {
	local dumps=$1 rounds=$2 t0 r i img
	need_stasis || return 1
	[ -r /proc/timer_list ] || { REASON="no readable /proc/timer_list"; return 77; }
	echo "$EINTR_BOUND_MS" >"$TDIR/bound"
	echo $((2 * rounds)) >"$TDIR/wakes"
	start_scenario sig_timed || return 1
	t0=$(now_ms)
	for r in $(seq 0 $((rounds - 1))); do
		eintr_sleep_until $((t0 + r * 10000 + 1000))
		for i in $(seq 1 "$dumps"); do
			img=$TDIR/imgR
			dump "$SCN_PID" "$img" -R || return 1
			rm -rf "$img"
		done
		eintr_sleep_until $((t0 + r * 10000 + 6500))
		img=$TDIR/img$r
		dump "$SCN_PID" "$img" || return 1
		tree_gone "$img" || return 1
		restore_detached "$img" "$SCN_PID" || return 1
		rm -rf "$img"
	done
	eintr_wait_wakes $((2 * rounds)) 12 || return 1
	grep -q '^eintr' "$TDIR/log" && { bad "EINTR seen: $(grep '^eintr' "$TDIR/log" | sort | uniq -c | tr '\n' ' ')"; return 1; }
	check_scenario
}

register eintr/timed test_eintr_timed 5 1

# eintr_wait_line LINE SECONDS: the log gets the line LINE in time.
eintr_wait_line() {
	local limit=$(($(now_ms) + $2 * 1000))
	until grep -qxF "$1" "$TDIR/log" 2>/dev/null; do
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.01
	done
}

# eintr_restore_then IMG CMD...: restore -d IMG, and at once when it
# returned (and succeeded) run CMD; then adopt what it restored.
eintr_restore_then() {
	local img=$1 rc
	shift
	N_CMD=$((N_CMD + 1))
	stasis_cmd "restore$N_CMD" restore -D "$img" -d -v4 -o "$TDIR/restore$N_CMD.log" && "$@"
	rc=$?
	adopt_image "$img" "$SCN_PID"
	[ $rc = 0 ] && return 0
	# pid_max wraps fast on a busy machine: an unrelated process may take a PID
	if grep -q "is taken by another process" "$TDIR/restore$N_CMD.err"; then
		REASON="a PID of the image was taken by an unrelated process: $(head -n 1 "$TDIR/restore$N_CMD.err")"
		return 77
	fi
	bad "restore failed: $(head -n 1 "$TDIR/restore$N_CMD.err")"
	return 1
}

# eintr_kill_tree: SIGUSR1 to the root and to both children of sig_timed.
eintr_kill_tree() {
	local p
	kill -USR1 "$SCN_PID" || return 1
	for p in $(cat "$TDIR/pids"); do
		kill -USR1 "$p" || return 1
	done
}

# test_eintr_signal_tree ROUNDS: a root in `while (!flag) pause();`, its timed
# waiter threads and two children (own group, own session): SIGUSR1 sent
# to each at once after `restore -d` returns is answered, every round.
test_eintr_signal_tree() {
	local rounds=$1 i img
	need_stasis || return 1
	echo 100000 >"$TDIR/bound"
	echo 0 >"$TDIR/wakes"
	echo 1 >"$TDIR/children"
	start_scenario sig_timed || return 1
	for i in $(seq 1 "$rounds"); do
		img=$TDIR/img$i
		dump "$SCN_PID" "$img" || return 1
		tree_gone "$img" || return 1
		eintr_restore_then "$img" eintr_kill_tree || return $?
		eintr_wait_line "usr1 $i" 2 || { bad "round $i: the root did not answer SIGUSR1 sent right after restore -d"; return 1; }
		eintr_wait_line "child pgrp usr1 $i" 2 || { bad "round $i: the child in its own group did not answer"; return 1; }
		eintr_wait_line "child session usr1 $i" 2 || { bad "round $i: the child in its own session did not answer"; return 1; }
		rm -rf "$img"
	done
	grep -q '^eintr' "$TDIR/log" && { bad "EINTR seen: $(grep '^eintr' "$TDIR/log" | sort | uniq -c | tr '\n' ' ')"; return 1; }
	check_scenario
}

# test_eintr_signal_during_restore DELAYS...: SIGUSR1 sent DELAY ms into the
# restore of a 256 MiB process (its PID exists from the first fork on) is
# delivered once it runs, for each delay; the waiters see no EINTR.
test_eintr_signal_during_restore() {
	local i=0 d img rpid
	need_stasis || return 1
	echo 100000 >"$TDIR/bound"
	echo 0 >"$TDIR/wakes"
	echo 256 >"$TDIR/bigmem"
	start_scenario sig_timed || return 1
	for d in "$@"; do
		i=$((i + 1))
		img=$TDIR/img$i
		dump "$SCN_PID" "$img" || return 1
		tree_gone "$img" || return 1
		N_CMD=$((N_CMD + 1))
		stasis_cmd "restore$N_CMD" restore -D "$img" -d -o "$TDIR/restore$N_CMD.log" &
		rpid=$!
		sleep "$(printf '0.%03d' "$d")"
		until kill -USR1 "$SCN_PID" 2>/dev/null; do
			kill -0 "$rpid" 2>/dev/null || break
			sleep 0.001
		done
		wait "$rpid" || { adopt_image "$img" "$SCN_PID"; bad "round $i: restore failed"; return 1; }
		echo "round $i: signal at ${d} ms, $(grep -o "restored.*" "$TDIR/restore$N_CMD.log")" >>"$DETAILS"
		adopt_image "$img" "$SCN_PID"
		eintr_wait_line "usr1 $i" 3 || { bad "round $i: SIGUSR1 sent ${d} ms into the restore was lost"; return 1; }
		rm -rf "$img"
	done
	grep -q '^eintr' "$TDIR/log" && { bad "EINTR seen: $(grep '^eintr' "$TDIR/log" | sort | uniq -c | tr '\n' ' ')"; return 1; }
	check_scenario
}

register eintr/signal-after-restore-tree test_eintr_signal_tree 8
register eintr/signal-during-restore test_eintr_signal_during_restore 0 10 25 50 75 100

# test_eintr_signal_after_dump ROUNDS: the same tree; SIGUSR1 sent to each
# of its processes at once when `dump -R` returns is answered, every
# round (nothing of the tree is still held then).
test_eintr_signal_after_dump() {
	local rounds=$1 i
	need_stasis || return 1
	echo 100000 >"$TDIR/bound"
	echo 0 >"$TDIR/wakes"
	echo 1 >"$TDIR/children"
	start_scenario sig_timed || return 1
	for i in $(seq 1 "$rounds"); do
		dump "$SCN_PID" "$TDIR/imgR" -R || return 1
		eintr_kill_tree || { bad "round $i: cannot signal the tree"; return 1; }
		eintr_wait_line "usr1 $i" 2 || { bad "round $i: the root did not answer SIGUSR1 sent right after dump -R"; return 1; }
		eintr_wait_line "child pgrp usr1 $i" 2 || { bad "round $i: the child in its own group did not answer"; return 1; }
		eintr_wait_line "child session usr1 $i" 2 || { bad "round $i: the child in its own session did not answer"; return 1; }
		rm -rf "$TDIR/imgR"
	done
	eintr_log_clean || return 1
	check_scenario
}

register eintr/signal-after-dump-tree test_eintr_signal_after_dump 5

# the issue's 50 dumps with -R in a row and 200 rounds, for soak runs (make soak)
if [ -n "${STASIS_SOAK:-}" ]; then
	register soak/eintr-signal-after-dump-tree test_eintr_signal_after_dump 200
	register soak/eintr-timed-x50 test_eintr_timed 50 3
	register soak/eintr-signal-after-restore-tree test_eintr_signal_tree 200
	# shellcheck disable=SC2046
	register soak/eintr-signal-during-restore test_eintr_signal_during_restore $(seq 0 199)
fi

# sem_timed: semtimedop (1 s) in a process of its own IPC namespace: no
# EINTR and its deadlines kept through dump -R and through a restore.
register eintr/semtimedop-once test_cr sem_timed once
register eintr/semtimedop-leave-running-x3 test_cr sem_timed leave-running-x3

# sig_masked: calls that sleep with a mask of their own (epoll_pwait,
# epoll_pwait2, ppoll, pselect, sigsuspend), sigwaitinfo, io_getevents.
EINTR_MASKED_TIMED='epoll_pwait(5000) epoll_pwait2 ppoll pselect'

# eintr_wait_named N SECONDS NAMES: the log holds N "wake NAME" lines per name.
eintr_wait_named() {
	local n=$1 limit=$(($(now_ms) + $2 * 1000)) w
	shift 2
	for w in "$@"; do
		until [ "$(grep -cF "wake $w " "$TDIR/log")" -ge "$n" ]; do
			[ "$(now_ms)" -lt "$limit" ] || { bad "$w woke fewer than $n times in time"; return 1; }
			sleep 0.05
		done
	done
}

# eintr_log_clean: no EINTR, no handler run early or lost in the log.
eintr_log_clean() {
	grep -qE '^(eintr|early|lost)' "$TDIR/log" || return 0
	bad "seen: $(grep -E '^(eintr|early|lost)' "$TDIR/log" | sort | uniq -c | tr '\n' ' ')"
	return 1
}

# test_eintr_masked MODE DUMPS PERIODS: sig_masked with handlers (MODE
# handler: each timed masked waiter has a SIGURG pending, blocked by its
# call's mask only, from 300 ms into each call) or without (plain, the main
# thread in epoll_pwait(-1)); DUMPS dumps with -R 1 s into the first 5 s
# period, then (PERIODS 2) a dump and a restore 1.5 s into the second.
# No EINTR, no handler before its call returned, every wakeup within
# EINTR_BOUND_MS of its deadline.
test_eintr_masked() {
	local mode=$1 dumps=$2 periods=$3 t0 i img
	need_stasis || return 1
	[ -r /proc/timer_list ] || { REASON="no readable /proc/timer_list"; return 77; }
	echo "$EINTR_BOUND_MS" >"$TDIR/bound"
	echo "$periods" >"$TDIR/wakes"
	[ "$mode" = plain ] && echo 1 >"$TDIR/plain"
	start_scenario sig_masked || return 1
	t0=$(now_ms)
	eintr_sleep_until $((t0 + 1000))
	for i in $(seq 1 "$dumps"); do
		dump "$SCN_PID" "$TDIR/imgR" -R || return 1
		rm -rf "$TDIR/imgR"
	done
	if [ "$periods" -ge 2 ]; then
		eintr_sleep_until $((t0 + 6500))
		dump "$SCN_PID" "$TDIR/img" || return 1
		tree_gone "$TDIR/img" || return 1
		restore_detached "$TDIR/img" "$SCN_PID" || return 1
	fi
	# shellcheck disable=SC2086
	eintr_wait_named "$periods" $((periods * 5 + 3)) $EINTR_MASKED_TIMED || return 1
	grep -q "let go at the entry" "$TDIR"/dump*.log ||
		{ bad "no thread was let go inside its call (see dump logs)"; return 1; }
	eintr_log_clean || return 1
	check_scenario
}

# test_eintr_aio_refused: a process with an AIO context is refused (its
# ring mapping cannot be saved) and runs on: io_getevents, untimed and
# with 5 s, gets no EINTR from the failed dump and keeps its deadline.
test_eintr_aio_refused() {
	need_stasis || return 1
	[ -r /proc/timer_list ] || { REASON="no readable /proc/timer_list"; return 77; }
	echo "$EINTR_BOUND_MS" >"$TDIR/bound"
	echo 1 >"$TDIR/aio"
	echo 1 >"$TDIR/plain"
	start_scenario sig_masked || return 1
	sleep 1
	mkdir -p "$TDIR/img"
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img" -R
	expect_error "dump of a process with an AIO context" $? "$TDIR/err.err" || return 1
	grep -qw "$SCN_PID" "$TDIR/err.err" || { bad "the error does not name pid $SCN_PID: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	eintr_wait_named 1 8 io_getevents || return 1
	eintr_log_clean || return 1
	check_scenario
}

register eintr/masked test_eintr_masked handler 3 2
register eintr/masked-plain test_eintr_masked plain 2 1
register eintr/aio-refused test_eintr_aio_refused

# eintr_last_got: N of the last "got N" line of the log (0 if none).
eintr_last_got() {
	local n
	n=$(grep -oE '^got [0-9]+' "$TDIR/log" 2>/dev/null | tail -n 1)
	echo "${n#got }" | grep -E '^[0-9]+$' || echo 0
}

# eintr_gets_after N SECONDS: the log gets a "got M" line with M > N in time.
eintr_gets_after() {
	local limit=$(($(now_ms) + $2 * 1000))
	until [ "$(eintr_last_got)" -gt "$1" ]; do
		[ "$(now_ms)" -lt "$limit" ] || { bad "semop got nothing after ${1} gets within $2 s"; return 1; }
		sleep 0.05
	done
}

# test_eintr_semop: untimed semop in the main thread of a process in its
# own IPC namespace, posted every 200 ms by its child: DUMPS (3) dumps with -R
# and a restore; no EINTR, and the wakeups go on (none missed).
test_eintr_semop() {
	local n i
	need_stasis || return 1
	start_scenario sem_wait || return 1
	eintr_gets_after 1 5 || return 1
	for i in $(seq 1 "${1:-3}"); do
		dump "$SCN_PID" "$TDIR/imgR" -R || return 1
		rm -rf "$TDIR/imgR"
		sleep 0.1
	done
	n=$(eintr_last_got)
	eintr_gets_after "$n" 3 || return 1
	dump "$SCN_PID" "$TDIR/img" || return 1
	tree_gone "$TDIR/img" || return 1
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	n=$(eintr_last_got)
	eintr_gets_after $((n + 2)) 3 || return 1
	eintr_log_clean || return 1
	check_scenario
}

# test_eintr_semop_threads: the waiter in a second thread: the process has
# a SysV undo list (CLONE_SYSVSEM), whose adjustments cannot be read: the
# dump is refused naming the pid and the undo list, and the tree runs on,
# its semop without EINTR and still woken.
test_eintr_semop_threads() {
	local n
	need_stasis || return 1
	echo 1 >"$TDIR/threads"
	start_scenario sem_wait || return 1
	eintr_gets_after 1 5 || return 1
	mkdir -p "$TDIR/img"
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a multithreaded process with a SysV undo list" $? "$TDIR/err.err" || return 1
	grep -qw "$SCN_PID" "$TDIR/err.err" || { bad "the error does not name pid $SCN_PID: $ERR_LINE"; return 1; }
	grep -q "undo list" "$TDIR/err.err" || { bad "the error does not name the undo list: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	n=$(eintr_last_got)
	eintr_gets_after $((n + 2)) 3 || return 1
	eintr_log_clean || return 1
	check_scenario
}

register eintr/semop test_eintr_semop
register eintr/semop-threads-refused test_eintr_semop_threads

if [ -n "${STASIS_SOAK:-}" ]; then
	register soak/eintr-masked-x50 test_eintr_masked handler 50 2
	register soak/eintr-masked-plain-x50 test_eintr_masked plain 50 2
	register soak/eintr-semop-x50 test_eintr_semop 50
fi
