# tests/suites/unpriv.sh - a normal user dumps and restores its own trees
# (sourced by tests/run.sh).
#
# Each test makes a user of its own (useradd; "stasis-uNNNN", NNNN the
# runner's PID), runs a scenario as that user, and stasis as that user with
# the plain commands (`dump -t PID -D DIR`, `restore -D DIR -d`): the
# restore, lacking CAP_CHECKPOINT_RESTORE, goes into a new user and PID
# namespace by itself.  The test kills what it started and removes the
# user again, whatever its outcome.

UP_USER=""	# the user of the current test
UP_UID="" UP_GID=""

# up_begin: make the test's user; its directory TDIR is then the user's.
up_begin() {
	command -v setpriv >/dev/null 2>&1 || apt-get install -y util-linux >/dev/null 2>&1
	command -v setpriv >/dev/null 2>&1 || { REASON="no setpriv(1) (util-linux)"; return 77; }
	command -v useradd >/dev/null 2>&1 || apt-get install -y passwd >/dev/null 2>&1
	command -v useradd >/dev/null 2>&1 || { REASON="no useradd(8) (passwd)"; return 77; }
	[ "$(id -u)" = 0 ] || { REASON="needs root to make a test user"; return 77; }
	UP_USER=stasis-u$$
	if ! id "$UP_USER" >/dev/null 2>&1; then
		useradd -M -N -d /nonexistent -s /usr/sbin/nologin "$UP_USER" 2>"$TDIR/useradd.err" ||
			{ UP_USER=""; bad "useradd failed: $(head -n 1 "$TDIR/useradd.err")"; return 1; }
	fi
	UP_UID=$(id -u "$UP_USER") UP_GID=$(id -g "$UP_USER")
	chmod 0711 "$ROOT"
	chown "$UP_USER:" "$TDIR"
	chmod 0700 "$TDIR"
	return 0
}

# up_end RC: kill every process of the test (none is left stopped or
# traced: checked first, as run_test would) and remove the user; returns RC
# or the failure found.
# up_ipc_gone: the SysV objects of the test user go with it.  A scenario
# killed after a refused dump (sysv_ipc) leaves its segments, semaphore
# set and queue behind; a set whose last semop PID is later reused by a
# tree of another test makes that tree look like a user of it (and its
# dump is refused, for the threads' undo list).
up_ipc_gone() {
	local kind id
	for kind in m s q; do
		for id in $(ipcs -"$kind" | awk -v u="$UP_USER" -v n="$UP_UID" \
			'$2 ~ /^[0-9]+$/ && ($3 == u || $3 == n) { print $2 }'); do
			ipcrm -"$kind" "$id" 2>/dev/null
		done
	done
}

up_end() {
	local rc=$1 e pid
	for e in "${TEST_PIDS[@]}"; do
		tracked_alive "$e" && track_tree "${e%%:*}"
	done
	for e in "${TEST_PIDS[@]}"; do
		pid=${e%%:*}
		if tracked_alive "$e" && stopped "$pid" && { [ "$rc" = 0 ] || [ "$rc" = 77 ]; }; then
			rc=1
			REASON="process $pid left stopped or traced (state $(proc_state "$pid"))"
		fi
	done
	kill_trees "${TEST_PIDS[@]}"
	if [ -n "$UP_USER" ]; then
		# nothing of the user may survive it (a process not tracked is a bug)
		for pid in $(pgrep -u "$UP_USER" 2>/dev/null); do
			[ "$rc" = 0 ] && { rc=1; REASON="process $pid of $UP_USER left running ($(cat "/proc/$pid/comm" 2>/dev/null))"; }
			kill -KILL "$pid" 2>/dev/null
		done
		wait_user_gone
		up_ipc_gone
		userdel "$UP_USER" 2>/dev/null
		UP_USER=""
	fi
	return "$rc"
}

# wait_user_gone: no process of the test user exists any more (1 s at most).
wait_user_gone() {
	local i
	for ((i = 0; i < 20; i++)); do
		pgrep -u "$UP_USER" >/dev/null 2>&1 || return 0
		sleep 0.05
	done
}

# as_user COMMAND...: COMMAND as the test user (its uid, gid and groups,
# no capabilities).
as_user() {
	setpriv --reuid="$UP_UID" --regid="$UP_GID" --init-groups --inh-caps=-all "$@"
}

