#!/usr/bin/env bash
# tests/run.sh - the stasis test suite (`make check` builds, then runs this).
#
#   bash tests/run.sh [WORD...]    run the tests whose name contains a WORD
#                                  (all tests without arguments)
#
# Environment: BUILD (default build), TMPDIR (default /tmp), VERBOSE=1
# (print the error lines of the bad-input tests).
#
# Output: one line per test, "PASS name (T s)", "FAIL name: reason (T s)"
# (followed by indented details) or "SKIP name: reason (T s)", then
# "N passed, N failed, N skipped".  Exit status 1 if any test failed.
#
# As a normal user only the unit tests run (they need no root); one line
# "SKIP N checkpoint/restore tests: ..." counts the others as skipped.
#
# Every test runs in its own directory under ${TMPDIR:-/tmp}/stasis-test.XXXXXX,
# removed when the test passes and kept (path printed) when it fails.
# Scenarios (tests/scenarios/*.c) follow the protocol of scenario.h.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# BUILD: relative to the caller's directory when given, else REPO/build.
if [ -n "${BUILD:-}" ]; then
	BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || BUILD=$PWD/$BUILD
else
	BUILD=$REPO/build
fi
STASIS=${STASIS:-$BUILD/stasis}
# run as a child subreaper (tests/tools/reaper.c): restored orphans are
# reaped by us at once, not by PID 1 a second or two later
if [ -z "${STASIS_TEST_REAPER:-}" ] && [ -x "$BUILD/tools/reaper" ]; then
	export STASIS_TEST_REAPER=1
	exec "$BUILD/tools/reaper" bash "${BASH_SOURCE[0]}" "$@"
fi
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
cd "$REPO" || exit 1

VERBOSE=${VERBOSE:-0}
FILTER=("$@")
T_NAMES=() T_CMDS=()		# the registered tests
N_PASS=0 N_FAIL=0 N_SKIP=0
ROOT=""				# temp root of this run
TDIR=""				# directory of the current test
DETAILS=""			# extra failure output of the current test
PIPE_FD=""			# write end of a scenario's (or restore's) stdin
HELPER=""			# "pid:start" of the timeout(1) being waited for
GOLDEN_IMG="" GOLDEN_PID=""	# an image shared by the bad-input tests
SCN_NAME="" SCN_PID=""		# the scenario of the current test: name, PID,
SCN_TOKEN="" SCN_START=""	# token (see scenario.h) and start time
ERR_LINE=""			# first stderr line of an expected failure
N_CMD=0				# numbers stasis log files within a test
SUMMARY_DONE=0
T_TEST=${T_TEST:-420}		# seconds one test may take before the watchdog
WATCHDOG=""			# "pid:start" of the current test's watchdog
IN_TEST=0			# 1 while a test function runs (see on_watchdog)

IMG_NAME=stasis.img
SPARSE_MAX=$((16 << 20))	# largest acceptable image of the sparse scenario

# ---------------------------------------------------------------- framework

# register NAME COMMAND...: add a test (COMMAND runs in the runner's shell
# with TDIR set; returns 0 = pass, 77 = skip, else fail with REASON).
register() {
	T_NAMES+=("$1")
	shift
	T_CMDS+=("$*")
}

