#!/usr/bin/env bash
# tests/demo.sh - a live checkpoint/restore of a counting process
# (`make demo`).  Needs root and a built tree (build/stasis, build/tests).
#
# Starts build/tests/counter, lets it count, dumps it (which stops it),
# shows the image, restores it with the same PID, and shows that it goes
# on counting from where it was.  Cleans up whatever happens.
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

# show_counts N: the last N counter lines of the log.
show_counts() {
	grep -E '^count [0-9]+$' "$DIR/log" | tail -n "$1" | sed 's/^/    /'
}

main() {
	local pid before after first

	[ "$(id -u)" = 0 ] || die "run as root (stasis uses ptrace on the demo process)"
	if [ ! -x "$STASIS" ] || [ ! -x "$COUNTER" ]; then
		die "build first: make"
	fi
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	DIR=$(mktemp -d "${TMPDIR:-/tmp}/stasis-demo.XXXXXX") || die "cannot create a temp dir"

	step "Starting a counter: it counts about once per millisecond and logs every 500"
	(close_extra_fds
		cd "$DIR" && exec setsid "$COUNTER" "$DIR") </dev/null >>"$DIR/log" 2>&1 &
	track $!
	disown $!
	wait_file "$DIR/ready" 10 $! || die "the counter did not start"
	read -r pid _ <"$DIR/ready"
	echo "counter is running as PID $pid"
	sleep 2
	show_counts 3

	step "Checkpointing PID $pid into $DIR/img (this stops the process)"
	run "$STASIS" dump -t "$pid" -D "$DIR/img" || die "dump failed"
	before=$(last_count "$DIR/log")
	wait_gone "$pid" || die "PID $pid is still there after the dump"
	echo "PID $pid is gone: $(ps -p "$pid" >/dev/null && echo 'still running?!' || echo 'no such process')"
	echo "last count logged before the checkpoint: $before"
	echo "image: $(du -h "$DIR/img/stasis.img" | cut -f1)"
	run "$STASIS" show -D "$DIR/img" | sed 's/^/    /'
	[ "${PIPESTATUS[0]}" = 0 ] || die "show failed"

	step "Waiting a moment, then restoring it (same PID, detached)"
	sleep 1
	run "$STASIS" restore -D "$DIR/img" -d || die "restore failed"
	[ -e "/proc/$pid" ] || die "PID $pid did not come back"
	track "$pid"
	ps -o pid,stat,etime,args -p "$pid" | sed 's/^/    /'

	step "It goes on counting from where it stopped"
	wait_progress "$DIR/log" "$before" 5 || die "the restored counter does not count"
	sleep 1.5
	first=$(grep -E '^count [0-9]+$' "$DIR/log" | awk -v b="$before" '$2 > b { print $2; exit }')
	after=$(last_count "$DIR/log")
	show_counts 6
	echo "before the checkpoint: $before; first count after the restore: $first; now: $after"
	if [ -z "$first" ] || [ "$first" -le "$before" ] || [ "$first" -gt $((before + 1000)) ]; then
		die "the count did not continue from $before"
	fi

	step "Stopping the demo process"
	kill -KILL "$pid"
	wait_gone "$pid" || true
	echo "done: PID $pid was checkpointed, restored and kept counting"
}

main "$@"
