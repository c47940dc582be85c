# tests/suites/mntns.sh - trees in a mount namespace of their own (sourced
# by tests/run.sh).

# mntns_tree: PID 1 of a PID and a mount namespace of its own (as from
# `unshare --fork --pid --mount`) with a tmpfs of files (one held open,
# one written by a child through its fd, a hard link, a symlink), a
# read-only bind of a part of it, and binds of a host directory and a
# host file; the runner compares the mount table before and after.
register mntns_tree/once test_cr mntns_tree once
register mntns_tree/x3 test_cr mntns_tree x3
# dump -R leaves the tree as it was (its mounts untouched), then restore
register mntns_tree/leave-running test_cr mntns_tree leave-running

# need_busybox: Debian's busybox-static at /bin/busybox (installed if missing).
need_busybox() {
	[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx pivot_root && return 0
	apt-get install -y busybox-static >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && apt-get install -y busybox-static >/dev/null 2>&1; }
	[ -x /bin/busybox ] && return 0
	REASON="busybox-static cannot be installed"
	return 77
}

# make_container ROOT: a busybox root file system in the host directory
# ROOT: the static busybox, mountpoints, and a script that, run by its
# own busybox as PID 1 in a PID and mount namespace of its own, binds
# ROOT over itself (or, given tmpfs, copies it into a tmpfs), mounts a tmpfs on ROOT/tmp and the host's /dev/null
# on ROOT/dev/null, pivot_roots into it, mounts its own /proc, a
# read-only /sys and a devpts of its own, drops the old root and loops
# writing a counter to /tmp/count and /tmp/log every 20 ms.
make_container() {
	local r=$1
	mkdir -p "$r"/bin "$r"/proc "$r"/sys "$r"/dev/pts "$r"/tmp "$r"/old "$r"/etc || return 1
	cp /bin/busybox "$r/bin/busybox" || return 1
	for a in sh mount umount sleep mkdir chmod cat; do
		ln -s busybox "$r/bin/$a" || return 1
	done
	: >"$r/dev/null"
	echo stasis-ctr >"$r/etc/hostname"
	cat >"$r/init.sh" <<'EOS'
set -e
R=$1
mount --make-rprivate /
if [ "$2" = tmpfs ]; then
	# the root a tmpfs: the files copied in, the binary mapped from it
	mkdir -p "$R.tmpfs"
	mount -t tmpfs -o size=8m,mode=755 ctr-root "$R.tmpfs"
	cp -a "$R/." "$R.tmpfs/"
	R=$R.tmpfs
else
	mount --bind "$R" "$R"
fi
mount -t tmpfs -o size=2m,mode=1777 ctr-tmp "$R/tmp"
mount --bind /dev/null "$R/dev/null"
cd "$R"
/bin/busybox pivot_root . old
PATH=/bin exec /bin/busybox setsid /bin/busybox sh -c '
	mount -t proc -o nosuid,nodev,noexec proc /proc
	mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys
	mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts
	umount -l /old
	mkdir /tmp/d && echo hello >/tmp/d/greeting && chmod 640 /tmp/d/greeting
	i=0
	while :; do
		i=$((i + 1))
		echo $i >/tmp/count
		echo $i >>/tmp/log
		sleep 0.02
	done' </dev/null >/dev/null 2>&1
EOS
}

# container_count PID: the counter the container's loop last wrote.
container_count() {
	cat "/proc/$1/root/tmp/count" 2>/dev/null
}