# selected NAME: the name contains one of the filter words (or no filter).
selected() {
	local w
	[ ${#FILTER[@]} -eq 0 ] && return 0
	for w in "${FILTER[@]}"; do
		[[ $1 == *"$w"* ]] && return 0
	done
	return 1
}

# close_pipe: close the runner's end of a scenario's stdin pipe, if any.
close_pipe() {
	if [ -n "$PIPE_FD" ]; then
		exec {PIPE_FD}>&-
		PIPE_FD=""
	fi
}

# show_failure: the kept directory and the last lines of its logs.
show_failure() {
	local f
	echo "    kept $TDIR"
	[ -s "$DETAILS" ] && head -n 60 "$DETAILS" | indent
	for f in "$TDIR"/log "$TDIR"/result "$TDIR"/*.err "$TDIR"/*.log "$TDIR"/out; do
		[ -s "$f" ] || continue
		echo "    --- ${f#"$TDIR"/} (last lines)"
		tail -n 6 "$f" | cut -c 1-200 | indent
	done
}

# start_watchdog: a subshell that, if the test is still running after
# T_TEST seconds, notes what was running in DETAILS, kills the runner's
# children that no test tracks (the hung stasis command, timeout(1) or
# subshell, with their descendants), and then sends the runner SIGUSR1
# every half second: its trap returns from the innermost test function
# each time, until the test function has returned.  The wait is a `read`
# on a FIFO the subshell holds itself, so killing it leaves nothing.
start_watchdog() {
	local runner=$$
	mkfifo "$TDIR/.watchdog" || return 0
	(trap - EXIT INT TERM USR1
		exec {wd}<>"$TDIR/.watchdog"
		read -r -t "$T_TEST" -u $wd && exit 0
		: >"$TDIR/.timed-out"
		{ echo "the test ran longer than ${T_TEST}s; what was running:"
			ps -o pid,ppid,stat,etimes,wchan:24,args --forest \
				-s "$(ps -o sid= -p $runner | tr -d ' ')" | cut -c 1-200
		} >>"$DETAILS" 2>&1
		watchdog_kill_children "$runner"
		for ((i = 0; i < 120; i++)); do
			kill -USR1 "$runner" 2>/dev/null || exit 0
			read -r -t 0.5 -u $wd && exit 0
		done) &
	WATCHDOG=$!:$(proc_start $!)
}

# watchdog_kill_children RUNNER: kill, with their descendants, the direct
# children of RUNNER that are not tracked processes of the test (those
# are killed by run_test afterwards) and not this watchdog.
watchdog_kill_children() {
	local c st list=()
	for c in $(children "$1"); do
		[ "$c" = "$BASHPID" ] && continue
		st=$(proc_start "$c") || continue
		grep -qx "$c:$st" "$TDIR/.tracked" 2>/dev/null && continue
		list+=("$c:$st")
	done
	[ ${#list[@]} -gt 0 ] && kill_trees "${list[@]}"
}

# stop_watchdog: the test has returned: end its watchdog.
stop_watchdog() {
	[ -n "$WATCHDOG" ] || return 0
	tracked_alive "$WATCHDOG" && kill -KILL "${WATCHDOG%%:*}" 2>/dev/null
	wait "${WATCHDOG%%:*}" 2>/dev/null
	WATCHDOG=""
	rm -f "$TDIR/.watchdog"
}

# run_test NAME COMMAND...: run one test and report it.
run_test() {
	local name=$1 rc e pid t0 took nft_before left
	shift
	t0=$(now_ms)
	TDIR=$ROOT/${name//\//-}
	DETAILS=$TDIR/details
	TEST_PIDS=()
	REASON=""
	N_CMD=0
	mkdir -p "$TDIR"
	nft_before=$(nft_stasis_tables)

	start_watchdog
	IN_TEST=1
	"$@"
	rc=$?
	IN_TEST=0
	stop_watchdog
	if [ -e "$TDIR/.timed-out" ]; then
		rc=1
		REASON="did not finish within ${T_TEST}s (T_TEST); the watchdog ended it (what ran: see below)"
	fi

	# every descendant of a tracked process is ours too: list them all
	# before anything is killed, so that none escapes to init
	for e in "${TEST_PIDS[@]}"; do
		tracked_alive "$e" && track_tree "${e%%:*}"
	done
	# a test never leaves a stopped or traced process behind
	for e in "${TEST_PIDS[@]}"; do
		pid=${e%%:*}
		if tracked_alive "$e" && stopped "$pid"; then
			if [ $rc -eq 0 ] || [ $rc -eq 77 ]; then
				rc=1
				REASON="process $pid left stopped or traced (state $(proc_state "$pid"))"
			fi
			echo "process $pid was left in state $(proc_state "$pid")" >>"$DETAILS"
		fi
	done
	kill_trees "${TEST_PIDS[@]}"
	close_pipe
	# nor a network lock (an nft table inet stasis-*) of one of its
	# processes: deleted, and a failure
	left=$(nft_tables_left "$nft_before" "${TEST_PIDS[@]%%:*}")
	if [ -n "$left" ]; then
		if [ $rc -eq 0 ] || [ $rc -eq 77 ]; then
			rc=1
			REASON="nft table(s) left behind: ${left//$'\n'/ }"
		fi
		echo "nft table(s) left behind (deleted): ${left//$'\n'/ }" >>"$DETAILS"
	fi
	took=$(($(now_ms) - t0))
	took="($((took / 1000)).$((took % 1000 / 100)) s)"

	case $rc in
	0)
		echo "PASS $name $took"
		N_PASS=$((N_PASS + 1))
		rm -rf "$TDIR"
		;;
	77)
		echo "SKIP $name: ${REASON:-skipped} $took"
		N_SKIP=$((N_SKIP + 1))
		rm -rf "$TDIR"
		;;
	*)
		echo "FAIL $name: ${REASON:-failed (no reason given)} $took"
		N_FAIL=$((N_FAIL + 1))
		show_failure
		;;
	esac
}

summary() {
	SUMMARY_DONE=1
	echo "$N_PASS passed, $N_FAIL failed, $N_SKIP skipped"
}

# on_exit: kill whatever is still tracked, remove the temp root unless a
# test failed, print the summary if it was not printed yet.
on_exit() {
	local kids=()
	trap - EXIT INT TERM
	if [ -n "$HELPER" ] && tracked_alive "$HELPER"; then
		# the subshell's child is timeout(1): it passes SIGTERM on
		{ read -r -a kids <"/proc/${HELPER%%:*}/task/${HELPER%%:*}/children"; } 2>/dev/null
		[ ${#kids[@]} -gt 0 ] && kill -TERM "${kids[@]}" 2>/dev/null
		wait_gone "${HELPER%%:*}" 8 || kill_tracked "$HELPER"
	fi
	kill_trees "${ALL_PIDS[@]}"
	close_pipe
	if [ -n "$ROOT" ] && [ -d "$ROOT" ]; then
		if [ $N_FAIL -eq 0 ]; then
			rm -rf "$ROOT"
		else
			rm -rf "$ROOT/golden" "$ROOT/make-ref"
		fi
	fi
	if [ $SUMMARY_DONE = 0 ]; then
		echo "interrupted"
		summary
	fi
}

# ---------------------------------------------------------------- steps

# need_stasis: the tool is built.
need_stasis() {
	[ -x "$STASIS" ] || bad "$STASIS not found (run make)"
}

# rc_ok WHAT RC ERRFILE: 0 if RC is 0, else REASON explains the failure.
rc_ok() {
	local what=$1 rc=$2 err=$3
	case $rc in
	0) return 0 ;;
	124 | 137) bad "$what timed out after ${T_STASIS}s" ;;
	*)
		if [ "$rc" -gt 128 ]; then
			bad "$what died of signal $((rc - 128)): $(head -n 1 "$err" 2>/dev/null)"
		else
			bad "$what failed (exit $rc): $(head -n 1 "$err" 2>/dev/null)"
		fi
		;;
	esac
}

# expect_error WHAT RC ERRFILE: a clean failure: non-zero exit, neither a
# crash nor a timeout, and a non-empty error line on stderr (ERR_LINE).
expect_error() {
	local what=$1 rc=$2 err=$3
	ERR_LINE=$(head -n 1 "$err" 2>/dev/null)
	[ "$rc" -ne 0 ] || { bad "$what succeeded, expected an error"; return 1; }
	case $rc in
	124 | 137) bad "$what timed out after ${T_STASIS}s"; return 1 ;;
	125 | 126 | 127) bad "$what could not be run (exit $rc): $ERR_LINE"; return 1 ;;
	esac
	[ "$rc" -le 128 ] || { bad "$what died of signal $((rc - 128))"; return 1; }
	[ -n "${ERR_LINE//[[:space:]]/}" ] ||
		{ bad "$what failed (exit $rc) without an error message on stderr"; return 1; }
	[ "$VERBOSE" = 1 ] && echo "    ($what: exit $rc: $ERR_LINE)"
	return 0
}

# dump_refused WHAT PATTERN [DUMP-OPTIONS...]: a dump of the scenario
# (SCN_PID) into TDIR/img fails with one clear line, its error matches
# PATTERN (grep, basic regexp) and no image is left.
dump_refused() {
	local what=$1 pattern=$2
	shift 2
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img" "$@"
	expect_error "$what" $? "$TDIR/err.err" || return 1
	grep -q -- "$pattern" "$TDIR/err.err" ||
		{ bad "the error of the $what does not say '$pattern': $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img"
}

# run_timed SECONDS OUT ERR COMMAND...: run COMMAND with stdin /dev/null
# under timeout(1), which puts it in its own process group and kills the
# whole group on expiry.  Runs in the background and is waited for, so
# that an interrupt of the runner is handled at once (on_exit then sends
# SIGTERM to the timeout process, which forwards it to the group).  The
# subshell does not exec timeout, so that a command killed by a signal
# gives 128+N without a job notice from bash.
run_timed() {
	local secs=$1 out=$2 err=$3 pid rc
	shift 3
	(close_extra_fds
		timeout -k 5 "$secs" "$@" </dev/null >"$out" 2>"$err"
		exit $?) 2>/dev/null &
	pid=$!
	HELPER=$pid:$(proc_start $pid)
	wait "$pid"
	rc=$?
	HELPER=""
	return $rc
}

# stasis_cmd NAME ARGS...: run `stasis ARGS...` with a timeout, output in
# $TDIR/NAME.{out,err}; returns stasis's exit status.
stasis_cmd() {
	local name=$1
	shift
	run_timed "$T_STASIS" "$TDIR/$name.out" "$TDIR/$name.err" "$STASIS" "$@"
}

# start_scenario NAME [pipe]: start build/tests/NAME in $TDIR and wait for
# it to be ready.  Sets SCN_NAME, SCN_PID, SCN_TOKEN, SCN_START; with
# "pipe", stdin is a pipe whose write end is PIPE_FD (else /dev/null).
start_scenario() {
	local bin=$BUILD/tests/$1 pid rc

	SCN_NAME=$1
	[ -x "$bin" ] || { bad "missing $bin (run make)"; return 1; }
	rm -f "$TDIR/ready" "$TDIR/result"
	if [ "${2:-}" = pipe ]; then
		exec {PIPE_FD}> >(close_extra_fds
			cd "$TDIR" && exec setsid "$bin" "$TDIR" >>"$TDIR/log" 2>&1)
		pid=$!
	else
		(close_extra_fds
			cd "$TDIR" && exec setsid "$bin" "$TDIR") </dev/null >>"$TDIR/log" 2>&1 &
		pid=$!
		disown "$pid"	# no "Killed" job notices when a dump kills it
	fi
	track "$pid"
	wait_file "$TDIR/ready" "$WAIT_READY" "$pid"
	rc=$?
	[ $rc = 2 ] && { bad "$SCN_NAME exited before it was ready"; return 1; }
	[ $rc = 0 ] || { bad "$SCN_NAME not ready within ${WAIT_READY}s"; return 1; }
	read -r SCN_PID SCN_TOKEN <"$TDIR/ready"
	[ "$SCN_PID" = "$pid" ] || track "$SCN_PID"	# setsid forked
	SCN_START=$(proc_start "$SCN_PID") || { bad "$SCN_NAME vanished after ready"; return 1; }
	# a scenario with children lists the long-lived ones in WORKDIR/pids
	# shellcheck disable=SC2046
	[ -s "$TDIR/pids" ] && track_tree $(cat "$TDIR/pids")
	track_tree "$SCN_PID"
	return 0
}

# snapshot_scenario SUFFIX: snapshot the scenario (state.SUFFIX) and each
# live process listed in WORKDIR/pids (state.SUFFIX.PID).
snapshot_scenario() {
	local p pids=()
	snapshot "$SCN_PID" "$TDIR/state.$1" || return 1
	{ read -r -a pids <"$TDIR/pids"; } 2>/dev/null
	for p in "${pids[@]}"; do
		if [ "$(proc_state "$p")" = Z ]; then
			zombie_snapshot "$p" "$TDIR/state.$1.$p" || return 1
			continue
		fi
		alive "$p" || continue
		snapshot "$p" "$TDIR/state.$1.$p" || return 1
	done
	return 0
}

# snapshot_like BEFORE PID AFTER: snapshot PID as BEFORE was taken (of a
# live process or of a zombie).
snapshot_like() {
	if [ "$(head -n1 "$1")" = "== zombie" ]; then
		zombie_snapshot "$2" "$3"
	else
		alive "$2" || { bad "process $2 is not running (state $(proc_state "$2"))"; return 1; }
		snapshot "$2" "$3"
	fi
}

# compare_scenario FROM TO WHAT: compare two snapshot_scenario sets.
compare_scenario() {
	local f p
	snapshot "$SCN_PID" "$TDIR/state.$2" || return 1
	compare_state "$TDIR/state.$1" "$TDIR/state.$2" "$3" "$DETAILS" || return 1
	for f in "$TDIR/state.$1".*; do
		[ -e "$f" ] || continue
		p=${f##*.}
		snapshot_like "$f" "$p" "$TDIR/state.$2.$p" || { REASON="$3: $REASON"; return 1; }
		compare_state "$f" "$TDIR/state.$2.$p" "$3 (pid $p)" "$DETAILS" || return 1
	done
	return 0
}

# tree_gone IMG: wait until the PIDs of the image are free for the
# restore: no process has them as its PID, process group or session.
tree_gone() {
	local p
	for p in $(image_pids "$1"); do
		wait_pid_free "$p" ||
			{ bad "PID $p of the image still used ${WAIT_GONE}s after the dump (by $(id_users "$p" | tr '\n' ' '))"; return 1; }
	done
	return 0
}

# kill_tree IMG: kill the original tree after dump -R (the scenario and
# the tracked processes at PIDs of the image, with all their descendants:
# see kill_trees) and wait until the PIDs are free.
kill_tree() {
	local p e kill=()
	for p in "$SCN_PID" $(image_pids "$1"); do
		for e in "${TEST_PIDS[@]}"; do
			[ "${e%%:*}" = "$p" ] && tracked_alive "$e" && kill+=("$e")
		done
	done
	kill_trees "${kill[@]}"
	tree_gone "$1"
}

# check_scenario [PID]: send the check signal (to PID, default the
# scenario: a copy restored in a new PID namespace is checked through its
# host PID), wait for the result and for the process to exit; the result
# must be PASS and logged with the token of the original process (so it
# carries the original memory) and the scenario's PID as the process sees
# it (the original one, also in a new PID namespace).
check_scenario() {
	local pid=${1:-$SCN_PID} res rc lines

	stopped "$pid" && { bad "process $pid is stopped or traced (state $(proc_state "$pid"))"; return 1; }
	rm -f "$TDIR/result"
	lines=$(wc -l <"$TDIR/log" 2>/dev/null) || lines=0
	kill -USR2 "$pid" 2>/dev/null || { bad "process $pid is gone before the check"; return 1; }
	wait_file "$TDIR/result" "$WAIT_RESULT" "$pid"
	rc=$?
	[ $rc = 2 ] && { bad "process $pid died on check without a result (state $(proc_state "$pid"))"; return 1; }
	[ $rc = 0 ] || { bad "no check result within ${WAIT_RESULT}s (state $(proc_state "$pid"))"; return 1; }
	res=$(head -n 1 "$TDIR/result")
	[ "$res" = PASS ] || { bad "check: $res"; return 1; }
	tail -n +$((lines + 1)) "$TDIR/log" | grep -qF "result: PASS token=$SCN_TOKEN pid=$SCN_PID" ||
		{ bad "check passed in a process without the original token (not the restored memory?)"; return 1; }
	wait_gone "$pid" || { bad "process $pid did not exit after its check"; return 1; }
	return 0
}

# dump PID IMG [ARGS...]: a dump that must succeed and leave an image.
dump() {
	local pid=$1 img=$2 rc
	shift 2
	N_CMD=$((N_CMD + 1))
	mkdir -p "$img"
	# DUMP_OPTS: extra dump options a suite sets (local) for its tests
	# shellcheck disable=SC2086
	stasis_cmd "dump$N_CMD" dump -t "$pid" -D "$img" "$@" ${DUMP_OPTS:-} -v4 -o "$TDIR/dump$N_CMD.log"
	rc=$?
	rc_ok "dump" $rc "$TDIR/dump$N_CMD.err" || return 1
	[ -s "$img/$IMG_NAME" ] || { bad "dump succeeded but left no $IMG_NAME"; return 1; }
	return 0
}

# adopt PID: after a restore, a process at PID (which was free) comes from
# that restore: track it so that it is killed in the end.
adopt() {
	[ -e "/proc/$1" ] && [ "$(proc_start "$1")" != "$SCN_START" ] && track "$1"
	return 0
}

# adopt_image IMG PID: adopt PID and every other process of the image,
# with their descendants (the PIDs were free before the restore).
adopt_image() {
	local p
	adopt "$2"
	for p in $(image_pids "$1"); do
		[ "$p" = "$2" ] || track_tree "$p"
	done
	[ -e "/proc/$2" ] && track_tree "$2"
	return 0
}

# tree_fine IMG: no process of the image is stopped or traced (whether
# each one must still exist is the scenario's business: a child may well
# have exited and been reaped since), except the stopped jobs a scenario
# lists in WORKDIR/stopped: those must be stopped and not traced.
tree_fine() {
	local p stop
	stop=" $(cat "$TDIR/stopped" 2>/dev/null | tr '\n' ' ') "
	for p in $(image_pids "$1"); do
		if [[ $stop == *" $p "* ]]; then
			[ "$(proc_state "$p")" = T ] ||
				{ bad "stopped job $p is not stopped (state $(proc_state "$p"))"; return 1; }
			continue
		fi
		stopped "$p" && { bad "process $p is stopped or traced (state $(proc_state "$p"))"; return 1; }
	done
	return 0
}

# restore_detached IMG PID: a restore -d that must succeed and bring PID back.
restore_detached() {
	local img=$1 pid=$2 rc got
	N_CMD=$((N_CMD + 1))
	# RESTORE_OPTS: extra restore options a suite sets (local) for its tests
	# shellcheck disable=SC2086
	stasis_cmd "restore$N_CMD" restore -D "$img" -d --pidfile "$TDIR/pidfile$N_CMD" \
		${RESTORE_OPTS:-} -v4 -o "$TDIR/restore$N_CMD.log"
	rc=$?
	adopt_image "$img" "$pid"
	rc_ok "restore" $rc "$TDIR/restore$N_CMD.err" || return 1
	alive "$pid" || { bad "restore succeeded but PID $pid is not running"; return 1; }
	got=$(cat "$TDIR/pidfile$N_CMD" 2>/dev/null)
	[ "$got" = "$pid" ] || { bad "pidfile holds '$got', expected $pid"; return 1; }
	tree_fine "$img"
}

# after_restore: the restored process runs, is neither stopped nor traced,
# and looks from outside exactly like the original did before the dump.
after_restore() {
	local pid=$SCN_PID
	sleep 0.2
	alive "$pid" || { bad "restored process $pid died (state $(proc_state "$pid"))"; return 1; }
	stopped "$pid" && { bad "restored process $pid is stopped or traced (state $(proc_state "$pid"))"; return 1; }
	compare_scenario before "after$N_CMD" "after restore"
}

# post_dump IMG: per-scenario checks of a fresh image.
post_dump() {
	local size
	case $SCN_NAME in
	sparse)
		size=$(stat -c %s "$1/$IMG_NAME")
		[ "$size" -lt $SPARSE_MAX ] ||
			{ bad "image is $size bytes, expected < $SPARSE_MAX for 16 touched pages"; return 1; }
		;;
	esac
	return 0
}

# post_restore FROM: per-scenario liveness after a restore (FROM is the
# counter value logged before the dump).
post_restore() {
	local p pp
	case $SCN_NAME in
	subreaper)
		# the orphan B is the subreaper's child, as the kernel made it
		read -r p <"$TDIR/pids"
		pp=$(proc_field "$p" 4) || { bad "the orphan B ($p) is gone"; return 1; }
		[ "$pp" = "$SCN_PID" ] || { bad "the orphan B ($p) has parent $pp, expected the subreaper $SCN_PID"; return 1; }
		;;
	counter | unsupported | forker)
		wait_progress "$TDIR/log" "$1" 5 ||
			{ bad "counter does not advance after restore (stuck at $(last_count "$TDIR/log"))"; return 1; }
		;;
	esac
	return 0
}

# pre_start SCENARIO: per-scenario setup before the start.
pre_start() {
	case $1 in
	creds)
		# it drops to uid 1000 and must still write its result
		chmod 0711 "$ROOT"
		chmod 0777 "$TDIR"
		;;
	esac
}

# cr_cycle N: dump (which kills the process), restore -d, compare.
cr_cycle() {
	local img=$TDIR/img$1 count
	count=$(last_count "$TDIR/log")
	dump "$SCN_PID" "$img" || return 1
	wait_gone "$SCN_PID" ||
		{ bad "process $SCN_PID still there ${WAIT_GONE}s after dump (state $(proc_state "$SCN_PID"))"; return 1; }
	tree_gone "$img" || return 1
	post_dump "$img" || return 1
	restore_detached "$img" "$SCN_PID" || return 1
	after_restore || return 1
	post_restore "$count"
}

# dump_leave_running [N]: dump -R (N times in a row, default 1) leaves the
# original running and untouched.  Sets IMG to the last image.
dump_leave_running() {
	local n=${1:-1} i count
	count=$(last_count "$TDIR/log")
	for ((i = 1; i <= n; i++)); do
		IMG=$TDIR/img$i
		[ "$i" -gt 1 ] && rm -rf "$TDIR/img$((i - 1))"
		dump "$SCN_PID" "$IMG" -R || { [ "$n" -gt 1 ] && REASON="dump -R $i of $n: $REASON"; return 1; }
		# only the last dump's files are of interest if a later step fails
		[ "$i" -lt "$n" ] && rm -f "$TDIR/dump$N_CMD".{log,out,err}
	done
	sleep 0.2
	original_fine "original after dump -R" running || return 1
	tree_fine "$IMG" || { REASON="original after dump -R: $REASON"; return 1; }
	post_restore "$count" || { REASON="original after dump -R: $REASON"; return 1; }
}

# original_fine WHAT SUFFIX: the original scenario process is the same
# process, running, not stopped, and (with its listed children) looks
# from outside as it did before the dump (snapshots state.SUFFIX*).
original_fine() {
	{ [ "$(proc_start "$SCN_PID")" = "$SCN_START" ] && alive "$SCN_PID"; } ||
		{ bad "$1: original process $SCN_PID is gone"; return 1; }
	stopped "$SCN_PID" &&
		{ bad "$1: original left stopped or traced (state $(proc_state "$SCN_PID"))"; return 1; }
	compare_scenario before "$2" "$1"
}

# leave_running [N]: dump -R (see dump_leave_running); kill the original,
# then restore the last copy.
leave_running() {
	local IMG count
	count=$(last_count "$TDIR/log")
	dump_leave_running "${1:-1}" || return 1
	kill_tree "$IMG" || return 1
	post_dump "$IMG" || return 1
	restore_detached "$IMG" "$SCN_PID" || return 1
	after_restore || return 1
	post_restore "$count"
}

# ---------------------------------------------------------------- --pidns

CPY_PID="" CPY_INIT=""		# --pidns: the copy's root and init (host PIDs)

# ns_inits: the processes named stasis-init that are PID 1 of their namespace.
ns_inits() {
	local f c
	for f in /proc/[0-9]*/comm; do
		{ read -r c <"$f"; } 2>/dev/null || continue
		[ "$c" = stasis-init ] || continue
		f=${f%/comm}
		[ "$(ns_pid "${f#/proc/}")" = 1 ] && echo "${f#/proc/}"
	done
	return 0
}

# ns_find PID NSPID: the host PID of the descendant of PID whose PID in its
# own namespace is NSPID.
ns_find() {
	local d
	for d in $(descendants "$1"); do
		[ "$(ns_pid "$d")" = "$2" ] && { echo "$d"; return 0; }
	done
	return 1
}

# restore_pidns IMG: restore -d --pidns next to the running original: the
# pidfile names the copy's root as the host sees it (CPY_PID, not the
# original PID), which has the original PID in its namespace, and whose
# parent is the namespace's init (CPY_INIT, PID 1 there, named
# stasis-init).  The init is tracked: killing it ends the namespace.
restore_pidns() {
	local img=$1 rc got p old
	old=" $(ns_inits | tr '\n' ' ') "
	N_CMD=$((N_CMD + 1))
	CPY_PID="" CPY_INIT=""
	# shellcheck disable=SC2086
	stasis_cmd "restore$N_CMD" restore -D "$img" -d --pidns --pidfile "$TDIR/pidfile$N_CMD" \
		${RESTORE_OPTS:-} -v4 -o "$TDIR/restore$N_CMD.log"
	rc=$?
	got=$(cat "$TDIR/pidfile$N_CMD" 2>/dev/null)
	if [[ $got =~ ^[0-9]+$ ]] && [ "$got" != "$SCN_PID" ] && [ -e "/proc/$got" ]; then
		p=$(proc_field "$got" 4)
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = stasis-init ] && CPY_INIT=$p
	fi
	# a namespace whose pidfile is missing or wrong: its init is new
	for p in $CPY_INIT $(ns_inits); do
		[ "$p" = "$CPY_INIT" ] || [[ $old != *" $p "* ]] || continue
		is_tracked "$p" || track "$p"
		track_tree "$p"
	done
	rc_ok "restore --pidns" $rc "$TDIR/restore$N_CMD.err" || return 1
	[[ $got =~ ^[0-9]+$ ]] || { bad "pidfile holds '$got', expected a PID"; return 1; }
	[ "$got" != "$SCN_PID" ] ||
		{ bad "pidfile holds the original PID $SCN_PID: not the copy's PID as the host sees it"; return 1; }
	alive "$got" || { bad "restore --pidns succeeded but the copy $got is not running (state $(proc_state "$got"))"; return 1; }
	CPY_PID=$got
	p=$(ns_pid "$got")
	[ "$p" = "$SCN_PID" ] ||
		{ bad "the copy $got has PID '$p' in its namespace, expected the original $SCN_PID ($(grep NSpid "/proc/$got/status"))"; return 1; }
	[ -n "$CPY_INIT" ] ||
		{ bad "the copy's parent $(proc_field "$got" 4) is not stasis-init ($(cat "/proc/$(proc_field "$got" 4)/comm" 2>/dev/null))"; return 1; }
	[ "$(ns_pid "$CPY_INIT")" = 1 ] || { bad "stasis-init $CPY_INIT is not PID 1 of the namespace"; return 1; }
	for p in $CPY_INIT $(descendants "$CPY_INIT"); do
		stopped "$p" && { bad "process $p of the copy (PID $(ns_pid "$p") inside) is stopped or traced (state $(proc_state "$p"))"; return 1; }
	done
	return 0
}

# compare_copy FROM TO WHAT: compare the copy (and its processes at the
# PIDs listed in WORKDIR/pids, found by their PID in the namespace) with
# the original's snapshots FROM.  The snapshots hold no PID: the same
# layout and state are expected.
compare_copy() {
	local f p h
	snapshot "$CPY_PID" "$TDIR/state.$2" || return 1
	compare_state "$TDIR/state.$1" "$TDIR/state.$2" "$3" "$DETAILS" || return 1
	for f in "$TDIR/state.$1".*; do
		[ -e "$f" ] || continue
		p=${f##*.}
		h=$(ns_find "$CPY_INIT" "$p") || { bad "$3: the copy has no process with PID $p (listed in pids) in its namespace"; return 1; }
		snapshot_like "$f" "$h" "$TDIR/state.$2.$p" || { REASON="$3 (PID $p inside): $REASON"; return 1; }
		compare_state "$f" "$TDIR/state.$2.$p" "$3 (PID $p inside, $h outside)" "$DETAILS" || return 1
	done
	return 0
}

# ctxt_switches PID: the context switches of PID's main thread so far.
ctxt_switches() {
	local a b
	a=$(status_field "$1" voluntary_ctxt_switches) || a=0
	b=$(status_field "$1" nonvoluntary_ctxt_switches) || b=0
	echo $((a + b))
}

# appended_on_check SCENARIO: the files of WORKDIR that the scenario's
# check appends to (and then expects to hold exactly what it wrote).
appended_on_check() {
	case $1 in
	files) echo append ;;
	esac
}

# pidns_cycle: dump -R, restore a copy into a new PID namespace while the
# original runs; the copy looks like the original did and is scheduled;
# check the copy (its namespace then ends), then the original, which must
# be unharmed.  The two share WORKDIR (result, log and the scenario's
# files): never both at once, and what the copy's check appended to a
# file is cut off again before the original's check.
pidns_cycle() {
	local IMG n0 n1 p ns f sizes=()
	dump_leave_running 1 || return 1
	post_dump "$IMG" || return 1
	restore_pidns "$IMG" || return 1
	sleep 0.2
	alive "$CPY_PID" || { bad "the copy $CPY_PID died (state $(proc_state "$CPY_PID"))"; return 1; }
	compare_copy before copy "the copy in the new PID namespace" || return 1
	n0=$(ctxt_switches "$CPY_PID")
	sleep 0.1
	n1=$(ctxt_switches "$CPY_PID")
	[ "$n1" -gt "$n0" ] || { bad "the copy $CPY_PID is not scheduled (no context switch in 0.1 s)"; return 1; }
	original_fine "original next to the copy" running2 || return 1
	ns=()
	for p in "$CPY_INIT" $(descendants "$CPY_INIT"); do
		ns+=("$p:$(proc_start "$p")/$(ns_pid "$p")")
	done
	for f in $(appended_on_check "$SCN_NAME"); do
		n0=$(stat -c %s "$TDIR/$f") || { bad "cannot stat $TDIR/$f"; return 1; }
		sizes+=("$f:$n0")
	done
	check_scenario "$CPY_PID" || { REASON="the copy: $REASON"; return 1; }
	# the root's exit ends the namespace: its init and every process in it
	for p in "${ns[@]}"; do
		wait_dead "${p%/*}" ||
			{ bad "process ${p%%:*} (PID ${p#*/} in the copy's namespace) still there ${WAIT_GONE}s after the copy's root exited"; return 1; }
	done
	rm -f "$TDIR/result" "$TDIR/result.tmp"
	for f in "${sizes[@]}"; do
		truncate -s "${f##*:}" "$TDIR/${f%:*}" || { bad "cannot truncate $TDIR/${f%:*}"; return 1; }
	done
	original_fine "original after the copy's check" running3 || return 1
}

# ---------------------------------------------------------------- tests

# test_cr SCENARIO MODE: checkpoint/restore a scenario (once, x3,
# leave-running, leave-running-xN or pidns), then let it check itself
# (in pidns mode: the copy first, then the original).
test_cr() {
	local name=$1 mode=$2 i
	need_stasis || return 1
	pre_start "$name"
	start_scenario "$name" || return 1
	snapshot_scenario before || return 1
	case $mode in
	once)
		cr_cycle 1 || return 1
		;;
	x3)
		for i in 1 2 3; do
			cr_cycle $i || { REASON="cycle $i: $REASON"; return 1; }
		done
		;;
	leave-running)
		leave_running || return 1
		;;
	leave-running-x*)
		leave_running "${mode#leave-running-x}" || return 1
		;;
	pidns)
		pidns_cycle || return 1
		;;
	esac
	check_scenario
}