# up_stasis NAME ARGS...: `stasis ARGS...` as the test user, with a timeout,
# output in TDIR/NAME.{out,err}.
up_stasis() {
	local name=$1
	shift
	run_timed "$T_STASIS" "$TDIR/$name.out" "$TDIR/$name.err" \
		setpriv --reuid="$UP_UID" --regid="$UP_GID" --init-groups --inh-caps=-all "$STASIS" "$@"
}

# up_start NAME: start_scenario, but the scenario runs as the test user.
up_start() {
	local bin=$BUILD/tests/$1 pid rc
	SCN_NAME=$1
	[ -x "$bin" ] || { bad "missing $bin (run make)"; return 1; }
	rm -f "$TDIR/ready" "$TDIR/result"
	as_user touch "$TDIR/log" || { bad "the test user cannot write to $TDIR"; return 1; }
	(close_extra_fds
		cd "$TDIR" && exec setpriv --reuid="$UP_UID" --regid="$UP_GID" --init-groups \
			--inh-caps=-all setsid "$bin" "$TDIR") </dev/null >>"$TDIR/log" 2>&1 &
	pid=$!
	disown "$pid"
	track "$pid"
	wait_file "$TDIR/ready" "$WAIT_READY" "$pid"
	rc=$?
	[ $rc = 2 ] && { bad "$SCN_NAME exited before it was ready"; return 1; }
	[ $rc = 0 ] || { bad "$SCN_NAME not ready within ${WAIT_READY}s"; return 1; }
	read -r SCN_PID SCN_TOKEN <"$TDIR/ready"
	[ "$SCN_PID" = "$pid" ] || track "$SCN_PID"
	SCN_START=$(proc_start "$SCN_PID") || { bad "$SCN_NAME vanished after ready"; return 1; }
	# shellcheck disable=SC2046
	[ -s "$TDIR/pids" ] && track_tree $(cat "$TDIR/pids")
	track_tree "$SCN_PID"
	[ "$(status_field "$SCN_PID" Uid | awk '{print $2}')" = "$UP_UID" ] ||
		{ bad "$SCN_NAME does not run as $UP_USER"; return 1; }
	return 0
}

# up_dump IMG [ARGS...]: the user's dump of the scenario, which must succeed.
up_dump() {
	local img=$1 rc
	shift
	N_CMD=$((N_CMD + 1))
	as_user mkdir -p "$img"
	up_stasis "dump$N_CMD" dump -t "$SCN_PID" -D "$img" "$@" -v4 -o "$TDIR/dump$N_CMD.log"
	rc=$?
	rc_ok "dump as $UP_USER" $rc "$TDIR/dump$N_CMD.err" || return 1
	[ -s "$img/$IMG_NAME" ] || { bad "dump succeeded but left no $IMG_NAME"; return 1; }
}