# container_fine PID: the loop runs on, its log has every count from 1,
# the file it made is there, its /proc shows its own PID namespace.
container_fine() {
	local pid=$1 a b n
	a=$(container_count "$pid")
	sleep 0.3
	b=$(container_count "$pid")
	[[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] && [ "$b" -gt "$a" ] ||
		{ bad "the container's counter does not grow ('$a' then '$b')"; return 1; }
	n=$(awk -v n=0 '$1 != ++n { print n; exit }' "/proc/$pid/root/tmp/log")
	[ -z "$n" ] || { bad "the container's log misses count $n"; return 1; }
	[ "$(cat "/proc/$pid/root/tmp/d/greeting")" = hello ] &&
		[ "$(stat -c %a "/proc/$pid/root/tmp/d/greeting")" = 640 ] ||
		{ bad "the container's /tmp/d/greeting is lost"; return 1; }
	[ "$(cat "/proc/$pid/root/proc/1/comm")" = busybox ] ||
		{ bad "the container's /proc does not show its init"; return 1; }
	return 0
}

# A busybox container (pivot_root into a host directory, its own /proc,
# /sys read-only, devpts, a tmpfs /tmp) dumped and restored twice in a
# row: its mount table is the same each time, its shell loop counts on.
test_mntns_busybox() {
	local r=$TDIR/root launcher init i rootfs=${1:-ext4}
	need_stasis || return 1
	need_busybox || return $?
	make_container "$r" || { bad "cannot make the container's root"; return 1; }
	(close_extra_fds
		exec setsid unshare --fork --pid --mount /bin/busybox sh "$r/init.sh" "$r" "$rootfs") \
		</dev/null >>"$TDIR/ctr.out" 2>&1 &
	launcher=$!
	track "$launcher"
	for i in $(seq 100); do
		init=$(children "$launcher" | head -1)
		[ -n "$init" ] && [ -n "$(container_count "$init")" ] && break
		sleep 0.05
	done
	[ -n "$init" ] && [ -n "$(container_count "$init")" ] ||
		{ bad "the container did not start: $(tail -3 "$TDIR/ctr.out")"; return 1; }
	track "$init"
	sleep 0.1
	local t
	for t in "/ - $rootfs" "/proc - proc" "/sys - sysfs" "/dev/pts - devpts" "/tmp - tmpfs" "/dev/null - devtmpfs"; do
		awk -v mp="${t%% *}" -v ty="${t##* }" '$5 == mp && $0 ~ (" - " ty " ") { f = 1 } END { exit !f }' \
			"/proc/$init/mountinfo" || { bad "the container has no ${t##* } at ${t%% *}"; return 1; }
	done
	awk '$5 == "/sys" && $6 ~ /^ro,/ { f = 1 } END { exit !f }' "/proc/$init/mountinfo" ||
		{ bad "the container's /sys is not read-only"; return 1; }
	SCN_PID=$init
	SCN_START=$(proc_start "$init")
	for i in 1 2; do
		snapshot "$init" "$TDIR/state.before$i" || return 1
		dump "$init" "$TDIR/img$i" || return 1
		wait_gone "$init" 2>/dev/null
		restore_detached "$TDIR/img$i" "$init" || return 1
		SCN_START=$(proc_start "$init")
		snapshot "$init" "$TDIR/state.after$i" || return 1
		# the loop forks every 20 ms: a SIGCHLD may be pending at either snapshot
		sed -i -E '/^(SigPnd|ShdPnd):/d' "$TDIR/state.before$i" "$TDIR/state.after$i"
		compare_state "$TDIR/state.before$i" "$TDIR/state.after$i" "restore $i" "$DETAILS" ||
			return 1
		container_fine "$init" || return 1
	done
	mnt_stage_left "$TDIR"/restore*.log && return 1
	return 0
}
register mntns/busybox test_mntns_busybox
register mntns/busybox-tmpfs-root test_mntns_busybox tmpfs

# mntns_refused MODE PATTERN: mntns_tree with the extra mount of MODE is
# refused at dump with a line naming the mount, no image is left and the
# tree runs on and passes its check.
mntns_refused() {
	local rc mode=$1 pattern=$2
	need_stasis || return 1
	export MNTNS_MODE=$mode
	start_scenario mntns_tree
	rc=$?
	unset MNTNS_MODE
	[ $rc = 0 ] || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	expect_error "dump of a tree with a mount it cannot recreate" $? "$TDIR/err.err" || return 1
	grep -q "$pattern" "$TDIR/err.err" ||
		{ bad "the error does not name the mount: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register bad/mntns-unknown-fs mntns_refused ramfs "mount .*/x (ramfs.*cannot recreate this file system type"
register bad/mntns-lost-source mntns_refused lost "mount .*/z (tmpfs, source scn-gone, root /sub).*cannot be recreated"

# The ramfs that bad/mntns-unknown-fs refuses, given as external: dump
# --ext-mount-map MOUNTPOINT:KEY, restore --ext-mount-map KEY:PATH binds
# our directory PATH there; restore without the map is refused by name.
test_mntns_ext_mount() {
	local rc src=$TDIR/extsrc
	need_stasis || return 1
	export MNTNS_MODE=ramfs
	start_scenario mntns_tree
	rc=$?
	unset MNTNS_MODE
	[ $rc = 0 ] || return 1
	mkdir -p "$src" && echo ext >"$src/mark"
	dump "$SCN_PID" "$TDIR/img" --ext-mount-map "$TDIR/x:ramkey" || return 1
	wait_gone "$SCN_PID" 2>/dev/null
	stasis_cmd noext restore -D "$TDIR/img" -d
	expect_error "restore without the external mount's path" $? "$TDIR/noext.err" || return 1
	grep -q "pass --ext-mount-map ramkey:PATH" "$TDIR/noext.err" ||
		{ bad "the error does not name the key: $ERR_LINE"; return 1; }
	RESTORE_OPTS="--ext-mount-map ramkey:$src" restore_detached "$TDIR/img" "$SCN_PID" || return 1
	[ "$(cat "/proc/$SCN_PID/root$TDIR/x/mark" 2>/dev/null)" = ext ] ||
		{ bad "the external mount at x is not our $src"; return 1; }
	check_scenario
}
register mntns/ext-mount-map test_mntns_ext_mount

# mntns_tree with MNTNS_MODE=rich: peer groups (a shared tmpfs, its peer,
# its slave, a mount that propagated to both), an unbindable mount, a
# tmpfs over a bind, a devpts and a proc of its own, an overlay of host
# directories, atime/nodev/noexec flags; the runner compares the table.
test_mntns_rich() {
	export MNTNS_MODE=rich
	test_cr mntns_tree "$1"
	local rc=$?
	unset MNTNS_MODE
	return $rc
}
register mntns_rich/once test_mntns_rich once
register mntns_rich/x3 test_mntns_rich x3

# mnt_stage_left LOG...: true (and the reason set) if a restore of these
# logs left the directory in /tmp it built the tree's root on (only the
# ones they name: other restores' come and go meanwhile).
mnt_stage_left() {
	local f d
	for f in "$@"; do
		d=$(sed -n "s/.*the tree's root: built on \(.*\)$/\1/p" "$f" 2>/dev/null | tail -n 1)
		[ -n "$d" ] && [ -e "$d" ] && { bad "the restore of ${f##*/} left its $d"; return 0; }
	done
	return 1
}

# A restore of mntns_tree failing in the middle (the namespace made, the
# table built and entered, the files opened): nothing of it is left, no
# directory of its root in /tmp, and the next restore works.
test_mntns_fault() {
	local p img=$TDIR/img
	need_stasis || return 1
	start_scenario mntns_tree || return 1
	dump "$SCN_PID" "$img" || return 1
	wait_gone "$SCN_PID" 2>/dev/null
	for p in restore:ns:child_early restore:mnt:child_early restore:files:child_late; do
		fault_run "$p" f restore -D "$img" -d -v4 -o "$TDIR/f.log"
		adopt_image "$img" "$SCN_PID"
		# late in the child its stderr is the tree's: the log says it too
		grep -qF "fault injected at $p " "$TDIR/f.log" && FAULT_HIT=1
		[ $FAULT_HIT = 1 ] && [ $FAULT_RC != 0 ] ||
			{ bad "$p: the fault was not injected (rc $FAULT_RC)"; return 1; }
		tree_gone "$img" || { REASON="$p: after the failed restore: $REASON"; return 1; }
		mnt_stage_left "$TDIR/f.log" && { REASON="$p: $REASON"; return 1; }
	done
	restore_detached "$img" "$SCN_PID" || return 1
	check_scenario
}
register mntns/fault-restore test_mntns_fault
