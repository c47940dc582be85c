# tests/suites/tty.sh - terminals, shell jobs and job control (src/res/tty.c).

# The pty scenario in the usual modes.
for m in once x3 leave-running; do
	register "tty_pty/$m" test_cr tty_pty $m
done

# Stopped jobs stay stopped (WORKDIR/stopped) and SIGCONT continues them.
for m in once x3 leave-running; do
	register "tty_stop/$m" test_cr tty_stop $m
done

# test_tty_pidns_taken: a copy of the pty scenario cannot be restored
# next to its original (--pidns): the pty indices are the original's.  The
# restore is refused with a line naming the pty, leaves no process of its
# own behind, and the original is unharmed.
test_tty_pidns_taken() {
	local IMG rc old p
	need_stasis || return 1
	start_scenario tty_pty || return 1
	snapshot_scenario before || return 1
	dump_leave_running 1 || return 1
	old=" $(ns_inits | tr '\n' ' ') "
	N_CMD=$((N_CMD + 1))
	stasis_cmd "restore$N_CMD" restore -D "$IMG" -d --pidns -v4 -o "$TDIR/restore$N_CMD.log"
	rc=$?
	for p in $(ns_inits); do
		[[ $old == *" $p "* ]] && continue
		track "$p"
		bad "restore --pidns failed but left its namespace init $p"
		return 1
	done
	expect_error "restore --pidns" $rc "$TDIR/restore$N_CMD.err" || return 1
	[[ $ERR_LINE == *"/dev/pts/"*"in use"* ]] ||
		{ bad "error does not name the pty in use: $ERR_LINE"; return 1; }
	original_fine "original after the refused copy" running2 || return 1
	check_scenario
}
register tty_pty/pidns-index-taken test_tty_pidns_taken

# ------------------------------------------------------------ shell jobs

TERM_PID=""

# term_start VAR LOG COMMAND...: run COMMAND on a new terminal (tty_term)
# that appends its screen output to LOG; what is written to the fd stored
# in VAR is typed on it.  TERM_PID is the terminal's pid.
term_start() {
	local var=$1 fd
	shift
	exec {fd}> >(close_extra_fds
		exec "$BUILD/tests/tty_term" "$@" >/dev/null 2>&1)
	TERM_PID=$!
	track "$TERM_PID"
	printf -v "$var" %s "$fd"
}

