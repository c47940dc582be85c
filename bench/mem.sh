#!/usr/bin/env bash
# bench/mem.sh - memory dump/restore against dd, with variants interleaved.
#
#   bash bench/mem.sh [MIB]            (`make bench-mem`; MIB default 1024)
#
# Environment: REPS (default 5), PREWARM=0, BUILD, CC, and
#   DUMP_VARIANTS    space-separated env assignments, one dump variant each
#                    (default "STASIS_DUMP_WORKERS=1 STASIS_DUMP_WORKERS=2")
#   RESTORE_VARIANTS the same for restore (default "STASIS_UFFD_WORKERS=0
#                    STASIS_UFFD_WORKERS=1 STASIS_UFFD_WORKERS=2")
#                    ("-" is the plain build, no variable; BIN=PATH runs
#                    the stasis binary PATH instead, for A/B of two builds;
#                    a comma joins several: BIN=/tmp/old,STASIS_UFFD_WORKERS=2).
#
# Each repetition does, every timed step after the same prewarm (touch
# MIB+256 MiB in a throwaway memhog and free it): dd of MIB MiB from
# /dev/zero into /dev/shm (conv=fdatasync), then one dump of a fresh
# memhog MIB per dump variant, then one restore -d of the last image per
# restore variant (each restored process checked for its PID and RSS,
# then killed).  Prints per step the median, min and max wall time and the
# median as a percentage of the same run's dd median, stasis's own peak
# RSS, the median CPU time (user + system of all its threads: robust when
# the machine is shared, where wall times are not), and the image size
# against the touched memory.  Only processes it
# started or restored are killed (by PID); the images go on exit.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
STASIS=$BUILD/stasis
BB=$BUILD/bench
CC=${CC:-gcc}
MIB=${1:-1024}
REPS=${REPS:-5}
PREWARM=${PREWARM:-1}
DUMP_VARIANTS=${DUMP_VARIANTS:-"STASIS_DUMP_WORKERS=1 STASIS_DUMP_WORKERS=2"}
RESTORE_VARIANTS=${RESTORE_VARIANTS:-"STASIS_UFFD_WORKERS=0 STASIS_UFFD_WORKERS=1 STASIS_UFFD_WORKERS=2"}
SHM=/dev/shm/stasis-mem.$$
WORK=$(mktemp -d /tmp/stasis-mem.XXXXXX) || exit 1
declare -A OURS=()	# pid -> start time, of every process started/restored
declare -A T=()		# "step" -> list of wall ms
declare -A R=()		# "step" -> max ru_maxrss KiB
declare -A C=()		# "step" -> list of CPU ms (user + system, all threads)
IMGSZ=0 FAILED=0 PID=""

note() { echo "$*" >&2; }
start_time() { awk '{ sub(/.*\) /, ""); split($0, f, " "); print f[20] }' "/proc/$1/stat" 2>/dev/null; }
ours() { [ -n "${OURS[$1]:-}" ] && [ "$(start_time "$1")" = "${OURS[$1]}" ]; }
track() { OURS[$1]=$(start_time "$1"); }
gone() {
	local i
	for ((i = 0; i < 1000; i++)); do
		[ -e "/proc/$1" ] || return 0
		wait "$1" 2>/dev/null
		sleep 0.01
	done
	return 1
}
finish() {
	ours "$1" && kill -KILL "$1" 2>/dev/null
	gone "$1"
	unset "OURS[$1]"
}
cleanup() {
	local p
	for p in "${!OURS[@]}"; do finish "$p"; done
	rm -rf "$SHM" "$WORK"
}
# what the caller's shell left open above fd 2 would be the targets' too
for fd in /proc/$$/fd/*; do
	n=${fd##*/}
	[ "$n" -gt 2 ] 2>/dev/null && [ "$n" -lt 255 ] && eval "exec $n>&-" 2>/dev/null
done
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in memhog maxrss; do
	if [ ! -x "$BB/$p" ] || [ "$REPO/bench/$p.c" -nt "$BB/$p" ]; then
		mkdir -p "$BB" && $CC -O2 -Wall -o "$BB/$p" "$REPO/bench/$p.c" || exit 1
	fi
done
[ -x "$STASIS" ] || { note "build stasis first (make)"; exit 1; }
mkdir -p "$SHM"

