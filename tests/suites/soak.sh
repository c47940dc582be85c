# tests/suites/soak.sh - many checkpoint/restore cycles in a row of one busy
# program (sourced by tests/run.sh).  Scenario: tests/scenarios/soak_busy.c
# (threads streaming checked bytes through a pipe, a unix socketpair and a
# TCP pair, computing, reading a timerfd, taking POSIX timer signals).
#
# Each cycle: `dump` (the tree is killed), `restore -d`, and every
# SOAK_EVERY_R-th cycle a `dump -R` before them.  Checked at every cycle:
# the program's own verdict (every stream, thread and timer moved on, no
# byte lost or doubled), its fd count and virtual size as at the start (it
# allocates nothing after ready), its resident size bounded, none of its
# threads stopped or traced, no stasis process left over, no nft table
# of its own left; and at the end that the max RSS of the stasis commands did not grow
# with the cycle number.  A summary line goes to $TDIR/log and stdout:
# cycles, seconds, the max RSS of the first and last dumps and restores.

SOAK_EVERY_R=${SOAK_EVERY_R:-10}
# how much a stasis command's max RSS may grow from the first quarter of the
# run to the last, kB (allocator noise; a leak per cycle is far above it
# after a few hundred cycles, and the short run checks only gross growth)
SOAK_RSS_SLACK=${SOAK_RSS_SLACK:-1024}
# how much the program's own resident size may exceed its first value, kB
SOAK_PROG_RSS_SLACK=${SOAK_PROG_RSS_SLACK:-4096}

# soak_stasis NAME ARGS...: run `stasis ARGS...` under /usr/bin/time; its
# max RSS (kB) is appended to $TDIR/rss.NAME.
soak_stasis() {
	local name=$1 rc
	shift
	run_timed "$T_STASIS" "$TDIR/$name.out" "$TDIR/$name.err" \
		/usr/bin/time -f %M -o "$TDIR/$name.time" "$STASIS" "$@"
	rc=$?
	[ $rc = 0 ] && tail -n 1 "$TDIR/$name.time" >>"$TDIR/rss.$name"
	return $rc
}

# soak_verdict WHAT: ask the program for its verdict (SIGUSR1); it must be "ok".
soak_verdict() {
	local v
	rm -f "$TDIR/verdict"
	kill -USR1 "$SCN_PID" 2>/dev/null || { bad "$1: process $SCN_PID is gone"; return 1; }
	wait_file "$TDIR/verdict" 5 "$SCN_PID" || { bad "$1: no verdict within 5 s (state $(proc_state "$SCN_PID"))"; return 1; }
	v=$(<"$TDIR/verdict")
	[ "${v%% *}" = ok ] || { bad "$1: $v"; return 1; }
	SOAK_LAST=$v
}