# job_start: an interactive bash on a terminal starts tty_job as a
# foreground job and types "before" to it.  Sets T1 (its input), T1_PID,
# SCN_* and JOB_TTY (the job's terminal).
job_start() {
	term_start T1 "$TDIR/log" env PS1='term1$ ' TERM=dumb bash --norc --noprofile -i
	T1_PID=$TERM_PID
	wait_log "$TDIR/log" 'term1\$ ' 10 || { bad "no shell prompt on the first terminal"; return 1; }
	SCN_NAME=tty_job
	(echo "exec 251>&-; $BUILD/tests/tty_job $TDIR" >&"$T1") 2>/dev/null
	wait_file "$TDIR/ready" "$WAIT_READY" || { bad "the job did not start on the terminal"; return 1; }
	read -r SCN_PID SCN_TOKEN <"$TDIR/ready"
	SCN_START=$(proc_start "$SCN_PID") || { bad "the job exited at once"; return 1; }
	track "$SCN_PID"
	JOB_TTY=$(readlink "/proc/$SCN_PID/fd/0")
	[[ $JOB_TTY == /dev/pts/* ]] || { bad "the job's stdin is $JOB_TTY, not a terminal"; return 1; }
	(echo before >&"$T1") 2>/dev/null
	wait_log "$TDIR/log" 'got: before' 10 || { bad "the job did not read 'before'"; return 1; }
}

# job_end: the first terminal's shell exits.
job_end() {
	(echo exit >&"$T1") 2>/dev/null
	eval "exec $T1>&-"
	wait_gone "$T1_PID" 5 || true
}

# test_tty_shell_job MODE: a job started from an interactive shell.  Its
# dump needs -j (the error says so), and so does its restore.  MODE
# "terminal": restored by `stasis restore -j` run on a second terminal, it
# is attached to that terminal (fds 0-2, controlling terminal, foreground
# group, the restorer's session) and reads what is typed there; the
# restorer exits with the job's status.  MODE "detached": restore -j -d
# connects its terminal fds to /dev/null.
test_tty_shell_job() {
	local mode=$1 img=$TDIR/img1 rc limit t f
	need_stasis || return 1
	job_start || return 1
	N_CMD=$((N_CMD + 1))
	mkdir -p "$img"
	stasis_cmd "dump$N_CMD" dump -t "$SCN_PID" -D "$img" -v4 -o "$TDIR/dump$N_CMD.log"
	rc=$?
	expect_error "dump without -j" $rc "$TDIR/dump$N_CMD.err" || return 1
	[[ $ERR_LINE == *" -j "* ]] || { bad "the error does not say that -j is needed: $ERR_LINE"; return 1; }
	[ ! -e "$img/$IMG_NAME" ] || { bad "the refused dump left an image"; return 1; }
	{ alive "$SCN_PID" && ! stopped "$SCN_PID"; } || { bad "the job is not running after the refused dump"; return 1; }
	dump "$SCN_PID" "$img" -j || return 1
	wait_gone "$SCN_PID" || { bad "the job is still there after the dump"; return 1; }
	tree_gone "$img" || return 1
	N_CMD=$((N_CMD + 1))
	stasis_cmd "restore$N_CMD" restore -D "$img" -d -v4 -o "$TDIR/restore$N_CMD.log"
	rc=$?
	adopt "$SCN_PID"
	expect_error "restore without -j" $rc "$TDIR/restore$N_CMD.err" || return 1
	[[ $ERR_LINE == *" -j "* ]] || { bad "the error does not say that -j is needed: $ERR_LINE"; return 1; }
	if [ "$mode" = detached ]; then
		N_CMD=$((N_CMD + 1))
		stasis_cmd "restore$N_CMD" restore -j -d -D "$img" -v4 -o "$TDIR/restore$N_CMD.log"
		rc=$?
		adopt "$SCN_PID"
		rc_ok "restore -j -d" $rc "$TDIR/restore$N_CMD.err" || return 1
		sleep 0.2
		{ alive "$SCN_PID" && ! stopped "$SCN_PID"; } || { bad "the restored job is not running (state $(proc_state "$SCN_PID"))"; return 1; }
		for f in 0 1 2; do
			t=$(readlink "/proc/$SCN_PID/fd/$f")
			[ "$t" = /dev/null ] || { bad "with -d, fd $f of the job is $t, expected /dev/null"; return 1; }
		done
		kill -KILL "$SCN_PID"
		job_end
		return 0
	fi
	N_CMD=$((N_CMD + 1))
	term_start T2 "$TDIR/log" "$STASIS" restore -j -D "$img" -v4 -o "$TDIR/restore$N_CMD.log"
	limit=$(($(now_ms) + WAIT_READY * 1000))
	until alive "$SCN_PID" && [ "$(proc_start "$SCN_PID")" != "$SCN_START" ]; do
		alive "$TERM_PID" || { bad "restore -j on the second terminal ended before the job ran: $(tail -n 1 "$TDIR/restore$N_CMD.log")"; return 1; }
		[ "$(now_ms)" -lt $limit ] || { bad "the job was not restored within ${WAIT_READY}s"; return 1; }
		sleep 0.05
	done
	adopt "$SCN_PID"
	t=$(readlink "/proc/$SCN_PID/fd/0")
	[[ $t == /dev/pts/* ]] && [ "$t" != "$JOB_TTY" ] ||
		{ bad "the restored job's stdin is $t, expected the second terminal (not $JOB_TTY)"; return 1; }
	(echo after >&"$T2") 2>/dev/null
	wait_log "$TDIR/log" 'got: after' 10 || { bad "the restored job did not read 'after' from the second terminal"; return 1; }
	check_scenario || return 1
	wait_gone "$TERM_PID" 5 || { bad "the restorer's terminal did not end after the job exited"; return 1; }
	wait "$TERM_PID"
	rc=$?
	[ $rc = 0 ] || { bad "restore -j exited with $rc, expected the job's status 0"; return 1; }
	job_end
}
register tty_job/restore-on-terminal test_tty_shell_job terminal
register tty_job/restore-detached test_tty_shell_job detached

# ------------------------------------- a terminal with a shell, in the tree

SCREEN_OFF=0	# what the screen log held at the last screen_mark

# screen_mark: later screen_wait calls only look at what comes next.
screen_mark() {
	SCREEN_OFF=$(stat -c %s "$TDIR/screen" 2>/dev/null || echo 0)
}

# screen_wait REGEX [SECONDS]: the terminal showed REGEX since screen_mark.
screen_wait() {
	local limit=$(($(now_ms) + ${2:-10} * 1000))
	until tail -c +$((SCREEN_OFF + 1)) "$TDIR/screen" 2>/dev/null | tr -d '\r' | grep -qE -- "$1"; do
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.05
	done
}

# type_keys FORMAT [ARGS...]: type printf's output on the terminal of the tree.
type_keys() {
	# shellcheck disable=SC2059
	# a subshell: a terminal that is gone gives it, not the runner, SIGPIPE
	(printf "$@" >&"$PIPE_FD") 2>/dev/null
}

# test_tty_shell_tree: a whole terminal session is the tree: a terminal
# (tty_term, holding the pty master) runs an interactive bash (session
# leader, the pty its controlling terminal) with a variable set, history,
# a stopped background job, and less in the foreground (reading keys from
# /dev/tty) scrolled to line 100 of a file, with keys typed ahead.  After
# the restore (its input a new pipe), less answers keys from where it was
# (g: back to line 1), and bash still has its variable, history and the
# stopped job, which it can kill.
test_tty_shell_tree() {
	local img=$TDIR/img1 rpid rc limit i
	need_stasis || return 1
	command -v less >/dev/null || { REASON="less is not installed"; return 77; }
	for ((i = 1; i <= 300; i++)); do printf 'L%04d line of the file\n' $i; done >"$TDIR/file"
	SCN_NAME=tty_term SCN_TOKEN=""
	exec {PIPE_FD}> >(close_extra_fds
		cd "$TDIR" && exec setsid "$BUILD/tests/tty_term" "$TDIR/screen" \
			env PS1='sh$ ' TERM=vt100 LESS= LESSHISTFILE=- HISTFILE=/dev/null \
			bash --norc --noprofile -i >/dev/null 2>&1)
	SCN_PID=$!
	track "$SCN_PID"
	SCN_START=$(proc_start "$SCN_PID") || { bad "tty_term exited at once"; return 1; }
	SCREEN_OFF=0
	screen_wait 'sh\$ ' || { bad "no shell prompt"; return 1; }
	type_keys 'x=42\n'
	type_keys 'echo hist-marker\n'
	type_keys 'sleep 1000\n'
	sleep 0.3
	type_keys '\032'
	screen_wait 'Stopped +sleep 1000' || { bad "the job did not stop on ^Z"; return 1; }
	screen_mark
	type_keys 'less %s\n' "$TDIR/file"
	screen_wait 'L0001 line' || { bad "less did not show the file"; return 1; }
	type_keys '100g'
	screen_mark
	screen_wait 'L0110 line' || { bad "less did not scroll"; return 1; }
	track_tree "$SCN_PID"
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	dump "$SCN_PID" "$img" || return 1
	wait_gone "$SCN_PID" || { bad "the terminal is still there after the dump"; return 1; }
	close_pipe
	tree_gone "$img" || return 1
	N_CMD=$((N_CMD + 1))
	exec {PIPE_FD}> >(close_extra_fds
		exec timeout -k 5 "$T_STASIS" "$STASIS" restore -D "$img" \
			-v4 -o "$TDIR/restore$N_CMD.log" >"$TDIR/restore$N_CMD.out" \
			2>"$TDIR/restore$N_CMD.err")
	rpid=$!
	track "$rpid"
	limit=$(($(now_ms) + WAIT_READY * 1000))
	until alive "$SCN_PID" && [ "$(proc_start "$SCN_PID")" != "$SCN_START" ]; do
		alive "$rpid" || { adopt_image "$img" "$SCN_PID"; bad "restore ended before the terminal ran: $(head -n 1 "$TDIR/restore$N_CMD.err")"; return 1; }
		[ "$(now_ms)" -lt $limit ] || { bad "the terminal was not restored within ${WAIT_READY}s"; return 1; }
		sleep 0.05
	done
	adopt_image "$img" "$SCN_PID"
	sleep 0.2
	screen_mark
	type_keys 'g'	# back to line 1
	screen_wait 'L0001 line' || { bad "less did not answer 'g' after the restore"; return 1; }
	type_keys 'q'
	screen_mark
	type_keys 'echo "x=$x"\n'
	screen_wait 'x=42' || { bad "bash lost its variable (or did not answer)"; return 1; }
	type_keys 'echo "hist=$(history | grep -c hist-mark)"\n'
	screen_wait 'hist=2' || { bad "bash lost its history"; return 1; }
	screen_mark
	type_keys 'jobs\n'
	screen_wait 'Stopped +sleep 1000' || { bad "bash lost its stopped job"; return 1; }
	# the restored job dies of bash's kill (bash's own report of it may lag)
	i=$(image_pids "$img" | while read -r p; do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sleep ] && echo "$p"; done)
	[ -n "$i" ] || { bad "the restored stopped job is gone before the kill"; return 1; }
	type_keys 'kill -9 %%1\n'
	limit=$(($(now_ms) + 5000))
	until [ "$(proc_state "$i")" = Z ] || [ ! -e "/proc/$i" ]; do
		[ "$(now_ms)" -lt $limit ] || { bad "bash could not kill its restored stopped job $i (state $(proc_state "$i"))"; return 1; }
		sleep 0.05
	done
	# bash may still list the dead job as stopped and refuse the first
	# exit; the second one then exits with the first one's status, so
	# both say 0 (bash's report of a job can lag: see above)
	type_keys 'exit 0\n'
	sleep 0.3
	type_keys 'exit 0\n'
	wait_gone "$SCN_PID" 10 || { bad "the terminal did not end after exit"; return 1; }
	close_pipe
	wait_gone "$rpid" 5 || { bad "restore did not exit after the terminal did"; return 1; }
	wait "$rpid"
	rc=$?
	[ $rc = 0 ] || { bad "restore exited with $rc, expected the terminal's status 0"; return 1; }
}
register tty_shell/terminal-bash-less-job test_tty_shell_tree

# ------------------------------------------------------------------ tmux

# need_cmds CMD:PACKAGE...: each command is there, or its Debian package
# is installed now (as root); else REASON says what is missing.
need_cmds() {
	local c miss=()
	for c in "$@"; do
		command -v "${c%%:*}" >/dev/null || miss+=("${c#*:}")
	done
	[ ${#miss[@]} = 0 ] && return 0
	if [ "$(id -u)" = 0 ] && { apt-get install -y -qq "${miss[@]}" ||
		{ apt-get update -qq && apt-get install -y -qq "${miss[@]}"; }; } >/dev/null 2>&1; then
		return 0
	fi
	REASON="cannot install ${miss[*]}"
	return 1
}

TMUX_SOCK=""
HELD_PTYS=()

# hold_ptys / free_ptys: take a few low pty indices while tmux makes its
# panes, and give them back: a pty opened meanwhile by another test run on
# the machine gets one of those, not a pane's once the dump has freed it.
hold_ptys() {
	local i fd
	for ((i = 0; i < 4 + RANDOM % 28; i++)); do
		exec {fd}<>/dev/ptmx && HELD_PTYS+=("$fd")
	done
}

free_ptys() {
	local fd
	for fd in "${HELD_PTYS[@]}"; do
		exec {fd}>&-
	done
	HELD_PTYS=()
}

tmx() {
	timeout 10 tmux -S "$TMUX_SOCK" "$@" </dev/null 2>>"$TDIR/tmux.err"
}

# pane_wait TARGET REGEX [SECONDS]: the pane's screen shows REGEX.
pane_wait() {
	local limit=$(($(now_ms) + ${3:-10} * 1000))
	until tmx capture-pane -p -t "$1" | grep -qE -- "$2"; do
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.1
	done
}

# test_tty_tmux: a tmux server with three panes (bash with a variable,
# history and a stopped job; top; less half way through a file) is
# checkpointed, killed and restored; each pane shows what it showed and
# answers keys.  No client is attached: send-keys and capture-pane connect
# for a moment each.
test_tty_tmux() {
	local img=$TDIR/img1 i spid rc limit sh="env 'PS1=p\$ ' HISTFILE=/dev/null TERM=screen bash --norc --noprofile -i"
	need_stasis || return 1
	need_cmds tmux:tmux less:less top:procps || return 77
	TMUX_SOCK=$TDIR/tmux.sock
	for ((i = 1; i <= 300; i++)); do printf 'L%04d line of the file\n' $i; done >"$TDIR/file"
	hold_ptys
	(close_extra_fds; cd "$TDIR" && exec env -u TMUX timeout 10 tmux -S "$TMUX_SOCK" -f /dev/null \
		new-session -d -s t -x 100 -y 30 "$sh") </dev/null >/dev/null 2>&1
	spid=$(tmx display-message -p '#{pid}')
	[[ $spid =~ ^[0-9]+$ ]] || { free_ptys; bad "no tmux server: $(tail -n 1 "$TDIR/tmux.err" 2>/dev/null)"; return 1; }
	track "$spid"
	SCN_PID=$spid SCN_NAME=tmux SCN_TOKEN=""
	SCN_START=$(proc_start "$spid")
	tmx new-window -t t:1 "$sh" && tmx new-window -t t:2 "$sh" || { free_ptys; bad "tmux new-window failed"; return 1; }
	free_ptys
	track_tree "$spid"
	for i in 0 1 2; do
		pane_wait "t:$i" '^p\$' || { bad "no prompt in window $i"; return 1; }
	done
	tmx send-keys -t t:0 'x=42' Enter 'echo hist-marker' Enter 'sleep 1000' Enter
	sleep 0.3
	tmx send-keys -t t:0 C-z
	pane_wait t:0 'Stopped +sleep 1000' || { bad "the job did not stop"; return 1; }
	i=$(tmx display-message -p -t t:0 '#{pane_pid}')
	cat "/proc/$i/task/$i/children" >"$TDIR/stopped"	# the runner expects it stopped
	tmx send-keys -t t:1 'top -d 0.5' Enter
	pane_wait t:1 '^top - ' || { bad "top did not start"; return 1; }
	tmx send-keys -t t:2 "less $TDIR/file" Enter
	pane_wait t:2 'L0001 line' || { bad "less did not start"; return 1; }
	tmx send-keys -t t:2 150g
	pane_wait t:2 '^L0150 line' || { bad "less did not scroll"; return 1; }
	tmx capture-pane -p -t t:2 >"$TDIR/less.before"
	track_tree "$spid"
	N_CMD=$((N_CMD + 1))
	mkdir -p "$img"
	stasis_cmd "dump$N_CMD" dump -t "$spid" -D "$img" -v4 -o "$TDIR/dump$N_CMD.log"
	rc=$?
	if [ $rc != 0 ] && grep -q 'socket' "$TDIR/dump$N_CMD.err"; then
		REASON="tmux holds unix sockets, which this build refuses: $(head -n 1 "$TDIR/dump$N_CMD.err")"
		tmx kill-server
		return 77
	fi
	rc_ok "dump" $rc "$TDIR/dump$N_CMD.err" || return 1
	wait_gone "$spid" || { bad "the tmux server is still there after the dump"; return 1; }
	tree_gone "$img" || return 1
	restore_detached "$img" "$spid" || return 1
	# less: the same screen, and it answers keys
	tmx capture-pane -p -t t:2 >"$TDIR/less.after"
	cmp -s "$TDIR/less.before" "$TDIR/less.after" ||
		{ bad "less's pane differs after the restore"; diff "$TDIR/less.before" "$TDIR/less.after" >>"$DETAILS"; return 1; }
	tmx send-keys -t t:2 g
	pane_wait t:2 '^L0001 line' || { bad "less did not answer 'g' after the restore"; return 1; }
	tmx send-keys -t t:2 q
	pane_wait t:2 '^p\$ ?$' || { bad "less did not quit on 'q'"; return 1; }
	# top: still refreshing, and answers keys
	tmx capture-pane -p -t t:1 | head -n 1 >"$TDIR/top.1"
	sleep 1.2
	tmx capture-pane -p -t t:1 | head -n 1 >"$TDIR/top.2"
	grep -q '^top - ' "$TDIR/top.2" && ! cmp -s "$TDIR/top.1" "$TDIR/top.2" ||
		{ bad "top does not refresh after the restore ($(cat "$TDIR/top.2"))"; return 1; }
	tmx send-keys -t t:1 q
	pane_wait t:1 '^p\$ ?$' || { bad "top did not quit on 'q'"; return 1; }
	# bash: variable, history, stopped job
	tmx send-keys -t t:0 'echo "x=$x"' Enter
	pane_wait t:0 '^x=42' || { bad "bash lost its variable"; return 1; }
	tmx send-keys -t t:0 'echo "hist=$(history | grep -c hist-mark)"' Enter
	pane_wait t:0 '^hist=2' || { bad "bash lost its history"; return 1; }
	tmx send-keys -t t:0 'jobs' Enter
	pane_wait t:0 '^\[1\]\+ +Stopped +sleep 1000' || { bad "bash lost its stopped job"; return 1; }
	tmx send-keys -t t:0 'kill -9 %1' Enter
	# dead (bash's own report of it may lag)
	i=$(tr -d ' ' <"$TDIR/stopped")
	limit=$(($(now_ms) + 5000))
	until [ "$(proc_state "$i")" = Z ] || [ ! -e "/proc/$i" ]; do
		[ "$(now_ms)" -lt $limit ] || { bad "bash could not kill its restored stopped job $i (state $(proc_state "$i"))"; return 1; }
		sleep 0.05
	done
	tmx kill-server
	wait_gone "$spid" 5 || { bad "the restored tmux server did not exit on kill-server"; return 1; }
}
register tty_tmux/server-with-panes test_tty_tmux

# test_tty_tmux_job: an interactive bash started as a job from the bash
# of one tmux pane (a variable set in it) is dumped with -j and restored
# with `stasis restore -j` typed into another pane: the job's bash then
# reads that pane's keys and still has its variable; when it exits, the
# restore exits with its status and the pane's shell is back.  (Only the
# job is dumped: the tmux server keeps running.)
test_tty_tmux_job() {
	local img=$TDIR/img1 i jpid ppid limit sh="env 'PS1=p\$ ' HISTFILE=/dev/null TERM=screen bash --norc --noprofile -i"
	need_stasis || return 1
	need_cmds tmux:tmux || return 77
	TMUX_SOCK=$TDIR/tmux.sock
	hold_ptys
	(close_extra_fds; cd "$TDIR" && exec env -u TMUX timeout 10 tmux -S "$TMUX_SOCK" -f /dev/null \
		new-session -d -s t -x 100 -y 30 "$sh") </dev/null >/dev/null 2>&1
	free_ptys
	i=$(tmx display-message -p '#{pid}')
	[[ $i =~ ^[0-9]+$ ]] || { bad "no tmux server: $(tail -n 1 "$TDIR/tmux.err" 2>/dev/null)"; return 1; }
	track "$i"
	tmx new-window -t t:1 "$sh" || { bad "tmux new-window failed"; return 1; }
	for i in 0 1; do
		pane_wait "t:$i" '^p\$' || { bad "no prompt in window $i"; return 1; }
	done
	tmx send-keys -t t:0 "env 'PS1=job\$ ' bash --norc --noprofile -i" Enter
	pane_wait t:0 '^job\$' || { bad "the job's bash did not start"; return 1; }
	tmx send-keys -t t:0 'y=7' Enter
	ppid=$(tmx display-message -p -t t:0 '#{pane_pid}')
	jpid=$(tr -d " " <"/proc/$ppid/task/$ppid/children")
	[[ $jpid =~ ^[0-9]+$ ]] || { bad "cannot find the job's bash (children of $ppid: $jpid)"; return 1; }
	SCN_PID=$jpid SCN_NAME=bash-job SCN_TOKEN=""
	SCN_START=$(proc_start "$jpid")
	dump "$jpid" "$img" -j || return 1
	wait_gone "$jpid" || { bad "the job is still there after the dump"; return 1; }
	pane_wait t:0 '^p\$' || { bad "the first pane's shell did not get its terminal back"; return 1; }
	tree_gone "$img" || return 1
	tmx send-keys -t t:1 "exec 251>&-; $STASIS restore -j -D $img -v4 -o $TDIR/restore.log; echo \"restore=\$?\"" Enter
	limit=$(($(now_ms) + WAIT_READY * 1000))
	until alive "$jpid" && [ "$(proc_start "$jpid")" != "$SCN_START" ]; do
		[ "$(now_ms)" -lt $limit ] || { bad "the job was not restored within ${WAIT_READY}s: $(tmx capture-pane -p -t t:1 | grep . | tail -n 1)"; return 1; }
		sleep 0.05
	done
	adopt "$jpid"
	sleep 0.2
	i=$(readlink "/proc/$jpid/fd/0")
	[ "$i" = "$(tmx display-message -p -t t:1 '#{pane_tty}')" ] ||
		{ bad "the restored job's stdin is $i, not the second pane's terminal"; return 1; }
	tmx send-keys -t t:1 'echo "y=$y"' Enter
	pane_wait t:1 '^y=7' || { bad "the restored job's bash does not answer or lost its variable"; return 1; }
	tmx send-keys -t t:1 'exit 3' Enter
	pane_wait t:1 '^restore=3' || { bad "restore did not exit with the job's status 3"; return 1; }
	tmx kill-server
}
register tty_tmux/bash-job-to-another-pane test_tty_tmux_job

# test_tty_failed_dump: a dump that fails after it has read the bytes in
# flight of the ptys (a userfaultfd comes after them) leaves every byte
# where it was: the scenario's own check passes on the original.
test_tty_failed_dump() {
	local img=$TDIR/img1 rc
	need_stasis || return 1
	touch "$TDIR/fail-dump"
	start_scenario tty_pty || return 1
	snapshot_scenario before || return 1
	N_CMD=$((N_CMD + 1))
	mkdir -p "$img"
	stasis_cmd "dump$N_CMD" dump -t "$SCN_PID" -D "$img" -v4 -o "$TDIR/dump$N_CMD.log"
	rc=$?
	expect_error "dump of a tree with a userfaultfd" $rc "$TDIR/dump$N_CMD.err" || return 1
	grep -q 'byte(s) in flight to the slave' "$TDIR/dump$N_CMD.log" ||
		{ bad "the dump failed before it took the ptys' bytes (nothing tested): $ERR_LINE"; return 1; }
	[ ! -e "$img/$IMG_NAME" ] || { bad "the failed dump left an image"; return 1; }
	original_fine "original after the failed dump" running || return 1
	check_scenario
}
register tty_pty/failed-dump-keeps-bytes test_tty_failed_dump

# test_tty_flood: more output waits on a pty than a line discipline holds:
# the dump refuses it with one line naming pid, fd and pty, before it takes
# anything, so every byte is still there for the reader.
test_tty_flood() {
	local img=$TDIR/img1 rc
	need_stasis || return 1
	touch "$TDIR/flood"
	start_scenario tty_pty || return 1
	snapshot_scenario before || return 1
	N_CMD=$((N_CMD + 1))
	mkdir -p "$img"
	stasis_cmd "dump$N_CMD" dump -t "$SCN_PID" -D "$img" -R -v4 -o "$TDIR/dump$N_CMD.log"
	rc=$?
	expect_error "dump of a flooded pty" $rc "$TDIR/dump$N_CMD.err" || return 1
	[[ $ERR_LINE == *"pid $SCN_PID fd "*"/dev/pts/"*"bytes of output wait"* ]] ||
		{ bad "unexpected error: $ERR_LINE"; return 1; }
	[ ! -e "$img/$IMG_NAME" ] || { bad "the failed dump left an image"; return 1; }
	original_fine "original after the refused dump" running || return 1
	check_scenario
}
register tty_pty/too-much-output-refused test_tty_flood