# test_vma_mempolicy_plain MODE: vma_mempolicy without a process policy, so
# the mappings' own policies are read from /proc/PID/numa_maps.
test_vma_mempolicy_plain() {
	local rc
	export VMA_MEMPOLICY_PLAIN=1
	test_cr vma_mempolicy "$1"
	rc=$?
	unset VMA_MEMPOLICY_PLAIN
	return $rc
}

# test_piperead: stdin is a pipe from the runner; the restore runs in the
# foreground with a new pipe as its stdin, which the restored process gets
# as its fd 0; restore exits with the scenario's status.
test_piperead() {
	local img=$TDIR/img1 rpid rc limit
	need_stasis || return 1
	start_scenario piperead pipe || return 1
	(echo before >&"$PIPE_FD") 2>/dev/null
	wait_log "$TDIR/log" '^got line 1: before$' 10 || { bad "the scenario did not read 'before'"; return 1; }
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	dump "$SCN_PID" "$img" || return 1
	wait_gone "$SCN_PID" || { bad "process $SCN_PID still there after dump"; return 1; }
	close_pipe

	N_CMD=$((N_CMD + 1))
	exec {PIPE_FD}> >(close_extra_fds
		exec timeout -k 5 "$T_STASIS" "$STASIS" restore -D "$img" \
			-v4 -o "$TDIR/restore$N_CMD.log" >"$TDIR/restore$N_CMD.out" \
			2>"$TDIR/restore$N_CMD.err")
	rpid=$!
	track "$rpid"
	limit=$(($(now_ms) + WAIT_READY * 1000))
	until alive "$SCN_PID"; do
		if ! alive "$rpid"; then
			wait "$rpid"
			rc_ok "restore" $? "$TDIR/restore$N_CMD.err"
			adopt "$SCN_PID"
			bad "restore exited before PID $SCN_PID ran: $REASON"
			return 1
		fi
		[ "$(now_ms)" -lt $limit ] || { bad "PID $SCN_PID not restored within ${WAIT_READY}s"; return 1; }
		sleep 0.05
	done
	adopt "$SCN_PID"
	(echo after >&"$PIPE_FD") 2>/dev/null
	wait_log "$TDIR/log" '^got line 2: after$' 10 ||
		{ bad "the restored process did not read 'after' from the new stdin"; return 1; }
	after_restore || return 1
	check_scenario || return 1
	close_pipe
	wait_gone "$rpid" || { bad "restore did not exit after the restored process did"; return 1; }
	wait "$rpid"
	rc=$?
	[ $rc = 0 ] || { bad "restore exited with $rc, expected the scenario's status 0"; return 1; }
	return 0
}