# soak_fine WHAT: the program's fds, size and threads, and no leftovers.
soak_fine() {
	local fds vsz rss t tables p
	fds=$(find "/proc/$SCN_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	[ "$fds" = "$SOAK_FDS" ] || { bad "$1: $fds fds open, $SOAK_FDS at the start: $(ls -l /proc/$SCN_PID/fd | tail -n +2 | awk '{ print $9 $10 $11 }' | tr '\n' ' ')"; return 1; }
	vsz=$(status_field "$SCN_PID" VmSize) rss=$(status_field "$SCN_PID" VmRSS)
	vsz=${vsz% kB} rss=${rss% kB}
	[ "$vsz" = "$SOAK_VSZ" ] || { bad "$1: VmSize $vsz kB, $SOAK_VSZ kB at the start"; return 1; }
	[ "$rss" -le $((SOAK_RSS + SOAK_PROG_RSS_SLACK)) ] ||
		{ bad "$1: VmRSS $rss kB, $SOAK_RSS kB at the start"; return 1; }
	for t in /proc/"$SCN_PID"/task/*; do
		case $(proc_state "$SCN_PID/task/${t##*/}") in
		T | t) bad "$1: thread ${t##*/} is stopped or traced"; return 1 ;;
		esac
		[ "$(status_field "$SCN_PID/task/${t##*/}" TracerPid)" = 0 ] ||
			{ bad "$1: thread ${t##*/} is traced"; return 1; }
	done
	[ "$(status_field "$SCN_PID" Threads)" = "$SOAK_THREADS" ] ||
		{ bad "$1: $(status_field "$SCN_PID" Threads) threads, $SOAK_THREADS at the start"; return 1; }
	# the lock tables of this tree (other tests may hold their own meanwhile)
	tables=$(nft_stasis_tables | grep "^stasis-held-$SCN_PID-")
	[ -z "$tables" ] || { bad "$1: nft table left: ${tables//$'\n'/ }"; return 1; }
	# a stasis (or a TCP guardian, a fork of it) of this test's images
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$SOAK_EXE" ] &&
			[[ "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" == *" $TDIR/"* ]] &&
			{ bad "$1: a stasis process is left: ${p#/proc/} ($(tr '\0' ' ' <"$p/cmdline"))"; return 1; }
	done
	return 0
}

# soak_growth NAME: the max RSS of the last quarter of the NAME commands
# exceeds that of the first quarter by at most SOAK_RSS_SLACK kB.
soak_growth() {
	local f=$TDIR/rss.$1 n q first last
	n=$(wc -l <"$f")
	q=$(((n + 3) / 4))
	first=$(head -n "$q" "$f" | sort -n | tail -n 1)
	last=$(tail -n "$q" "$f" | sort -n | tail -n 1)
	echo "$1: $n runs, max RSS first $(head -n 1 "$f") kB, last $(tail -n 1 "$f") kB, max of first quarter $first kB, of last quarter $last kB" >>"$TDIR/summary"
	[ "$last" -le $((first + SOAK_RSS_SLACK)) ] ||
		{ bad "stasis $1 grew: max RSS $first kB in the first $q runs, $last kB in the last $q"; return 1; }
}

# soak_restore WHAT IMG: restore -d IMG.  On a machine shared with other
# test runs (pid_max 32768) a TID of the tree is now and then taken by
# someone else's process between the dump and the restore; the restore
# then refuses, rightly, with one line: wait (60 s at most) until that PID
# is free and restore again (counted in SOAK_TAKEN).
soak_restore() {
	local what=$1 img=$2 try tid rc
	for try in 1 2 3; do
		soak_stasis restore restore -D "$img" -d && return 0
		rc=$?
		tid=$(sed -nE 's/^Error: (tid|pid) ([0-9]+) is taken by another process.*/\2/p' "$TDIR/restore.err")
		[ -n "$tid" ] || { rc_ok "$what: restore" $rc "$TDIR/restore.err"; return 1; }
		SOAK_TAKEN=$((SOAK_TAKEN + 1))
		echo "$what: $(head -n 1 "$TDIR/restore.err"); waiting for it" >>"$TDIR/log"
		wait_pid_free "$tid" 60 || { bad "$what: PID $tid still taken after 60 s"; return 1; }
	done
	bad "$what: restore refused 3 times: $(head -n 1 "$TDIR/restore.err")"
}

# test_soak CYCLES SECONDS: CYCLES dump/restore cycles of soak_busy within
# SECONDS.
test_soak() {
	local cycles=$1 secs=$2 i t0 limit img=$TDIR/img took
	need_stasis || return 1
	[ -x /usr/bin/time ] || apt-get install -y time >/dev/null 2>&1
	[ -x /usr/bin/time ] || { REASON="no /usr/bin/time (apt-get install time failed)"; return 77; }
	SOAK_EXE=$(readlink -f "$STASIS")
	start_scenario soak_busy || return 1
	soak_verdict "at the start" || return 1
	SOAK_FDS=$(find "/proc/$SCN_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
	SOAK_VSZ=$(status_field "$SCN_PID" VmSize) SOAK_RSS=$(status_field "$SCN_PID" VmRSS)
	SOAK_VSZ=${SOAK_VSZ% kB} SOAK_RSS=${SOAK_RSS% kB}
	SOAK_THREADS=$(status_field "$SCN_PID" Threads)
	SOAK_TAKEN=0
	t0=$(now_ms)
	limit=$((t0 + secs * 1000))
	for i in $(seq 1 "$cycles"); do
		if [ $((i % SOAK_EVERY_R)) = 0 ]; then
			rm -rf "$img"
			soak_stasis dumpR dump -t "$SCN_PID" -D "$img" -R --tcp-established ||
				{ rc_ok "cycle $i: dump -R" $? "$TDIR/dumpR.err"; return 1; }
			soak_verdict "cycle $i, after dump -R" || return 1
		fi
		rm -rf "$img"
		soak_stasis dump dump -t "$SCN_PID" -D "$img" --tcp-established ||
			{ rc_ok "cycle $i: dump" $? "$TDIR/dump.err"; return 1; }
		wait_pid_free "$SCN_PID" || { bad "cycle $i: PID $SCN_PID still used after the dump"; return 1; }
		soak_restore "cycle $i" "$img" || return 1
		adopt "$SCN_PID"
		SCN_START=$(proc_start "$SCN_PID")
		soak_verdict "cycle $i" || return 1
		soak_fine "cycle $i" || return 1
		[ "$(now_ms)" -lt $limit ] || { bad "only $i of $cycles cycles within ${secs}s"; return 1; }
	done
	took=$(($(now_ms) - t0))
	echo "$cycles cycles in $((took / 1000)).$((took % 1000 / 100)) s ($SOAK_TAKEN restores refused for a PID taken meanwhile, then redone); last verdict: $SOAK_LAST" >"$TDIR/summary"
	soak_growth dump || { cat "$TDIR/summary" >>"$TDIR/log"; return 1; }
	soak_growth restore || { cat "$TDIR/summary" >>"$TDIR/log"; return 1; }
	soak_growth dumpR || { cat "$TDIR/summary" >>"$TDIR/log"; return 1; }
	sed 's/^/    /' "$TDIR/summary"
	check_scenario
}

register soak-short/x20 test_soak 20 40
if [ -n "${STASIS_SOAK:-}" ]; then
	register soak/cr-x1000 test_soak "${SOAK_CYCLES:-1000}" 1800
fi

# soak_start: soak_busy started, its first verdict taken, stasis's path known.
soak_start() {
	need_stasis || return 1
	SOAK_EXE=$(readlink -f "$STASIS")
	start_scenario soak_busy || return 1
	soak_verdict "at the start"
}

# soak_after_kill WHAT: a killed dump let the tree go: untraced, running,
# its own verdict fine (its TCP streams move: no socket left in repair
# mode), and no guardian or stasis process left.
soak_after_kill() {
	untraced "$SCN_PID" || { bad "$1: process $SCN_PID still traced"; return 1; }
	[ "$(proc_start "$SCN_PID")" = "$SCN_START" ] || { bad "$1: process $SCN_PID is gone"; return 1; }
	soak_verdict "$1" || return 1
	SOAK_FDS=$(find "/proc/$SCN_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
	SOAK_VSZ=$(status_field "$SCN_PID" VmSize) SOAK_RSS=$(status_field "$SCN_PID" VmRSS)
	SOAK_VSZ=${SOAK_VSZ% kB} SOAK_RSS=${SOAK_RSS% kB} SOAK_PROG_RSS_SLACK=1000000
	SOAK_THREADS=$(status_field "$SCN_PID" Threads)
	soak_fine "$1"
}

# test_soak_kill_at STAGE...: dump -R --tcp-established killed with SIGKILL
# at each STAGE (STASIS_TEST_CRASH=STAGE-kill), its TCP sockets in repair
# mode from the local stage on; the tree must go on as before each time.
test_soak_kill_at() {
	local st rc
	soak_start || return 1
	for st in "$@"; do
		rm -rf "$TDIR/img"
		STASIS_TEST_CRASH=$st-kill stasis_cmd kill dump -t "$SCN_PID" -D "$TDIR/img" -R --tcp-established
		rc=$?
		[ $rc = 137 ] || { bad "the dump killed at $st exited with $rc"; return 1; }
		soak_after_kill "killed at $st" || return 1
	done
	check_scenario
}

# test_soak_kill_random RUNS MAX_US|auto: RUNS times, dump -R --tcp-established
# killed a random 0..MAX_US us after it started; the verdict after each.
test_soak_kill_random() {
	local runs=$1 max=$2 i out killed=0 t0
	soak_start || return 1
	if [ "$max" = auto ]; then # as in rescue.sh: one whole dump's time
		t0=$(now_ms)
		"$STASIS" dump -t "$SCN_PID" -D "$TDIR/img" -R --tcp-established 2>/dev/null ||
			{ bad "a plain dump -R failed"; return 1; }
		max=$((($(now_ms) - t0) * 1000))
	fi
	for i in $(seq 1 "$runs"); do
		rm -rf "$TDIR/img"
		out=$("$BUILD/tools/killat" "$max" "$STASIS" dump -t "$SCN_PID" -D "$TDIR/img" -R --tcp-established 2>/dev/null)
		case $out in killed*) killed=$((killed + 1)) ;; esac
		soak_after_kill "run $i ($out)" || return 1
	done
	echo "$killed of $runs dumps killed in the middle" | tee -a "$TDIR/log" | sed 's/^/    /'
	[ $killed -gt $((runs / 4)) ] || { bad "only $killed of $runs dumps were killed before they ended"; return 1; }
	check_scenario
}

register soak-short/kill-at-stages test_soak_kill_at frozen remote threads local records

# test_soak_kill_in_repair RUNS [SLOW_MS]: dump -R --tcp-established killed
# RUNS times while one of soak_busy's busy TCP sockets is in repair mode
# (its first, then its second, ...): the tree's streams must go on whole
# each time.  SLOW_MS: the guardian waits that long before it puts the
# sockets back, so the tree surely runs before it (it must be held).
test_soak_kill_in_repair() {
	local runs=$1 slow=${2:-0} i rc
	soak_start || return 1
	for i in $(seq 1 "$runs"); do
		rm -rf "$TDIR/img"
		STASIS_TEST_GUARD_SLOW=$slow STASIS_TEST_CRASH=tcp-repair-kill:$((1 + i % 2)) \
			stasis_cmd kill dump -t "$SCN_PID" -D "$TDIR/img" -R --tcp-established
		rc=$?
		[ $rc = 137 ] || { bad "run $i: the dump killed in repair mode exited with $rc"; return 1; }
		soak_after_kill "run $i, killed in repair mode" || return 1
	done
	check_scenario
}

register soak-short/kill-in-repair test_soak_kill_in_repair 20
register soak-short/kill-in-repair-slow-guardian test_soak_kill_in_repair 6 100
register soak-short/kill-random test_soak_kill_random 12 auto
if [ -n "${STASIS_SOAK:-}" ]; then
	register soak/kill-random-busy test_soak_kill_random 500 80000
fi
