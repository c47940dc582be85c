# tests/suites/fault.sh - a fault at every step (sourced by tests/run.sh).
#
# `stasis check --faults` lists every fault point (src/util/fault.c: the
# stages of every resource kind, the dump and open of every fd kind, the
# image container and the driver steps).  For each one, STASIS_FAULT=POINT
# makes dump or restore fail there as a real error would, and the promises
# must hold:
#   dump point:    the failed `dump -R` leaves the tree running exactly as
#                  before (the runner's /proc comparison, its own check at
#                  the end) and no file in the image directory;
#   restore point: the failed `restore -d` leaves nothing of the new tree
#                  (every PID of the image free again), the image unchanged
#                  (same hash), and a second restore succeeds.
# A point the scenario does not reach (the command succeeds and no fault
# was injected) is listed in the test's log as not reached, and is no
# failure.  FAULT_ONLY=REGEX limits the loop to matching points;
# FAULT_N=N fails each the Nth time it is reached instead of the first.

# fault_is_restore POINT: a point that restore reaches (the others: dump).
fault_is_restore() {
	case $1 in
	restore:* | image:read | fd_open:*) return 0 ;;
	esac
	return 1
}

# fault_points dump|restore: the points of that side, filtered by FAULT_ONLY.
fault_points() {
	local p
	"$STASIS" check --faults | while read -r p; do
		[ -n "${FAULT_ONLY:-}" ] && ! [[ $p =~ $FAULT_ONLY ]] && continue
		if fault_is_restore "$p"; then
			[ "$1" = restore ] && echo "$p"
		else
			[ "$1" = dump ] && echo "$p"
		fi
	done
}

# fault_reached_points dump|restore TRACE: the points of that side that
# TRACE (STASIS_FAULT_TRACE of a run without a fault) shows reached at
# least FAULT_N times, then "-" and the others (not reached: not tried).
fault_reached_points() {
	local p n out=()
	for p in $(fault_points "$1"); do
		n=$(grep -cxF "$p" "$2")
		if [ "$n" -ge "${FAULT_N:-1}" ]; then
			echo "$p"
		else
			out+=("$p")
		fi
	done
	echo -
	printf '%s\n' "${out[@]}"
}

# fault_run POINT NAME ARGS...: run stasis ARGS with STASIS_FAULT=POINT;
# sets FAULT_RC and FAULT_HIT (1 if the fault was injected).
fault_run() {
	local point=$1 name=$2
	shift 2
	STASIS_FAULT=$point${FAULT_N:+:$FAULT_N} stasis_cmd "$name" "$@"
	FAULT_RC=$?
	FAULT_HIT=0
	grep -qF "fault injected at $point " "$TDIR/$name.err" && FAULT_HIT=1
	echo "$point rc=$FAULT_RC hit=$FAULT_HIT at $(now_ms)" >>"$TDIR/points"
	[ -n "${FAULT_TRACE:-}" ] && echo "$point rc=$FAULT_RC hit=$FAULT_HIT at $(now_ms)" >>"$FAULT_TRACE"
	return 0
}

# fault_run_restore POINT ARGS...: fault_run of a restore.  On a machine
# shared with other runs (pid_max 32768) a TID of the tree is now and then
# taken by another process between two restores of the loop; the restore
# then refuses, rightly, before the fault's step: wait (60 s at most) for
# that PID and run the point again (3 tries).
fault_run_restore() {
	local point=$1 try tid
	shift
	for try in 1 2 3; do
		fault_run "$point" f "$@"
		[ $FAULT_HIT = 0 ] && [ $FAULT_RC != 0 ] || return 0
		tid=$(sed -nE 's/^Error: (tid|pid) ([0-9]+) is taken by another process.*/\2/p' "$TDIR/f.err")
		[ -n "$tid" ] || return 0
		echo "$point: $(head -n 1 "$TDIR/f.err"); waiting for it (try $try)" >>"$DETAILS"
		wait_pid_free "$tid" 60 || return 0
	done
}

