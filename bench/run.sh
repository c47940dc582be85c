#!/usr/bin/env bash
# bench/run.sh - the stasis benchmarks (`make bench` builds, then runs this).
#
#   bash bench/run.sh [quick]     quick: 1 repetition (3 for the small process)
#   bash bench/run.sh fds         only the many-fds figure (TREE_REPS runs)
#   bash bench/run.sh tree        only the process tree / threads figures
#   bash bench/run.sh tasks       sleep, tree and threads (issue 14's task
#                                 counts); bench/ab.sh runs it for an A/B
#   bash bench/run.sh big         the memory figures with an 8 GiB target
#                                 (`make bench-8g`; needs ~17 GiB free)
#
# Environment: BUILD (default build), CC (default gcc), REPS, SMALL_REPS,
# TREE_REPS (override the repetition counts), PREWARM=0 (do not prewarm
# memory before the timed steps; see bench/README.md).
#
# Measures, with images on tmpfs (/dev/shm):
#   - the machine's limit: dd of 1 GiB from /dev/zero into /dev/shm;
#   - dump and restore of a process with 1 GiB of touched anonymous memory
#     (bench/memhog.c), as MB/s and as a percentage of that limit (target 80%);
#   - dump and restore of `sleep` (target: under 15 ms each);
#   - stasis's own peak RSS (ru_maxrss, via bench/maxrss.c) for a 64 MiB and a
#     1 GiB target (target: the same for both);
#   - freeze+dump and restore of a tree of 100 processes (bench/forktree.c)
#     and of one process with 500 threads (bench/threads.c), next to a
#     one-process baseline (forktree 1) in the same run: the cost of each
#     extra process or thread (target: under 1 ms each, dump and restore);
#   - dump and restore of two processes holding 10,000 fds of mixed kinds
#     between them (bench/fdzoo.c), with the cost per fd (target: < 1 s each).
# Every figure is the median of the repetitions (the VM is noisy).  Prints a
# table and writes it to BUILD/bench/results.txt.  Missing a target is only
# reported (MISS), not an error; the exit status is 1 only when a step
# failed (stasis error, process not restored, ...).
#
# Only processes this script starts (or restores) are ever killed, each
# tracked by PID and start time; on exit every one of them is killed and
# waited for, and the images and scratch files are removed.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${BUILD:-}" ]; then
	BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || BUILD=$PWD/$BUILD
else
	BUILD=$REPO/build
fi
STASIS=$BUILD/stasis
BB=$BUILD/bench			# helper binaries and results.txt
CC=${CC:-gcc}
cd "$REPO" || exit 1

MODE=full
case "${1:-}" in
"") ;;
quick) MODE=quick ;;
fds | tree | tasks | big) MODE=$1 ;;
*)
	echo "usage: bash bench/run.sh [quick|fds|tree|tasks|big]" >&2
	exit 2
	;;
esac
if [ $MODE = fds ] || [ $MODE = tree ]; then
	TREE_REPS=${TREE_REPS:-3}
elif [ $MODE = tasks ]; then
	TREE_REPS=${TREE_REPS:-3} SMALL_REPS=${SMALL_REPS:-5}
elif [ $MODE = big ]; then
	REPS=${REPS:-3} SMALL_REPS=0 TREE_REPS=0 BIG_MIB=${BIG_MIB:-8192}
elif [ $MODE = quick ]; then
	REPS=${REPS:-1} SMALL_REPS=${SMALL_REPS:-3} TREE_REPS=${TREE_REPS:-1}
else
	REPS=${REPS:-3} SMALL_REPS=${SMALL_REPS:-7} TREE_REPS=${TREE_REPS:-5}
fi
PREWARM=${PREWARM:-1}

BIG_MIB=${BIG_MIB:-1024}	# the big target (8192 in mode big)
MID_MIB=64			# the second target of the peak-RSS comparison
PREWARM_MIB=$((BIG_MIB + 256))	# memory touched and freed before a timed step
TOUCHED=$((BIG_MIB << 20))	# bytes the big target has touched
T_TARGET_PCT=80			# dump/restore throughput target, % of the dd limit
T_SMALL_MS=15			# small-process target, ms
RSS_SLACK_KIB=$((16 << 10))	# peak RSS may grow this much from 64 MiB to 1 GiB
TREE_N=100			# processes in the tree (root + TREE_N-1 children)
THREADS_N=500			# threads of the threaded target (main included)
T_PER_TASK_MS=1			# target: ms per extra process/thread, dump and restore
FDS_N=10000			# open fds of the fd benchmark (bench/fdzoo.c)
T_FDS_MS=1000			# target: dump and restore of FDS_N fds, ms each
WAIT_READY=60			# seconds for a memhog to touch its memory
WAIT_GONE=10			# seconds for a killed process to vanish
SHM=/dev/shm/stasis-bench.$$	# images and the dd file (tmpfs)
IMG=$SHM/img			# image directory
DDFILE=$SHM/dd

WORK=""				# scratch dir: logs, ready files, stat files
PID=""				# the process last started
declare -A PIDS=()		# every process started/restored: PIDS[pid]=starttime
ERRORS=()			# failed steps, one line each

# ---------------------------------------------------------------- helpers

note() { echo "$*" >&2; }

now_ms() {
	local s=${EPOCHREALTIME/./}
	echo $((s / 1000))
}

# proc_field PID N: field N (1-based, as in proc(5)) of /proc/PID/stat.
proc_field() {
	local stat="" f
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -r -a f <<<"${stat##*) }"
	echo "${f[$2 - 3]}"
}