# unused_pid: a PID no process has right now.
unused_pid() {
	local pid max
	max=$(cat /proc/sys/kernel/pid_max)
	for ((pid = max - 1; pid > 300; pid--)); do
		[ -e "/proc/$pid" ] || { echo $pid; return 0; }
	done
	echo 99999999
}

# no_image_left IMG: a failed dump must not leave an image behind.
no_image_left() {
	[ ! -e "$1/$IMG_NAME" ] || bad "the failed dump left $1/$IMG_NAME behind"
}

# still_fine: after a failed operation the scenario process is the same
# process, running, not stopped, unchanged from outside and still working.
still_fine() {
	local count
	sleep 0.2
	{ [ "$(proc_start "$SCN_PID")" = "$SCN_START" ] && alive "$SCN_PID"; } ||
		{ bad "process $SCN_PID did not survive"; return 1; }
	stopped "$SCN_PID" && { bad "process $SCN_PID left stopped or traced (state $(proc_state "$SCN_PID"))"; return 1; }
	snapshot "$SCN_PID" "$TDIR/state.after" || return 1
	compare_state "$TDIR/state.before" "$TDIR/state.after" "after the failure" "$DETAILS" || return 1
	count=$(last_count "$TDIR/log")
	wait_progress "$TDIR/log" "$count" 5 || { bad "process $SCN_PID stopped counting"; return 1; }
	check_scenario
}

