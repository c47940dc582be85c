#!/usr/bin/env bash
# bench/ab.sh - interleaved A/B of the task-count figures (issue 14).
#
#   bash bench/ab.sh BUILD_A BUILD_B [ROUNDS]
#
# BUILD_A and BUILD_B are build directories (each with its `stasis`; the
# bench helpers are built into each).  Each round runs `bench/run.sh
# tasks` once with A and once with B (which goes first alternates), with
# TREE_REPS=1 and SMALL_REPS=3 per run unless set, and takes the six
# figures of its "tasks:" line: sleep's dump and restore (wall, ms) and
# the cost of each extra process (100-process tree) and thread
# (500-thread process), dump and restore (wall, ms).  Prints, per figure,
# the median over the rounds with min-max and the load (uptime).
# ROUNDS defaults to 5.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 2 ] || { echo "usage: bash bench/ab.sh BUILD_A BUILD_B [ROUNDS]" >&2; exit 2; }
A=$(cd "$1" && pwd) && B=$(cd "$2" && pwd) || exit 2
ROUNDS=${3:-5}
export TREE_REPS=${TREE_REPS:-1} SMALL_REPS=${SMALL_REPS:-3}
FIGS="sleep_dump sleep_restore proc_dump proc_restore thread_dump thread_restore"
declare -A V=()

echo "A: $A ($("$A/stasis" --version 2>/dev/null | head -1))"
echo "B: $B ($("$B/stasis" --version 2>/dev/null | head -1))"
echo "start: $(uptime)"
for ((r = 1; r <= ROUNDS; r++)); do
	order="A B"
	[ $((r % 2)) = 0 ] && order="B A"
	for w in $order; do
		[ $w = A ] && d=$A || d=$B
		line=$(BUILD=$d bash "$REPO/bench/run.sh" tasks 2>/dev/null | grep '^tasks:')
		echo "round $r $w: ${line#tasks: }"
		for f in $FIGS; do
			v=$(sed -nE "s/.* $f=([^ ]+).*/\1/p" <<<" ${line#tasks:}")
			[ -n "$v" ] && [ "$v" != - ] && V[$w.$f]="${V[$w.$f]:-} $v"
		done
	done
done
echo "end: $(uptime)"
stat() { # median (min-max) of the values
	printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print "-"; exit }
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3f (%.3f-%.3f, n=%d)", m, v[1], v[NR], NR }'
}
printf '%-16s %-32s %-32s\n' "ms (wall)" "A: median (min-max)" "B: median (min-max)"
for f in $FIGS; do
	printf '%-16s %-32s %-32s\n' "$f" "$(stat "${V[A.$f]:-}")" "$(stat "${V[B.$f]:-}")"
done
