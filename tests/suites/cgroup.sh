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