# fault_outcome POINT WHAT: 0 if the fault was injected and the command
# failed, 2 if it was not reached, else 1 (with the reason).
fault_outcome() {
	if [ $FAULT_HIT = 0 ]; then
		[ $FAULT_RC = 0 ] && return 2
		bad "$1: $2 failed without the fault being injected: $(head -n 1 "$TDIR/f.err")"
		return 1
	fi
	[ $FAULT_RC != 0 ] || { bad "$1: the fault was injected but $2 succeeded"; return 1; }
	[ $FAULT_RC != 124 ] || { bad "$1: $2 hung (killed after ${T_STASIS}s)"; return 1; }
	[ $FAULT_RC -lt 128 ] || { bad "$1: $2 died of signal $((FAULT_RC - 128))"; return 1; }
	return 0
}

# fault_dump_held POINT IMG WHAT [light]: after the failed dump, no file in
# the image directory and the tree as it was (light: running, not stopped,
# its /proc state not compared).
fault_dump_held() {
	[ -z "$(ls -A "$TDIR/f.img")" ] ||
		{ bad "$1: the failed $3 left $(ls -A "$TDIR/f.img" | tr '\n' ' ')in the image directory"; return 1; }
	if [ -n "${4:-}" ]; then
		{ [ "$(proc_start "$SCN_PID")" = "$SCN_START" ] && alive "$SCN_PID"; } ||
			{ bad "$1 ($3): original process $SCN_PID is gone"; return 1; }
	else
		original_fine "$1 ($3 -R, then $3)" "f" || return 1
	fi
	tree_fine "$2" || { REASON="$1 ($3): $REASON"; return 1; }
}

# fault_dump_points IMG: every dump point on the running scenario.
fault_dump_points() {
	local img=$1 p n=0 missed=() points
	rm -rf "$TDIR/f.img" "$TDIR/trace"
	# shellcheck disable=SC2086
	STASIS_FAULT_TRACE=$TDIR/trace stasis_cmd f dump -t "$SCN_PID" -D "$TDIR/f.img" -R $DUMP_OPTS ||
		{ bad "the traced dump -R failed: $(head -n 1 "$TDIR/f.err")"; return 1; }
	points=$(fault_reached_points dump "$TDIR/trace")
	read -r -a missed <<<"$(sed '1,/^-$/d' <<<"$points" | tr '\n' ' ')"
	points=$(sed '/^-$/,$d' <<<"$points")
	for p in $points; do
		rm -rf "$TDIR/f.img"
		mkdir -p "$TDIR/f.img"
		# shellcheck disable=SC2086
		fault_run "$p" f dump -t "$SCN_PID" -D "$TDIR/f.img" -R $DUMP_OPTS
		fault_outcome "$p" "dump -R"
		case $? in
		2)
			missed+=("$p")
			continue
			;;
		1) return 1 ;;
		esac
		n=$((n + 1))
		# the full /proc comparison comes after the second run (either
		# run's harm shows there: both are compared with the state before)
		fault_dump_held "$p" "$img" "dump -R" light || return 1
		# the same fault in a dump that would kill the tree had it worked
		# shellcheck disable=SC2086
		fault_run "$p" f dump -t "$SCN_PID" -D "$TDIR/f.img" $DUMP_OPTS
		fault_outcome "$p" "dump" || { [ $? = 2 ] && bad "$p: reached by dump -R, not by dump"; return 1; }
		fault_dump_held "$p" "$img" "dump" || return 1
	done
	echo "    dump: $n points reached and held; not reached: ${missed[*]}"
}

# fault_pts: the pty numbers in use now.
fault_pts() {
	ls /dev/pts | grep -E '^[0-9]+$' | sort -n | tr '\n' ' '
}

# fault_pts_back BEFORE: wait (2 s at most) until the ptys of a killed
# copy are freed (the kernel lets a pty number go a moment after its last
# holder died) and only the ones of BEFORE are left.
fault_pts_back() {
	local limit=$(($(now_ms) + 2000)) p extra
	while :; do
		extra=""
		for p in $(fault_pts); do
			[[ " $1 " == *" $p "* ]] || extra+="$p "
		done
		[ -z "$extra" ] && return 0
		[ "$(now_ms)" -lt $limit ] || { bad "ptys $extra still in use 2 s after the copy was killed"; return 1; }
		sleep 0.02
	done
}

