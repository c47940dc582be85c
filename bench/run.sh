#!/usr/bin/env bash
# bench/run.sh - the stasis benchmarks (`make bench` builds, then runs this).
#
#   bash bench/run.sh [quick]     quick: 1 repetition (3 for the small process)
#
# Environment: BUILD (default build), CC (default gcc), REPS, SMALL_REPS
# (override the repetition counts), PREWARM=0 (do not prewarm memory before
# the timed steps; see bench/README.md).
#
# Measures, with images on tmpfs (/dev/shm):
#   - the machine's limit: dd of 1 GiB from /dev/zero into /dev/shm;
#   - dump and restore of a process with 1 GiB of touched anonymous memory
#     (bench/memhog.c), as MB/s and as a percentage of that limit (target 80%);
#   - dump and restore of `sleep` (target: under 15 ms each);
#   - stasis's own peak RSS (ru_maxrss, via bench/maxrss.c) for a 64 MiB and a
#     1 GiB target (target: the same for both).
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
*)
	echo "usage: bash bench/run.sh [quick]" >&2
	exit 2
	;;
esac
if [ $MODE = quick ]; then
	REPS=${REPS:-1} SMALL_REPS=${SMALL_REPS:-3}
else
	REPS=${REPS:-3} SMALL_REPS=${SMALL_REPS:-7}
fi
PREWARM=${PREWARM:-1}

BIG_MIB=1024			# the big target
MID_MIB=64			# the second target of the peak-RSS comparison
PREWARM_MIB=1280		# memory touched and freed before a timed step
TOUCHED=$((BIG_MIB << 20))	# bytes the big target has touched
T_TARGET_PCT=80			# dump/restore throughput target, % of the dd limit
T_SMALL_MS=15			# small-process target, ms
RSS_SLACK_KIB=$((16 << 10))	# peak RSS may grow this much from 64 MiB to 1 GiB
WAIT_READY=60			# seconds for a memhog to touch its memory
WAIT_GONE=10			# seconds for a killed process to vanish
SHM=/dev/shm/stasis-bench.$$	# images and the dd file (tmpfs)
IMG=$SHM/img			# image directory
DDFILE=$SHM/dd

WORK=""				# scratch dir: logs, ready files, stat files
PID=""				# the process last started
PIDS=()				# every process started/restored: "pid:starttime"
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

# track PID: remember a process of ours, so that cleanup kills it.
track() {
	local st
	st=$(proc_field "$1" 22) || return 0
	PIDS+=("$1:$st")
}

# ours ENTRY: the tracked process (pid:start) still exists.
ours() {
	[ "$(proc_field "${1%%:*}" 22 2>/dev/null)" = "${1#*:}" ]
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
	local e mine=0
	for e in "${PIDS[@]}"; do
		[ "${e%%:*}" = "$1" ] && ours "$e" && mine=1
	done
	if [ $mine = 0 ]; then
		wait "$1" 2>/dev/null	# our child, already reaped: drop its status
		return 0
	fi
	kill -KILL "$1" 2>/dev/null
	wait_gone "$1" || {
		note "warning: pid $1 did not go away within ${WAIT_GONE}s"
		return 1
	}
}

cleanup() {
	local e
	trap - EXIT INT TERM
	for e in "${PIDS[@]}"; do
		ours "$e" && finish "${e%%:*}"
	done
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
	"$BB/memhog" "$1" "$ready" </dev/null >/dev/null 2>&1 &
	PID=$!
	disown "$PID"	# no "Killed" job notices; bash still reaps it at once
	track "$PID"
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
# sets PID.
start_sleep() {
	local limit=$(($(now_ms) + 5000)) comm=""
	# shellcheck disable=SC2217 # the target's fds: all /dev/null
	sleep 1000 </dev/null >/dev/null 2>&1 &
	PID=$!
	disown "$PID"
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
	track "$PID"
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
	for p in memhog maxrss; do
		if [ ! -x "$BB/$p" ] || [ "bench/$p.c" -nt "$BB/$p" ]; then
			$CC -O2 -g -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -o "$BB/$p" "bench/$p.c" || return 1
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
	if ! timed "$WORK/dump.stat" "$STASIS" dump -t "$pid" -D "$IMG" -v3 2>"$dlog"; then
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
	timed "$WORK/restore.stat" "$STASIS" restore -D "$IMG" -d --pidfile "$WORK/pidfile" -v3 2>"$rlog"
	track "$pid"
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
	echo "  mode $MODE: runs: ${REPS} per big figure, ${SMALL_REPS} for the small process; medians." \
		"prewarm $([ "$PREWARM" = 1 ] && echo "on (${PREWARM_MIB} MiB before each timed big step)" || echo off)"
	echo "  MB/s = 10^6 bytes/s of the ${BIG_MIB} MiB touched; wall = the whole command; own = stasis's -v3 \"in X ms\""
	echo
	echo "limit: dd 1 GiB /dev/zero -> /dev/shm"
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
	if [ ${#ERRORS[@]} -gt 0 ]; then
		echo
		echo "errors (${#ERRORS[@]}):"
		printf '  %s\n' "${ERRORS[@]}"
	fi
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

main() {
	local i t0

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

	note "[1/4] limit (dd) and ${BIG_MIB} MiB dump/restore, runs: $REPS"
	for ((i = 1; i <= REPS; i++)); do
		bench_dd
		cycle $BIG_MIB DUMP_MS DUMP_OWN REST_MS REST_OWN DUMP_RSS_BIG REST_RSS_BIG 1
		note "  run $i: dd $(last "${DD_MS[@]}") ms, dump $(last "${DUMP_MS[@]}") ms, restore $(last "${REST_MS[@]}") ms"
	done

	note "[2/4] small process (sleep), runs: $SMALL_REPS"
	for ((i = 1; i <= SMALL_REPS; i++)); do
		cycle 0 S_DUMP_MS S_DUMP_OWN S_REST_MS S_REST_OWN DUMP_RSS_SMALL REST_RSS_SMALL 0 || continue
	done
	note "  dump ms: $(list "${S_DUMP_MS[@]}"); restore ms: $(list "${S_REST_MS[@]}")"

	note "[3/4] peak RSS with a ${MID_MIB} MiB target, runs: $REPS"
	for ((i = 1; i <= REPS; i++)); do
		cycle $MID_MIB _D1 _D2 _D3 _D4 DUMP_RSS_MID REST_RSS_MID 0 || continue
	done

	note "[4/4] done in $((($(now_ms) - t0) / 1000)) s"
	echo
	report | tee "$BB/results.txt"
	[ ${#ERRORS[@]} -eq 0 ]
}

_D1=() _D2=() _D3=() _D4=()
main "$@"
