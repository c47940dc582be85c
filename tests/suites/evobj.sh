# Event objects and timers: inotify, pidfd, POSIX timers, named FIFOs,
# and the refusals (fanotify, SysV IPC, ...).  Scenarios: tests/scenarios/ev_*.c.

# inotify: no pidns mode, since the copy and the original watch the same
# files, so the copy's check queues events in the original
for m in once x3 leave-running; do
	register "ev_inotify/$m" test_cr ev_inotify $m
done

for m in once x3 leave-running; do
	register "ev_fifo/$m" test_cr ev_fifo $m
done

# fanotify: its check counts only its own events, so pidns works too
for m in once x3 leave-running pidns; do
	register "ev_fanotify/$m" test_cr ev_fanotify $m
done

for m in once x3 leave-running pidns; do
	register "ev_pidfd/$m" test_cr ev_pidfd $m
done

for m in once x3 leave-running pidns; do
	register "ev_ptimer/$m" test_cr ev_ptimer $m
done

# test_ev_refuse MODE PATTERN: ev_refuse holding what MODE names cannot
# be dumped: one clear error line matching PATTERN (an ERE without
# spaces) and naming the process, no image, and the process runs on
# unharmed (its resource as it was).
test_ev_refuse() {
	local rc
	ev_refuse "$@"
	rc=$?
	# passed: the scenario removed its object itself when it exited
	[ $rc = 0 ] || ev_ipc_cleanup
	return $rc
}

ev_refuse() {
	local mode=$1 pattern=$2 pids
	need_stasis || return 1
	echo "$mode" >"$TDIR/mode"
	start_scenario ev_refuse || return 1
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a process holding $mode" $? "$TDIR/err.err" || return 1
	grep -qiE "$pattern" "$TDIR/err.err" ||
		{ bad "the error does not say what is refused: $ERR_LINE"; return 1; }
	# the process at fault: the scenario or its child (WORKDIR/pids)
	pids=$(echo $SCN_PID $(cat "$TDIR/pids" 2>/dev/null))
	grep -qE "pid (${pids// /|})[^0-9]" "$TDIR/err.err" ||
		{ bad "the error does not name pid $pids: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	still_fine
}

# ev_ipc_cleanup: after a failed test, remove the SysV object ev_refuse
# made (it removes it itself only when it exits normally).
ev_ipc_cleanup() {
	local kind id
	read -r kind id 2>/dev/null <"$TDIR/ipc" || return 0
	case $kind in
	sem) ipcrm -s "$id" 2>/dev/null ;;
	msg) ipcrm -q "$id" 2>/dev/null ;;
	esac
	return 0
}

register bad/ev-inotify-queued test_ev_refuse inotify-queued unread.events
register bad/ev-inotify-deleted test_ev_refuse inotify-deleted path.of.inotify.watch
register bad/ev-fanotify-perm test_ev_refuse fanotify-perm permission.classes
register bad/ev-pidfd-thread test_ev_refuse pidfd-thread pidfds.of.threads
register bad/ev-pidfd-outside test_ev_refuse pidfd-outside outside.the.dumped.tree
register bad/ev-pidfd-reaped test_ev_refuse pidfd-reaped exited.and.been.reaped
register bad/mdwe test_ev_refuse mdwe "denies memory that becomes executable.*PR_SET_MDWE"
register bad/aio test_ev_refuse aio "AIO context"
register bad/secretmem test_ev_refuse secretmem "secret memory.*memfd_secret"
register bad/vfork-wait test_ev_refuse vfork "did not stop within .* waits in vfork"
# (SysV shared memory and message queues are saved: tests/suites/ipc.sh;
# a semaphore set used with SEM_UNDO is refused)
register bad/ev-sysv-sem test_ev_refuse sem SysV.semaphore
register bad/ev-ipcns test_ev_refuse ipcns IPC.namespace
# a task in a network or mount namespace other than the rest of the tree's
# is refused by name (a tree must be in one of each)
register bad/ns-net test_ev_refuse netns net.namespace
register bad/ns-mnt test_ev_refuse mntns "mount namespaces; a tree must be in one"
