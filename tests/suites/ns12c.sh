# tests/suites/ns12c.sh - what a container's namespaces hold beyond the
# namespaces themselves (issue 12): POSIX message queues of the tree's own
# IPC namespace (src/res/mqueue.c), ptys of its own devpts instance
# (src/res/tty.c), and the combined container of unshare(1).

# POSIX queues of an IPC namespace of the tree's own: every queue of the
# namespace (held, unheld, empty, deleted), rebuilt in a new one.  The
# queues live and die with the scenario's namespace: nothing to clean up.
# (not --pidns: the copy next to the original has another namespace, whose
# internal mqueue mount has another mnt_id in fdinfo)
for m in once x3 leave-running; do
	register "ns12c/mq_ipcns/$m" test_cr mq_ipcns $m
done

# A queue of the tree's namespace with an mq_notify registration is refused
# by name; the tree runs on with every message (its own check).
test_mq_ipcns_notify() {
	need_stasis || return 1
	echo notify >"$TDIR/mode"
	start_scenario mq_ipcns || return 1
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	dump_refused "dump of a queue with mq_notify" "POSIX message queue /n .*mq_notify" || return 1
	snapshot "$SCN_PID" "$TDIR/state.after" || return 1
	compare_state "$TDIR/state.before" "$TDIR/state.after" "after the failure" "$DETAILS" || return 1
	check_scenario
}
register "ns12c/mq_ipcns-notify" test_mq_ipcns_notify

# Ptys of a devpts of the tree's own (a container's /dev/pts): the same
# indexes in the new instance of the restored mount namespace, with their
# termios, window size and bytes in flight.
for m in once x3; do
	register "ns12c/devpts_pty/$m" test_cr devpts_pty $m
done

# Ptys of the host's /dev/pts and of the tree's own devpts at once: their
# indexes would clash, so the dump refuses by name; the tree runs on.
test_devpts_mix() {
	need_stasis || return 1
	echo mix >"$TDIR/mode"
	start_scenario devpts_pty || return 1
	dump_refused "dump of ptys of two devpts instances" "ptys of two devpts instances" || return 1
	check_scenario
}
register "ns12c/devpts_pty-two-instances" test_devpts_mix