# up_restore IMG: the user's plain `restore -D IMG -d`: the copy's root
# (CPY_PID, as we see it) has the original PID in its namespace, whose
# PID 1 is stasis-init (CPY_INIT), in a user namespace of its own that
# maps the user's uid and gid only; nothing of it is stopped.
up_restore() {
	local img=$1 rc got p
	N_CMD=$((N_CMD + 1))
	CPY_PID="" CPY_INIT=""
	up_stasis "restore$N_CMD" restore -D "$img" -d --pidfile "$TDIR/pidfile$N_CMD" \
		-v4 -o "$TDIR/restore$N_CMD.log"
	rc=$?
	got=$(cat "$TDIR/pidfile$N_CMD" 2>/dev/null)
	if [[ $got =~ ^[0-9]+$ ]] && [ -e "/proc/$got" ]; then
		p=$(proc_field "$got" 4)
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = stasis-init ] && CPY_INIT=$p
		[ -n "$CPY_INIT" ] && track "$CPY_INIT" && track_tree "$CPY_INIT"
		is_tracked "$got" || track_tree "$got"
	fi
	rc_ok "restore as $UP_USER" $rc "$TDIR/restore$N_CMD.err" || return 1
	[[ $got =~ ^[0-9]+$ ]] || { bad "pidfile holds '$got', expected a PID"; return 1; }
	alive "$got" || { bad "the restored root $got is not running"; return 1; }
	CPY_PID=$got
	p=$(ns_pid "$got")
	[ "$p" = "$SCN_PID" ] || { bad "the copy $got has PID '$p' in its namespace, expected $SCN_PID"; return 1; }
	[ -n "$CPY_INIT" ] || { bad "the copy's parent is not stasis-init"; return 1; }
	[ "$(ns_pid "$CPY_INIT")" = 1 ] || { bad "stasis-init $CPY_INIT is not PID 1 of the namespace"; return 1; }
	[ "$(readlink "/proc/$got/ns/user")" != "$(readlink /proc/self/ns/user)" ] ||
		{ bad "the copy is in our user namespace"; return 1; }
	[ "$(tr -s ' \n' '  ' <"/proc/$got/uid_map")" = " $UP_UID $UP_UID 1 " ] ||
		{ bad "the copy's uid_map is '$(cat "/proc/$got/uid_map")'"; return 1; }
	[ "$(tr -s ' \n' '  ' <"/proc/$got/gid_map")" = " $UP_GID $UP_GID 1 " ] ||
		{ bad "the copy's gid_map is '$(cat "/proc/$got/gid_map")'"; return 1; }
	for p in $CPY_INIT $(descendants "$CPY_INIT"); do
		stopped "$p" && { bad "process $p of the copy is stopped or traced"; return 1; }
	done
	[ -s "$TDIR/restore$N_CMD.err" ] && { bad "restore said: $(head -n 1 "$TDIR/restore$N_CMD.err")"; return 1; }
	return 0
}

# up_snapshot PID FILE: snapshot without the user namespace (the copy's is
# new by design; its maps are checked by up_restore).
up_snapshot() {
	snapshot "$1" "$2.raw" || return 1
	grep -vE '^(user (ours|own)|userns maps .*)$' "$2.raw" >"$2"
}

