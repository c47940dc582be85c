#!/usr/bin/env bash
# bench/container.sh - dump and restore of a container next to the same
# tree without namespaces (issue 12's numbers; `make bench-container`).
#
#   bash bench/container.sh        (REPS runs of each, default 7, interleaved)
#   USERNS=1 bash bench/container.sh   (also the container with --user
#                                       --map-root-user, "container-userns")
#
# The container: `unshare --fork --pid --mount --net --ipc --uts` running
# build/tests/container with CT_KIDS=4 (5 processes) and CT_MOUNTS=8 (a
# tmpfs, a bind and 8 more tmpfs: 10 mounts of its own over the copy of
# the host's table), SysV objects, a POSIX queue, a hostname and a veth to
# the host with an address and a route.  The plain tree: the same program
# and children with CT_PLAIN (no namespaces, the IPC objects in ours).
# Each run dumps the tree (killed; image on /dev/shm) and restores it with
# -d; figures are the wall time of the stasis commands (exec to exit) and
# stasis's own "dumped ... in" / "restored ... in" figures, medians with
# min-max.  Targets: dump < 50 ms, restore < 50 ms for the container; a
# miss is reported (MISS).  Exit status 1 only when a step failed.
#
# Only processes this script starts or restores are killed, by PID; the
# veth, the IPC objects of the plain tree and the images go on exit.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
STASIS=$BUILD/stasis
BIN=$BUILD/tests/container
REPS=${REPS:-7}
T_MS=50
W=$(mktemp -d /dev/shm/stasis-bench-ct.XXXXXX)
PIDS=()
FAILED=0

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	ip link del stbh0 2>/dev/null
	plain_ipc_rm
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

plain_ipc_rm() {
	local ids
	[ -r "$W/plain/ipcids" ] || return 0
	read -r -a ids <"$W/plain/ipcids"
	ipcrm -m "${ids[0]}" -s "${ids[1]}" -q "${ids[2]}" 2>/dev/null
	python3 -c 'import ctypes; ctypes.CDLL(None).mq_unlink(b"/ctq")' 2>/dev/null
	rm -f "$W/plain/ipcids"
}

# close_fds: in a subshell before exec, no fd above 2 of ours goes along
close_fds() {
	local f n
	for f in /proc/$BASHPID/fd/*; do
		n=${f##*/}
		[ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-"
	done
}

# reset: after a failed step, nothing of the run is left
reset() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	PIDS=()
	sleep 0.1
	ip link del stbh0 2>/dev/null
	plain_ipc_rm
	FAILED=1
	return 1
}

wait_for() { # FILE: up to 5 s
	local i
	for i in $(seq 500); do [ -e "$1" ] && return 0; sleep 0.01; done
	return 1
}

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# start KIND: the tree in $W/KIND; sets TREE (its root as we see it)
start() {
	local d=$W/$1 pid
	rm -rf "$d" && mkdir -p "$d/ct/t" "$d/ct/b" "$d/ct/src" && echo host >"$d/ct/src/f"
	if [ "$1" != plain ]; then
		local ns=(--fork --pid --mount --net --ipc --uts)
		[ "$1" = ctu ] && ns+=(--user --map-root-user)
		(close_fds; cd "$d" && CT_KIDS=4 CT_MOUNTS=8 exec setsid -f unshare "${ns[@]}" "$BIN" "$d") </dev/null >/dev/null 2>&1
		wait_for "$d/unshared" || return 1
		read -r pid <"$d/unshared"
		PIDS+=("$pid")
		ip link add stbh0 type veth peer name ctv0 netns "$pid" || return 1
		nsenter -t "$pid" -n sh -ec 'ip link set lo up; ip addr add 10.199.81.2/30 dev ctv0
			ip link set ctv0 up; ip route add 10.199.82.0/24 via 10.199.81.1' || return 1
		ip addr add 10.199.81.1/30 dev stbh0 && ip link set stbh0 up || return 1
		touch "$d/netready"
	else
		(close_fds; cd "$d" && CT_KIDS=4 CT_PLAIN=1 exec setsid -f "$BIN" "$d") </dev/null >/dev/null 2>&1
	fi
	wait_for "$d/ready" || return 1
	read -r TREE _ <"$d/ready"
	PIDS+=("$TREE" $(cat "/proc/$TREE/task/$TREE/children"))
}

