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

# untraced PID: wait (1 s at most) until the kernel has let PID go after its
# tracer died.
untraced() {
	local limit=$(($(now_ms) + 1000)) t
	while :; do
		t=$(awk '/^TracerPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
		[ "$t" = 0 ] && return 0
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.01
	done
}

# target_unharmed WHAT [quick]: the scenario survived, is not stopped,
# and (a counter, unless quick) counts on; its own check comes at the end.
target_unharmed() {
	local count
	untraced "$SCN_PID" ||
		{ bad "$1: process $SCN_PID still traced by $(awk '/^TracerPid:/ { print $2 }' "/proc/$SCN_PID/status") ($(cat "/proc/$(awk '/^TracerPid:/ { print $2 }' "/proc/$SCN_PID/status")/cmdline" 2>/dev/null | tr '\0' ' '))"; return 1; }
	alive "$SCN_PID" && [ "$(proc_start "$SCN_PID")" = "$SCN_START" ] ||
		{ bad "$1: process $SCN_PID did not survive"; return 1; }
	stopped "$SCN_PID" && { bad "$1: process $SCN_PID left stopped (state $(proc_state "$SCN_PID"))"; return 1; }
	[ "$SCN_NAME" = counter ] && [ -z "${2:-}" ] || return 0
	count=$(last_count "$TDIR/log")
	wait_progress "$TDIR/log" "$count" 3 || { bad "$1: counter stuck at $count"; return 1; }
}

# test_dump_killed STAGE SCENARIO: stasis dies of SIGKILL (no handler runs)
# in the middle of its remote calls (STASIS_TEST_CRASH=STAGE-kill); the
# kernel alone lets the tree go, and it must run on unharmed.
test_dump_killed() {
	local stage=$1 scn=$2 rc
	need_stasis || return 1
	start_scenario "$scn" || return 1
	STASIS_TEST_CRASH=$stage-kill stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img" -R
	rc=$?
	[ $rc -eq $((128 + 9)) ] || { bad "the dump exited with $rc, not by the SIGKILL asked for"; return 1; }
	[ -e "$TDIR/img/$IMG_NAME" ] && { bad "a killed dump left an image"; return 1; }
	target_unharmed "after the killed dump" || return 1
	check_scenario
}

# test_dump_kill_random SCENARIO RUNS MAX_US|auto: RUNS times, `dump -R` is
# killed with SIGKILL a random 0..MAX_US us after it started; after every
# run the target must run on unharmed, and its own check passes at the end.
test_dump_kill_random() {
	local scn=$1 runs=$2 max=$3 i out killed=0 t0
	need_stasis || return 1
	start_scenario "$scn" || return 1
	# auto: the time one whole dump -R takes here and now (the machine's
	# load changes it several times over), so the kills cover all of it
	if [ "$max" = auto ]; then
		t0=$(now_ms)
		"$STASIS" dump -t "$SCN_PID" -D "$TDIR/img" -R 2>/dev/null || { bad "a plain dump -R failed"; return 1; }
		max=$((($(now_ms) - t0) * 1000))
	fi
	for i in $(seq 1 "$runs"); do
		rm -rf "$TDIR/img"
		out=$("$BUILD/tools/killat" "$max" "$STASIS" dump -t "$SCN_PID" -D "$TDIR/img" -R 2>/dev/null)
		case $out in killed*) killed=$((killed + 1)) ;; esac
		target_unharmed "run $i ($out)" quick || return 1
	done
	target_unharmed "after $runs runs" || return 1
	echo "$killed of $runs dumps killed in the middle" >>"$TDIR/log"
	[ $killed -gt $((runs / 4)) ] || { bad "only $killed of $runs dumps were killed before they ended"; return 1; }
	check_scenario
}

register bad/dump-kill-remote test_dump_killed remote counter
register bad/dump-kill-threads test_dump_killed threads threads50
# test_dump_kill_every_call SCENARIO STEP: `dump -R` killed with SIGKILL
# (STASIS_TEST_KILL_AT=N) at its 1st remote call, its (1+STEP)th, ... until
# a dump gets through; the target must be unharmed after each.
test_dump_kill_every_call() {
	local scn=$1 step=$2 n=1 rc
	need_stasis || return 1
	start_scenario "$scn" || return 1
	while [ $n -lt 2000 ]; do
		rm -rf "$TDIR/img"
		STASIS_TEST_KILL_AT=$n "$STASIS" dump -t "$SCN_PID" -D "$TDIR/img" -R 2>/dev/null
		rc=$?
		target_unharmed "killed at remote call $n" quick || return 1
		[ $rc = 0 ] && break
		[ $rc = 137 ] || { bad "the dump killed at call $n exited with $rc"; return 1; }
		n=$((n + step))
	done
	echo "dump killed at every ${step}th of its $n remote calls" >>"$TDIR/log"
	target_unharmed "after the runs" || return 1
	check_scenario
}