test_dump_unknown_pid() {
	local pid
	need_stasis || return 1
	pid=$(unused_pid)
	stasis_cmd err dump -t "$pid" -D "$TDIR"
	expect_error "dump of unused PID $pid" $? "$TDIR/err.err" || return 1
	no_image_left "$TDIR"
}

# test_usage: malformed command lines fail cleanly; an option of another
# command is refused with one line naming it (a PID that cannot exist, in
# case a dump went ahead).
test_usage() {
	local i=0 args
	need_stasis || return 1
	mkdir -p "$TDIR/img"
	for args in "" "frobnicate" "dump" "dump -D $TDIR/img" "dump -t notapid -D $TDIR/img" \
		"dump -t -5 -D $TDIR/img" "restore" "restore -D" "show"; do
		i=$((i + 1))
		# shellcheck disable=SC2086
		stasis_cmd "usage$i" $args
		expect_error "'stasis${args:+ $args}'" $? "$TDIR/usage$i.err" || return 1
	done
	# an option of another command: one line naming the option and the command
	for args in "restore -t 1 -R -D $TDIR/img|restore does not take -t (--tree)" \
		"check -D $TDIR/img|check does not take -D (--images-dir)" \
		"dump -t 2147483647 -D $TDIR/img --pidns|dump does not take --pidns" \
		"dump -t 2147483647 -D $TDIR/img extra|unexpected argument"; do
		i=$((i + 1))
		# shellcheck disable=SC2086
		stasis_cmd "usage$i" ${args%%|*}
		expect_error "'stasis ${args%%|*}'" $? "$TDIR/usage$i.err" || return 1
		[[ $ERR_LINE == *"${args#*|}"* ]] ||
			{ bad "'stasis ${args%%|*}' says '$ERR_LINE', not '${args#*|}'"; return 1; }
		[ "$(wc -l <"$TDIR/usage$i.err")" = 1 ] ||
			{ bad "'stasis ${args%%|*}' printed more than one line"; return 1; }
	done
	no_image_left "$TDIR/img"
}

test_restore_no_image() {
	need_stasis || return 1
	mkdir -p "$TDIR/empty"
	stasis_cmd err restore -D "$TDIR/empty" -d
	expect_error "restore from a directory without an image" $? "$TDIR/err.err" || return 1
	stasis_cmd err2 restore -D "$TDIR/does-not-exist" -d
	expect_error "restore from a missing directory" $? "$TDIR/err2.err"
}

