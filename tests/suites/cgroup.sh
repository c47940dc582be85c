# tests/suites/cgroup.sh - cgroup membership (sourced by tests/run.sh).

# cg_dirs: the test's own cgroup in the cgroup2 hierarchy and in the
# memory hierarchy of cgroup v1 (where mounted), under the runner's own.
cg_dirs() {
	local line ctrl path mnt
	while IFS= read -r line; do
		ctrl=${line#*:} ctrl=${ctrl%%:*} path=${line#*:*:}
		case $ctrl in
		"") mnt=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo) ;;
		memory) mnt=$(awk '$9 == "cgroup" && $4 == "/" && $NF ~ /(^|,)memory(,|$)/ { print $5; exit }' /proc/self/mountinfo) ;;
		*) continue ;;
		esac
		[ -n "$mnt" ] && echo "$mnt${path%/}/stasis-test-$$"
	done </proc/self/cgroup
}

cg_cleanup() {
	local d
	for d in $(cg_dirs); do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	return 0
}

# test_cgroup_member: a process moved into cgroups of its own (created by
# the test) is restored into the same ones, recreated after the dump
# removed them; /proc/PID/cgroup is compared with the rest of its state.
test_cgroup_member() {
	local rc
	cgroup_member
	rc=$?
	kill_tree "$TDIR/img" >/dev/null 2>&1
	cg_cleanup
	return $rc
}

cgroup_member() {
	local d dirs count
	need_stasis || return 1
	dirs=$(cg_dirs)
	[ -n "$dirs" ] || { REASON="no cgroup2 or memory hierarchy mounted"; return 77; }
	start_scenario counter || return 1
	for d in $dirs; do
		mkdir -p "$d" && echo "$SCN_PID" >"$d/cgroup.procs" ||
			{ REASON="cannot make or join cgroup $d"; return 77; }
	done
	grep -q "stasis-test-$$" "/proc/$SCN_PID/cgroup" || { bad "the scenario did not move"; return 1; }
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	count=$(last_count "$TDIR/log")
	dump "$SCN_PID" "$TDIR/img" || return 1
	wait_gone "$SCN_PID" || { bad "process $SCN_PID still there after the dump"; return 1; }
	for d in $dirs; do
		rmdir "$d" || { bad "cannot remove the emptied cgroup $d"; return 1; }
	done
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	snapshot "$SCN_PID" "$TDIR/state.after" || return 1
	compare_state "$TDIR/state.before" "$TDIR/state.after" "after restore" "$DETAILS" || return 1
	post_restore "$count"
}

register cgroup/member test_cgroup_member

# cg_v2_dir / cg_hier_dir HIER: the test's own cgroup in the cgroup2
# hierarchy, or in the v1 hierarchy HIER (memory, pids ...), under the
# runner's own; nothing printed if that hierarchy is not mounted.
cg_v2_dir() {
	local mnt path
	mnt=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
	path=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
	[ -n "$mnt" ] && echo "$mnt${path%/}/stasis-test-$$${1:-}"
}
cg_hier_dir() {
	local mnt path
	mnt=$(awk -v h="$1" '$9 == "cgroup" && $4 == "/" && $NF ~ ("(^|,)" h "(,|$)") { print $5; exit }' /proc/self/mountinfo)
	path=$(awk -F: -v h="$1" '$2 == h { print $3 }' /proc/self/cgroup)
	[ -n "$mnt" ] && echo "$mnt${path%/}/stasis-test-$$${2:-}"
}

# cg_remove DIR...: remove test cgroups (children first), waiting for the
# kernel to let go of exited members.
cg_remove() {
	local d i
	for d in "$@"; do
		[ -d "$d" ] || continue
		for i in $(seq 50); do
			rmdir "$d" 2>/dev/null && break
			sleep 0.02
		done
	done
	return 0
}