register bad/dump-kill-every-call test_dump_kill_every_call counter 1
register bad/dump-kill-random test_dump_kill_random counter 200 4000
# With 50 threads: every 5th call and random moments over the whole dump
# (its freeze alone takes 40-80 ms with 50 threads on a loaded machine, so
# kills within 40 ms never reached a remote call; "auto" takes the time of
# a whole dump -R measured first).  A short run in make check, longer ones with
# STASIS_SOAK=1 (see docs/design.md, "Losing stasis").
register bad/dump-kill-random-threads test_dump_kill_random threads50 25 auto
if [ -n "${STASIS_SOAK:-}" ]; then
	register soak/dump-kill-every-call-threads test_dump_kill_every_call threads50 5
	register soak/dump-kill-random-threads test_dump_kill_random threads50 400 auto
fi

# restored_state PID...: for the PIDs of an image, "none" if no PID of the image is used by anything,
# "complete" if every task of the image runs (neither stopped nor traced),
# "released-part" if some run and every other is dead (killed by
# PTRACE_O_EXITKILL after the first ones were let go: the window that
# docs/design.md, "Losing stasis in the middle of a restore", states for a
# restore without --pidns), else "partial: WHY".
restored_state() {
	local p n=0 up=0 why="" dead=0 st
	for p in "$@"; do
		n=$((n + 1))
		if alive "$p" && ! stopped "$p" && [ "$(awk '/^TracerPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)" = 0 ]; then
			up=$((up + 1))
		elif [ -n "$(id_users "$p")" ]; then
			st=$(proc_state "$p")
			[ "$st" = Z ] && dead=$((dead + 1))
			why+="$p ($st) "
		fi
	done
	if [ -z "$why" ] && [ $up = 0 ]; then
		echo none
	elif [ -z "$why" ] && [ $up = "$n" ]; then
		echo complete
	elif [ $up -gt 0 ] && [ $((up + dead)) = "$n" ]; then
		echo "released-part"
	else
		echo "partial: $up of $n running; held: $why"
	fi
}

# test_restore_kill_random SCENARIO RUNS MAX_US [DUMP_OPTS]: RUNS times, `restore -d`
# is killed with SIGKILL a random 0..MAX_US us after it started; within
# 2 s after each kill either nothing of the new tree is left (every task is
# traced with PTRACE_O_EXITKILL from its first instruction and has a
# parent-death SIGKILL until it is transplanted) or, if the kill came after
# the release, the whole tree runs.  The last restore's copy passes its
# own check.
test_restore_kill_random() {
	local scn=$1 runs=$2 max=$3 img=$TDIR/img i p out st limit killed=0 done=0 part=0 DUMP_OPTS=${4:-}
	local pids=()
	need_stasis || return 1
	start_scenario "$scn" || return 1
	snapshot_scenario before || return 1
	dump "$SCN_PID" "$img" || return 1
	tree_gone "$img" || return 1
	read -r -a pids <<<"$(image_pids "$img" | tr '\n' ' ')"
	for i in $(seq 1 "$runs"); do
		out=$("$BUILD/tools/killat" "$max" "$STASIS" restore -D "$img" -d 2>/dev/null)
		for p in "${pids[@]}"; do
			adopt "$p"
		done
		case $out in killed*) killed=$((killed + 1)) ;; esac
		limit=$(($(now_ms) + 2000))
		while st=$(restored_state "${pids[@]}"); [ "${st%%:*}" = partial ] || [ "$st" = released-part ]; do
			[ "$(now_ms)" -lt $limit ] || break
			sleep 0.02
		done
		[ "${st%%:*}" != partial ] || { bad "run $i ($out): 2 s after the kill, $st"; return 1; }
		[ "$st" = complete ] && { done=$((done + 1)); kill_tree "$img" || return 1; }
		[ "$st" = released-part ] && { part=$((part + 1)); kill_tree "$img" || return 1; }
	done
	echo "$killed of $runs restores killed in the middle, $done complete, $part killed between two releases"
	echo "$killed of $runs restores killed in the middle, $done complete, $part killed between two releases" >>"$TDIR/log"
	# the window between two releases is narrow: hit often, it has grown
	[ $part -le $((runs / 20)) ] || { bad "$part of $runs kills left the tree released in part"; return 1; }
	[ $killed -gt $((runs / 4)) ] || { bad "only $killed of $runs restores were killed before they ended"; return 1; }
	restore_detached "$img" "$SCN_PID" || return 1
	after_restore || return 1
	check_scenario
}

register bad/restore-kill-random test_restore_kill_random fault_zoo 80 15000 --file-locks