# golden_image: dump a counter once per run into $ROOT/golden/img (the
# bad-input tests damage copies of it).  Sets GOLDEN_IMG and GOLDEN_PID.
golden_image() {
	local save=$TDIR
	[ -n "$GOLDEN_IMG" ] && [ -s "$GOLDEN_IMG/$IMG_NAME" ] && return 0
	need_stasis || return 1
	TDIR=$ROOT/golden
	rm -rf "$TDIR"
	mkdir -p "$TDIR"
	if start_scenario counter && dump "$SCN_PID" "$TDIR/img" &&
		wait_gone "$SCN_PID"; then
		GOLDEN_IMG=$TDIR/img GOLDEN_PID=$SCN_PID
		TDIR=$save
		return 0
	fi
	REASON="setup (dumping a counter to get an image): ${REASON:-process did not die}"
	cp "$TDIR"/*.err "$save"/ 2>/dev/null
	TDIR=$save
	return 1
}

# test_restore_broken KIND: restore of a damaged copy of the golden image
# fails cleanly, and nothing is left running at the image's PID.
test_restore_broken() {
	local kind=$1 img=$TDIR/img f size b
	golden_image || return 1
	mkdir -p "$img"
	f=$img/$IMG_NAME
	cp "$GOLDEN_IMG/$IMG_NAME" "$f"
	size=$(stat -c %s "$f")
	case $kind in
	truncated)
		truncate -s $((size / 2)) "$f"
		;;
	corrupt)
		[ "$size" -gt 100 ] || { bad "image too small ($size bytes)"; return 1; }
		b=$(od -An -tu1 -j100 -N1 "$f" | tr -d ' ')
		printf '%b' "\\$(printf %03o $((b ^ 0xff)))" | dd of="$f" bs=1 seek=100 conv=notrunc status=none
		cmp -s "$f" "$GOLDEN_IMG/$IMG_NAME" && { bad "could not flip byte 100"; return 1; }
		;;
	foreign)
		head -c 65536 /dev/urandom >"$f"
		;;
	empty)
		: >"$f"
		;;
	esac
	cp "$f" "$TDIR/copy"
	SCN_START=""
	stasis_cmd err restore -D "$img" -d
	expect_error "restore of the $kind image" $? "$TDIR/err.err" || { adopt "$GOLDEN_PID"; return 1; }
	sleep 0.3
	if [ -e "/proc/$GOLDEN_PID" ]; then
		adopt "$GOLDEN_PID"
		bad "a process with PID $GOLDEN_PID (state $(proc_state "$GOLDEN_PID")) exists after the failed restore"
		return 1
	fi
	cmp -s "$f" "$TDIR/copy" || { bad "the failed restore modified the image"; return 1; }
	return 0
}

# procs_in DIR...: the processes whose working directory is one of DIR.
procs_in() {
	local d expr=()
	for d in "$@"; do
		expr+=(${expr[0]+-o} -lname "$d")
	done
	find /proc -mindepth 2 -maxdepth 2 -name cwd \( "${expr[@]}" \) -printf '%h ' 2>/dev/null |
		sed 's|/proc/||g'
	return 0
}

# flip_bytes FILE N: change N random bytes of FILE (each to another
# value); prints the offsets.
flip_bytes() {
	local f=$1 size off b k
	size=$(stat -c %s "$f")
	for k in $(seq "$2"); do
		off=$(((RANDOM * 32768 + RANDOM) % size))
		b=$(od -An -tu1 -j"$off" -N1 "$f" | tr -d ' ')
		printf '%b' "\\$(printf %03o $((b ^ (RANDOM % 255 + 1))))" |
			dd of="$f" bs=1 seek="$off" conv=notrunc status=none
		echo -n "$off "
	done
}

# test_restore_flipped N: N copies of the golden image, each with a few
# random bytes changed (most land in page data), are each refused by
# `restore -d`, with and without --pidns: exit non-zero with one line, no
# hang, and nothing of the tree left (its processes would have the
# golden counter's working directory, or, for a --pidns init, ours).
test_restore_flipped() {
	local n=$1 img=$TDIR/img cwd=$TDIR/cwd f i offs mode rc left k
	golden_image || return 1
	mkdir -p "$img" "$cwd"
	f=$img/$IMG_NAME
	for i in $(seq "$n"); do
		cp "$GOLDEN_IMG/$IMG_NAME" "$f"
		offs=$(flip_bytes "$f" 3)
		for mode in -d --pidns; do
			# shellcheck disable=SC2086
			run_timed 20 "$TDIR/err.out" "$TDIR/err.err" env -C "$cwd" "$STASIS" \
				restore -D "$img" -d ${mode#-d}
			rc=$?
			[ $rc = 124 ] && { bad "restore $mode hangs (bytes changed at $offs)"; return 1; }
			expect_error "restore $mode (bytes changed at $offs)" $rc "$TDIR/err.err" || return 1
			[ "$(wc -l <"$TDIR/err.err")" = 1 ] ||
				{ bad "restore $mode (bytes changed at $offs) printed: $(tr '\n' '|' <"$TDIR/err.err")"; return 1; }
			for k in $(seq 40); do
				left=$(procs_in "$cwd" "$(dirname "$GOLDEN_IMG")")
				[ -z "$left" ] && break
				sleep 0.05
			done
			[ -z "$left" ] ||
				{ bad "restore $mode (bytes changed at $offs) left processes: $left"; return 1; }
		done
	done
	return 0
}

# test_dump_unsupported: a process with a userfaultfd cannot be dumped: a
# clear error, and the process keeps running unharmed.
test_dump_unsupported() {
	need_stasis || return 1
	start_scenario unsupported || return 1
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR"
	expect_error "dump of a process with a userfaultfd" $? "$TDIR/err.err" || return 1
	grep -qiE 'sock|support' "$TDIR/err.err" ||
		{ bad "the error does not say what is unsupported: $ERR_LINE"; return 1; }
	no_image_left "$TDIR" || return 1
	still_fine
}

# test_dump_no_permission: an unprivileged user cannot dump a root process.
test_dump_no_permission() {
	local u=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	need_stasis || return 1
	command -v setpriv >/dev/null || { REASON="setpriv not installed"; return 77; }
	"${u[@]}" test -x "$STASIS" ||
		{ REASON="user 65534 cannot execute $STASIS"; return 77; }
	start_scenario counter || return 1
	# let the unprivileged dump reach the process (not fail on the directory)
	chmod 0711 "$ROOT" "$TDIR"
	mkdir -p "$TDIR/img"
	chmod 0777 "$TDIR/img"
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	run_timed "$T_STASIS" "$TDIR/err.out" "$TDIR/err.err" \
		"${u[@]}" "$STASIS" dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "unprivileged dump of a root process" $? "$TDIR/err.err" || return 1
	no_image_left "$TDIR/img" || return 1
	still_fine
}

# test_restore_pid_taken: restore while the original still runs fails,
# naming the PID, and leaves the original alone.
test_restore_pid_taken() {
	need_stasis || return 1
	start_scenario counter || return 1
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	dump "$SCN_PID" "$TDIR/img" -R || return 1
	stasis_cmd err restore -D "$TDIR/img" -d
	expect_error "restore while PID $SCN_PID is taken" $? "$TDIR/err.err" || return 1
	grep -qw "$SCN_PID" "$TDIR/err.err" ||
		{ bad "the error does not name PID $SCN_PID: $ERR_LINE"; return 1; }
	still_fine
}

test_cli_check() {
	need_stasis || return 1
	stasis_cmd check check
	rc_ok "stasis check" $? "$TDIR/check.err"
}

# test_cli_show: `show` describes an image (naming its PID), --json is
# valid JSON, and a foreign file is refused.
test_cli_show() {
	golden_image || return 1
	stasis_cmd show show -D "$GOLDEN_IMG"
	rc_ok "show" $? "$TDIR/show.err" || return 1
	grep -qw "$GOLDEN_PID" "$TDIR/show.out" || { bad "show does not mention PID $GOLDEN_PID"; return 1; }
	stasis_cmd json show -D "$GOLDEN_IMG" --json
	rc_ok "show --json" $? "$TDIR/json.err" || return 1
	if command -v jq >/dev/null; then
		jq . "$TDIR/json.out" >/dev/null 2>&1 || { bad "show --json is not valid JSON"; return 1; }
	elif command -v python3 >/dev/null; then
		python3 -m json.tool "$TDIR/json.out" >/dev/null 2>&1 ||
			{ bad "show --json is not valid JSON"; return 1; }
	fi
	grep -qw "$GOLDEN_PID" "$TDIR/json.out" || { bad "show --json does not mention PID $GOLDEN_PID"; return 1; }
	mkdir -p "$TDIR/foreign"
	head -c 4096 /dev/urandom >"$TDIR/foreign/$IMG_NAME"
	stasis_cmd err show -D "$TDIR/foreign"
	expect_error "show of a foreign file" $? "$TDIR/err.err"
}

# ---------------------------------------------------------------- programs

# start_prog DIR NAME COMMAND...: start a real program in DIR, in its own
# session, stdin /dev/null, output appended to $TDIR/NAME.out; it becomes
# the "scenario" of the test (SCN_PID, SCN_START) for dump and restore.
start_prog() {
	local dir=$1 name=$2 pid
	shift 2
	SCN_NAME=$name SCN_TOKEN=""
	(close_extra_fds
		cd "$dir" && exec setsid "$@") </dev/null >>"$TDIR/$name.out" 2>&1 &
	pid=$!
	disown "$pid"
	track "$pid"
	SCN_PID=$pid
	SCN_START=$(proc_start "$pid") || { bad "$name exited at once"; return 1; }
	return 0
}

MAKE_FILES=30		# C files of the generated project
MAKE_STMTS=40		# statements per function (compile work)

# make_project DIR: a small C project: MAKE_FILES functions with some
# compile work each, a main that combines them, a Makefile whose recipes
# go through sh.
make_project() {
	local dir=$1 i k
	mkdir -p "$dir"
	for ((i = 0; i < MAKE_FILES; i++)); do
		{
			echo "unsigned long f$i(unsigned long x)"
			echo "{"
			echo "	unsigned long a = x + $i, b = x ^ $i;"
			for ((k = 1; k <= MAKE_STMTS; k++)); do
				echo "	a = a * 6364136223846793005UL + $((k * 7 + i)); b ^= a >> $((k % 29 + 1)); if (b & 1) a += x * $k; else b -= a;"
			done
			echo "	return a ^ b;"
			echo "}"
		} >"$dir/f$i.c"
	done
	{
		echo "#include <stdio.h>"
		for ((i = 0; i < MAKE_FILES; i++)); do
			echo "unsigned long f$i(unsigned long);"
		done
		echo "int main(void)"
		echo "{"
		echo "	unsigned long s = 1;"
		for ((i = 0; i < MAKE_FILES; i++)); do
			echo "	s = s * 31 + f$i(s);"
		done
		printf '%s\n' '	printf("%lx\n", s);'
		echo "	return 0;"
		echo "}"
	} >"$dir/main.c"
	# shellcheck disable=SC2016
	printf '%s\n' 'CFLAGS = -O2' 'OBJS = $(patsubst %.c,%.o,$(sort $(wildcard *.c)))' '' \
		'prog: $(OBJS)' '	@echo LD $@; $(CC) -o $@ $(OBJS)' '' \
		'%.o: %.c' '	@echo CC $<; $(CC) $(CFLAGS) -c -o $@ $<' >"$dir/Makefile"
}

MAKE_REF=""	# the uninterrupted build, made once per run

# make_ref: build the project once, without interruption, in $ROOT/make-ref.
make_ref() {
	local save=$TDIR
	[ -n "$MAKE_REF" ] && [ -x "$MAKE_REF/prog" ] && return 0
	TDIR=$ROOT/make-ref
	rm -rf "$TDIR"
	make_project "$TDIR"
	if ! run_timed 300 "$TDIR/make.out" "$TDIR/make.err" make -C "$TDIR" -j2 ||
		[ ! -x "$TDIR/prog" ]; then
		REASON="the reference build failed: $(tail -n 1 "$TDIR/make.err")"
		TDIR=$save
		return 1
	fi
	MAKE_REF=$TDIR
	TDIR=$save
	return 0
}

# objects DIR: the names of the object files in DIR, one a line, sorted.
objects() {
	local f
	for f in "$1"/*.o; do
		[ -e "$f" ] && echo "${f##*/}"
	done
	return 0
}