# up_compare WHAT: the copy (and its processes listed in WORKDIR/pids, by
# their PID inside) looks from outside as the original did.
up_compare() {
	local f p h
	up_snapshot "$CPY_PID" "$TDIR/state.after" || return 1
	compare_state "$TDIR/state.before" "$TDIR/state.after" "$1" "$DETAILS" || return 1
	for f in "$TDIR/state.before".*; do
		[ -e "$f" ] || continue
		p=${f##*.}
		[ "$p" = raw ] && continue
		h=$(ns_find "$CPY_INIT" "$p") || { bad "$1: the copy has no PID $p inside"; return 1; }
		up_snapshot "$h" "$TDIR/state.after.$p" || return 1
		compare_state "$f" "$TDIR/state.after.$p" "$1 (PID $p inside)" "$DETAILS" || return 1
	done
	return 0
}

# up_snapshot_scenario: up_snapshot of the scenario and its listed pids.
up_snapshot_scenario() {
	local p pids=()
	up_snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	{ read -r -a pids <"$TDIR/pids"; } 2>/dev/null
	for p in "${pids[@]}"; do
		alive "$p" || continue
		up_snapshot "$p" "$TDIR/state.before.$p" || return 1
	done
	return 0
}

# test_unpriv_cr SCENARIO MODE [FILE...]: as a normal user, dump (killing
# the original, or -R and then killed by us) and restore -d; the copy
# looks as the original did and passes its own check.  Each FILE is made
# in the scenario's directory first (its options, see the scenario).
up_cr_body() {
	local name=$1 mode=$2 f
	shift 2
	need_stasis || return 1
	up_begin || return $?
	for f in "$@"; do
		as_user touch "$TDIR/$f" || { bad "cannot make $TDIR/$f"; return 1; }
	done
	up_start "$name" || return 1
	up_snapshot_scenario || return 1
	if [ "$mode" = leave-running ]; then
		up_dump "$TDIR/img" -R || return 1
		sleep 0.1
		alive "$SCN_PID" && ! stopped "$SCN_PID" || { bad "the original does not run on after dump -R"; return 1; }
		kill_tree "$TDIR/img" || return 1
	else
		up_dump "$TDIR/img" || return 1
		wait_gone "$SCN_PID" || { bad "the original is still there after the dump"; return 1; }
	fi
	up_restore "$TDIR/img" || return 1
	sleep 0.2
	up_compare "the copy restored by $UP_USER" || return 1
	check_scenario "$CPY_PID"
}

test_unpriv_cr() {
	local rc
	up_cr_body "$@"
	rc=$?
	up_end "$rc"
}

register unpriv/counter-leave-running test_unpriv_cr counter leave-running

# Scenarios a normal user dumps and restores (the fastest of each kind:
# threads, signals, files, unix sockets, shared file mappings, a deleted
# file, event fds, POSIX timers, inotify watches, a private mapping of a
# file opened read-write, a deleted program, POSIX message queues).
# pipe60k, forker, tree3, unix_dgram, unix_listen, epollset, sig_wait,
# subreaper and wide pass as a user too; they are left out to keep the
# suite short, and counter once is the first half of copy-dumped-again.
for s in threads50 signals files unix_stream mapshared fs_ghost evfds ev_ptimer ev_inotify \
	fid_mm fs_exe mq_posix; do
	register "unpriv/$s" test_unpriv_cr "$s" once
done
# terminals: typed-ahead bytes of a raw pair and an unfinished canonical
# line go back through the master (no TIOCSTI for a normal user)
register unpriv/tty-typeahead test_unpriv_cr tty_pty once partial-only

# up_refused_body SCENARIO [DUMP-OPTIONS...]: the user's dump of SCENARIO
# fails with one line matching up_refusal's pattern, leaves no image, and
# the original runs on, unchanged, and passes its own check.
up_refused_body() {
	local name=$1 pattern rc
	shift
	pattern=$(up_refusal "$name")
	need_stasis || return 1
	up_begin || return $?
	up_start "$name" || return 1
	up_snapshot_scenario || return 1
	as_user mkdir -p "$TDIR/img"
	up_stasis refused dump -t "$SCN_PID" -D "$TDIR/img" "$@"
	rc=$?
	expect_error "dump as $UP_USER" $rc "$TDIR/refused.err" || return 1
	[ "$(wc -l <"$TDIR/refused.err")" = 1 ] ||
		{ bad "the refusal is not one line: $(tr '\n' '|' <"$TDIR/refused.err")"; return 1; }
	grep -q -- "$pattern" "$TDIR/refused.err" ||
		{ bad "the refusal does not say '$pattern': $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	alive "$SCN_PID" && ! stopped "$SCN_PID" || { bad "the original does not run on after the refusal"; return 1; }
	up_snapshot "$SCN_PID" "$TDIR/state.after" || return 1
	compare_state "$TDIR/state.before" "$TDIR/state.after" "the original after the refusal" "$DETAILS" || return 1
	check_scenario "$SCN_PID"
}

test_unpriv_refused() {
	local rc
	up_refused_body "$@"
	rc=$?
	up_end "$rc"
}

# up_refusal SCENARIO: what the refusal of SCENARIO's dump must say
# (register splits its arguments at spaces, so the patterns live here).
up_refusal() {
	case $1 in
	inet_udp) echo "UDP socket with .* datagram(s) waiting: .* needs CAP_NET_RAW" ;;
	inet_pingpong) echo "nftables needs CAP_NET_ADMIN over this network namespace" ;;
	inet_tcp) echo "established TCP connection .*: saving it needs TCP_REPAIR, which needs CAP_NET_ADMIN" ;;
	sysv_ipc) echo "uses SysV IPC .* needs CAP_CHECKPOINT_RESTORE over it" ;;
	shmshare) echo "shared anonymous memory is read through /proc/PID/map_files" ;;
	fs_memfd) echo "neither its exe nor an fd of the task holds it, and /proc/PID/map_files needs CAP_CHECKPOINT_RESTORE" ;;
	tty_pty) echo "whole lines typed ahead .* (TIOCSTI) needs CAP_SYS_ADMIN" ;;
	esac
}

# What a normal user's restore could not give back is refused at dump, by
# name, while the original runs.
register unpriv/refuse-udp-queue test_unpriv_refused inet_udp
register unpriv/refuse-tcp-lock test_unpriv_refused inet_pingpong
register unpriv/refuse-tcp-established test_unpriv_refused inet_tcp --network-lock skip
register unpriv/refuse-sysv-ipc test_unpriv_refused sysv_ipc
register unpriv/refuse-shared-anon test_unpriv_refused shmshare
register unpriv/refuse-memfd-mapping test_unpriv_refused fs_memfd
register unpriv/refuse-tty-typeahead test_unpriv_refused tty_pty