# fault_restore_points IMG: every restore point, the original tree gone.
fault_restore_points() {
	local img=$1 p n=0 missed=() hash pts points rc
	hash=$(sha256sum <"$img/$IMG_NAME")
	pts=$(fault_pts)
	rm -f "$TDIR/trace"
	STASIS_FAULT_TRACE=$TDIR/trace stasis_cmd f restore -D "$img" -d
	rc=$?
	adopt_image "$img" "$SCN_PID"
	[ $rc = 0 ] || { bad "the traced restore failed: $(head -n 1 "$TDIR/f.err")"; return 1; }
	kill_tree "$img" || return 1
	fault_pts_back "$pts" || return 1
	points=$(fault_reached_points restore "$TDIR/trace")
	read -r -a missed <<<"$(sed '1,/^-$/d' <<<"$points" | tr '\n' ' ')"
	points=$(sed '/^-$/,$d' <<<"$points")
	for p in $points; do
		fault_run_restore "$p" restore -D "$img" -d
		adopt_image "$img" "$SCN_PID"
		fault_outcome "$p" "restore -d"
		case $? in
		2)
			missed+=("$p")
			kill_tree "$img" || return 1
			fault_pts_back "$pts" || return 1
			continue
			;;
		1) return 1 ;;
		esac
		n=$((n + 1))
		tree_gone "$img" || { REASON="$p: after the failed restore: $REASON"; return 1; }
		[ "$(sha256sum <"$img/$IMG_NAME")" = "$hash" ] ||
			{ bad "$p: the failed restore changed the image"; return 1; }
		fault_pts_back "$pts" || { REASON="$p: after the failed restore: $REASON"; return 1; }
		restore_detached "$img" "$SCN_PID" || { REASON="$p: the second restore: $REASON"; return 1; }
		kill_tree "$img" || return 1
		fault_pts_back "$pts" || return 1
	done
	echo "    restore: $n points reached and held; not reached: ${missed[*]}"
}

# fault_new_inits OLD: the stasis-init processes not in OLD (" PID PID ").
fault_new_inits() {
	local p
	for p in $(ns_inits); do
		[[ $1 == *" $p "* ]] || echo "$p"
	done
}

# fault_restore_points_pidns IMG: every restore point, with --pidns (the
# original is gone: its pty's number must be free); nothing of a failed restore may be left: no new
# namespace init (its death ends the namespace and all in it).
fault_restore_points_pidns() {
	local img=$1 p q n=0 missed=() hash old left limit pts
	hash=$(sha256sum <"$img/$IMG_NAME")
	pts=$(fault_pts)
	for p in $(fault_points restore); do
		old=" $(ns_inits | tr '\n' ' ') "
		fault_run "$p" f restore -D "$img" -d --pidns
		for q in $(fault_new_inits "$old"); do
			track "$q"
			track_tree "$q"
		done
		fault_outcome "$p" "restore -d --pidns"
		case $? in
		2)
			missed+=("$p")
			for q in $(fault_new_inits "$old"); do
				kill_trees "$q:$(proc_start "$q")"
			done
			fault_pts_back "$pts" || return 1
			continue
			;;
		1) return 1 ;;
		esac
		n=$((n + 1))
		limit=$(($(now_ms) + 2000))
		while left=$(fault_new_inits "$old"); [ -n "$left" ]; do
			[ "$(now_ms)" -lt $limit ] ||
				{ bad "$p: 2 s after the failed restore --pidns, its namespace (init $left: $(descendants "$left" | tr '\n' ' ')) is still there"; return 1; }
			sleep 0.02
		done
		[ "$(sha256sum <"$img/$IMG_NAME")" = "$hash" ] ||
			{ bad "$p: the failed restore changed the image"; return 1; }
		fault_pts_back "$pts" || { REASON="$p: after the failed restore: $REASON"; return 1; }
		restore_pidns "$img" || { REASON="$p: the second restore: $REASON"; return 1; }
		kill_trees "$CPY_INIT:$(proc_start "$CPY_INIT")"
		fault_pts_back "$pts" || return 1
	done
	echo "    restore --pidns: $n points reached and held; not reached: ${missed[*]}"
}