# compare_build DIR: the build in DIR produced the same objects (names and
# bytes) as the reference build, and the same program output.
compare_build() {
	local dir=$1 a b f out ref
	a=$(objects "$dir" | tr '\n' ' ')
	b=$(objects "$MAKE_REF" | tr '\n' ' ')
	[ "$a" = "$b" ] || { bad "objects differ from the uninterrupted build: [$a] vs [$b]"; return 1; }
	for f in "$MAKE_REF"/*.o; do
		cmp -s "$f" "$dir/${f##*/}" ||
			{ bad "${f##*/} differs from the one of the uninterrupted build"; return 1; }
	done
	[ -x "$dir/prog" ] || { bad "no program was linked"; return 1; }
	out=$("$dir/prog" 2>&1)
	ref=$("$MAKE_REF/prog")
	[ "$out" = "$ref" ] || { bad "the program prints '$out', the uninterrupted build's prints '$ref'"; return 1; }
	return 0
}

# build_done DIR: wait for the build's status file; it must say 0.
build_done() {
	local dir=$1 st
	wait_file "$dir/status" 120 "$SCN_PID"
	case $? in
	0) ;;
	2) [ -e "$dir/status" ] || { bad "the build's shell died without a status (make.log: $(tail -n 1 "$dir/make.log" 2>/dev/null))"; return 1; } ;;
	*) bad "the build did not finish within 120 s"; return 1 ;;
	esac
	wait_gone "$SCN_PID" || { bad "the build's shell did not exit after the build"; return 1; }
	st=$(cat "$dir/status")
	[ "$st" = 0 ] || { bad "make exited with $st: $(grep -v '^CC\|^LD' "$dir/make.log" | head -n 2 | tr '\n' ' ')"; return 1; }
	return 0
}

# test_make JOBS: `make -jJOBS` of a generated C project (sh -> make -> sh
# -> gcc -> cc1/as), dumped in the middle of the build and restored; the
# build finishes with the same objects and program as an uninterrupted one.
test_make() {
	local jobs=$1 dir=$TDIR/build img=$TDIR/img1 limit n
	need_stasis || return 1
	{ command -v make && command -v cc; } >/dev/null || { REASON="make or cc not installed"; return 77; }
	make_ref || return 1
	make_project "$dir"
	# shellcheck disable=SC2016
	start_prog "$dir" make sh -c 'make -j"$1" >make.log 2>&1; echo $? >status' sh "$jobs" || return 1
	# dump in the middle of the build, once a few objects exist
	limit=$(($(now_ms) + 60000))
	until n=$(objects "$dir" | wc -l) && [ "$n" -ge 4 ]; do
		[ -e "$dir/status" ] && { bad "the build finished before 4 objects were seen"; return 1; }
		[ "$(now_ms)" -lt $limit ] || { bad "no 4 objects within 60 s"; return 1; }
		sleep 0.02
	done
	# (with -j2, make's jobserver pipe has both ends in the tree, and the
	# jobs share make's stdin or its "bad stdin" pipe)
	dump "$SCN_PID" "$img" || return 1
	[ -e "$dir/status" ] && { bad "the build had finished when it was dumped"; return 1; }
	n=$(image_pids "$img" | wc -l)
	[ "$n" -ge 3 ] || { bad "the image holds $n process(es): not in the middle of a build"; return 1; }
	echo "dumped $n processes with $(objects "$dir" | wc -l) of $((MAKE_FILES + 1)) objects built" >>"$DETAILS"
	tree_gone "$img" || return 1
	restore_detached "$img" "$SCN_PID" || return 1
	build_done "$dir" || { REASON="restored build: $REASON"; return 1; }
	compare_build "$dir"
}