# cycle KIND: one dump and restore; appends "dump_ms restore_ms dump_self restore_self"
cycle() {
	local d=$W/$1 t0 td tr sd sr
	start "$1" || { echo "$1: cannot start the tree" >&2; reset; return 1; }
	sleep 0.2
	t0=$(date +%s%N)
	"$STASIS" dump -t "$TREE" -D "$d/img" -v3 -o "$d/dump.log" 2>"$d/dump.err" || { echo "$1: dump failed: $(head -n 1 "$d/dump.err")" >&2; reset; return 1; }
	td=$(ms_since "$t0")
	while [ -e "/proc/$TREE" ]; do sleep 0.005; done
	[ "$1" != plain ] && while ip link show stbh0 >/dev/null 2>&1; do sleep 0.005; done
	t0=$(date +%s%N)
	"$STASIS" restore -D "$d/img" -d -v3 -o "$d/restore.log" 2>"$d/restore.err" || { echo "$1: restore failed: $(head -n 1 "$d/restore.err")" >&2; reset; return 1; }
	tr=$(ms_since "$t0")
	sd=$(sed -n 's/^dumped .* in \([0-9.]*\) ms$/\1/p' "$d/dump.log")
	sr=$(sed -n 's/^restored .* in \([0-9.]*\) ms$/\1/p' "$d/restore.log")
	kill -USR2 "$TREE"
	wait_for "$d/result"
	[ "$(head -n 1 "$d/result" 2>/dev/null)" = PASS ] || { echo "$1: the restored tree's check: $(head -n 1 "$d/result" 2>/dev/null)" >&2; FAILED=1; }
	while [ -e "/proc/$TREE" ]; do sleep 0.005; done
	rm -rf "$d/img"
	[ "$1" = plain ] && plain_ipc_rm
	[ "$1" != plain ] && ip link del stbh0 2>/dev/null
	echo "$td $tr ${sd:-?} ${sr:-?}" >>"$W/$1.times"
}

# stat COLUMN FILE: "median (min-max)"
stat() {
	cut -d' ' -f"$1" "$2" | sort -n | awk '{v[NR] = $1} END { if (!NR) { print "-"; exit }
		printf "%s (%s-%s)", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
median() { cut -d' ' -f"$1" "$2" | sort -n | awk '{v[NR] = $1} END { print NR ? v[int((NR + 1) / 2)] : 999999 }'; }

[ -x "$STASIS" ] && [ -x "$BIN" ] || { echo "build first: make" >&2; exit 1; }
echo "load: $(uptime)" >&2
for ((i = 1; i <= REPS; i++)); do
	echo "run $i/$REPS" >&2
	cycle ct
	[ -n "${USERNS:-}" ] && cycle ctu
	cycle plain
done
printf '%-16s %-22s %-22s %-22s %-22s\n' tree "dump ms (wall)" "restore ms (wall)" "dump ms (stasis)" "restore ms (stasis)"
for k in ct ctu plain; do
	[ -s "$W/$k.times" ] || continue
	case $k in ct) name=container ;; ctu) name=container-userns ;; *) name=plain ;; esac
	printf '%-16s %-22s %-22s %-22s %-22s\n' "$name" \
		"$(stat 1 "$W/$k.times")" "$(stat 2 "$W/$k.times")" "$(stat 3 "$W/$k.times")" "$(stat 4 "$W/$k.times")"
done
if [ -s "$W/ct.times" ]; then
	[ "$(median 1 "$W/ct.times")" -lt $T_MS ] && r=ok || r=MISS
	echo "container dump < $T_MS ms: $r"
	[ "$(median 2 "$W/ct.times")" -lt $T_MS ] && r=ok || r=MISS
	echo "container restore < $T_MS ms: $r"
fi
exit $FAILED