# test_fault_pidns SCENARIO [N]: every restore point with --pidns; in the
# end the image is restored once more and the copy passes its own check.
test_fault_pidns() {
	local img DUMP_OPTS=--file-locks FAULT_N=${2:-${FAULT_N:-}}
	need_stasis || return 1
	start_scenario "$1" || return 1
	snapshot_scenario before || return 1
	img=$TDIR/good
	dump "$SCN_PID" "$img" || return 1
	tree_gone "$img" || return 1
	fault_restore_points_pidns "$img" >"$TDIR/summary" || return 1
	cat "$TDIR/summary" >>"$TDIR/log"
	cat "$TDIR/summary"
	restore_pidns "$img" || return 1
	sleep 0.2
	compare_copy before copy "the copy after the failed restores" || return 1
	check_scenario "$CPY_PID"
}

# test_fault_loop SCENARIO [N]: every dump point on the running tree, which
# then passes its own check; then every restore point on an image made
# before; in the end that image is restored once more and must look and
# check as the original did.
test_fault_loop() {
	local img DUMP_OPTS=--file-locks FAULT_N=${2:-${FAULT_N:-}}
	need_stasis || return 1
	start_scenario "$1" || return 1
	snapshot_scenario before || return 1
	img=$TDIR/good
	dump "$SCN_PID" "$img" -R || return 1
	fault_dump_points "$img" >"$TDIR/summary" || return 1
	# the original, after every failed dump, passes its own check
	check_scenario || { REASON="the original after the failed dumps: $REASON"; return 1; }
	tree_gone "$img" || return 1
	fault_restore_points "$img" >>"$TDIR/summary" || return 1
	restore_detached "$img" "$SCN_PID" || return 1
	after_restore || return 1
	cat "$TDIR/summary" >>"$TDIR/log"
	cat "$TDIR/summary"
	check_scenario
}

register fault/zoo test_fault_loop fault_zoo
# make check-faults: the restore points with --pidns too, and each point
# failed the 2nd and the 3rd time it is reached (another thread, task, fd
# or record than the first)
if [ -n "${STASIS_FAULTS_ALL:-}" ]; then
	register fault/zoo-pidns test_fault_pidns fault_zoo
	register fault/zoo-2nd test_fault_loop fault_zoo 2
	register fault/zoo-3rd test_fault_loop fault_zoo 3
fi

# test_dump_partial_symlink: a symlink planted where the dump writes its
# partial image is replaced, not followed (the file it names is untouched),
# and so is a partial image a killed dump left behind.
test_dump_partial_symlink() {
	local img=$TDIR/img
	need_stasis || return 1
	start_scenario counter || return 1
	mkdir -p "$img"
	echo "not an image" >"$TDIR/victim"
	ln -s "$TDIR/victim" "$img/.$IMG_NAME.partial"
	dump "$SCN_PID" "$img" -R || return 1
	[ "$(cat "$TDIR/victim")" = "not an image" ] ||
		{ bad "the dump wrote through the symlink at .$IMG_NAME.partial"; return 1; }
	[ ! -e "$img/.$IMG_NAME.partial" ] || { bad "the dump left .$IMG_NAME.partial"; return 1; }
	rm -f "$img/$IMG_NAME"
	echo stale >"$img/.$IMG_NAME.partial"
	dump "$SCN_PID" "$img" -R || return 1
	[ "$(stat -c %a "$img/$IMG_NAME")" = 600 ] || { bad "the image is not mode 0600"; return 1; }
	check_scenario
}

register bad/dump-partial-symlink test_dump_partial_symlink

# test_restore_image_symlink: an image reached through a symlink planted
# in the images directory is not read (one line), by restore or show.
test_restore_image_symlink() {
	local img=$TDIR/img
	need_stasis || return 1
	start_scenario counter || return 1
	dump "$SCN_PID" "$TDIR/real" -R || return 1
	mkdir -p "$img"
	ln -s "$TDIR/real/$IMG_NAME" "$img/$IMG_NAME"
	stasis_cmd restore restore -D "$img" -d
	expect_error "restore of an image behind a symlink" $? "$TDIR/restore.err" || return 1
	grep -q "is a symbolic link" "$TDIR/restore.err" ||
		{ bad "the error does not say the image is a symlink: $ERR_LINE"; return 1; }
	stasis_cmd show show -D "$img"
	expect_error "show of an image behind a symlink" $? "$TDIR/show.err" || return 1
	check_scenario
}
register bad/restore-image-symlink test_restore_image_symlink
