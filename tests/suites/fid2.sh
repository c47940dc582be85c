# tests/suites/fid2.sh - more of issue 10: sharing and per-task state that
# must come back exactly, sourced by tests/run.sh.  Scenarios:
# tests/scenarios/fid_*.c.

# three processes sharing one fd table (CLONE_FILES, a child and a
# grandchild) and a fourth with its own: they come back sharing one table,
# the fds opened after the clones opened once
for m in once x3 leave-running pidns; do
	register "fid2/files-$m" test_cr fid_files $m
done

# two children share a table their parent left (unshare): restore could
# not clone them from it, so the dump refuses, naming both; they run on
test_fid2_files_split() {
	need_stasis || return 1
	FID_FILES_SPLIT=1 start_scenario fid_files || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of two children sharing a table their parent left" $? \
		"$TDIR/err.err" || return 1
	grep -Eq "pid [0-9]+ and pid [0-9]+: share one fd table \(CLONE_FILES\) but neither" \
		"$TDIR/err.err" || { bad "the error does not name both children: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register fid2/files-split-refused test_fid2_files_split

# SIGTRAP pending and blocked (for a thread, for the process, for a second
# thread) in a task with a SIGTRAP handler: each stays pending where it
# was, with its sender, and runs the handler once unblocked
for m in once x3 pidns; do
	register "fid2/trap-$m" test_cr fid_trap $m
done

# the same without a handler (SIG_DFL): they stay pending, nothing dies
test_fid2_trap_dfl() {
	FID_TRAP_DFL=1 test_cr fid_trap "$1"
}
for m in once pidns; do
	register "fid2/trap-dfl-$m" test_fid2_trap_dfl $m
done

# a dump that fails late (after the signals were read, and at the end)
# leaves every pending SIGTRAP where it was
test_fid2_trap_failed() {
	local point
	need_stasis || return 1
	start_scenario fid_trap || return 1
	for point in dump:signal:thread dump:mm:data; do
		STASIS_FAULT=$point stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
		expect_error "dump failed at $point" $? "$TDIR/err.err" || return 1
		no_image_left "$TDIR/img" || return 1
	done
	check_scenario
}
register fid2/trap-failed-dump test_fid2_trap_failed

# SIGIO owners set by a non-root task keep its credentials: its own
# signal arrives, the one to a child of another uid is still refused
for m in once pidns; do
	register "fid2/fowncred-$m" test_cr fid_fowncred $m
done

# a task in an audit session of its own (loginuid written) is refused at
# dump, naming it; it runs on with its pending signals
test_fid2_loginuid() {
	need_stasis || return 1
	FID_TRAP_LOGINUID=1 start_scenario fid_trap || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a task in its own audit session" $? "$TDIR/err.err" || return 1
	grep -q "pid $SCN_PID: in another audit session (loginuid 4242" "$TDIR/err.err" ||
		{ bad "the error does not name the audit session: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register fid2/loginuid-refused test_fid2_loginuid

# audit_wrapper FILE [PREFIX...]: a stasis that runs in an audit session
# of its own (loginuid 0 written: a new sessionid), through PREFIX
audit_wrapper() {
	local f=$1
	shift
	printf '#!/bin/sh\necho 0 >/proc/self/loginuid || exit 99\nexec %s %q "$@"\n' \
		"$*" "$REAL_STASIS" >"$f"
	chmod 700 "$f"
}

# A process outside any audit session (loginuid unset, as daemons are),
# dumped and restored by a stasis in a session of its own (an ssh login):
# the restore child writes loginuid unset, so the restored process is
# outside any session again (the runner compares loginuid and sessionid).
test_fid2_audit_unset() {
	local img=$TDIR/img REAL_STASIS=$STASIS
	need_stasis || return 1
	local STASIS=$TDIR/in-session
	[ "$(cat /proc/self/loginuid)" = 4294967295 ] ||
		{ REASON="the runner is in an audit session itself (loginuid $(cat /proc/self/loginuid))"; return 77; }
	audit_wrapper "$STASIS"
	"$STASIS" --version >/dev/null 2>&1 ||
		{ REASON="cannot write /proc/self/loginuid here (immutable loginuid?)"; return 77; }
	start_scenario counter || return 1
	snapshot_scenario before || return 1
	dump "$SCN_PID" "$img" || return 1
	wait_gone "$SCN_PID" || { bad "process $SCN_PID still there after the dump"; return 1; }
	# (stasis's own "restore" in its session would carry the tree into it)
	restore_detached "$img" "$SCN_PID" || return 1
	[ "$(cat "/proc/$SCN_PID/loginuid") $(cat "/proc/$SCN_PID/sessionid")" = "4294967295 4294967295" ] ||
		{ bad "restored in stasis's audit session: $(cat "/proc/$SCN_PID/loginuid") $(cat "/proc/$SCN_PID/sessionid")"; return 1; }
	after_restore || return 1
	check_scenario
}
register fid2/audit-unset-from-session test_fid2_audit_unset

# test_fid2_zoo CASE MODE: one case of fid_zoo (see the scenario), dumped
# and restored in MODE
test_fid2_zoo() {
	FID_ZOO=$1 test_cr fid_zoo "$2"
}
for c in chroot unixdel unixzero tsync zsegv memfdexec; do
	register "fid2/zoo-$c-once" test_fid2_zoo $c once
done
register fid2/zoo-chroot-pidns test_fid2_zoo chroot pidns

# test_fid2_zoo_refused CASE PATTERN: the dump of fid_zoo's CASE fails
# with a line matching PATTERN, leaves no image, and the scenario runs on
test_fid2_zoo_refused() {
	need_stasis || return 1
	FID_ZOO=$1 start_scenario fid_zoo || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of fid_zoo $1" $? "$TDIR/err.err" || return 1
	grep -Eq "$2" "$TDIR/err.err" || { bad "the error does not say '$2': $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register fid2/zoo-deldir-refused test_fid2_zoo_refused deldir \
	"pid [0-9]+: its cwd .*/gone \(deleted\) is a deleted directory"
register fid2/zoo-procfd-refused test_fid2_zoo_refused procfd \
	"pid [0-9]+ fd [0-9]+: /proc/[0-9]+/stat is a /proc file of pid [0-9]+ of the tree"
register fid2/zoo-unixfifo-refused test_fid2_zoo_refused unixfifo \
	"unix socket bound to .*/fifo.sock, whose file was replaced"
register fid2/zoo-strict-refused test_fid2_zoo_refused strict "seccomp strict mode"
register fid2/zoo-deldirfd-refused test_fid2_zoo_refused deldirfd \
	"fd [0-9]+ \(.*/gone \(deleted\)\): deleted files other than regular files are not supported"
register fid2/zoo-proccwd-refused test_fid2_zoo_refused proccwd \
	"pid [0-9]+: its cwd /proc/[0-9]+ is in the /proc of pid [0-9]+ of the tree"
register fid2/zoo-beyondeof-once test_fid2_zoo beyondeof once

# restore faults at the stages these changes touch (shared tables, pending
# SIGTRAPs, owners) leave no task of the image; a restore after them works
test_fid2_restore_fault() {
	local p pid
	need_stasis || return 1
	start_scenario "$1" || return 1
	dump "$SCN_PID" "$TDIR/img" || return 1
	wait_gone "$SCN_PID" || return 1
	tree_gone "$TDIR/img" || return 1
	for p in $2; do
		STASIS_FAULT=$p stasis_cmd err restore -D "$TDIR/img" -d
		expect_error "restore failed at $p" $? "$TDIR/err.err" || return 1
		sleep 0.2
		for pid in $(image_pids "$TDIR/img"); do
			[ -e "/proc/$pid" ] && { bad "pid $pid left after $p"; return 1; }
		done
	done
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	check_scenario
}
register fid2/restore-fault-files test_fid2_restore_fault fid_files "restore:share:prepare restore:files:child_early restore:files:child restore:files:child_late restore:task:child_late restore:signal:thread_finish restore:fown:remote_late"
register fid2/restore-fault-trap test_fid2_restore_fault fid_trap "restore:signal:thread restore:signal:thread_finish restore:signal:remote_late"