# alive PID: exists and is not a zombie.
alive() {
	local st
	st=$(proc_field "$1" 3) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# pstat PID: sets PSTATE, PPARENT and PSTART (fields 3, 4 and 22 of
# /proc/PID/stat) without a subshell; fails when PID does not exist.
pstat() {
	local stat="" f
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -r -a f <<<"${stat##*) }"
	PSTATE=${f[0]} PPARENT=${f[1]} PSTART=${f[19]}
}

# track PID: remember a process of ours (by PID and start time), so that
# cleanup kills it.
track() {
	pstat "$1" || return 0
	PIDS[$1]=$PSTART
}

# untrack PID...: forget processes that are gone.
untrack() {
	local p
	for p in "$@"; do
		unset "PIDS[$p]"
	done
}

# ours PID: PID is a tracked process of ours that still exists (same start
# time: not a reused PID).
ours() {
	[ -n "${PIDS[$1]:-}" ] && pstat "$1" && [ "$PSTART" = "${PIDS[$1]}" ]
}

# wait_gone PID [SECONDS]: wait until /proc/PID disappears; reaps our own
# children at once (a restored process is init's child and init reaps it
# only after a second or two).
wait_gone() {
	local pid=$1 limit=$(($(now_ms) + ${2:-$WAIT_GONE} * 1000))
	while [ -e "/proc/$pid" ]; do
		if [ "$(proc_field "$pid" 3)" = Z ] && [ "$(proc_field "$pid" 4)" = $$ ]; then
			wait "$pid" 2>/dev/null
			continue
		fi
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.02
	done
	wait "$pid" 2>/dev/null	# a child already reaped by bash: clear its status
	return 0
}

# finish PID: SIGKILL a tracked process of ours (if it still exists) and
# wait until its PID is free again.  A PID that is no longer ours (already
# gone, perhaps reused) is left alone.
finish() {
	if ! ours "$1"; then
		wait "$1" 2>/dev/null	# our child, already reaped: drop its status
		return 0
	fi
	kill -KILL "$1" 2>/dev/null
	wait_gone "$1" || {
		note "warning: pid $1 did not go away within ${WAIT_GONE}s"
		return 1
	}
}

# wait_pids MODE SECONDS PID...: wait until every PID is gone (MODE gone)
# or has at least exited (MODE exited: gone or a zombie); reaps our own
# zombie children at once.  On a timeout sets LEFT (the PIDs still there)
# and fails.
wait_pids() {
	local mode=$1 limit=$(($(now_ms) + $2 * 1000)) p
	shift 2
	while :; do
		LEFT=()
		for p in "$@"; do
			pstat "$p" || continue
			if [ "$PSTATE" = Z ] || [ "$PSTATE" = X ]; then
				if [ "$PPARENT" = $$ ]; then
					wait "$p" 2>/dev/null
					continue
				fi
				[ "$mode" = exited ] && continue
			fi
			LEFT+=("$p")
		done
		[ ${#LEFT[@]} -eq 0 ] && return 0
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.02
	done
}

# kill_ours PID...: SIGKILL those of the PIDs that are tracked processes
# of ours, all at once (a tree: no waiting in between).
kill_ours() {
	local p
	for p in "$@"; do
		ours "$p" && kill -KILL "$p" 2>/dev/null
	done
	return 0
}

# hold_signals / release_signals: around starting (or restoring) a process
# and tracking it, so that SIGINT/SIGTERM cannot end the script in between
# (a process started but not yet tracked would escape cleanup): the signal
# is acted on by release_signals.
PENDING_EXIT=""
hold_signals() {
	trap 'PENDING_EXIT=130' INT
	trap 'PENDING_EXIT=143' TERM
}
release_signals() {
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[ -z "$PENDING_EXIT" ] || exit "$PENDING_EXIT"
}

cleanup() {
	local p mine=()
	trap - EXIT INT TERM
	for p in "${!PIDS[@]}"; do
		ours "$p" && mine+=("$p")
	done
	if [ ${#mine[@]} -gt 0 ]; then
		kill_ours "${mine[@]}"
		wait_pids gone $WAIT_GONE "${mine[@]}" ||
			note "warning: pid(s) ${LEFT[*]} did not go away within ${WAIT_GONE}s"
	fi
	rm -rf "$SHM"
	[ -n "$WORK" ] && rm -rf "$WORK"
}

# wait_file FILE SECONDS PID: wait for FILE; give up when PID dies.
wait_file() {
	local limit=$(($(now_ms) + $2 * 1000))
	while [ ! -e "$1" ]; do
		alive "$3" || return 1
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.02
	done
}

# start_memhog MIB: start a memhog child, wait until its memory is touched;
# sets PID.
start_memhog() {
	local ready=$WORK/ready.$1.$RANDOM
	rm -f "$ready"
	hold_signals
	"$BB/memhog" "$1" "$ready" </dev/null >/dev/null 2>&1 &
	PID=$!
	disown "$PID"	# no "Killed" job notices; bash still reaps it at once
	track "$PID"
	release_signals
	if ! wait_file "$ready" $WAIT_READY "$PID"; then
		if alive "$PID"; then
			finish "$PID"
			fail "memhog $1 not ready after ${WAIT_READY}s"
		else
			fail "memhog $1 died before it was ready"
		fi
		return 1
	fi
	rm -f "$ready"
}

# start_sleep: start `sleep 1000` as a child and wait until it has exec'd;
# sets PID.  (It is tracked at once: exec keeps the start time.)
start_sleep() {
	local limit=$(($(now_ms) + 5000)) comm=""
	hold_signals
	# shellcheck disable=SC2217 # the target's fds: all /dev/null
	sleep 1000 </dev/null >/dev/null 2>&1 &
	PID=$!
	disown "$PID"
	track "$PID"
	release_signals
	while :; do
		comm=$(cat "/proc/$PID/comm" 2>/dev/null)
		[ "$comm" = sleep ] && break
		if [ "$(now_ms)" -ge "$limit" ]; then
			fail "sleep did not start"
			kill -KILL "$PID" 2>/dev/null
			wait_gone "$PID"
			return 1
		fi
		sleep 0.005
	done
}

# prewarm: touch PREWARM_MIB MiB and free them again, just before a timed
# step, so that the step gets memory the hypervisor has backed (see
# bench/README.md: this VM hands freed memory back to the host).
prewarm() {
	[ "$PREWARM" = 1 ] || return 0
	local keep=$PID
	start_memhog $PREWARM_MIB || return 1
	finish "$PID"
	PID=$keep
}

fail() {
	ERRORS+=("$*")
	note "  ERROR: $*"
}

# timed OUT CMD...: run CMD under maxrss; sets WALL_MS (wall clock),
# RSS_KIB (its ru_maxrss) and RC.
timed() {
	local out=$1 wall rss
	shift
	"$BB/maxrss" "$out" "$@"
	RC=$?
	WALL_MS="" RSS_KIB=""
	read -r wall rss _ <"$out" 2>/dev/null || return 1
	WALL_MS=$(awk -v n="$wall" 'BEGIN { printf "%.2f", n / 1e6 }')
	# shellcheck disable=SC2034 # read through eval in cycle()
	RSS_KIB=$rss
	return $RC
}

# log_ms LOG WORD: the "in X ms" figure of stasis's last -v3 line that
# starts with WORD ("dumped pid N to ... in X ms", "restored ... in X ms").
log_ms() {
	grep -E "^$2 .* in [0-9.]+ ms" "$1" | tail -n 1 | sed -E 's/.* in ([0-9.]+) ms.*/\1/'
}

# err_line LOG: the first error line of a stasis log (for the report).
err_line() {
	{ grep -m 1 -iE 'error|cannot|fail' "$1" || tail -n 1 "$1"; } 2>/dev/null
}

# median NUM...: the median (mean of the middle two for an even count).
median() {
	[ $# -gt 0 ] || { echo ""; return; }
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) printf "%.2f", v[(NR + 1) / 2];
		else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median_int NUM...: the median, rounded to an integer.
median_int() {
	local m
	m=$(median "$@")
	[ -n "$m" ] && printf '%.0f' "$m"
}

# max NUM...
max() {
	[ $# -gt 0 ] || { echo ""; return; }
	printf '%s\n' "$@" | sort -g | tail -n 1
}

# mbps BYTES MS: throughput in MB/s (10^6 bytes per second).
mbps() {
	[ -n "$2" ] || { echo "-"; return; }
	awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.0f", b / 1e6 / (ms / 1e3) }'
}

# pct A B: A as a percentage of B.
pct() {
	{ [ -n "$1" ] && [ -n "$2" ] && [ "$1" != - ] && [ "$2" != - ]; } || { echo "-"; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'
}

# verdict_ge / verdict_lt: PASS or MISS against a target ("n/a" when
# there is no figure).
verdict_ge() {	# verdict_ge VALUE MIN
	{ [ -n "$1" ] && [ "$1" != - ]; } || { echo "n/a"; return; }
	awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "PASS" : "MISS" }'
}
verdict_lt() {	# verdict_lt VALUE MAX
	{ [ -n "$1" ] && [ "$1" != - ]; } || { echo "n/a"; return; }
	awk -v v="$1" -v t="$2" 'BEGIN { print (v < t) ? "PASS" : "MISS" }'
}
mib() {
	[ -n "$1" ] || { echo "-"; return; }
	awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'
}
list() { [ $# -gt 0 ] && echo "$*" || echo "-"; }
last() { [ $# -gt 0 ] && echo "${!#}" || echo "?"; }

# ---------------------------------------------------------------- build

build_helpers() {
	local p
	mkdir -p "$BB" || return 1
	for p in memhog maxrss forktree threads fdzoo; do
		if [ ! -x "$BB/$p" ] || [ "bench/$p.c" -nt "$BB/$p" ] || [ bench/bench.h -nt "$BB/$p" ]; then
			$CC -O2 -g -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -pthread -o "$BB/$p" "bench/$p.c" || return 1
		fi
	done
}

# ---------------------------------------------------------------- benchmarks

DD_MS=() DD_OWN_S=()
DUMP_MS=() DUMP_OWN=() REST_MS=() REST_OWN=() IMG_BYTES=() REST_RSS=()
DUMP_RSS_BIG=() REST_RSS_BIG=() DUMP_RSS_MID=() REST_RSS_MID=()
DUMP_RSS_SMALL=() REST_RSS_SMALL=()
S_DUMP_MS=() S_DUMP_OWN=() S_REST_MS=() S_REST_OWN=()

# bench_dd: one sample of the limit.
bench_dd() {
	local log=$WORK/dd.log s
	rm -f "$DDFILE"
	prewarm || return 1
	if ! timed "$WORK/dd.stat" dd if=/dev/zero of="$DDFILE" bs=1M count=$BIG_MIB conv=fdatasync 2>"$log"; then
		fail "dd: $(tail -n 1 "$log")"
		rm -f "$DDFILE"
		return 1
	fi
	DD_MS+=("$WALL_MS")
	s=$(sed -nE 's/.* copied, ([0-9.]+) s.*/\1/p' "$log")
	[ -n "$s" ] && DD_OWN_S+=("$s")
	rm -f "$DDFILE"
}

# cycle MIB DUMP_MS DUMP_OWN REST_MS REST_OWN DUMP_RSS REST_RSS [PREWARM]:
# start a target (memhog MIB, or sleep when MIB is 0), dump it, restore it,
# kill it; appends the figures to the arrays named.
cycle() {
	local mib=$1 a_dms=$2 a_down=$3 a_rms=$4 a_rown=$5 a_drss=$6 a_rrss=$7 warm=${8:-0}
	local pid dlog=$WORK/dump.log rlog=$WORK/restore.log what got rss

	rm -rf "$IMG"
	if [ "$mib" = 0 ]; then
		what="sleep"
		start_sleep || return 1
	else
		what="memhog $mib"
		start_memhog "$mib" || return 1
	fi
	pid=$PID
	if [ "$warm" = 1 ] && ! prewarm; then
		finish "$pid"
		return 1
	fi

	# dump: stasis kills the target afterwards; it is our child, so
	# reaping it frees its PID at once
	if ! timed "$WORK/dump.stat" "$STASIS" dump -j -t "$pid" -D "$IMG" -v3 2>"$dlog"; then
		fail "dump of $what (pid $pid) failed (status $RC): $(err_line "$dlog")"
		finish "$pid"
		return 1
	fi
	eval "$a_dms+=(\"\$WALL_MS\"); $a_drss+=(\"\$RSS_KIB\")"
	got=$(log_ms "$dlog" dumped)
	[ -n "$got" ] && eval "$a_down+=(\"\$got\")"
	[ "$mib" = "$BIG_MIB" ] && IMG_BYTES+=("$(stat -c %s "$IMG/stasis.img" 2>/dev/null)")
	wait_gone "$pid" || {
		fail "$what (pid $pid) still exists after the dump"
		finish "$pid"
		return 1
	}

	# restore -d: returns once the target runs again, as a child of init
	[ "$warm" = 1 ] && { prewarm || return 1; }
	rm -f "$WORK/pidfile"
	hold_signals
	timed "$WORK/restore.stat" "$STASIS" restore -j -D "$IMG" -d --pidfile "$WORK/pidfile" -v3 2>"$rlog"
	track "$pid"
	release_signals
	if [ "$RC" != 0 ]; then
		fail "restore of $what (pid $pid) failed (status $RC): $(err_line "$rlog")"
		finish "$pid"
		return 1
	fi
	eval "$a_rms+=(\"\$WALL_MS\"); $a_rrss+=(\"\$RSS_KIB\")"
	got=$(log_ms "$rlog" restored)
	[ -n "$got" ] && eval "$a_rown+=(\"\$got\")"
	if ! alive "$pid" || [ "$(cat "$WORK/pidfile" 2>/dev/null)" != "$pid" ]; then
		fail "restore of $what: pid $pid is not running after restore -d (pidfile: $(cat "$WORK/pidfile" 2>/dev/null))"
		finish "$pid"
		return 1
	fi
	if [ "$mib" = "$BIG_MIB" ]; then
		rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
		REST_RSS+=("${rss:-0}")
		[ "${rss:-0}" -ge $(((mib << 10) * 99 / 100)) ] ||
			fail "restored memhog $mib has only ${rss:-?} KiB resident"
	fi
	rm -rf "$IMG"
	finish "$pid" || return 1
}

# ---------------------------------------------------------------- trees and threads

# Targets of this part, by KIND: one = forktree 1 (the one-process
# baseline), tree = forktree TREE_N, thr = threads THREADS_N.  Per kind:
# TT_<KIND>_{DMS,DOWN,FRZ,RMS,ROWN}: dump wall, dump own, freeze own,
# restore wall, restore own (ms, one per run).
# shellcheck disable=SC2034 # used through namerefs (tt_add, tt_median, tt_list)
TT_ONE_DMS=() TT_ONE_DOWN=() TT_ONE_FRZ=() TT_ONE_RMS=() TT_ONE_ROWN=() \
TT_TREE_DMS=() TT_TREE_DOWN=() TT_TREE_FRZ=() TT_TREE_RMS=() TT_TREE_ROWN=() \
TT_THR_DMS=() TT_THR_DOWN=() TT_THR_FRZ=() TT_THR_RMS=() TT_THR_ROWN=()
declare -A TT_ROOT=() TT_PIDS=() TT_TIDS=()	# per kind, from the image

# tt_add KIND FIELD VALUE: append VALUE to TT_<KIND>_<FIELD> (if not empty).
tt_add() {
	# shellcheck disable=SC2178 # a nameref to an array
	local -n _tt_a="TT_${1^^}_$2"
	[ -z "$3" ] || _tt_a+=("$3")
}
# tt_median KIND FIELD, tt_list KIND FIELD, tt_last KIND FIELD
tt_median() {
	# shellcheck disable=SC2178 # a nameref to an array
	local -n _tt_a="TT_${1^^}_$2"
	median "${_tt_a[@]}"
}
tt_list() {
	# shellcheck disable=SC2178 # a nameref to an array
	local -n _tt_a="TT_${1^^}_$2"
	list "${_tt_a[@]}"
}
tt_last() {
	# shellcheck disable=SC2178 # a nameref to an array
	local -n _tt_a="TT_${1^^}_$2"
	last "${_tt_a[@]}"
}

tt_bin() { case $1 in one | tree) echo forktree ;; thr) echo threads ;; esac; }
tt_n() { case $1 in one) echo 1 ;; tree) echo $TREE_N ;; thr) echo $THREADS_N ;; esac; }
tt_what() { echo "$(tt_bin "$1") $(tt_n "$1")"; }

# img_ids DIR task|thread: the PIDs of the processes ("task" records) or
# the TIDs of the threads ("thread-core" records) of the image in DIR, as
# `stasis show --json` lists them (one record per line).
img_ids() {
	if [ "$2" = task ]; then
		"$STASIS" show -D "$1" --json 2>/dev/null |
			sed -nE 's/^\{"type":"task",[^{]*"data":\{"pid":([0-9]+)[,}].*/\1/p'
	else
		"$STASIS" show -D "$1" --json 2>/dev/null |
			sed -nE 's/^\{"type":"thread-core",[^{]*"data":\{"pid":[0-9]+,"tid":([0-9]+)[,}].*/\1/p'
	fi
}

# start_target KIND: start the target and wait until it is ready (every
# child process or thread exists); sets PID and TASKS (the PIDs of all its
# processes, root first), all of them tracked.
start_target() {
	local kind=$1 bin n ready=$WORK/ready.$1 kids=() p
	bin=$(tt_bin "$kind") n=$(tt_n "$kind")
	rm -f "$ready"
	hold_signals
	"$BB/$bin" "$n" "$ready" </dev/null >/dev/null 2>&1 &
	PID=$!
	disown "$PID"
	track "$PID"
	release_signals
	TASKS=("$PID")
	if ! wait_file "$ready" $WAIT_READY "$PID"; then
		# forktree's children die with their root (PR_SET_PDEATHSIG)
		if alive "$PID"; then
			finish "$PID"
			fail "$bin $n not ready after ${WAIT_READY}s"
		else
			fail "$bin $n died before it was ready"
		fi
		return 1
	fi
	rm -f "$ready"
	if [ "$bin" = forktree ]; then
		read -r -a kids <"/proc/$PID/task/$PID/children"
		for p in "${kids[@]}"; do
			track "$p"
		done
		TASKS+=("${kids[@]}")
		if [ ${#TASKS[@]} -ne "$n" ]; then
			fail "$bin $n: ready with ${#TASKS[@]} processes"
			kill_ours "${TASKS[@]}"
			wait_pids gone $WAIT_GONE "${TASKS[@]}"
			return 1
		fi
	elif [ "$(find "/proc/$PID/task" -mindepth 1 -maxdepth 1 | wc -l)" -ne "$n" ]; then
		fail "$bin $n: ready with $(find "/proc/$PID/task" -mindepth 1 -maxdepth 1 | wc -l) threads"
		finish "$PID"
		return 1
	fi
}

# tt_dump KIND: start a target, freeze+dump it into SHM/KIND (stasis kills
# it afterwards) and check that the image holds all its processes and
# threads; waits until they have all exited (init reaps the orphaned ones
# later: see tt_restore).  Records TT_ROOT/PIDS/TIDS[KIND].
tt_dump() {
	local kind=$1 dir=$SHM/$1 log=$WORK/dump.$1.log what n pids=() tids=()
	what=$(tt_what "$kind") n=$(tt_n "$kind")
	unset "TT_ROOT[$kind]"
	rm -rf "$dir"
	start_target "$kind" || return 1
	if ! timed "$WORK/dump.stat" "$STASIS" dump -j -t "$PID" -D "$dir" -v3 2>"$log"; then
		fail "dump of $what (pid $PID) failed (status $RC): $(err_line "$log")"
		kill_ours "${TASKS[@]}"
		wait_pids gone $WAIT_GONE "${TASKS[@]}"
		return 1
	fi
	tt_add "$kind" DMS "$WALL_MS"
	tt_add "$kind" DOWN "$(log_ms "$log" dumped)"
	tt_add "$kind" FRZ "$(log_ms "$log" froze)"
	# settle: the next timed step must not share the CPUs with the exits
	if ! wait_pids exited $WAIT_GONE "${TASKS[@]}"; then
		fail "$what: pid(s) ${LEFT[*]} still running after the dump"
		kill_ours "${TASKS[@]}"
		wait_pids gone $WAIT_GONE "${TASKS[@]}"
		return 1
	fi
	# the image: N processes (tree) or 1, N threads in all, root first
	read -r -d '' -a pids < <(img_ids "$dir" task)
	read -r -d '' -a tids < <(img_ids "$dir" thread)
	if [ ${#pids[@]} -ne "$([ "$kind" = tree ] && echo "$n" || echo 1)" ] ||
		[ ${#tids[@]} -ne "$n" ] || [ "${pids[0]:-}" != "$PID" ]; then
		fail "image of $what: ${#pids[@]} process(es), ${#tids[@]} thread(s), first pid ${pids[0]:-none} (root: $PID)"
		return 1
	fi
	TT_ROOT[$kind]=$PID TT_PIDS[$kind]=${pids[*]} TT_TIDS[$kind]=${tids[*]}
}

# tt_restore KIND: restore -d the image of tt_dump KIND (whose PIDs must be
# free by now), check that every process and thread exists again, kill
# them all and wait until they have exited.
tt_restore() {
	local kind=$1 dir=$SHM/$1 log=$WORK/restore.$1.log what got root n p
	local pids=() kids=() tids=()
	[ -n "${TT_ROOT[$kind]:-}" ] || return 1	# the dump failed
	what=$(tt_what "$kind") n=$(tt_n "$kind") root=${TT_ROOT[$kind]}
	read -r -a pids <<<"${TT_PIDS[$kind]}"
	rm -f "$WORK/pidfile"
	hold_signals
	timed "$WORK/restore.stat" "$STASIS" restore -j -D "$dir" -d --pidfile "$WORK/pidfile" -v3 2>"$log"
	for p in "${pids[@]}"; do
		track "$p"
	done
	release_signals
	if [ "$RC" != 0 ]; then
		fail "restore of $what (pid $root) failed (status $RC): $(err_line "$log")"
		kill_ours "${pids[@]}"
		wait_pids exited $WAIT_GONE "${pids[@]}"
		return 1
	fi
	tt_add "$kind" RMS "$WALL_MS"
	tt_add "$kind" ROWN "$(log_ms "$log" restored)"

	# all N processes / threads exist again
	got=""
	[ "$(cat "$WORK/pidfile" 2>/dev/null)" = "$root" ] || got="pidfile says '$(cat "$WORK/pidfile" 2>/dev/null)'"
	for p in "${pids[@]}"; do
		alive "$p" || got="${got:+$got; }pid $p is not running"
	done
	if [ "$kind" = tree ]; then
		read -r -a kids 2>/dev/null <"/proc/$root/task/$root/children"
		[ ${#kids[@]} -eq $((n - 1)) ] || got="${got:+$got; }root $root has ${#kids[@]} children, not $((n - 1))"
	else
		tids=("/proc/$root/task/"*)
		tids=("${tids[@]##*/}")
		[ ${#tids[@]} -eq "$n" ] && [ "$(printf '%s\n' "${tids[@]}" | sort -n | xargs)" = \
			"$(tr ' ' '\n' <<<"${TT_TIDS[$kind]}" | sort -n | xargs)" ] ||
			got="${got:+$got; }pid $root has ${#tids[@]} threads, not the $n of the image"
	fi
	[ -z "$got" ] || fail "restore of $what: $got"
	kill_ours "${pids[@]}"
	wait_pids exited $WAIT_GONE "${pids[@]}" || {
		fail "$what: pid(s) ${LEFT[*]} still running after SIGKILL"
		return 1
	}
	[ -z "$got" ]
}

# tt_run: one run of the three kinds: dump each (baseline first), wait
# until all their PIDs are free (init reaps the orphans after 1-2 s),
# restore each, kill them, and wait until all their PIDs are free again.
tt_run() {
	local k all=() pids=()
	for k in one tree thr; do
		tt_dump "$k"
	done
	for k in one tree thr; do
		[ -n "${TT_ROOT[$k]:-}" ] && read -r -a pids <<<"${TT_PIDS[$k]}" && all+=("${pids[@]}")
	done
	[ ${#all[@]} -gt 0 ] || return 1
	if ! wait_pids gone $WAIT_GONE "${all[@]}"; then
		fail "pid(s) ${LEFT[*]} of the dumped targets still taken after ${WAIT_GONE}s"
		return 1
	fi
	for k in one tree thr; do
		tt_restore "$k"
	done
	if ! wait_pids gone $WAIT_GONE "${all[@]}"; then
		fail "pid(s) ${LEFT[*]} of the restored targets still there after ${WAIT_GONE}s"
		return 1
	fi
	untrack "${all[@]}"
	for k in one tree thr; do
		rm -rf "${SHM:?}/$k"
	done
}

# ---------------------------------------------------------------- many fds

FD_DMS=() FD_DOWN=() FD_RMS=() FD_ROWN=()

# fd_count PID: the number of open fds of PID.
fd_count() {
	local f=("/proc/$1/fd/"*)
	echo ${#f[@]}
}

# fd_run: dump a two-process fdzoo holding FDS_N fds of mixed kinds, restore
# it, and check that both processes hold as many fds as before.
fd_run() {
	local ready=$WORK/fdzoo/ready dir=$SHM/fds kid n_root n_kid log=$WORK/fds.log pids
	rm -rf "$WORK/fdzoo" "$dir"
	mkdir -p "$WORK/fdzoo"
	hold_signals
	"$BB/fdzoo" $FDS_N "$ready" </dev/null >/dev/null 2>&1 &
	PID=$!
	disown "$PID"
	track "$PID"
	release_signals
	if ! wait_file "$ready" $WAIT_READY "$PID"; then
		finish "$PID"
		fail "fdzoo $FDS_N not ready"
		return 1
	fi
	read -r kid <"/proc/$PID/task/$PID/children"
	track "$kid"
	pids=("$PID" "$kid")
	n_root=$(fd_count "$PID") n_kid=$(fd_count "$kid")
	if ! timed "$WORK/fds.stat" "$STASIS" dump -j -t "$PID" -D "$dir" -v3 2>"$log"; then
		fail "dump of fdzoo failed (status $RC): $(err_line "$log")"
		kill_ours "${pids[@]}"
		wait_pids gone $WAIT_GONE "${pids[@]}"
		return 1
	fi
	FD_DMS+=("$WALL_MS")
	FD_DOWN+=("$(log_ms "$log" dumped)")
	if ! wait_pids gone $WAIT_GONE "${pids[@]}"; then
		fail "fdzoo: pid(s) ${LEFT[*]} still taken after the dump"
		return 1
	fi
	hold_signals
	timed "$WORK/fds.stat" "$STASIS" restore -j -D "$dir" -d -v3 2>"$log"
	track "$PID"
	track "$kid"
	release_signals
	if [ "$RC" != 0 ]; then
		fail "restore of fdzoo failed (status $RC): $(err_line "$log")"
	else
		FD_RMS+=("$WALL_MS")
		FD_ROWN+=("$(log_ms "$log" restored)")
		[ "$(fd_count "$PID")" = "$n_root" ] && [ "$(fd_count "$kid")" = "$n_kid" ] ||
			fail "fdzoo restored with $(fd_count "$PID") + $(fd_count "$kid") fds, not $n_root + $n_kid"
	fi
	kill_ours "${pids[@]}"
	wait_pids gone $WAIT_GONE "${pids[@]}"
	untrack "${pids[@]}"
	rm -rf "$dir" "$WORK/fdzoo"
}

report_fds() {
	local d r
	d=$(median "${FD_DMS[@]}") r=$(median "${FD_RMS[@]}")
	echo "$FDS_N open fds of mixed kinds in 2 processes (bench/fdzoo.c)   target: < ${T_FDS_MS} ms each"
	printf '  %-28s %9s ms  %-6s %s us/fd  (own %s ms; runs ms: %s)\n' dump "${d:--}" \
		"$(verdict_lt "$d" $T_FDS_MS)" "$([ -n "$d" ] && awk -v t="$d" -v n=$FDS_N 'BEGIN { printf "%.1f", t * 1000 / n }' || echo -)" \
		"$(median "${FD_DOWN[@]}")" "$(list "${FD_DMS[@]}")"
	printf '  %-28s %9s ms  %-6s %s us/fd  (own %s ms; runs ms: %s)\n' "restore -d" "${r:--}" \
		"$(verdict_lt "$r" $T_FDS_MS)" "$([ -n "$r" ] && awk -v t="$r" -v n=$FDS_N 'BEGIN { printf "%.1f", t * 1000 / n }' || echo -)" \
		"$(median "${FD_ROWN[@]}")" "$(list "${FD_RMS[@]}")"
}

# ---------------------------------------------------------------- report

report() {
	local dd dd_own lim dump own rest rown dmb rmb domb romb dp rp img
	local sd sdo sr sro drs rrs drm rrm drb rrb dratio rratio dv rv

	dd=$(median "${DD_MS[@]}")
	dd_own=$(median "${DD_OWN_S[@]}")
	lim=$(mbps $TOUCHED "$dd")
	dump=$(median "${DUMP_MS[@]}")
	own=$(median "${DUMP_OWN[@]}")
	rest=$(median "${REST_MS[@]}")
	rown=$(median "${REST_OWN[@]}")
	dmb=$(mbps $TOUCHED "$dump") rmb=$(mbps $TOUCHED "$rest")
	domb=$(mbps $TOUCHED "$own") romb=$(mbps $TOUCHED "$rown")
	dp=$(pct "$dmb" "$lim") rp=$(pct "$rmb" "$lim")
	img=$(median_int "${IMG_BYTES[@]}")
	sd=$(median "${S_DUMP_MS[@]}") sdo=$(median "${S_DUMP_OWN[@]}")
	sr=$(median "${S_REST_MS[@]}") sro=$(median "${S_REST_OWN[@]}")
	drs=$(max "${DUMP_RSS_SMALL[@]}") rrs=$(max "${REST_RSS_SMALL[@]}")
	drm=$(max "${DUMP_RSS_MID[@]}") rrm=$(max "${REST_RSS_MID[@]}")
	drb=$(max "${DUMP_RSS_BIG[@]}") rrb=$(max "${REST_RSS_BIG[@]}")
	dratio=$( [ -n "$drm" ] && [ -n "$drb" ] && awk -v a="$drb" -v b="$drm" 'BEGIN { printf "%.2fx", a / b }' || echo -)
	rratio=$( [ -n "$rrm" ] && [ -n "$rrb" ] && awk -v a="$rrb" -v b="$rrm" 'BEGIN { printf "%.2fx", a / b }' || echo -)
	rss_verdict() {
		{ [ -n "$1" ] && [ -n "$2" ]; } || { echo "n/a"; return; }
		[ $(($2 - $1)) -lt $RSS_SLACK_KIB ] && echo PASS || echo MISS
	}
	dv=$(rss_verdict "$drm" "$drb") rv=$(rss_verdict "$rrm" "$rrb")

	echo "stasis benchmarks, $(date '+%Y-%m-%d %H:%M')"
	echo "  stasis $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'), kernel $(uname -r)," \
		"$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "  mode $MODE: runs: ${REPS} per big figure, ${SMALL_REPS} for the small process," \
		"${TREE_REPS} for trees/threads; medians." \
		"prewarm $([ "$PREWARM" = 1 ] && echo "on (${PREWARM_MIB} MiB before each timed big step)" || echo off)"
	echo "  MB/s = 10^6 bytes/s of the ${BIG_MIB} MiB touched; wall = the whole command; own = stasis's -v3 \"in X ms\""
	echo
	echo "limit: dd ${BIG_MIB} MiB /dev/zero -> /dev/shm"
	printf '  %-28s %9s ms  %6s MB/s      (dd own: %s s; runs ms: %s)\n' "dd" "${dd:--}" "$lim" "${dd_own:--}" "$(list "${DD_MS[@]}")"
	echo
	echo "${BIG_MIB} MiB touched anonymous memory, image on /dev/shm        target: >= ${T_TARGET_PCT}% of limit"
	printf '  %-28s %9s     %9s  %8s  %-6s %s\n' "" "wall" "MB/s" "of limit" "result" "(own: ms, MB/s)"
	printf '  %-28s %9s ms  %6s MB/s  %7s%%  %-6s (%s ms, %s MB/s)\n' dump "${dump:--}" "$dmb" "$dp" \
		"$(verdict_ge "$dp" $T_TARGET_PCT)" "${own:--}" "$domb"
	printf '  %-28s %9s ms  %6s MB/s  %7s%%  %-6s (%s ms, %s MB/s)\n' "restore -d" "${rest:--}" "$rmb" "$rp" \
		"$(verdict_ge "$rp" $T_TARGET_PCT)" "${rown:--}" "$romb"
	printf '  %-28s dump %s / restore %s\n' "runs, wall ms" "$(list "${DUMP_MS[@]}")" "$(list "${REST_MS[@]}")"
	printf '  %-28s %s bytes (%s x touched); restored VmRSS %s\n' "image size" "${img:--}" \
		"$([ -n "$img" ] && awk -v i="$img" -v t=$TOUCHED 'BEGIN { printf "%.4f", i / t }' || echo -)" \
		"$(mib "$(median_int "${REST_RSS[@]}")")"
	echo
	echo "small process (sleep)                                      target: < ${T_SMALL_MS} ms"
	printf '  %-28s %9s ms  %-6s (own %s ms; runs ms: %s)\n' dump "${sd:--}" "$(verdict_lt "$sd" $T_SMALL_MS)" \
		"${sdo:--}" "$(list "${S_DUMP_MS[@]}")"
	printf '  %-28s %9s ms  %-6s (own %s ms; runs ms: %s)\n' "restore -d" "${sr:--}" "$(verdict_lt "$sr" $T_SMALL_MS)" \
		"${sro:--}" "$(list "${S_REST_MS[@]}")"
	echo
	echo "peak RSS of stasis itself (ru_maxrss, max over runs)       target: same for ${MID_MIB} MiB and ${BIG_MIB} MiB"
	printf '  %-12s %12s %12s %12s %10s  %s\n' "" "sleep" "${MID_MIB} MiB" "${BIG_MIB} MiB" "1G/${MID_MIB}M" result
	printf '  %-12s %12s %12s %12s %10s  %s\n' dump "$(mib "$drs")" "$(mib "$drm")" "$(mib "$drb")" "$dratio" "$dv"
	printf '  %-12s %12s %12s %12s %10s  %s\n' "restore -d" "$(mib "$rrs")" "$(mib "$rrm")" "$(mib "$rrb")" "$rratio" "$rv"
	echo "  (PASS: grows by less than $((RSS_SLACK_KIB >> 10)) MiB while the target grows by $((BIG_MIB - MID_MIB)) MiB)"
	echo
	report_tt
	echo
	report_fds
	if [ ${#ERRORS[@]} -gt 0 ]; then
		echo
		echo "errors (${#ERRORS[@]}):"
		printf '  %s\n' "${ERRORS[@]}"
	fi
}

# per_extra TREE ONE N: (TREE - ONE) / (N - 1), ms per extra process/thread.
per_extra() {
	{ [ -n "$1" ] && [ -n "$2" ]; } || { echo "-"; return; }
	awk -v t="$1" -v o="$2" -v n="$3" -v f="${PER_FMT:-%.2f}" 'BEGIN { printf f, (t - o) / (n - 1) }'
}

# report_tt: the process tree / threads part of the table.
report_tt() {
	local k n d r dw rw
	local -A med=()

	for k in one tree thr; do
		for f in DMS DOWN FRZ RMS ROWN; do
			med[$k$f]=$(tt_median $k $f)
		done
	done
	echo "process tree and threads, image on /dev/shm   target: < ${T_PER_TASK_MS} ms per extra process/thread, dump and restore"
	echo "  (tree: a root and $((TREE_N - 1)) children, flat; after each restore every process/thread is checked)"
	printf '  %-28s %12s  %12s\n' "" "dump wall" "restore wall"
	for k in one tree thr; do
		case $k in
		one) d="1 process (forktree 1)" ;;
		tree) d="tree of $TREE_N processes" ;;
		thr) d="1 process, $THREADS_N threads" ;;
		esac
		printf '  %-28s %9s ms  %9s ms    (own: freeze %s, dump %s, restore %s ms)\n' "$d" \
			"${med[${k}DMS]:--}" "${med[${k}RMS]:--}" "${med[${k}FRZ]:--}" "${med[${k}DOWN]:--}" "${med[${k}ROWN]:--}"
	done
	for k in tree thr; do
		n=$(tt_n $k)
		d=$(per_extra "${med[${k}DMS]}" "${med[oneDMS]}" "$n")
		r=$(per_extra "${med[${k}RMS]}" "${med[oneRMS]}" "$n")
		dw=$(per_extra "${med[${k}DOWN]}" "${med[oneDOWN]}" "$n")
		rw=$(per_extra "${med[${k}ROWN]}" "${med[oneROWN]}" "$n")
		printf '  %-28s %9s ms %-4s %7s ms %-4s (own: dump %s, restore %s ms)\n' \
			"per extra $([ $k = tree ] && echo process || echo thread) ($((n - 1)))" \
			"$d" "$(verdict_lt "$d" $T_PER_TASK_MS)" "$r" "$(verdict_lt "$r" $T_PER_TASK_MS)" "$dw" "$rw"
	done
	for k in one tree thr; do
		printf '  %-28s dump %s / restore %s\n' "runs ms, $(tt_what $k)" "$(tt_list $k DMS)" "$(tt_list $k RMS)"
	done
}

# report_tasks: sleep's dump and restore, then the tree/threads table, then
# one line "tasks: NAME=MS ..." of the six figures of issue 14 (wall, ms:
# sleep's medians, and per extra process/thread from the medians) for
# bench/ab.sh.
report_tasks() {
	local sd sr n k
	local -A med=() per=()

	sd=$(median "${S_DUMP_MS[@]}") sr=$(median "${S_REST_MS[@]}")
	echo "small process (sleep)"
	printf '  %-28s %9s ms  (own %s ms; runs ms: %s)\n' dump "${sd:--}" \
		"$(median "${S_DUMP_OWN[@]}")" "$(list "${S_DUMP_MS[@]}")"
	printf '  %-28s %9s ms  (own %s ms; runs ms: %s)\n' "restore -d" "${sr:--}" \
		"$(median "${S_REST_OWN[@]}")" "$(list "${S_REST_MS[@]}")"
	echo
	report_tt
	for k in one tree thr; do
		med[${k}D]=$(tt_median $k DMS) med[${k}R]=$(tt_median $k RMS)
	done
	for k in tree thr; do
		n=$(tt_n $k)
		per[${k}D]=$(PER_FMT=%.3f per_extra "${med[${k}D]}" "${med[oneD]}" "$n")
		per[${k}R]=$(PER_FMT=%.3f per_extra "${med[${k}R]}" "${med[oneR]}" "$n")
	done
	echo "tasks: sleep_dump=${sd:--} sleep_restore=${sr:--}" \
		"proc_dump=${per[treeD]} proc_restore=${per[treeR]}" \
		"thread_dump=${per[thrD]} thread_restore=${per[thrR]}"
}

# free_page_reporting: the VM's balloon hands freed guest memory back to
# the host (memory touched first after that is slow); for the header.
free_page_reporting() {
	local d f
	for d in /sys/bus/virtio/devices/*; do
		[ "$(cat "$d/device" 2>/dev/null)" = 0x0005 ] || continue
		f=$(cat "$d/features" 2>/dev/null)
		[ "${f:5:1}" = 1 ] && return 0	# VIRTIO_BALLOON_F_REPORTING
	done
	return 1
}

# ---------------------------------------------------------------- main

# close_inherited_fds: close what the caller's shell left open above fd 2
# (not bash's own script fd 255): the targets inherit our fds, and stasis
# refuses a pipe whose other end is outside the tree.
close_inherited_fds() {
	local f n
	for f in /proc/$$/fd/*; do
		n=${f##*/}
		[ "$n" -gt 2 ] 2>/dev/null && [ "$n" -lt 255 ] && eval "exec $n>&-" 2>/dev/null
	done
	return 0
}

main() {
	local i t0 t1

	close_inherited_fds

	if [ "$(id -u)" != 0 ]; then
		echo "bench: needs root (ptrace of any process, PR_SET_MM, restoring PIDs)" >&2
		exit 1
	fi
	[ -x "$STASIS" ] || { echo "bench: $STASIS missing; run make first" >&2; exit 1; }
	build_helpers || { echo "bench: cannot build the helpers in $BB" >&2; exit 1; }
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/stasis-bench.XXXXXX") || exit 1
	mkdir -p "$SHM" || exit 1
	t0=$(now_ms)

	note "stasis bench ($MODE): images in $SHM"
	free_page_reporting && [ "$PREWARM" = 1 ] &&
		note "note: virtio-balloon free page reporting is on: memory is prewarmed before each timed big step"

	if [ $MODE = fds ]; then
		for ((i = 1; i <= TREE_REPS; i++)); do
			fd_run
		done
		report_fds | tee "$BB/results-fds.txt"
		[ ${#ERRORS[@]} -eq 0 ]
		return
	fi
	if [ $MODE = tree ]; then
		for ((i = 1; i <= TREE_REPS; i++)); do
			tt_run
		done
		report_tt | tee "$BB/results-tree.txt"
		[ ${#ERRORS[@]} -eq 0 ]
		return
	fi
	if [ $MODE = tasks ]; then
		for ((i = 1; i <= TREE_REPS || i <= SMALL_REPS; i++)); do
			[ $i -le "$SMALL_REPS" ] &&
				cycle 0 S_DUMP_MS S_DUMP_OWN S_REST_MS S_REST_OWN DUMP_RSS_SMALL REST_RSS_SMALL 0
			[ $i -le "$TREE_REPS" ] && tt_run
		done
		report_tasks | tee "$BB/results-tasks.txt"
		[ ${#ERRORS[@]} -eq 0 ]
		return
	fi

	note "[1/6] limit (dd) and ${BIG_MIB} MiB dump/restore, runs: $REPS"
	for ((i = 1; i <= REPS; i++)); do
		bench_dd
		cycle $BIG_MIB DUMP_MS DUMP_OWN REST_MS REST_OWN DUMP_RSS_BIG REST_RSS_BIG 1
		note "  run $i: dd $(last "${DD_MS[@]}") ms, dump $(last "${DUMP_MS[@]}") ms, restore $(last "${REST_MS[@]}") ms"
	done

	note "[2/6] small process (sleep), runs: $SMALL_REPS"
	for ((i = 1; i <= SMALL_REPS; i++)); do
		cycle 0 S_DUMP_MS S_DUMP_OWN S_REST_MS S_REST_OWN DUMP_RSS_SMALL REST_RSS_SMALL 0 || continue
	done
	note "  dump ms: $(list "${S_DUMP_MS[@]}"); restore ms: $(list "${S_REST_MS[@]}")"

	note "[3/6] peak RSS with a ${MID_MIB} MiB target, runs: $REPS"
	for ((i = 1; i <= REPS; i++)); do
		cycle $MID_MIB _D1 _D2 _D3 _D4 DUMP_RSS_MID REST_RSS_MID 0 || continue
	done

	note "[4/6] process tree ($TREE_N) and threads ($THREADS_N) next to one process, runs: $TREE_REPS"
	for ((i = 1; i <= TREE_REPS; i++)); do
		t1=$(now_ms)
		tt_run
		note "  run $i ($((($(now_ms) - t1) / 1000)) s): dump ms: 1 process $(tt_last one DMS)," \
			"tree $(tt_last tree DMS), threads $(tt_last thr DMS); restore ms: $(tt_last one RMS)," \
			"$(tt_last tree RMS), $(tt_last thr RMS)"
	done

	note "[5/6] $FDS_N fds of mixed kinds, runs: $TREE_REPS"
	for ((i = 1; i <= TREE_REPS; i++)); do
		fd_run
		note "  run $i: dump $(last "${FD_DMS[@]}") ms, restore $(last "${FD_RMS[@]}") ms"
	done

	note "[6/6] done in $((($(now_ms) - t0) / 1000)) s"
	echo
	report | tee "$BB/results.txt"
	[ ${#ERRORS[@]} -eq 0 ]
}

_D1=() _D2=() _D3=() _D4=()
main "$@"