# test_python_threads: python3 with 4 threads counting (each also keeps
# the sum 1+2+...+count); dumped, restored, then told to finish through a
# file: the counters went on after the restore and the sums still match.
test_python_threads() {
	local py img=$TDIR/img1 before after final limit i ok pid tasks
	need_stasis || return 1
	py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
	{ [ -n "$py" ] && [ -x "$py" ]; } || { REASON="python3 not installed"; return 77; }
	cat >"$TDIR/threads.py" <<'PY'
import os, threading, time

N = 4
counts = [0] * N
sums = [0] * N
stop = threading.Event()


def work(i):
    c = s = 0
    while not stop.is_set():
        c += 1
        s += c
        counts[i], sums[i] = c, s
        time.sleep(0.004 * (i + 1))


def put(name, text):
    with open(name + ".tmp", "w") as f:
        f.write(text)
    os.rename(name + ".tmp", name)


threads = [threading.Thread(target=work, args=(i,), name="worker%d" % i) for i in range(N)]
for t in threads:
    t.start()
put("ready", "%d\n" % os.getpid())
while not os.path.exists("finish"):
    put("progress", " ".join(map(str, counts)) + "\n")
    time.sleep(0.05)
stop.set()
for t in threads:
    t.join()
ok = all(sums[i] == counts[i] * (counts[i] + 1) // 2 for i in range(N))
put("final", "%s %d %s\n" % (" ".join(map(str, counts)), sum(counts), "ok" if ok else "BAD"))
PY
	start_prog "$TDIR" python "$py" threads.py || return 1
	wait_file "$TDIR/ready" "$WAIT_READY" "$SCN_PID" || { bad "python not ready within ${WAIT_READY}s"; return 1; }
	read -r pid <"$TDIR/ready"
	[ "$pid" = "$SCN_PID" ] || { bad "python says it is $pid, expected $SCN_PID"; return 1; }
	tasks=("/proc/$SCN_PID/task"/*)
	[ ${#tasks[@]} -ge 5 ] || { bad "python has ${#tasks[@]} threads, expected 5"; return 1; }
	sleep 0.3
	dump "$SCN_PID" "$img" || return 1
	read -r -a before <"$TDIR/progress"
	wait_gone "$SCN_PID" || { bad "python still there after the dump"; return 1; }
	restore_detached "$img" "$SCN_PID" || return 1
	# every counter goes on from where it was
	limit=$(($(now_ms) + 5000))
	while :; do
		sleep 0.1
		{ read -r -a after <"$TDIR/progress"; } 2>/dev/null
		ok=1
		for i in 0 1 2 3; do
			[ "${after[$i]:-0}" -gt "${before[$i]:-0}" ] || ok=0
		done
		[ $ok = 1 ] && break
		alive "$SCN_PID" || { bad "restored python died (state $(proc_state "$SCN_PID"))"; return 1; }
		[ "$(now_ms)" -lt $limit ] ||
			{ bad "counters stuck after restore: ${after[*]} (before the dump: ${before[*]})"; return 1; }
	done
	touch "$TDIR/finish"
	wait_file "$TDIR/final" 10 "$SCN_PID" || { bad "no final file from python within 10 s"; return 1; }
	wait_gone "$SCN_PID" || { bad "python did not exit after finishing"; return 1; }
	read -r -a final <"$TDIR/final"
	[ "${final[5]}" = ok ] || { bad "python: the sums do not match the counters: ${final[*]}"; return 1; }
	for i in 0 1 2 3; do
		[ "${final[$i]}" -ge "${after[$i]}" ] ||
			{ bad "final counter $i is ${final[$i]}, below ${after[$i]} seen after restore"; return 1; }
	done
	[ "${final[4]}" = $((final[0] + final[1] + final[2] + final[3])) ] ||
		{ bad "final sum ${final[4]} is not the sum of ${final[*]:0:4}"; return 1; }
	return 0
}

# test_unit NAME: the unit test program build/unit/NAME; 0 = pass, 77 = skip.
test_unit() {
	local rc
	run_timed 120 "$TDIR/out" "$TDIR/out.err" env -C "$TDIR" "$BUILD/unit/$1"
	rc=$?
	cat "$TDIR/out.err" >>"$TDIR/out"
	case $rc in
	0) return 0 ;;
	77) REASON=$(tail -n 1 "$TDIR/out"); return 77 ;;
	124 | 137) bad "timed out after 120s"; return 1 ;;
	*) bad "exit $rc: $(tail -n 1 "$TDIR/out")"; return 1 ;;
	esac
}

# test_fuzz_replay: the fuzz corpus and every crash the fuzzer found, once
# each through the gcc ASan+UBSan build of the image fuzz target (made by
# `make fuzz-replay`, which `make check` runs too).
test_fuzz_replay() {
	local rc
	[ -x "$BUILD/fuzz/image_replay" ] ||
		{ REASON="build/fuzz/image_replay not built (make fuzz-replay)"; return 77; }
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		run_timed 60 "$TDIR/out" "$TDIR/out.err" "$BUILD/fuzz/image_replay" \
		"$REPO/tests/fuzz/corpus" "$REPO/tests/fuzz/crashes"
	rc=$?
	[ $rc = 0 ] && return 0
	bad "exit $rc: $(grep -m1 -E 'ERROR|SUMMARY|hangs' "$TDIR/out.err" || tail -n 1 "$TDIR/out.err")"
	return 1
}

# ---------------------------------------------------------------- main

register_all() {
	local f s m
	for f in "$BUILD"/unit/*; do
		[ -f "$f" ] && [ -x "$f" ] && register "unit/${f##*/}" test_unit "${f##*/}"
	done
	register unit/fuzz-replay test_fuzz_replay
	register cli/check test_cli_check
	for s in counter files signals; do
		for m in once x3 leave-running pidns; do
			register "$s/$m" test_cr $s $m
		done
	done
	for m in once x3 leave-running pidns; do
		register "procattr/$m" test_cr procattr $m
		register "ionice/$m" test_cr ionice $m
		register "sched_dl/$m" test_cr sched_dl $m
		register "devzero/$m" test_cr devzero $m
		register "mempolicy/$m" test_cr mempolicy $m
		register "vma_mempolicy/$m" test_cr vma_mempolicy $m
		register "vma_mempolicy/plain-$m" test_vma_mempolicy_plain $m
	done
	register sleeper/once test_cr sleeper once
	register sleeper/x3 test_cr sleeper x3
	register bigmem/once test_cr bigmem once
	register sparse/once test_cr sparse once
	register mapshared/once test_cr mapshared once
	register mapshared/x3 test_cr mapshared x3
	register guard/once test_cr guard once
	register evfds/once test_cr evfds once
	register evfds/x3 test_cr evfds x3
	register epollset/once test_cr epollset once
	register shmshare/once test_cr shmshare once
	register shmshare/x3 test_cr shmshare x3
	register shm_shapes/once test_cr shm_shapes once
	register shm_shapes/leave-running test_cr shm_shapes leave-running
	register epollset/leave-running test_cr epollset leave-running
	register piperead/once test_piperead
	# trees, threads, credentials
	for s in tree3 threads50; do
		for m in once x3 leave-running pidns; do
			register "$s/$m" test_cr $s $m
		done
	done
	for m in once x3 leave-running pidns; do
		register "orphan-subreaper/$m" test_cr subreaper $m
	done
	register creds/once test_cr creds once
	register creds/leave-running test_cr creds leave-running
	register forker/x3 test_cr forker x3
	register forker/leave-running-x20 test_cr forker leave-running-x20
	register pgrpdead/once test_cr pgrpdead once
	register pgrpdead/leave-running test_cr pgrpdead leave-running
	register sharedfd/once test_cr sharedfd once
	# real programs
	register prog/make-j1 test_make 1
	register prog/make-j2 test_make 2
	register prog/python-threads test_python_threads
	register bad/usage test_usage
	register bad/dump-unknown-pid test_dump_unknown_pid
	register bad/dump-unsupported test_dump_unsupported
	register bad/dump-no-permission test_dump_no_permission
	register bad/restore-no-image test_restore_no_image
	register bad/restore-truncated test_restore_broken truncated
	register bad/restore-corrupt test_restore_broken corrupt
	register bad/restore-foreign test_restore_broken foreign
	register bad/restore-empty test_restore_broken empty
	register bad/restore-flipped test_restore_flipped 20
	register bad/restore-pid-taken test_restore_pid_taken
	register cli/show test_cli_show
	# one file per area: tests/suites/NAME.sh defines its test functions
	# and registers them with the helpers above
	for f in "$REPO"/tests/suites/*.sh; do
		# shellcheck disable=SC1090
		[ -f "$f" ] && . "$f"
	done
}

# needs_root NAME: the test checkpoints or restores processes (every test
# but the unit tests), which needs root.
needs_root() {
	[[ $1 != unit/* ]]
}

main() {
	local i not_run=0
	register_all
	trap on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# the watchdog of a test that hangs (start_watchdog): leave the
	# innermost function of the test, never run_test itself
	trap '[ $IN_TEST = 1 ] && [ "${FUNCNAME[0]:-}" != run_test ] && return 1' USR1

	ROOT=$(mktemp -d "${TMPDIR:-/tmp}/stasis-test.XXXXXX") || { echo "cannot create a temp dir"; exit 1; }
	for i in "${!T_NAMES[@]}"; do
		selected "${T_NAMES[$i]}" || continue
		if [ "$(id -u)" != 0 ] && needs_root "${T_NAMES[$i]}"; then
			not_run=$((not_run + 1))
			continue
		fi
		# shellcheck disable=SC2086
		run_test "${T_NAMES[$i]}" ${T_CMDS[$i]}
	done
	if [ $not_run -gt 0 ]; then
		echo "SKIP $not_run checkpoint/restore test$([ $not_run = 1 ] || echo s):" \
			"they need root and were not run"
		N_SKIP=$((N_SKIP + not_run))
	fi
	summary
	[ $N_FAIL -eq 0 ]
}

main
