#!/usr/bin/env bash
# bench/net.sh - dump and restore of a process holding many established
# TCP connections (`make bench-net` builds, then runs this).
#
#   bash bench/net.sh [N]      N connections (default 1000)
#
# Environment: BUILD (default build), CC (default gcc), REPS (default 5).
#
# The target is `bench/netconns serve N` (one process, N connections over
# 127.0.0.1, 4 KiB unread in each direction of each), its peer
# `bench/netconns peer N`, outside the dumped tree.  Each repetition dumps
# the target (killed, --tcp-established, image on /dev/shm), restores it at
# once with -d, then has both sides read and check every byte; the same
# steps run for `netconns serve 0` (one process holding no socket) in the
# same run, so that one connection's cost is (T(N) - T(0)) / N.  Figures are
# medians of the wall time of the stasis commands (through bench/maxrss:
# exec to exit, what a caller waits for), the stasis -v3 figures in
# brackets, and "peers wait": how long the network lock dropped the
# connections' packets (stasis's "network lock lifted" line: from the
# freeze of the dump to the restored tree running, including the script's
# wait for the killed target's PID to be free).  Targets: dump < 100 ms,
# restore < 100 ms for 1,000 connections.  A missed target is reported
# (MISS), the exit status is 1 only when a step failed.
#
# Only processes this script starts or restores are killed (by PID, with
# their start time checked); images and scratch files are removed on exit.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${BUILD:-}" ]; then
	BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || BUILD=$PWD/$BUILD
else
	BUILD=$REPO/build
fi
STASIS=$BUILD/stasis
BB=$BUILD/bench
CC=${CC:-gcc}
N=${1:-1000}
REPS=${REPS:-5}
T_MS=100
SHM=/dev/shm/stasis-bench-net.$$
WORK=""
declare -A PIDS=()
ERRORS=()
cd "$REPO" || exit 1

note() { echo "$*" >&2; }

# start_time PID: field 22 of /proc/PID/stat.
start_time() {
	local stat="" f
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -r -a f <<<"${stat##*) }"
	echo "${f[19]}"
}

state() {
	local stat="" f
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -r -a f <<<"${stat##*) }"
	echo "${f[0]}"
}

track() { PIDS[$1]=$(start_time "$1"); }
ours() { [ -n "${PIDS[$1]:-}" ] && [ "$(start_time "$1")" = "${PIDS[$1]}" ]; }

# gone PID: wait (5 s at most) until /proc/PID is gone; reaps our children.
gone() {
	local i
	for i in $(seq 500); do
		[ -e "/proc/$1" ] || return 0
		[ "$(state "$1")" = Z ] && wait "$1" 2>/dev/null
		sleep 0.01
	done
	return 1
}

finish() {
	ours "$1" && kill -KILL "$1" 2>/dev/null
	gone "$1"
	unset "PIDS[$1]"
}

