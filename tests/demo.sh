#!/usr/bin/env bash
# tests/demo.sh - a live checkpoint/restore of a counting process
# (`make demo`).  Needs root and a built tree (build/stasis, build/tests).
#
# Starts build/tests/counter and shows its count live; dumps it (which
# stops and kills it) and shows that the PID is gone and the count stands
# still; shows the image, restores it with the same PID, shows the count
# going on live from where it stopped, and lets the restored process check
# its own memory.  Cleans up whatever happens.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${BUILD:-}" ]; then
	BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || BUILD=$PWD/$BUILD
else
	BUILD=$REPO/build
fi
STASIS=$BUILD/stasis
COUNTER=$BUILD/tests/counter
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"

DIR=""
SHOW_LINES=12		# lines of `stasis show` to print

step() {
	printf '\n== %s\n' "$*"
}

# run COMMAND...: show a command, then run it with a timeout.
run() {
	echo "\$ ${*/#$STASIS/stasis}"
	timeout -k 5 "$T_STASIS" "$@"
}

die() {
	echo "demo failed: $*" >&2
	exit 1
}

cleanup() {
	trap - EXIT INT TERM
	kill_tracked "${ALL_PIDS[@]}"
	[ -n "$DIR" ] && rm -rf "$DIR"
}

# clock: the wall clock with milliseconds.
clock() {
	local t=$EPOCHREALTIME
	printf '%(%H:%M:%S)T.%s' "${t%.*}" "${t#*.}" | cut -c 1-12
}

# pid_says PID: what the system says about PID right now.
pid_says() {
	if [ -e "/proc/$1" ]; then
		echo "PID $1 is $(cat "/proc/$1/comm" 2>/dev/null), state $(proc_state "$1")"
	else
		echo "PID $1: no such process"
	fi
}

# watch MS PID [FROM]: show live, for MS milliseconds, every new count the
# counter logs (after FROM, default the current one), with the time and
# what the system says about PID.
watch() {
	local end=$(($(now_ms) + $1)) last=${3:-} n
	[ -n "$last" ] || last=$(last_count "$DIR/log")
	while [ "$(now_ms)" -lt "$end" ]; do
		n=$(last_count "$DIR/log")
		if [ "$n" != "$last" ]; then
			printf '    %s  count %-6s (%s)\n' "$(clock)" "$n" "$(pid_says "$2")"
			last=$n
		fi
		sleep 0.05
	done
}

main() {
	local pid token before gone got first img_size t0

	[ "$(id -u)" = 0 ] || die "run as root (stasis uses ptrace on the demo process)"
	if [ ! -x "$STASIS" ] || [ ! -x "$COUNTER" ]; then
		die "build first: make"
	fi
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	DIR=$(mktemp -d "${TMPDIR:-/tmp}/stasis-demo.XXXXXX") || die "cannot create a temp dir"

	step "Starting a counter: it counts about once per millisecond and logs every 500th count"
	(close_extra_fds
		cd "$DIR" && exec setsid "$COUNTER" "$DIR") </dev/null >>"$DIR/log" 2>&1 &
	pid=$!
	track "$pid"
	disown "$pid"
	wait_file "$DIR/ready" 10 "$pid" || die "the counter did not start"
	read -r pid token <"$DIR/ready"
	echo "counter is running as PID $pid (it keeps a random token, $token, in its memory only)"
	watch 2500 "$pid"

	step "Checkpointing PID $pid into $DIR/img (the dump stops and kills it)"
	t0=$(now_ms)
	run "$STASIS" dump -t "$pid" -D "$DIR/img" || die "dump failed"
	echo "dump took $(($(now_ms) - t0)) ms"
	before=$(last_count "$DIR/log")
	wait_gone "$pid" || die "PID $pid is still there after the dump"
	img_size=$(du -h "$DIR/img/stasis.img" | cut -f1)
	echo "image: $DIR/img/stasis.img, $img_size"
	echo "ps -p $pid: $(ps -p "$pid" -o pid= >/dev/null && echo 'still running?!' || echo 'no such process')"
	echo "last count logged before the checkpoint: $before"

	step "For 1.5 s without the process: the count stands still"
	watch 1500 "$pid"
	gone=$(last_count "$DIR/log")
	[ "$gone" = "$before" ] || die "the count moved ($before -> $gone) while PID $pid was gone"
	echo "    $(clock)  count $gone, unchanged ($(pid_says "$pid"))"

	step "What the image holds"
	run "$STASIS" show -D "$DIR/img" >"$DIR/show" || die "show failed"
	head -n "$SHOW_LINES" "$DIR/show" | sed 's/^/    /'
	[ "$(wc -l <"$DIR/show")" -gt "$SHOW_LINES" ] &&
		echo "    ... ($(($(wc -l <"$DIR/show") - SHOW_LINES)) more lines)"

	step "Restoring it (detached): the same PID comes back"
	t0=$(now_ms)
	run "$STASIS" restore -D "$DIR/img" -d --pidfile "$DIR/pidfile"
	got=$?
	echo "restore took $(($(now_ms) - t0)) ms"
	[ -e "/proc/$pid" ] && track "$pid"
	[ $got = 0 ] || die "restore failed"
	got=$(cat "$DIR/pidfile" 2>/dev/null)
	[ "$got" = "$pid" ] || die "restored as PID '$got', expected $pid"
	echo "pidfile: $got"
	ps -o pid,ppid,stat,args -p "$pid" | sed 's/^/    /'

	step "It counts on from where it stopped (live)"
	watch 2000 "$pid" "$before"
	wait_progress "$DIR/log" "$before" 5 || die "the restored counter does not count"
	first=$(grep -E '^count [0-9]+$' "$DIR/log" | awk -v b="$before" '$2 > b { print $2; exit }')
	echo "last count before the checkpoint: $before; first after the restore: $first; now: $(last_count "$DIR/log")"
	if [ -z "$first" ] || [ "$first" -le "$before" ] || [ "$first" -gt $((before + 1000)) ]; then
		die "the count did not continue from $before"
	fi

	step "The restored process checks its own memory (SIGUSR2) and exits"
	echo "\$ kill -USR2 $pid"
	kill -USR2 "$pid" || die "PID $pid is gone"
	wait_file "$DIR/result" 10 "$pid" || die "no check result from PID $pid"
	wait_gone "$pid" || true
	grep -E '^result: ' "$DIR/log" | tail -n 1 | sed 's/^/    /'
	[ "$(head -n 1 "$DIR/result")" = PASS ] || die "the check failed: $(head -n 1 "$DIR/result")"
	grep -qF "result: PASS token=$token pid=$pid" "$DIR/log" ||
		die "the check did not come from PID $pid with token $token"
	echo "done: PID $pid was checkpointed, gone, restored with the same PID and token $token,"
	echo "      counted on from $before and passed its own memory check"
}

main "$@"
