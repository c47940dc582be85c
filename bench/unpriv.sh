#!/usr/bin/env bash
# bench/unpriv.sh - what a normal user's checkpoint costs against root's:
# whole-process times of `stasis dump` and `stasis restore -d` of one
# sleeping process, root's and a user's interleaved (A/B), REPS times
# each; medians and ranges in ms.  Run as root (it makes the user with
# useradd and removes it); needs setpriv (util-linux).
#
#   bash bench/unpriv.sh            # REPS=9
#
# The user's restore makes a user and a PID namespace and stasis-init
# besides the tree: that is most of the difference.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STASIS=${STASIS:-$REPO/build/stasis}
REPS=${REPS:-9}
[ "$(id -u)" = 0 ] || { echo "bench/unpriv.sh: run as root" >&2; exit 1; }
[ -x "$STASIS" ] || { echo "bench/unpriv.sh: no $STASIS (make first)" >&2; exit 1; }
U=stasis-bench-$$
DIR=$(mktemp -d /tmp/stasis-unpriv-bench.XXXXXX)
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	sleep 0.2
	userdel "$U" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
useradd -M -N -d /nonexistent -s /usr/sbin/nologin "$U" || exit 1
UID_=$(id -u "$U") GID_=$(id -g "$U")
chmod 0755 "$DIR"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# one WHO(root|user): start a sleeper, time its dump and its restore; "D R"
one() {
	local who=$1 run=() pid t0 t1 t2 img=$DIR/img-$1-$2
	[ "$who" = user ] && run=(setpriv --reuid="$UID_" --regid="$GID_" --init-groups --inh-caps=-all)
	mkdir -p "$img" && chmod 0777 "$img"
	(for f in /proc/self/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null
		exec "${run[@]}" setsid sleep 1000) </dev/null >/dev/null 2>&1 &
	pid=$!
	disown "$pid"
	PIDS+=("$pid")
	sleep 0.1
	t0=$(now_ms)
	"${run[@]}" "$STASIS" dump -t "$pid" -D "$img" || return 1
	t1=$(now_ms)
	"${run[@]}" "$STASIS" restore -D "$img" -d --pidfile "$img/pid" || return 1
	t2=$(now_ms)
	PIDS+=("$(cat "$img/pid")")
	kill -KILL "$(cat "$img/pid")"
	echo "$((t1 - t0)) $((t2 - t1))"
}

median() { sort -n | awk '{ a[NR] = $1 } END { printf "%d (%d-%d)", a[int((NR + 1) / 2)], a[1], a[NR] }'; }

: >"$DIR/root" && : >"$DIR/user"
for i in $(seq "$REPS"); do
	one root "$i" >>"$DIR/root" || { echo "root run $i failed" >&2; exit 1; }
	one user "$i" >>"$DIR/user" || { echo "user run $i failed" >&2; exit 1; }
done
echo "load: $(uptime | sed 's/.*load average: //')"
printf '%-6s %-22s %-22s\n' who "dump ms median (range)" "restore ms median (range)"
for w in root user; do
	printf '%-6s %-22s %-22s\n' "$w" "$(cut -d' ' -f1 "$DIR/$w" | median)" \
		"$(cut -d' ' -f2 "$DIR/$w" | median)"
done
