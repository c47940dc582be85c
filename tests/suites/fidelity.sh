# tests/suites/fidelity.sh - state that must come back exactly or be
# refused at dump (issue 10), sourced by tests/run.sh.  Scenarios:
# tests/scenarios/fid_*.c.

# a job stopped by SIGTSTP stays stopped by SIGTSTP; a SIGTRAP handler
# survives (raise and int3 reach it)
for m in once x3 leave-running; do
	register "fid_sig/$m" test_cr fid_sig $m
done

# the files of bound unix sockets keep mode, owner, group and times
for m in once x3 leave-running pidns; do
	register "fid_unixfile/$m" test_cr fid_unixfile $m
done

# madvise hints, MAP_DROPPABLE and the open mode behind a private file
# mapping come back (the runner compares smaps VmFlags too)
for m in once x3 leave-running pidns; do
	register "fid_mm/$m" test_cr fid_mm $m
done

# a mapping sealed with mseal() is refused at dump, naming it; the
# scenario runs on unharmed
test_fid_mseal() {
	need_stasis || return 1
	FID_MM_SEAL=1 start_scenario fid_mm || return 1
	dump_refused "dump of a process with a sealed mapping" "sealed (mseal)" || return 1
	check_scenario
}
register fid_mm/mseal-refused test_fid_mseal

# a pty slave keeps the owner and mode given to its node (no --pidns copy:
# the original holds the pty index the copy needs)
for m in once x3 leave-running; do
	register "fid_pty/$m" test_cr fid_pty $m
done

# deleted files keep set-id bits, owner, times, and their name even when a
# new file has taken it
for m in once x3 leave-running pidns; do
	register "fid_ghost/$m" test_cr fid_ghost $m
done

# pipes whose other end is closed everywhere and named FIFOs with only one
# kind of end come back with their bytes (no --pidns copy: a copy running
# beside the original opens the original's FIFO, one pipe for both)
for m in once x3 leave-running; do
	register "fid_ends/$m" test_cr fid_ends $m
done

# a pipe fed from outside the tree and /dev/console at fds above 2 are
# refused at dump, each by fd; the scenario runs on unharmed
test_fid_ends_outside() {
	need_stasis || return 1
	FID_ENDS_EXT=1 start_scenario fid_ends || return 1
	dump_refused "dump of a pipe fed from outside the tree" \
		"fd 14: pipe:\[[0-9]*\] has its other end outside the tree" || return 1
	check_scenario
}
register fid_ends/outside-refused test_fid_ends_outside

# fd 0 on a pipe from the runner: a restore -d redirects it to /dev/null
# and says so in one warning line naming the fd
test_fid_stdio_warning() {
	need_stasis || return 1
	start_scenario counter pipe || return 1
	dump "$SCN_PID" "$TDIR/img" || return 1
	wait_gone "$SCN_PID" || { bad "$SCN_PID still there after the dump"; return 1; }
	tree_gone "$TDIR/img" || return 1
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	grep -qs "pid $SCN_PID fd 0: pipe:\[[0-9]*\] is outside the tree: now /dev/null" \
		"$TDIR/restore$N_CMD.err" "$TDIR/restore$N_CMD.log" ||
		{ bad "no warning about fd 0: $(head -n 1 "$TDIR/restore$N_CMD.err")"; return 1; }
	[ "$(readlink "/proc/$SCN_PID/fd/0")" = /dev/null ] ||
		{ bad "fd 0 is $(readlink "/proc/$SCN_PID/fd/0"), not /dev/null"; return 1; }
	check_scenario
}
register fid_ends/stdio-warning test_fid_stdio_warning

# F_SETOWN_EX owners (process, thread, group) and F_SETSIG come back, and
# an O_ASYNC pipe still signals its owner
for m in once x3 leave-running pidns; do
	register "fid_fown/$m" test_cr fid_fown $m
done

# with dump --ext-files they are saved; restore refuses without
# --inherit-fd, naming the key, and with it gives the fds given
test_fid_ends_ext_files() {
	local keys k args=() n
	need_stasis || return 1
	FID_ENDS_EXT=1 start_scenario fid_ends || return 1
	dump "$SCN_PID" "$TDIR/img" --ext-files || return 1
	wait_gone "$SCN_PID" || { bad "$SCN_PID still there after the dump"; return 1; }
	tree_gone "$TDIR/img" || return 1
	stasis_cmd err restore -D "$TDIR/img" -d
	expect_error "restore of an outside pipe without --inherit-fd" $? "$TDIR/err.err" || return 1
	grep -q 'pass --inherit-fd fd\[N\]:pipe:\[[0-9]*\]' "$TDIR/err.err" ||
		{ bad "the error does not name the --inherit-fd key: $ERR_LINE"; return 1; }
	[ -e "/proc/$SCN_PID" ] && { adopt "$SCN_PID"; bad "$SCN_PID exists after the failed restore"; return 1; }
	keys=$("$STASIS" show -D "$TDIR/img" --json | grep -o '"key":"[^"]*"' | cut -d'"' -f4)
	[ -n "$keys" ] || { bad "stasis show lists no external key"; return 1; }
	for k in $keys; do
		args+=(--inherit-fd "fd[9]:$k")
	done
	N_CMD=$((N_CMD + 1))
	run_timed "$T_STASIS" "$TDIR/restore$N_CMD.out" "$TDIR/restore$N_CMD.err" \
		bash -c 'exec 9</dev/null && exec "$0" "$@"' "$STASIS" restore -D "$TDIR/img" -d \
		"${args[@]}" -v4 -o "$TDIR/restore$N_CMD.log"
	n=$?
	adopt_image "$TDIR/img" "$SCN_PID"
	rc_ok "restore --inherit-fd" $n "$TDIR/restore$N_CMD.err" || return 1
	[ "$(readlink "/proc/$SCN_PID/fd/14")" = /dev/null ] ||
		{ bad "fd 14 is $(readlink "/proc/$SCN_PID/fd/14"), not the inherited /dev/null"; return 1; }
	check_scenario
}
register fid_ends/ext-files-inherit test_fid_ends_ext_files

# a named FIFO fed by a process outside the tree: the pipe outlives the
# dumped tree, restore reopens it by path and does not refill it (the
# bytes are read once)
test_fid_ends_ofifo() {
	FID_ENDS_OFIFO=1 test_cr fid_ends "$1"
}
for m in once x3; do
	register "fid_ends/outside-fifo-$m" test_fid_ends_ofifo $m
done
