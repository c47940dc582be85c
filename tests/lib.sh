# shellcheck shell=bash disable=SC2034
# tests/lib.sh - helpers shared by tests/run.sh and tests/demo.sh.
#
# Conventions:
#   - helpers that can fail set REASON (one line) and return non-zero;
#     test bodies chain them with `|| return 1`;
#   - every process the tests start or restore is tracked as "PID:STARTTIME"
#     (start time from /proc/PID/stat), and only a process whose PID *and*
#     start time still match is ever killed: a recycled PID is left alone.

BUILD=${BUILD:-build}
STASIS=${STASIS:-$BUILD/stasis}

REASON=""		# why the current step failed
ALL_PIDS=()		# every tracked process of the run ("pid:starttime")
TEST_PIDS=()		# tracked processes of the current test
WAIT_READY=10		# seconds to wait for a scenario's ready file
WAIT_RESULT=10		# seconds to wait for a scenario's result file
WAIT_GONE=10		# seconds to wait for a process to disappear
T_STASIS=${T_STASIS:-60}	# timeout of one stasis command

# bad MESSAGE...: record why the current step failed; always returns 1.
bad() {
	REASON="$*"
	return 1
}

# now_ms: monotonic-ish milliseconds, for timeouts.
now_ms() {
	local s=${EPOCHREALTIME/./}
	echo $((s / 1000))
}

# ---------------------------------------------------------------- processes

# proc_field PID N: field N (1-based, as in proc(5)) of /proc/PID/stat.
proc_field() {
	local stat="" f
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -r -a f <<<"${stat##*) }"	# comm may hold spaces; f[0] = field 3
	echo "${f[$2 - 3]}"
}

# proc_state PID: one-letter state (R, S, D, T, t, Z, ...).
proc_state() {
	proc_field "$1" 3
}