cleanup() {
	local p
	trap - EXIT INT TERM
	for p in "${!PIDS[@]}"; do
		ours "$p" && kill -KILL "$p" 2>/dev/null
	done
	for p in "${!PIDS[@]}"; do gone "$p"; done
	rm -rf "$SHM"
	[ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	ERRORS+=("$*")
	note "error: $*"
}

wait_file() {
	local i
	for i in $(seq 1000); do
		[ -e "$1" ] && return 0
		[ -e "/proc/$2" ] && [ "$(state "$2")" != Z ] || return 1
		sleep 0.01
	done
	return 1
}

# timed OUT CMD...: run CMD under maxrss; WALL_MS its wall time.
timed() {
	local out=$1 wall
	shift
	"$BB/maxrss" "$out" "$@"
	RC=$?
	read -r wall _ <"$out" 2>/dev/null || { WALL_MS=""; return 1; }
	WALL_MS=$(awk -v n="$wall" 'BEGIN { printf "%.2f", n / 1e6 }')
	return $RC
}

# log_ms LOG REGEX: the "X ms" figure of the last line matching REGEX.
log_ms() {
	grep -E "$2" "$1" | tail -n 1 | sed -E 's/.* ([0-9.]+) ms.*/\1/'
}

median() {
	[ $# -gt 0 ] || { echo "-"; return; }
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) printf "%.2f", v[(NR + 1) / 2];
		else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# close_fds: close what the caller's shell left open above 2 (a stray pipe
# would make every dump refuse it as an end outside the tree).
close_fds() {
	local f n
	for f in /proc/$BASHPID/fd/*; do
		n=${f##*/}
		[ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null
	done
	return 0
}

# spawn ROLE COUNT DIR: start netconns ROLE in the background; PID is it.
spawn() {
	(close_fds; exec setsid "$BB/netconns" "$@") </dev/null >>"$WORK/netconns.log" 2>&1 &
	PID=$!
	disown "$PID"
	track "$PID"
}

# cycle COUNT: one repetition with COUNT connections; appends to the
# arrays D_WALL_COUNT, D_OWN_COUNT, R_WALL_COUNT, R_OWN_COUNT, LOCK_COUNT.
cycle() {
	local n=$1 dir=$WORK/run srv peer="" log=$WORK/log lock
	rm -rf "$dir" "$SHM/img"
	mkdir -p "$dir" "$SHM/img"
	spawn serve "$n" "$dir"
	srv=$PID
	if [ "$n" -gt 0 ]; then
		wait_file "$dir/port" "$srv" || { fail "netconns serve $n does not listen"; return 1; }
		spawn peer "$n" "$dir"
		peer=$PID
		wait_file "$dir/peer.ready" "$peer" || { fail "netconns peer $n not ready"; return 1; }
	fi
	wait_file "$dir/serve.ready" "$srv" || { fail "netconns serve $n not ready"; return 1; }
	rm -f "$log.d" "$log.r"
	if ! timed "$WORK/t.d" ${PROF:-} "$STASIS" dump -t "$srv" -D "$SHM/img" --tcp-established -v3 -o "$log.d"; then
		fail "dump of $n connections failed (status $RC): $(grep -m1 -i error "$log.d")"
		return 1
	fi
	eval "D_WALL_$n+=($WALL_MS)"; cp "$log.d" /tmp/net-dump-$n.log
	eval "D_OWN_$n+=($(log_ms "$log.d" '^dumped pid'))"
	gone "$srv" || { fail "pid $srv still there after the dump"; return 1; }
	if ! timed "$WORK/t.r" "$STASIS" restore -D "$SHM/img" -d -v3 -o "$log.r"; then
		fail "restore of $n connections failed (status $RC): $(grep -m1 -i error "$log.r")"
		return 1
	fi
	[ -e "/proc/$srv" ] && track "$srv"
	eval "R_WALL_$n+=($WALL_MS)"
	eval "R_OWN_$n+=($(log_ms "$log.r" '^restored'))"
	lock=$(log_ms "$log.r" 'network lock lifted')
	[ -n "$lock" ] && eval "LOCK_$n+=($lock)"
	# every byte both ways, read after the restore
	kill -USR1 "$srv" ${peer:+"$peer"}
	for r in serve ${peer:+peer}; do
		wait_file "$dir/$r.verdict" "$srv" || { fail "$r gave no verdict after the restore of $n"; return 1; }
		[ "$(cat "$dir/$r.verdict")" = "ok $n" ] ||
			{ fail "$r after the restore of $n: $(cat "$dir/$r.verdict")"; return 1; }
	done
	finish "$srv"
	[ -n "$peer" ] && finish "$peer"
	return 0
}

[ "$(id -u)" = 0 ] || { note "bench/net.sh: needs root (like stasis)"; exit 1; }
[ -x "$STASIS" ] || { note "bench/net.sh: $STASIS not found (run make)"; exit 1; }
command -v nft >/dev/null || { note "bench/net.sh: nft (nftables) is needed for the network lock"; exit 1; }
mkdir -p "$BB"
for p in maxrss netconns; do
	if [ ! -x "$BB/$p" ] || [ "bench/$p.c" -nt "$BB/$p" ]; then
		$CC -O2 -Wall -o "$BB/$p" "bench/$p.c" || { note "cannot build bench/$p.c"; exit 1; }
	fi
done
WORK=$(mktemp -d /tmp/stasis-bench-net.XXXXXX)
mkdir -p "$SHM"
declare -a D_WALL_0=() D_OWN_0=() R_WALL_0=() R_OWN_0=() LOCK_0=()
eval "declare -a D_WALL_$N=() D_OWN_$N=() R_WALL_$N=() R_OWN_$N=() LOCK_$N=()"
for ((i = 1; i <= REPS; i++)); do
	note "run $i/$REPS: $N connections, then none"
	cycle "$N"
	cycle 0
done

row() {
	local n=$1 what=$2 wall own
	eval "wall=\$(median \"\${${what}_WALL_$n[@]}\") own=\$(median \"\${${what}_OWN_$n[@]}\")"
	echo "$wall $own"
}
read -r dw dn <<<"$(row "$N" D)"
read -r rw rn <<<"$(row "$N" R)"
read -r dw0 dn0 <<<"$(row 0 D)"
read -r rw0 rn0 <<<"$(row 0 R)"
eval "lk=\$(median \"\${LOCK_$N[@]}\")"
verdict() { awk -v v="$1" -v t="$T_MS" 'BEGIN { print (v != "-" && v < t) ? "ok" : "MISS" }'; }
per() { awk -v a="$1" -v b="$2" -v n="$N" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.1f", (a - b) * 1000 / n }'; }
{
	echo "stasis bench-net: $N established TCP connections, 4 KiB unread each way (bench/netconns.c), median of $REPS"
	printf '%-34s %10s %12s %8s\n' "" "wall ms" "(own ms)" "target"
	printf '%-34s %10s %12s %8s\n' "dump, $N connections" "$dw" "($dn)" "$(verdict "$dw") <$T_MS"
	printf '%-34s %10s %12s %8s\n' "restore, $N connections" "$rw" "($rn)" "$(verdict "$rw") <$T_MS"
	printf '%-34s %10s %12s\n' "dump, no socket" "$dw0" "($dn0)"
	printf '%-34s %10s %12s\n' "restore, no socket" "$rw0" "($rn0)"
	printf '%-34s %10s %12s\n' "one connection: dump (us)" "$(per "$dw" "$dw0")" "($(per "$dn" "$dn0"))"
	printf '%-34s %10s %12s\n' "one connection: restore (us)" "$(per "$rw" "$rw0")" "($(per "$rn" "$rn0"))"
	printf '%-34s %10s\n' "peers see no answer (lock held) ms" "$lk"
} | tee "$BB/net-results.txt"
if [ ${#ERRORS[@]} -gt 0 ]; then
	printf 'error: %s\n' "${ERRORS[@]}"
	exit 1
fi
exit 0