# cg_settings_check DIR FILE VALUE...: each FILE of DIR reads VALUE.
cg_settings_check() {
	local dir=$1 got
	shift
	while [ $# -ge 2 ]; do
		got=$(cat "$dir/$1" 2>/dev/null)
		[ "$got" = "$2" ] || { bad "$dir/$1 is '$got' after restore, expected '$2'"; return 1; }
		shift 2
	done
}

# test_cgroup_settings: with dump --manage-cgroups the limits of the
# tree's cgroups (v1 memory and pids, a v2 core setting) are saved; the
# cgroups are removed after the dump, and restore recreates them with the
# same settings and puts the process back in them.
test_cgroup_settings() {
	local rc
	cgroup_settings
	rc=$?
	kill_tree "$TDIR/img" >/dev/null 2>&1
	cg_remove "$(cg_v2_dir)" "$(cg_hier_dir memory)" "$(cg_hier_dir pids)"
	return $rc
}

cgroup_settings() {
	local v2 mem pids d count
	need_stasis || return 1
	v2=$(cg_v2_dir) mem=$(cg_hier_dir memory) pids=$(cg_hier_dir pids)
	[ -n "$v2$mem$pids" ] || { REASON="no cgroup2, memory or pids hierarchy mounted"; return 77; }
	start_scenario counter || return 1
	for d in $v2 $mem $pids; do
		mkdir -p "$d" && echo "$SCN_PID" >"$d/cgroup.procs" ||
			{ REASON="cannot make or join cgroup $d"; return 77; }
	done
	if [ -n "$mem" ]; then
		echo 268435456 >"$mem/memory.limit_in_bytes" || { bad "cannot set memory.limit_in_bytes"; return 1; }
		echo 134217728 >"$mem/memory.soft_limit_in_bytes" || { bad "cannot set memory.soft_limit_in_bytes"; return 1; }
	fi
	[ -z "$pids" ] || echo 64 >"$pids/pids.max" || { bad "cannot set pids.max"; return 1; }
	[ -z "$v2" ] || echo 7 >"$v2/cgroup.max.descendants" || { bad "cannot set cgroup.max.descendants"; return 1; }
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	count=$(last_count "$TDIR/log")
	dump "$SCN_PID" "$TDIR/img" --manage-cgroups || return 1
	wait_gone "$SCN_PID" || { bad "process $SCN_PID still there after the dump"; return 1; }
	cg_remove $v2 $mem $pids
	for d in $v2 $mem $pids; do
		[ ! -d "$d" ] || { bad "cannot remove the emptied cgroup $d"; return 1; }
	done
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	[ -z "$mem" ] || cg_settings_check "$mem" memory.limit_in_bytes 268435456 \
		memory.soft_limit_in_bytes 134217728 || return 1
	[ -z "$pids" ] || cg_settings_check "$pids" pids.max 64 || return 1
	[ -z "$v2" ] || cg_settings_check "$v2" cgroup.max.descendants 7 || return 1
	snapshot "$SCN_PID" "$TDIR/state.after" || return 1
	compare_state "$TDIR/state.before" "$TDIR/state.after" "after restore" "$DETAILS" || return 1
	post_restore "$count"
}
register cgroup/settings test_cgroup_settings

# test_cgroup_root: restore --cgroup-root cgroup2:NEW puts the process in
# NEW in the cgroup2 hierarchy (and nowhere else changes its cgroups).
test_cgroup_root() {
	local rc
	cgroup_root
	rc=$?
	kill_tree "$TDIR/img" >/dev/null 2>&1
	cg_remove "$(cg_v2_dir)" "$(cg_v2_dir -new)"
	return $rc
}

cgroup_root() {
	local v2 new newpath got count
	need_stasis || return 1
	v2=$(cg_v2_dir) new=$(cg_v2_dir -new)
	[ -n "$v2" ] || { REASON="no cgroup2 hierarchy mounted"; return 77; }
	start_scenario counter || return 1
	mkdir -p "$v2" && echo "$SCN_PID" >"$v2/cgroup.procs" || { REASON="cannot make or join $v2"; return 77; }
	grep -v '^0::' "/proc/$SCN_PID/cgroup" >"$TDIR/cg.before"
	count=$(last_count "$TDIR/log")
	dump "$SCN_PID" "$TDIR/img" || return 1
	wait_gone "$SCN_PID" || { bad "process $SCN_PID still there after the dump"; return 1; }
	newpath=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
	newpath=${newpath%/}/stasis-test-$$-new
	RESTORE_OPTS="--cgroup-root cgroup2:$newpath" restore_detached "$TDIR/img" "$SCN_PID" || return 1
	got=$(awk -F: '$1 == "0" { print $3 }' "/proc/$SCN_PID/cgroup")
	[ "$got" = "$newpath" ] || { bad "restored into cgroup2 '$got', expected '$newpath'"; return 1; }
	[ -d "$new" ] || { bad "$new was not created"; return 1; }
	grep -v '^0::' "/proc/$SCN_PID/cgroup" | diff "$TDIR/cg.before" - >/dev/null ||
		{ bad "--cgroup-root cgroup2: changed another hierarchy"; return 1; }
	post_restore "$count"
}
register cgroup/root test_cgroup_root

# test_cgroup_freeze MODE: dump -R --freeze-cgroup of forker (a fork every
# millisecond) in a cgroup2 cgroup of its own: the dump succeeds (no child
# escapes the walk), the cgroup is thawed after it and the scenario runs
# on; MODE crash: the dump fails on purpose after the freeze, and the
# cgroup is thawed all the same.
test_cgroup_freeze() {
	local rc
	cgroup_freeze "$1"
	rc=$?
	kill_tree "$TDIR/img" >/dev/null 2>&1
	[ -n "$SCN_PID" ] && alive "$SCN_PID" && kill -9 "$SCN_PID" 2>/dev/null && wait_gone "$SCN_PID"
	cg_remove "$(cg_v2_dir -fz)"
	return $rc
}

cgroup_freeze() {
	local mode=$1 d count rc
	need_stasis || return 1
	d=$(cg_v2_dir -fz)
	[ -n "$d" ] || { REASON="no cgroup2 hierarchy mounted"; return 77; }
	mkdir -p "$d" && [ -e "$d/cgroup.freeze" ] || { REASON="no cgroup.freeze in $d"; return 77; }
	start_scenario forker || return 1
	echo "$SCN_PID" >"$d/cgroup.procs" || { REASON="cannot join $d"; return 77; }
	count=$(last_count "$TDIR/log")
	if [ "$mode" = crash ]; then
		# crash while the freezer still holds the tree: the rescue thaws it
		STASIS_TEST_CRASH=frozen stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img" -R --freeze-cgroup "$d"
		rc=$?
		[ $rc -eq $((128 + 11)) ] || { bad "the dump exited with $rc, not by the SIGSEGV asked for"; return 1; }
	else
		dump "$SCN_PID" "$TDIR/img" -R --freeze-cgroup "$d" || return 1
		grep -q "froze cgroup" "$TDIR"/dump*.log || { bad "the dump log does not say it froze the cgroup"; return 1; }
	fi
	grep -q "^frozen 0" "$d/cgroup.events" || { bad "cgroup $d still frozen after the dump"; return 1; }
	alive "$SCN_PID" || { bad "the scenario died"; return 1; }
	wait_progress "$TDIR/log" "$count" 5 || { bad "forker does not advance after the dump"; return 1; }
	check_scenario
}
register cgroup/freeze test_cgroup_freeze ok
register cgroup/freeze-crash test_cgroup_freeze crash

# A --freeze-cgroup that is no freezer is refused; the tree runs on.
test_cgroup_freeze_bad() {
	need_stasis || return 1
	start_scenario counter || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img" --freeze-cgroup "$TDIR"
	expect_error "dump --freeze-cgroup of a plain directory" $? "$TDIR/err.err" || return 1
	grep -q "freeze-cgroup $TDIR: neither" "$TDIR/err.err" || { bad "unexpected error: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register bad/cgroup-freeze-path test_cgroup_freeze_bad