# `stasis check` as a normal user: exits 0, says that restore goes into a
# new user and PID namespace (set_tid there), that map_files is closed
# but not required, and names the capability of what a user cannot do.
test_unpriv_check_body() {
	need_stasis || return 1
	up_begin || return $?
	up_stasis check check
	rc_ok "stasis check as $UP_USER" $? "$TDIR/check.err" || return 1
	grep -q "^note: as a normal user (uid $UP_UID)" "$TDIR/check.out" ||
		{ bad "check does not say it runs as a normal user"; return 1; }
	grep -q "clone3 with set_tid.* ok: in a new user and PID namespace" "$TDIR/check.out" ||
		{ bad "check does not say set_tid works in a new user and PID namespace: $(grep clone3 "$TDIR/check.out")"; return 1; }
	grep -q "map_files.* no: closed to us" "$TDIR/check.out" ||
		{ bad "check does not say map_files is closed: $(grep map_files "$TDIR/check.out")"; return 1; }
	grep -q "nftables.* no: .*CAP_NET_ADMIN" "$TDIR/check.out" ||
		{ bad "check does not name CAP_NET_ADMIN for nftables: $(grep nftables "$TDIR/check.out")"; return 1; }
	grep -q "MISSING" "$TDIR/check.out" && { bad "check: $(grep MISSING "$TDIR/check.out" | head -n 1)"; return 1; }
	[ -s "$TDIR/check.err" ] && { bad "check said on stderr: $(head -n 1 "$TDIR/check.err")"; return 1; }
	return 0
}

test_unpriv_check() {
	local rc
	test_unpriv_check_body
	rc=$?
	up_end "$rc"
}
register unpriv/check test_unpriv_check

# Timed calls as a normal user, who cannot read /proc/timer_list: the
# time each had left comes from the moment it went to sleep (its last
# run, /proc/TID/sched) plus its timeout; across the user's dump and
# restore no thread of sig_timed (its timed calls 2 s long) sees EINTR,
# and each wakes within EINTR_BOUND_MS of its original deadline.
test_unpriv_timed_body() {
	local w limit
	need_stasis || return 1
	up_begin || return $?
	echo "${EINTR_BOUND_MS:-100}" >"$TDIR/bound"
	echo 1 >"$TDIR/wakes"
	echo 2 >"$TDIR/timeout"
	up_start sig_timed || return 1
	sleep 0.5
	up_dump "$TDIR/img" || return 1
	wait_gone "$SCN_PID" || { bad "the original is still there after the dump"; return 1; }
	up_restore "$TDIR/img" || return 1
	limit=$(($(now_ms) + 4000))
	for w in 'epoll_wait(5000)' epoll_pwait2 sigtimedwait poll nanosleep clock_nanosleep futex \
		pthread_cond_timedwait select ppoll; do
		until grep -qF "wake $w " "$TDIR/log"; do
			[ "$(now_ms)" -lt "$limit" ] || { bad "$w did not wake in time"; return 1; }
			sleep 0.05
		done
	done
	grep -q '^eintr' "$TDIR/log" && { bad "EINTR seen: $(grep '^eintr' "$TDIR/log" | sort | uniq -c | tr '\n' ' ')"; return 1; }
	check_scenario "$CPY_PID"
}

test_unpriv_timed() {
	local rc
	test_unpriv_timed_body
	rc=$?
	up_end "$rc"
}
register unpriv/timed-calls test_unpriv_timed

# A copy a user restored is dumped again by the user (from inside the
# namespaces its restore made: dump/wrapped.c) and restored again: the
# second copy has the original PIDs inside, looks as the original did and
# passes its own check.
test_unpriv_twice_body() {
	local orig first
	need_stasis || return 1
	up_begin || return $?
	up_start counter || return 1
	up_snapshot_scenario || return 1
	up_dump "$TDIR/img" || return 1
	wait_gone "$SCN_PID" || { bad "the original is still there after the dump"; return 1; }
	up_restore "$TDIR/img" || return 1
	orig=$SCN_PID first=$CPY_PID
	SCN_PID=$first
	up_dump "$TDIR/img2" || { SCN_PID=$orig; return 1; }
	SCN_PID=$orig
	wait_gone "$first" || { bad "the first copy is still there after its dump"; return 1; }
	up_restore "$TDIR/img2" || return 1
	sleep 0.2
	up_compare "the copy of the copy" || return 1
	check_scenario "$CPY_PID"
}