# memhog MIB: start one, wait until touched; sets PID
memhog() {
	local ready=$WORK/ready i
	rm -f "$ready"
	"$BB/memhog" "$1" "$ready" </dev/null >/dev/null 2>&1 &
	PID=$!
	disown "$PID"
	track "$PID"
	for ((i = 0; i < 6000; i++)); do
		[ -e "$ready" ] && return 0
		[ -e "/proc/$PID" ] || return 1
		sleep 0.01
	done
	return 1
}
prewarm() {
	[ "$PREWARM" = 1 ] || return 0
	local keep=$PID
	memhog $((MIB + 256)) || return 1
	finish "$PID"
	PID=$keep
}
# timed STEP VARIANT CMD...: run CMD under maxrss as VARIANT says; records it
timed() {
	local step=$1 env=$2 wall rss
	shift 2
	local bin=$1 a envs=()
	shift
	IFS=, read -r -a a <<<"$env"
	for env in "${a[@]}"; do
		case $env in
		-) ;;
		BIN=*) bin=${env#BIN=} ;;
		*) envs+=("$env") ;;
		esac
	done
	env "${envs[@]}" "$BB/maxrss" "$WORK/stat" "$bin" "$@" || { note "  $step failed: $(grep -m1 -i error "$WORK/log" 2>/dev/null)"; FAILED=1; return 1; }
	read -r wall rss _ cpu <"$WORK/stat"
	T[$step]="${T[$step]:-} $(awk -v n="$wall" 'BEGIN { printf "%.1f", n / 1e6 }')"
	C[$step]="${C[$step]:-} $(awk -v n="${cpu:-0}" 'BEGIN { printf "%.1f", n / 1e6 }')"
	[ "$rss" -gt "${R[$step]:-0}" ] && R[$step]=$rss
	return 0
}

for ((rep = 1; rep <= REPS; rep++)); do
	note "run $rep/$REPS ($(uptime | sed 's/.*load/load/'))"
	prewarm && timed dd - dd if=/dev/zero of="$SHM/dd" bs=1M count="$MIB" conv=fdatasync 2>"$WORK/log"
	rm -f "$SHM/dd"
	for v in $DUMP_VARIANTS; do
		rm -rf "$SHM/img"
		memhog "$MIB" || { note "memhog failed"; FAILED=1; continue; }
		pid=$PID
		prewarm
		timed "dump $v" "$v" "$STASIS" dump -t "$pid" -D "$SHM/img" -v3 2>"$WORK/log"
		IMGSZ=$(stat -c %s "$SHM/img/stasis.img" 2>/dev/null || echo 0)
		finish "$pid"
	done
	for v in $RESTORE_VARIANTS; do
		prewarm
		timed "restore $v" "$v" "$STASIS" restore -D "$SHM/img" -d --pidfile "$WORK/pid" -v3 2>"$WORK/log" || continue
		rpid=$(cat "$WORK/pid")
		track "$rpid"
		rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$rpid/status" 2>/dev/null)
		[ "${rss:-0}" -ge $((MIB * 1024 * 99 / 100)) ] || { note "  restored pid $rpid: RSS ${rss:-?} KiB"; FAILED=1; }
		grep -h "by userfaultfd\|pages by" "$WORK/log" | head -n 2 | sed 's/^/    /' >&2
		finish "$rpid"
	done
done

stats() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ a[NR] = $1 } END { printf "%s %s %s", a[int((NR + 1) / 2)], a[1], a[NR] }'; }
read -r ddm _ <<<"$(stats "${T[dd]:-}")"
echo "memory: $MIB MiB touched anonymous memory, image and dd file on /dev/shm; $REPS runs, interleaved"
echo "  $(uname -r), $(nproc) CPUs, $(uptime | sed 's/.*load/load/')"
printf "  %-36s %9s %9s %9s %7s %8s %9s %9s\n" step median min max "of dd" MB/s "peak RSS" "CPU ms"
for step in dd $(for v in $DUMP_VARIANTS; do echo "dump_$v"; done) $(for v in $RESTORE_VARIANTS; do echo "restore_$v"; done); do
	step=${step/_/ }
	[ -n "${T[$step]:-}" ] || continue
	read -r med lo hi <<<"$(stats "${T[$step]}")"
	read -r cmed _ <<<"$(stats "${C[$step]}")"
	printf "  %-36s %9s %9s %9s %6s%% %8s %5s MiB %9s   (runs:%s)\n" "$step" "$med" "$lo" "$hi" \
		"$(awk -v d="$ddm" -v m="$med" 'BEGIN { printf "%.0f", 100 * d / m }')" \
		"$(awk -v b=$((MIB << 20)) -v m="$med" 'BEGIN { printf "%.0f", b / m / 1e3 }')" \
		"$(awk -v k="${R[$step]}" 'BEGIN { printf "%.1f", k / 1024 }')" "$cmed" "${T[$step]}"
done
echo "  image $IMGSZ bytes, $(awk -v s="$IMGSZ" -v b=$((MIB << 20)) 'BEGIN { printf "%.5f", s / b }') x touched"
exit $FAILED