# proc_start PID: start time (clock ticks since boot) of PID.
proc_start() {
	proc_field "$1" 22
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(proc_state "$1") || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# stopped PID: the process is stopped or traced (state T or t).
stopped() {
	local st
	st=$(proc_state "$1") || return 1
	[ "$st" = T ] || [ "$st" = t ]
}

# track PID: remember a process we started or restored, so that it is
# killed when its test ends (or the run is interrupted).
track() {
	local st
	st=$(proc_start "$1") || return 0	# already gone: nothing to track
	ALL_PIDS+=("$1:$st")
	TEST_PIDS+=("$1:$st")
	# for the watchdog of run.sh, which must not kill them (a subshell)
	[ -n "${TDIR:-}" ] && echo "$1:$st" >>"$TDIR/.tracked"
}

# tracked_alive ENTRY: the tracked process (pid:start) still exists.
tracked_alive() {
	local pid=${1%%:*} st=${1#*:}
	[ "$(proc_start "$pid" 2>/dev/null)" = "$st" ]
}

# reap PID: collect PID if it is a zombie child of this shell.
reap() {
	wait "$1" 2>/dev/null
	return 0
}

# wait_gone PID [SECONDS]: wait until /proc/PID is gone (a zombie still
# holds the PID, so it does not count as gone).  Reaps our own children.
wait_gone() {
	local pid=$1 limit=$(($(now_ms) + ${2:-$WAIT_GONE} * 1000))
	while [ -e "/proc/$pid" ]; do
		if [ "$(proc_state "$pid")" = Z ] && [ "$(proc_field "$pid" 4)" = $$ ]; then
			reap "$pid"
			[ -e "/proc/$pid" ] || break
		fi
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.05
	done
	return 0
}

# wait_dead ENTRY [SECONDS]: wait until the process of ENTRY ("pid:start")
# is a zombie or gone (another process at its PID does not count).
wait_dead() {
	local pid=${1%%:*} limit=$(($(now_ms) + ${2:-$WAIT_GONE} * 1000))
	while tracked_alive "$1" && alive "$pid"; do
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.05
	done
	return 0
}

# status_field PID KEY: the value of "KEY:" in /proc/PID/status.  The file
# is read in one go: `read` line by line seeks back after each line, and
# procfs then regenerates the text, which may have changed in between.
status_field() {
	local s
	{ s=$(<"/proc/$1/status"); } 2>/dev/null || return 1
	[[ $s == *$'\n'"$2:"* ]] || return 1
	s=${s#*$'\n'"$2:"}
	s=${s%%$'\n'*}
	s=${s#"${s%%[![:space:]]*}"}
	echo "$s"
}

# ns_pid PID: the PID of process PID in its own PID namespace (the last
# field of NSpid in /proc/PID/status; PID itself outside of any new one).
ns_pid() {
	local v
	v=$(status_field "$1" NSpid) || return 1
	echo "${v##*[[:space:]]}"
}

# id_users PID: the processes that still use PID as their PID, process
# group or session (the kernel keeps the number taken until none is left).
id_users() {
	local f stat x
	for f in /proc/[0-9]*/stat; do
		{ read -r stat <"$f"; } 2>/dev/null || continue
		read -r -a x <<<"${stat##*) }"	# x[2] = pgrp, x[3] = session
		if [ "${f//[^0-9]/}" = "$1" ] || [ "${x[2]}" = "$1" ] || [ "${x[3]}" = "$1" ]; then
			echo "${f//[^0-9]/}"
		fi
	done
	return 0
}

# wait_pid_free PID [SECONDS]: wait until no process uses PID as its PID,
# process group or session.  Reaps our own zombie children.
wait_pid_free() {
	local limit=$(($(now_ms) + ${2:-$WAIT_GONE} * 1000)) users
	while :; do
		wait_gone "$1" "${2:-$WAIT_GONE}" || return 1
		users=$(id_users "$1")
		[ -z "$users" ] && return 0
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.05
	done
}

# kill_tracked ENTRY...: SIGKILL the listed tracked processes that still
# exist (stopped and traced ones die too), then wait for them to vanish.
kill_tracked() {
	local e
	for e in "$@"; do
		tracked_alive "$e" && kill -KILL "${e%%:*}" 2>/dev/null
	done
	for e in "$@"; do
		if tracked_alive "$e"; then
			wait_gone "${e%%:*}" 5 || true
		fi
		reap "${e%%:*}"
	done
}

# children PID: the direct children of PID (of all its threads).
children() {
	local f kids=()
	for f in /proc/"$1"/task/*/children; do
		kids=()
		# the list does not end with a newline: read fails at its end
		{ read -r -a kids <"$f"; } 2>/dev/null
		[ ${#kids[@]} -gt 0 ] && echo "${kids[@]}"
	done
	return 0
}

# descendants PID: every descendant of PID, parents before their children.
descendants() {
	local k
	for k in $(children "$1"); do
		echo "$k"
		descendants "$k"
	done
	return 0
}

# is_tracked PID: PID (with its current start time) is tracked by this test.
is_tracked() {
	local e st
	st=$(proc_start "$1") || return 1
	for e in "${TEST_PIDS[@]}"; do
		[ "$e" = "$1:$st" ] && return 0
	done
	return 1
}

# track_tree PID...: track each PID and all its descendants (the whole
# list is read before anything is killed, so that nobody escapes to init).
track_tree() {
	local p d
	for p in "$@"; do
		[ -e "/proc/$p" ] || continue
		is_tracked "$p" || track "$p"
		for d in $(descendants "$p"); do
			is_tracked "$d" || track "$d"
		done
	done
	return 0
}

# session_members PID: the processes of the session PID leads (none if
# PID is not a session leader).
session_members() {
	local f stat x
	[ "$(proc_field "$1" 6)" = "$1" ] || return 0
	for f in /proc/[0-9]*/stat; do
		{ read -r stat <"$f"; } 2>/dev/null || continue
		read -r -a x <<<"${stat##*) }"	# x[3] = session
		[ "${x[3]}" = "$1" ] && echo "${f//[^0-9]/}"
	done
	return 0
}

# wait_stopped PID: wait (up to 1 s) until PID is stopped, a zombie or gone.
wait_stopped() {
	local i st
	for ((i = 0; i < 100; i++)); do
		st=$(proc_state "$1") || return 0
		case $st in T | t | Z | X) return 0 ;; esac
		sleep 0.01
	done
	return 1
}

# kill_trees ENTRY...: SIGKILL the listed tracked processes together with
# all their descendants and the members of the sessions they lead.  They
# are stopped first, until no new one shows up, so that nobody forks a
# child that would escape to init while its parent is being killed.
kill_trees() {
	local list=("$@") new=() e p d st round
	local -A seen=()
	for e in "${list[@]}"; do seen[$e]=1; done
	for ((round = 0; round < 5; round++)); do
		for e in "${list[@]}"; do
			tracked_alive "$e" && kill -STOP "${e%%:*}" 2>/dev/null
		done
		for e in "${list[@]}"; do
			tracked_alive "$e" && wait_stopped "${e%%:*}"
		done
		new=()
		for e in "${list[@]}"; do
			tracked_alive "$e" || continue
			p=${e%%:*}
			for d in $(descendants "$p") $(session_members "$p"); do
				st=$(proc_start "$d") || continue
				[ -n "${seen[$d:$st]:-}" ] && continue
				seen[$d:$st]=1
				track "$d"
				new+=("$d:$st")
			done
		done
		[ ${#new[@]} -eq 0 ] && break
		list+=("${new[@]}")
	done
	kill_tracked "${list[@]}"
}

# image_pids IMG: the PIDs of the processes saved in IMG (from `stasis
# show --json`), root first.
image_pids() {
	local json
	json=$("$STASIS" show -D "$1" --json 2>/dev/null) || return 1
	if command -v jq >/dev/null; then
		jq -r '.records[] | select(.type == "task") | .data.pid' <<<"$json"
	else
		grep -oE '"type":"task","length":[0-9]+,"data":\{"pid":[0-9]+' <<<"$json" |
			grep -oE '[0-9]+$'
	fi
}

# close_extra_fds: close every fd above 2 of the current (sub)shell, so
# that scenarios do not inherit whatever the caller of the runner leaked.
close_extra_fds() {
	local f n
	for f in /proc/"$BASHPID"/fd/*; do
		n=${f##*/}
		[ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null
	done
	return 0
}

# ---------------------------------------------------------------- files

# wait_file FILE SECONDS [PID]: wait for FILE to appear; give up early when
# PID (if given) dies.
wait_file() {
	local file=$1 limit=$(($(now_ms) + $2 * 1000)) pid=${3:-}
	while [ ! -e "$file" ]; do
		if [ -n "$pid" ] && ! alive "$pid"; then
			[ -e "$file" ] && return 0
			return 2
		fi
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.05
	done
	return 0
}

# wait_log FILE PATTERN SECONDS: wait for a line matching the (grep -E)
# PATTERN in FILE.
wait_log() {
	local limit=$(($(now_ms) + $3 * 1000))
	until grep -qE -- "$2" "$1" 2>/dev/null; do
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.05
	done
	return 0
}

# last_count LOG: the last "count N" value a counter scenario logged (or 0).
last_count() {
	local n
	n=$(grep -oE '^count [0-9]+' "$1" 2>/dev/null | tail -n 1)
	echo "${n#count }" | grep -E '^[0-9]+$' || echo 0
}

# wait_progress LOG FROM SECONDS: wait until the logged counter exceeds FROM.
wait_progress() {
	local limit=$(($(now_ms) + $3 * 1000))
	until [ "$(last_count "$1")" -gt "$2" ]; do
		[ "$(now_ms)" -lt "$limit" ] || return 1
		sleep 0.05
	done
	return 0
}

# indent: prefix every line with four spaces (for failure details).
indent() {
	sed 's/^/    /'
}

# ---------------------------------------------------------------- /proc state

# normalize_maps < /proc/PID/maps: one line per mapping, with adjacent
# mappings merged when the kernel could have merged them (same perms,
# device, inode and name, contiguous addresses and, for files, contiguous
# offsets); [vsyscall] is dropped, and the inode of anonymous shared
# memory (a new shmem object after restore) is not compared.
normalize_maps() {
	local range perms off dev ino path s e o
	local have=0 ps=0 pe=0 po=0 pperms="" pdev="" pino="" ppath=""

	while read -r range perms off dev ino path; do
		[ "$path" = "[vsyscall]" ] && continue
		# anonymous shared memory gets a new object (and inode) on restore
		[ "$path" = "/dev/zero (deleted)" ] && ino=shmem
		# so do memfds and deleted files, recreated from the image
		[[ $path == *" (deleted)" ]] && [ "$ino" != shmem ] && ino=recreated
		# in a mount namespace of its own, files of a tmpfs (any anonymous
		# device) the restore made anew: other device and inode numbers
		[ "${MAPS_NEW_FS:-0}" = 1 ] && [[ $dev == 00:* ]] && [ "$ino" != 0 ] &&
			dev=newfs ino=newfs
		s=$((16#${range%-*}))
		e=$((16#${range#*-}))
		o=$((16#$off))
		if [ $have = 1 ] && [ $s = $pe ] && [ "$perms" = "$pperms" ] &&
			[ "$dev" = "$pdev" ] && [ "$ino" = "$pino" ] && [ "$path" = "$ppath" ] &&
			{ [ "$ino" = 0 ] || [ $o = $((po + pe - ps)) ]; }; then
			pe=$e
			continue
		fi
		[ $have = 1 ] && printf '%x-%x %s %08x %s %s %s\n' \
			$ps $pe "$pperms" $po "$pdev" "$pino" "$ppath"
		have=1 ps=$s pe=$e po=$o pperms=$perms pdev=$dev pino=$ino ppath=$path
	done
	[ $have = 1 ] && printf '%x-%x %s %08x %s %s %s\n' \
		$ps $pe "$pperms" $po "$pdev" "$pino" "$ppath"
	return 0
}

# VmFlags codes of /proc/PID/smaps that may differ between a task and its
# restored copy.  Each entry says why; anything else that differs fails.
# Bits of /proc/PID/stat's flags (PF_*, include/linux/sched.h) that are
# compared: the ones that say something lasting about the process.  The
# others are the kernel's passing state (PF_MEMALLOC_NOFS, PF_BLOCK_TS ...
# while a call is under way, PF_EXITING) or must change:
#   0x40  PF_FORKNOEXEC: the restored task was forked and never execs
#         (only execve clears it);
#   0x100 PF_SUPERPRIV: the restore used root's privileges in the task (set
#         on the first capable() check that passes; nothing clears it).
# Compared: PF_MCE_PROCESS 0x80, PF_RANDOMIZE 0x400000, PF_NO_SETAFFINITY
# 0x4000000, PF_MCE_EARLY 0x8000000.
STAT_FLAGS_COMPARED=$((0x80 | 0x400000 | 0x4000000 | 0x8000000))

VMFLAGS_MAY_CHANGE=(
	# VM_ACCOUNT (commit charge): restore maps a read-only private mapping
	# writable to fill it, then mprotects it; the charge is kept, nothing
	# the program can observe but /proc/meminfo's Committed_AS
	ac
	# VM_SOFTDIRTY: a dirty-tracking bit, set on every new mapping
	sd
	# VM_UFFD_MISSING/VM_UFFD_WP: a userfaultfd registration of the
	# restorer (lazy filling) or of a dump's dirty tracking while it runs
	um uw
)

# /proc/PID/status fields that may differ between a task and its restored
# copy; every other field is compared.
STATUS_MAY_CHANGE=(
	# what the task does at the moment the runner looks, and its tracer
	State TracerPid
	# PID numbers: a --pidns copy has new ones in the runner's namespace
	# (the runner checks the PIDs a task must keep itself)
	Tgid Ngid Pid PPid NStgid NSpid NSpgid NSsid
	# the fd table's capacity: the kernel grows it in steps as fds are
	# installed, so it depends on the order the restore opens them in
	FDSize
	# peaks and residency: pages the original had touched but the copy has
	# not yet (file pages come back on first use), page tables, swap
	VmPeak VmHWM VmRSS RssAnon RssFile RssShmem VmPTE VmSwap VmPin
	# counters: queued signals of the whole user, context switches
	SigQ voluntary_ctxt_switches nonvoluntary_ctxt_switches
)

# fdinfo keys (the word before the colon) that may differ between a task
# and its restored copy; pos and flags are compared in the fd line itself.
FDINFO_MAY_CHANGE=(
	# compared with the fd line already (pos follows the file for O_APPEND)
	pos flags
	# timerfd: time left and expirations move while the runner looks
	it_value ticks
	# eventfd: a counter of the kernel's, new for every eventfd created
	eventfd-id
	# pidfd: the PID as the runner's namespace sees it (a --pidns copy
	# shows its host PID; the copy's own PID is checked by the runner)
	Pid NSpid
)

# normalize_fdinfo FDLINK TARGET < /proc/PID/fdinfo/FD: the lines of FD's
# fdinfo that must come back, sorted; ino: fields are dropped where the
# object is created anew -- whatever its path does not lead to (pipes,
# sockets, anonymous inodes, memfds, deleted files, POSIX message queues,
# whose path is inside the mqueue file system) -- and from epoll's tfd
# lines, whose ino: is the target's.
normalize_fdinfo() {
	local fdlink=$1 target=$2 skip_ino=0 k line m
	[[ $target == /* ]] && [ "$fdlink" -ef "$target" ] || skip_ino=1
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		k=${line%%:*}
		for m in "${FDINFO_MAY_CHANGE[@]}"; do
			[ "$k" = "$m" ] && continue 2
		done
		[ "$k" = ino ] && [ $skip_ino = 1 ] && continue
		# in a mount namespace of its own: the mount by its place in the table
		[ "$k" = mnt_id ] && [ ${#SNAP_MNT[@]} -gt 0 ] &&
			line="mnt_id:	${SNAP_MNT[${line##*[[:space:]]}]:-?}"
		[ "$k" = tfd ] && line=$(sed -E 's/ ino:[0-9a-f]+//' <<<"$line")
		printf '    %s\n' "$line"
	done | sort
}

# normalize_vmflags < /proc/PID/smaps: per mapping (merged with the next one
# when contiguous with the same name, permissions and flags), its VmFlags,
# sorted, without those of VMFLAGS_MAY_CHANGE; [vsyscall] is dropped.
normalize_vmflags() {
	awk -v skip="${VMFLAGS_MAY_CHANGE[*]}" '
	BEGIN { n = split(skip, s, " "); for (i = 1; i <= n; i++) drop[s[i]] = 1 }
	function flush() {
		if (have) printf "%s-%s %s %s: %s\n", ps, pe, pperms, ppath, pflags
		have = 0
	}
	/^[0-9a-f]+-[0-9a-f]+ / {
		split($1, r, "-"); start = r[1]; end = r[2]; perms = $2
		path = ""; for (i = 6; i <= NF; i++) path = path (i > 6 ? " " : "") $i
		next
	}
	/^VmFlags:/ {
		if (path == "[vsyscall]") next
		m = 0; delete f
		for (i = 2; i <= NF; i++) if (!($i in drop)) f[++m] = $i
		# sort the codes (insertion sort: a dozen at most)
		for (i = 2; i <= m; i++) { v = f[i]; for (j = i - 1; j >= 1 && f[j] > v; j--) f[j + 1] = f[j]; f[j + 1] = v }
		flags = ""; for (i = 1; i <= m; i++) flags = flags (i > 1 ? " " : "") f[i]
		if (have && start == pe && perms == pperms && path == ppath && flags == pflags) {
			pe = end; next
		}
		flush()
		have = 1; ps = start; pe = end; pperms = perms; ppath = path; pflags = flags
	}
	END { flush() }'
}

# normalize_mountinfo: mountinfo lines as "MOUNTPOINT (parent PARENT'S
# MOUNTPOINT) ROOT OPTS PROPAGATION - TYPE SOURCE SUPEROPTS", mount ids and
# device numbers dropped, peer groups renumbered in order of appearance.
normalize_mountinfo() {
	awk '{
		id[NR] = $1; par[NR] = $2; mp[$1] = $5; line[NR] = $0
	}
	END {
		for (i = 1; i <= NR; i++) {
			n = split(line[i], f, " ")
			prop = ""
			for (j = 7; j <= n && f[j] != "-"; j++) {
				split(f[j], kv, ":")
				if (kv[2] != "") {
					if (!(kv[2] in g)) g[kv[2]] = ++ng
					prop = prop " " kv[1] ":g" g[kv[2]]
				} else
					prop = prop " " f[j]
			}
			p = (par[i] in mp) ? mp[par[i]] : "-"
			print f[5] " (parent " p ") " f[4] " " f[6] prop " - " f[j + 1] " " f[j + 2] " " f[j + 3]
		}
	}'
}

# snapshot PID FILE: what is visible of PID from outside, normalised so
# that two snapshots of the same state compare equal: the mappings, every
# fd with its target (pipe/socket inode numbers dropped), flags and
# position (not for O_APPEND fds, whose position follows the file size)
# and the rest of its fdinfo (normalize_fdinfo), the VmFlags of every
# mapping (normalize_vmflags), the open mode behind every mapped file
# (map_files), and identity/signal fields of
# /proc/PID/status.
snapshot() {
	local pid=$1 out=$2 f n t fl pos key val id rest ino path fdinfo
	declare -gA SNAP_MNT=() SNAP_UNIX=()
	# the paths of bound unix sockets by inode, as the task's network
	# namespace shows them (absolute ones: their files are compared)
	while read -r _ _ _ _ _ _ ino path; do
		[[ $path == /* ]] && SNAP_UNIX[$ino]=$path
	done < <(tail -n +2 "/proc/$pid/net/unix" 2>/dev/null)
	# a mount namespace of its own: fds name mounts by their mountpoint (in
	# its table, or ours for a file it opened before it left our namespace)
	[ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
		while read -r id _ _ _ f rest; do
			[ -n "${SNAP_MNT[$id]:-}" ] || SNAP_MNT[$id]=$f
		done < <(cat "/proc/$pid/mountinfo" /proc/self/mountinfo)

	{
		echo "== maps"
		MAPS_NEW_FS=$((${#SNAP_MNT[@]} > 0)) normalize_maps <"/proc/$pid/maps"
		echo "== fds"
		for f in "/proc/$pid/fd"/*; do
			n=${f##*/}
			t=$(readlink "$f") || continue
			[[ $t =~ ^(pipe|socket):\[[0-9]+\]$ ]] && t="${BASH_REMATCH[1]}:[]"
			fl="" pos="" ino=""
			# read whole, at once, with no fork: bash's read seeks back
			# after each line, and a seq_file regenerates its text at a
			# seek, which moves (a timerfd's it_value shrank: the next
			# line came out cut); read to the end seeks nowhere
			fdinfo=""
			IFS= read -r -d '' fdinfo <"/proc/$pid/fdinfo/$n"
			while read -r key val; do
				case $key in
				flags:) fl=$val ;;
				pos:) pos=$val ;;
				ino:) ino=$val ;;
				esac
			done <<<"$fdinfo"
			[ -n "$fl" ] && (((8#$fl) & 8#2000)) && pos=append
			echo "$n -> $t flags=$fl pos=$pos"
			normalize_fdinfo "$f" "$t" <<<"$fdinfo"
			# a deleted file: its mode, owner and modification time (a
			# message queue's mtime is its last message's: not compared)
			[[ $t == *" (deleted)" && $t != /memfd:* ]] &&
				if [ "$(stat -f -L -c %T "$f")" = mqueue ]; then
					echo "    inode: $(stat -L -c '%a %u:%g' "$f")"
				else
					echo "    inode: $(stat -L -c '%a %u:%g %Y' "$f")"
				fi
			# a bound unix socket's file: its mode, owner and times
			if [[ $t == socket:* ]]; then
				path=${SNAP_UNIX[$ino]:-}
				[ -n "$path" ] && echo "    sockfile: $path $(stat -c '%a %u:%g %X %Y' "/proc/$pid/root$path" 2>&1 | sed 's/.*: //')"
			fi
			# a pty's node: its owner and mode
			[[ $t =~ ^/dev/pts/[0-9]+$ ]] && echo "    node: $(stat -c '%a %u:%g' "$t")"
		done
		echo "== vmflags"
		normalize_vmflags <"/proc/$pid/smaps"
		# memory policies of the mappings (the process's where one has
		# none of its own), where they change from one mapping to the
		# next: mappings merge and split differently after a restore
		echo "== numa_maps"
		sed -E 's/ (file=|heap|stack|huge|anon=|dirty=|mapped=|mapmax=|swapcache=|active=|writeback=|N[0-9]+=|kernelpagesize_kB=).*//' \
			"/proc/$pid/numa_maps" 2>/dev/null | awk '{ p = $0; sub(/^[0-9a-f]+ /, "", p) } p != last { print; last = p }'
		# the open behind each mapped file: read-only or read-write (lr/lrw)
		echo "== map_files"
		stat -c '%A %N' "/proc/$pid/map_files"/* 2>/dev/null |
			sed -E "s/^(l[-r][-w]).* -> '(.*)'$/\2 \1/" | sort -u
		echo "== status"
		grep -vE "^($(IFS='|'; echo "${STATUS_MAY_CHANGE[*]}")):" "/proc/$pid/status"
		# stat: flags (STAT_FLAGS_COMPARED), nice, threads, exit
		# signal, realtime priority and policy
		read -r -a f <<<"$(sed 's/.*) //' "/proc/$pid/stat")"
		printf 'stat flags=%#x nice=%s threads=%s exit_signal=%s rt_priority=%s policy=%s\n' \
			$((f[6] & STAT_FLAGS_COMPARED)) "${f[16]}" "${f[17]}" "${f[35]}" "${f[37]}" "${f[38]}"
		for f in personality loginuid sessionid timerslack_ns coredump_filter; do
			echo "$f $(cat "/proc/$pid/$f" 2>/dev/null)"
		done
		echo "== cgroup"
		cat "/proc/$pid/cgroup"
		# every namespace but the PID ones (--pidns restores into a new one);
		# the ones stasis rebuilds (UTS, time, user ...) are new after a
		# restore, so they are compared by what they hold: "ours" (the
		# runner's), or the names, clock offsets or id maps they give
		echo "== ns"
		for f in "/proc/$pid/ns"/*; do
			n=${f##*/}
			case $n in pid | pid_for_children) continue ;; esac
			t=$(readlink "$f")
			case $n in
			uts | time | time_for_children | cgroup | ipc | user | mnt)
				[ "$t" = "$(readlink "/proc/self/ns/$n")" ] && t=ours || t=own ;;
			esac
			echo "$n $t"
		done
		if [ "$(readlink "/proc/$pid/ns/uts")" != "$(readlink /proc/self/ns/uts)" ]; then
			echo "uts names $(nsenter -t "$pid" -u cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname | tr '\n' ' ')"
		fi
		[ "$(readlink "/proc/$pid/ns/user")" != "$(readlink /proc/self/ns/user)" ] &&
			echo "userns maps $(tr -s ' \n' '  ' <"/proc/$pid/uid_map")/ $(tr -s ' \n' '  ' <"/proc/$pid/gid_map")/ setgroups $(cat "/proc/$pid/setgroups")"
		[ "$(readlink "/proc/$pid/ns/cgroup")" != "$(readlink /proc/self/ns/cgroup)" ] &&
			echo "cgroupns view $(nsenter -t "$pid" -C cat "/proc/$pid/cgroup" | tr '\n' ' ')"
		[ "$(readlink "/proc/$pid/ns/time_for_children")" != "$(readlink /proc/self/ns/time_for_children)" ] &&
			echo "timens_offsets $(tr '\n' ' ' <"/proc/$pid/timens_offsets")"
		# a mount namespace of its own: its table in order, without ids and
		# devices (new after a restore), peer groups numbered as they come
		[ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
			echo "== mounts" && normalize_mountinfo <"/proc/$pid/mountinfo"
		echo "== limits"
		cat "/proc/$pid/limits"
		echo "== oom_score_adj $(cat "/proc/$pid/oom_score_adj")"
		echo "== threads"
		snapshot_threads "$pid"
	} >"$out" 2>/dev/null
	alive "$pid" || bad "process $pid vanished while its /proc state was read"
}

# snapshot_threads PID: per thread, in the order of its innermost TID
# (the same in a --pidns copy), what /proc/PID/task/TID shows of it alone:
# its status (its credentials, blocked and pending signals, affinity,
# seccomp; without STATUS_MAY_CHANGE), nice, policy and real-time priority
# from its stat, its cgroup, and the memory policies of numa_maps (where a
# mapping has none, the thread's own shows).
snapshot_threads() {
	local d files=()
	for d in "/proc/$1/task"/*; do
		files+=("$d/status" "$d/stat" "$d/cgroup" "$d/numa_maps")
	done
	awk -v skip="${STATUS_MAY_CHANGE[*]}" '
	BEGIN { n = split(skip, s, " "); for (i = 1; i <= n; i++) drop[s[i] ":"] = 1 }
	FNR == 1 { k = FILENAME; sub(/.*\//, "", k); t = FILENAME; sub(/\/[^\/]*$/, "", t); last = "" }
	k == "status" {
		if ($1 == "NSpid:") key[t] = $NF
		if (!($1 in drop)) out[t] = out[t] "\001" $0
		next
	}
	k == "stat" {
		sub(/.*\) /, "")
		out[t] = out[t] "\001stat nice=" $17 " rt_priority=" $38 " policy=" $39
		next
	}
	k == "cgroup" { out[t] = out[t] "\001cgroup " $0; next }
	k == "numa_maps" {
		sub(/ (file=|heap|stack|huge|anon=|dirty=|mapped=|mapmax=|swapcache=|active=|writeback=|N[0-9]+=|kernelpagesize_kB=).*/, "")
		p = $0; sub(/^[0-9a-f]+ /, "", p)
		if (p != last) out[t] = out[t] "\001numa " $0
		last = p
	}
	END { for (t in out) print key[t] "\001-- thread" out[t] }' "${files[@]}" 2>/dev/null |
		sort -n -t $'\001' -k1,1 | cut -d $'\001' -f 2- | tr '\001' '\n'
}

# zombie_snapshot PID FILE: what /proc still shows of a zombie: its exit
# status (the core-dump bit aside: a copy does not dump core), whether it
# leads its group and session, its credentials, signal sets, personality
# and limits.  No PID numbers: a copy restored with --pidns compares equal.
zombie_snapshot() {
	local pid=$1 out=$2 st
	read -r -a st <<<"$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null)"
	{
		echo "== zombie"
		echo "state ${st[0]} exit $((${st[49]:-0} & ~0x80))"
		echo "group $([ "${st[2]}" = "$pid" ] && echo leads || echo joined) session $([ "${st[3]}" = "$pid" ] && echo leads || echo joined)"
		grep -E '^(Name|Uid|Gid|Groups|NoNewPrivs|SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' \
			"/proc/$pid/status"
		echo "personality $(cat "/proc/$pid/personality" 2>/dev/null)"
		echo "== limits"
		cat "/proc/$pid/limits"
	} >"$out" 2>/dev/null
	[ "${st[0]}" = Z ] || bad "process $pid is not a zombie (state ${st[0]:-gone})"
}

# compare_state BEFORE AFTER WHAT DETAILS: fail (with a diff appended to
# DETAILS) when two snapshots differ.
compare_state() {
	if ! cmp -s "$1" "$2"; then
		{
			echo "$3: /proc state differs (- before, + after):"
			diff -u "$1" "$2" | tail -n +3
		} >>"$4"
		bad "$3: /proc state differs ($(diff "$1" "$2" | grep -c '^[<>]') lines, see diff)"
		return 1
	fi
	return 0
}

# nft_stasis_tables [PID]: the names of the network-lock tables (inet
# stasis-*) that exist now, one a line (none if nft is missing); with PID
# only the locks of the tree whose root is PID ("stasis-held-PID-...", so
# that runs of the suite in other checkouts do not count).
nft_stasis_tables() {
	command -v nft >/dev/null 2>&1 || return 0
	nft list tables inet 2>/dev/null |
		awk -v pre="stasis-held-${1:+$1-}" '$3 ~ /^stasis-/ && (pre == "stasis-held-" || index($3, pre) == 1) { print $3 }' | sort
}

# nft_tables_left BEFORE PIDS...: the stasis-* tables that exist now, were
# not in the list BEFORE and name one of PIDS (a lock is "stasis-held-PID-
# TIME", PID the dumped or restored root) are what this test left behind:
# printed and deleted.  A table naming another PID belongs to a run of the
# suite elsewhere on the machine (another checkout) and is left alone; a
# probe table ("stasis-probe-PID", PID a stasis) is always this run's.
nft_tables_left() {
	local t id before=$1 p
	shift
	for t in $(comm -13 <(printf '%s\n' "$before" | sort) <(nft_stasis_tables)); do
		id=${t#stasis-held-}
		id=${id#stasis-probe-}
		id=${id%%-*}
		case $t in
		stasis-held-*)
			for p in "$@"; do
				[ "$p" = "$id" ] && break
			done
			[ "$p" = "$id" ] || continue
			;;
		esac
		echo "$t"
		nft delete table inet "$t" 2>/dev/null
	done
}