test_unpriv_twice() {
	local rc
	test_unpriv_twice_body
	rc=$?
	up_end "$rc"
}
register unpriv/copy-dumped-again test_unpriv_twice

# Another user's process (here root's): the user's dump is refused with one
# line naming its uid, and it runs on.
test_unpriv_other_body() {
	need_stasis || return 1
	up_begin || return $?
	start_scenario counter || return 1
	as_user mkdir -p "$TDIR/img"
	up_stasis other dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of root's process as $UP_USER" $? "$TDIR/other.err" || return 1
	grep -q "it runs as uid 0, and a user without CAP_SYS_PTRACE may dump only its own" "$TDIR/other.err" ||
		{ bad "the refusal does not name the uid: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}

test_unpriv_other() {
	local rc
	test_unpriv_other_body
	rc=$?
	up_end "$rc"
}
register unpriv/refuse-other-user test_unpriv_other

# A process of the user in a cgroup root owns (made by the test, under the
# runner's own): the restore could not join it, so the user's dump is
# refused by name while the process runs on (cgroup.sh's cg_v2_dir and
# cg_hier_dir name the cgroups).
UP_CG_DIRS=""
test_unpriv_cgroup_body() {
	local d
	need_stasis || return 1
	up_begin || return $?
	UP_CG_DIRS="$(cg_v2_dir -unpriv) $(cg_hier_dir memory -unpriv)"
	[ -n "${UP_CG_DIRS// /}" ] || { REASON="no cgroup2 or memory hierarchy mounted"; return 77; }
	up_start counter || return 1
	for d in $UP_CG_DIRS; do
		mkdir -p "$d" && echo "$SCN_PID" >"$d/cgroup.procs" ||
			{ REASON="cannot make or join cgroup $d"; return 77; }
	done
	as_user mkdir -p "$TDIR/img"
	up_stasis cg dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump as $UP_USER of a process in root's cgroup" $? "$TDIR/cg.err" || return 1
	grep -q "is not this user's to join at restore: .*cgroup.procs is not writable for uid $UP_UID" "$TDIR/cg.err" ||
		{ bad "the refusal does not name the cgroup: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}

test_unpriv_cgroup() {
	local rc
	test_unpriv_cgroup_body
	rc=$?
	up_end "$rc"
	rc=$?
	# shellcheck disable=SC2086
	cg_remove $UP_CG_DIRS
	UP_CG_DIRS=""
	return $rc
}
register unpriv/refuse-cgroup test_unpriv_cgroup

# A process of the user holding a file it could not open again (root
# opened it for the process, then made it 0600): the user's dump is
# refused with one line naming the fd and path, and the process runs on.
test_unpriv_reopen_body() {
	local pid
	need_stasis || return 1
	up_begin || return $?
	echo secret >"$TDIR/rootfile"
	chmod 0644 "$TDIR/rootfile"
	(close_extra_fds
		exec 7<"$TDIR/rootfile"
		chmod 0600 "$TDIR/rootfile"
		exec setpriv --reuid="$UP_UID" --regid="$UP_GID" --init-groups --inh-caps=-all \
			setsid sleep 100) </dev/null >/dev/null 2>&1 &
	pid=$!
	disown "$pid"
	track "$pid"
	sleep 0.2
	[ "$(status_field "$pid" Uid | awk '{print $2}')" = "$UP_UID" ] || { bad "the sleeper does not run as $UP_USER"; return 1; }
	as_user mkdir -p "$TDIR/img"
	up_stasis reopen dump -t "$pid" -D "$TDIR/img"
	expect_error "dump as $UP_USER of a process with root's file" $? "$TDIR/reopen.err" || return 1
	grep -q "fd 7: $TDIR/rootfile cannot be opened again by uid $UP_UID for the restore" "$TDIR/reopen.err" ||
		{ bad "the refusal does not name the fd and file: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	alive "$pid" && ! stopped "$pid" || { bad "the sleeper does not run on"; return 1; }
	return 0
}

test_unpriv_reopen() {
	local rc
	test_unpriv_reopen_body
	rc=$?
	up_end "$rc"
}
register unpriv/refuse-file-not-reopenable test_unpriv_reopen
