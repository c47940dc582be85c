# tests/suites/ipc.sh - SysV IPC objects of the host namespace (shared
# memory, semaphores, message queues; src/res/sysvipc.c), POSIX message
# queues (src/res/mqueue.c), and a PostgreSQL server that uses SysV
# shared memory.

# ipc_cleanup: remove the objects the sysv_ipc scenario listed in
# WORKDIR/ipcids ("shm A B sem S msg Q"), whatever is left of them.
ipc_cleanup() {
	local w
	[ -r "$TDIR/ipcids" ] || return 0
	read -r -a w <"$TDIR/ipcids"
	ipcrm -m "${w[1]}" -m "${w[2]}" -s "${w[4]}" -q "${w[6]}" 2>/dev/null
	return 0
}

# test_sysv MODE: test_cr of sysv_ipc; its objects are removed in the end.
test_sysv() {
	local rc
	test_cr sysv_ipc "$1"
	rc=$?
	ipc_cleanup
	return $rc
}
# (no leave-running or pidns: a copy next to the original would need the
# original's ids, which it still holds in the one host namespace)
for m in once x3; do
	register "sysv_ipc/$m" test_sysv $m
done

# The same objects in an IPC namespace of the tree's own (with a limit of
# its own): rebuilt in a new namespace, also next to the running original.
test_sysv_ipcns() {
	local rc
	export SYSV_IPCNS=1
	test_cr sysv_ipc "$1"
	rc=$?
	unset SYSV_IPCNS
	return $rc
}
for m in once x3 leave-running; do
	register "sysv_ipc-ipcns/$m" test_sysv_ipcns $m
done

# mq_cleanup: unlink the queues the mq_posix scenario listed in WORKDIR/mqname.
mq_cleanup() {
	local n
	[ -r "$TDIR/mqname" ] || return 0
	for n in $(<"$TDIR/mqname"); do
		python3 -c 'import ctypes, sys; ctypes.CDLL(None).mq_unlink(sys.argv[1].encode())' "$n" 2>/dev/null
	done
	return 0
}

# test_mq MODE: test_cr of mq_posix; its queues are unlinked in the end.
test_mq() {
	local rc
	test_cr mq_posix "$1"
	rc=$?
	mq_cleanup
	return $rc
}
for m in once x3; do
	register "mq_posix/$m" test_mq $m
done

# take_id KIND ID: an object of ours (shm or sem) holding ID (KIND_next_id
# picks it); prints its id.
take_id() {
	echo "$2" >"/proc/sys/kernel/$1_next_id" || return 1
	case $1 in
	shm) python3 -c 'import ctypes; print(ctypes.CDLL(None).shmget(0, 4096, 0o1600))' ;;
	sem) python3 -c 'import ctypes; print(ctypes.CDLL(None).semget(0, 1, 0o1600))' ;;
	esac
}

# ipc_opt KIND: ipcrm's option for an id of KIND (shm, sem).
ipc_opt() {
	if [ "$1" = shm ]; then echo -m; else echo -s; fi
}

# shm_exists ID: a segment with this id exists (ipcs -i exits 0 either way).
shm_exists() {
	ipcs -m | awk '{print $2}' | grep -qx "$1"
}

# test_sysv_id_taken KIND: the id of the image's segment A (shm) or of its
# semaphore set (sem, made after both segments) is taken on the host by the
# time of the restore: the restore fails with one line naming the id and
# leaves nothing behind (no segment of the image's); once the id is free,
# the image restores.
test_sysv_id_taken() {
	local kind=$1 id got rc w
	need_stasis || return 1
	command -v python3 >/dev/null || { REASON="python3 is not installed"; return 77; }
	start_scenario sysv_ipc || { ipc_cleanup; return 1; }
	read -r -a w <"$TDIR/ipcids"
	if [ "$kind" = shm ]; then id=${w[1]}; else id=${w[4]}; fi
	dump "$SCN_PID" "$TDIR/img" || { ipc_cleanup; return 1; }
	{ wait_gone "$SCN_PID" && tree_gone "$TDIR/img"; } || { ipc_cleanup; return 1; }
	got=$(take_id "$kind" "$id")
	[ "$got" = "$id" ] || { ipcrm "$(ipc_opt "$kind")" "$got" 2>/dev/null; ipc_cleanup; bad "could not take $kind id $id (got $got)"; return 1; }
	stasis_cmd rst restore -D "$TDIR/img" -d
	rc=$?
	adopt_image "$TDIR/img" "$SCN_PID"
	ipcrm "$(ipc_opt "$kind")" "$got"
	expect_error "restore with $kind id $id taken" $rc "$TDIR/rst.err" || { ipc_cleanup; return 1; }
	grep -q "$kind id $id is taken" "$TDIR/rst.err" ||
		{ ipc_cleanup; bad "the error does not name $kind id $id: $ERR_LINE"; return 1; }
	[ "$(wc -l <"$TDIR/rst.err")" = 1 ] || { ipc_cleanup; bad "more than one error line"; return 1; }
	alive "$SCN_PID" && { ipc_cleanup; bad "pid $SCN_PID runs after a failed restore"; return 1; }
	if [ "$kind" = sem ]; then
		shm_exists "${w[1]}" && { ipc_cleanup; bad "segment ${w[1]} left behind by the failed restore"; return 1; }
		shm_exists "${w[2]}" && { ipc_cleanup; bad "segment ${w[2]} left behind by the failed restore"; return 1; }
	fi
	restore_detached "$TDIR/img" "$SCN_PID" || { ipc_cleanup; return 1; }
	check_scenario
	rc=$?
	ipc_cleanup
	return $rc
}
register "bad/sysv_id_taken" test_sysv_id_taken shm
register "bad/sysv_sem_id_taken" test_sysv_id_taken sem

# test_mq_name_taken: a queue of the image has its name taken on the host by
# the time of the restore: the restore fails with one line naming it; once
# the name is free, the image restores.
test_mq_name_taken() {
	local name rc
	need_stasis || return 1
	command -v python3 >/dev/null || { REASON="python3 is not installed"; return 77; }
	start_scenario mq_posix || { mq_cleanup; return 1; }
	read -r name _ <"$TDIR/mqname"
	dump "$SCN_PID" "$TDIR/img" || { mq_cleanup; return 1; }
	{ wait_gone "$SCN_PID" && tree_gone "$TDIR/img"; } || { mq_cleanup; return 1; }
	python3 -c 'import ctypes, os, sys
l = ctypes.CDLL(None, use_errno=True)
fd = l.mq_open(sys.argv[1].encode(), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600, None)
sys.exit(0 if fd >= 0 else 1)' "$name" || { mq_cleanup; bad "cannot take the queue name $name"; return 1; }
	stasis_cmd rst restore -D "$TDIR/img" -d
	rc=$?
	adopt_image "$TDIR/img" "$SCN_PID"
	mq_cleanup
	expect_error "restore with queue $name taken" $rc "$TDIR/rst.err" || return 1
	grep -q "queue $name exists" "$TDIR/rst.err" || { bad "the error does not name $name: $ERR_LINE"; return 1; }
	[ "$(wc -l <"$TDIR/rst.err")" = 1 ] || { bad "more than one error line"; return 1; }
	alive "$SCN_PID" && { bad "pid $SCN_PID runs after a failed restore"; return 1; }
	restore_detached "$TDIR/img" "$SCN_PID" || { mq_cleanup; return 1; }
	stasis_cmd show show -D "$TDIR/img" || { mq_cleanup; bad "show failed: $(head -n 1 "$TDIR/show.err")"; return 1; }
	grep -q "POSIX message queue" "$TDIR/show.out" || { mq_cleanup; bad "show does not list the queue"; return 1; }
	check_scenario
	rc=$?
	mq_cleanup
	return $rc
}
register "bad/mq_name_taken" test_mq_name_taken

# test_sysv_partial: an attachment partly unmapped is refused by name (pid,
# mapping, segment); the tree runs on unchanged.
test_sysv_partial() {
	local rc idb
	need_stasis || return 1
	echo munmap >"$TDIR/mode"
	start_scenario sysv_ipc || { ipc_cleanup; return 1; }
	idb=$(awk '{print $3}' "$TDIR/ipcids")
	snapshot "$SCN_PID" "$TDIR/state.before" || { ipc_cleanup; return 1; }
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	rc=$?
	expect_error "dump of a partly unmapped attachment" $rc "$TDIR/err.err" || { ipc_cleanup; return 1; }
	grep -q "pid $SCN_PID mapping .*segment $idb is unmapped" "$TDIR/err.err" ||
		{ ipc_cleanup; bad "the error does not name pid $SCN_PID and segment $idb: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || { ipc_cleanup; return 1; }
	sleep 0.2
	alive "$SCN_PID" || { ipc_cleanup; bad "process $SCN_PID did not survive"; return 1; }
	stopped "$SCN_PID" && { ipc_cleanup; bad "process $SCN_PID left stopped or traced"; return 1; }
	snapshot "$SCN_PID" "$TDIR/state.after" || { ipc_cleanup; return 1; }
	compare_state "$TDIR/state.before" "$TDIR/state.after" "after the failure" "$DETAILS" || { ipc_cleanup; return 1; }
	ipc_cleanup
}
register "bad/sysv_partial" test_sysv_partial

# test_mq_notify: a queue with an mq_notify registration is refused by name;
# the tree runs on unchanged, its messages all there (its own check).
test_mq_notify() {
	local rc
	need_stasis || return 1
	echo notify >"$TDIR/mode"
	start_scenario mq_posix || { mq_cleanup; return 1; }
	snapshot "$SCN_PID" "$TDIR/state.before" || { mq_cleanup; return 1; }
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	rc=$?
	expect_error "dump of a queue with mq_notify" $rc "$TDIR/err.err" || { mq_cleanup; return 1; }
	grep -q "pid $SCN_PID fd [0-9]*: POSIX message queue .*mq_notify" "$TDIR/err.err" ||
		{ mq_cleanup; bad "the error does not name pid $SCN_PID and mq_notify: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || { mq_cleanup; return 1; }
	sleep 0.2
	snapshot "$SCN_PID" "$TDIR/state.after" || { mq_cleanup; return 1; }
	compare_state "$TDIR/state.before" "$TDIR/state.after" "after the failure" "$DETAILS" || { mq_cleanup; return 1; }
	check_scenario
	rc=$?
	mq_cleanup
	return $rc
}
register "bad/mq_notify" test_mq_notify

# test_sysv_shm_outside: a segment that a process outside the tree attaches
# too is refused by name; the tree runs on unchanged.
test_sysv_shm_outside() {
	local id kind other rc
	need_stasis || return 1
	command -v python3 >/dev/null || { REASON="python3 is not installed"; return 77; }
	echo shm >"$TDIR/mode"
	start_scenario ev_refuse || return 1
	read -r kind id <"$TDIR/ipc"
	[ "$kind" = shm ] || { bad "ev_refuse wrote '$kind $id' to ipc"; return 1; }
	python3 -c 'import ctypes, sys, time
l = ctypes.CDLL(None)
l.shmat.restype = ctypes.c_void_p
print(l.shmat(int(sys.argv[1]), None, 0), flush=True)
time.sleep(60)' "$id" >"$TDIR/outsider" 2>&1 &
	other=$!
	track "$other"
	for _ in $(seq 100); do
		[ -s "$TDIR/outsider" ] && break
		sleep 0.1
	done
	grep -q '^[0-9]' "$TDIR/outsider" || { bad "the outsider could not attach segment $id: $(head -c 200 "$TDIR/outsider")"; return 1; }
	snapshot "$SCN_PID" "$TDIR/state.before" || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
	rc=$?
	kill "$other" 2>/dev/null
	wait_gone "$other"
	expect_error "dump of a segment attached outside the tree" $rc "$TDIR/err.err" || return 1
	grep -q "segment $id .*outside the tree" "$TDIR/err.err" ||
		{ bad "the error does not name segment $id as shared outside: $ERR_LINE"; return 1; }
	grep -q "pid $SCN_PID" "$TDIR/err.err" || { bad "the error does not name pid $SCN_PID: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	still_fine
}
register "bad/sysv_shm_outside" test_sysv_shm_outside

# ------------------------------------------------------------ PostgreSQL

# pg_bin: PG_BIN is the directory of Debian's PostgreSQL server programs
# (the package is installed if missing); else REASON says why not.
pg_bin() {
	local d
	# shellcheck disable=SC2012 # version-named directories
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$d" ] || [ ! -x "$d/postgres" ]; then
		{ apt-get install -y -qq postgresql || { apt-get update -qq && apt-get install -y -qq postgresql; }; } >/dev/null 2>&1
		# shellcheck disable=SC2012
		d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	fi
	{ [ -n "$d" ] && [ -x "$d/postgres" ]; } || { REASON="cannot install postgresql"; return 1; }
	PG_BIN=$d
}

# pg_cleanup DIR: kill what is left of the server of DIR/data, remove
# its SysV segment.
pg_cleanup() {
	local pid shm
	pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)
	shm=$(sed -n 7p "$1/data/postmaster.pid" 2>/dev/null | awk '{print $2}')
	[ -n "$pid" ] && alive "$pid" && kill -KILL "$pid" 2>/dev/null
	[ -n "$pid" ] && wait_gone "$pid" 5
	[ -n "$shm" ] && ipcrm -m "$shm" 2>/dev/null
	return 0
}

# pg_sql DIR SQL: one psql statement on the server's unix socket in DIR.
pg_sql() {
	timeout 20 "$PG_BIN/psql" -X -A -t -q -h "$1" -p "${PG_PORT:-5432}" -U postgres -d postgres -c "$2" 2>>"$TDIR/psql.err"
}

# test_postgres: a PostgreSQL cluster as Debian ships it (postmaster and
# its children, SysV shared memory, the listening unix socket in the test
# dir), checkpointed with a table in it; the restored server answers
# queries on the table and takes more rows, twice over, then shuts down
# cleanly.
test_postgres() {
	local d=$TDIR/pg pid n c want
	need_stasis || return 1
	pg_bin || return 77
	command -v setpriv >/dev/null || { REASON="setpriv is not installed"; return 77; }
	# the server runs as postgres: let it through to its own directory
	chmod o+x "$TDIR" "$(dirname "$TDIR")"
	mkdir -p "$d" && chown postgres: "$d" && chmod 700 "$d"
	setpriv --reuid postgres --regid postgres --clear-groups -- \
		"$PG_BIN/initdb" -D "$d/data" -A trust -U postgres >"$TDIR/initdb.log" 2>&1 ||
		{ bad "initdb failed: $(tail -n 1 "$TDIR/initdb.log")"; return 1; }
	# (not exec'd: the subshell waits, so the kill at the dump gives no job notice)
	(close_extra_fds
		cd "$d" && setpriv --reuid postgres --regid postgres --clear-groups -- \
			"$PG_BIN/postgres" -D "$d/data" -k "$d" -c listen_addresses= \
			-c autovacuum=off </dev/null >"$d/server.log" 2>&1) 2>/dev/null &
	track $!
	for _ in $(seq 100); do
		pg_sql "$d" "select 1" >/dev/null 2>&1 && break
		sleep 0.1
	done
	pid=$(head -n 1 "$d/data/postmaster.pid" 2>/dev/null)
	[ -n "$pid" ] && track "$pid"
	[ "$(pg_sql "$d" "select 1")" = 1 ] || { pg_cleanup "$d"; bad "the server did not start: $(tail -n 1 "$d/server.log")"; return 1; }
	pg_sql "$d" "create table t (n int, s text); insert into t select i, 'row ' || i from generate_series(1, 100) i;" ||
		{ pg_cleanup "$d"; bad "cannot create the table"; return 1; }
	# twice: the restored server, with its recreated segment, checkpoints again
	for c in 1 2; do
		dump "$pid" "$TDIR/img$c" || { pg_cleanup "$d"; REASON="cycle $c: $REASON"; return 1; }
		{ wait_gone "$pid" && tree_gone "$TDIR/img$c"; } || { pg_cleanup "$d"; REASON="cycle $c: $REASON"; return 1; }
		restore_detached "$TDIR/img$c" "$pid" || { pg_cleanup "$d"; REASON="cycle $c: $REASON"; return 1; }
		want="$((99 + c)) $(((99 + c) * (100 + c) / 2))"
		n=$(pg_sql "$d" "select count(*) || ' ' || sum(n) from t")
		[ "$n" = "$want" ] || { pg_cleanup "$d"; bad "after restore $c the table holds '$n', not '$want': $(tail -n 1 "$TDIR/psql.err")"; return 1; }
		pg_sql "$d" "insert into t values ($((100 + c)), 'after restore $c'); checkpoint;" ||
			{ pg_cleanup "$d"; bad "cannot insert after restore $c: $(tail -n 1 "$TDIR/psql.err")"; return 1; }
		n=$(pg_sql "$d" "select s from t where n = $((100 + c))")
		[ "$n" = "after restore $c" ] || { pg_cleanup "$d"; bad "the row inserted after restore $c reads '$n'"; return 1; }
	done
	kill -INT "$pid"
	wait_gone "$pid" 20 || { pg_cleanup "$d"; bad "the restored server did not shut down"; return 1; }
	grep -q "database system is shut down" "$d/server.log" ||
		{ pg_cleanup "$d"; bad "no clean shutdown: $(tail -n 1 "$d/server.log")"; return 1; }
	pg_cleanup "$d"
	return 0
}
register "postgres/checkpoint" test_postgres

# pg_client_wait OUT MARK: wait until the client's output OUT holds MARK.
pg_client_wait() {
	local _
	for _ in $(seq 200); do
		grep -q "^$2\$" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	bad "the client did not print $2: $(tail -n 2 "$1" 2>/dev/null | tr '\n' ' ') $(tail -n 1 "$TDIR/client.err" 2>/dev/null)"
	return 1
}

# pg_start DIR [PREFIX...]: start the cluster of DIR/data as postgres,
# listening on DIR's unix socket and on 127.0.0.1:PG_PORT, under PREFIX
# (e.g. unshare --ipc); PG_PID is the postmaster.
pg_start() {
	local d=$1 _
	shift
	(close_extra_fds
		cd "$d" && "$@" setpriv --reuid postgres --regid postgres --clear-groups -- \
			"$PG_BIN/postgres" -D "$d/data" -k "$d" -p "$PG_PORT" \
			-c listen_addresses=127.0.0.1 -c autovacuum=off </dev/null >>"$d/server.log" 2>&1) 2>/dev/null &
	track $!
	PG_PID=
	for _ in $(seq 100); do
		[ "$(pg_sql "$d" "select 1" 2>/dev/null)" = 1 ] && break
		sleep 0.1
	done
	PG_PID=$(head -n 1 "$d/data/postmaster.pid" 2>/dev/null)
	[ -n "$PG_PID" ] && track "$PG_PID"
	[ "$(pg_sql "$d" "select 1")" = 1 ] || { bad "the server did not start: $(tail -n 1 "$d/server.log")"; return 1; }
}

# test_postgres_txn [ipcns]: a client outside the tree, connected over
# TCP, is in an open transaction holding a temporary table and
# uncommitted rows when the server is checkpointed (--tcp-established);
# after the restore the same connection goes on: the temporary table is
# there, the transaction commits, another session sees the rows;
# CHECKPOINT, a clean shutdown and a fresh start of the cluster keep
# them.  With ipcns the cluster runs in an IPC namespace of its own.
test_postgres_txn() {
	local d=$TDIR/pg fifo=$TDIR/client.in out=$TDIR/client.out client wfd n rc=1 stuck=
	local -a prefix=()
	need_stasis || return 1
	pg_bin || return 77
	command -v setpriv >/dev/null || { REASON="setpriv is not installed"; return 77; }
	[ "${1:-}" = ipcns ] && prefix=(unshare --ipc --)
	PG_PORT=$((20000 + $$ % 20000))
	chmod o+x "$TDIR" "$(dirname "$TDIR")"
	mkdir -p "$d" && chown postgres: "$d" && chmod 700 "$d"
	setpriv --reuid postgres --regid postgres --clear-groups -- \
		"$PG_BIN/initdb" -D "$d/data" -A trust -U postgres >"$TDIR/initdb.log" 2>&1 ||
		{ bad "initdb failed: $(tail -n 1 "$TDIR/initdb.log")"; return 1; }
	pg_start "$d" "${prefix[@]}" || { pg_cleanup "$d"; return 1; }
	if [ "${1:-}" = ipcns ] && [ "$(readlink "/proc/$PG_PID/ns/ipc")" = "$(readlink /proc/self/ns/ipc)" ]; then
		pg_cleanup "$d"; bad "the server is not in an IPC namespace of its own"; return 1
	fi
	pg_sql "$d" "create table t (n int, s text); insert into t values (0, 'before');" ||
		{ pg_cleanup "$d"; bad "cannot create the table"; return 1; }
	# the client: psql over TCP reading statements from a FIFO held open here
	mkfifo "$fifo"
	(close_extra_fds
		exec timeout 120 "$PG_BIN/psql" -X -A -t -q -h 127.0.0.1 -p "$PG_PORT" -U postgres \
			-d postgres <"$fifo" >"$out" 2>"$TDIR/client.err") &
	client=$!
	track "$client"
	exec {wfd}>"$fifo"
	echo "begin; create temp table tt (n int); insert into tt select generate_series(1, 50);
insert into t select n, 'txn' from tt; select 'M1 ' || count(*) from t; \\echo M1done" >&"$wfd"
	pg_client_wait "$out" M1done || stuck=1
	if [ -z "$stuck" ]; then
		grep -q '^M1 51$' "$out" || bad "inside the transaction t holds $(grep '^M1' "$out")"
		n=$(pg_sql "$d" "select count(*) from t")
		[ "$n" = 1 ] || bad "another session sees $n rows before the commit, not 1"
	fi
	if [ -z "$stuck" ] && [ -z "${REASON:-}" ] &&
		dump "$PG_PID" "$TDIR/img" --tcp-established &&
		wait_gone "$PG_PID" && tree_gone "$TDIR/img" &&
		restore_detached "$TDIR/img" "$PG_PID"; then
		echo "select 'M2 ' || count(*) from tt; insert into t select n + 100, 'after' from tt;
commit; \\echo M2done" >&"$wfd"
		if pg_client_wait "$out" M2done; then
			if ! grep -q '^M2 50$' "$out"; then
				bad "after restore the temporary table reads '$(grep '^M2' "$out")' $(tail -n 1 "$TDIR/client.err")"
			elif [ "$(pg_sql "$d" "select count(*) from t")" != 101 ]; then
				bad "after the commit another session sees $(pg_sql "$d" "select count(*) from t") rows, not 101"
			elif ! pg_sql "$d" "checkpoint" >/dev/null; then
				bad "CHECKPOINT failed: $(tail -n 1 "$TDIR/psql.err")"
			else
				rc=0
			fi
		fi
	fi
	exec {wfd}>&-
	wait "$client" 2>/dev/null
	if [ $rc = 0 ]; then
		rc=1
		kill -INT "$PG_PID"
		if ! wait_gone "$PG_PID" 20; then
			bad "the restored server did not shut down"
		elif ! grep -q "database system is shut down" "$d/server.log"; then
			bad "no clean shutdown: $(tail -n 1 "$d/server.log")"
		elif pg_start "$d" "${prefix[@]}"; then
			n=$(pg_sql "$d" "select count(*) || ' ' || count(*) filter (where s = 'after') from t")
			if [ "$n" = "101 50" ]; then rc=0; else bad "after a fresh start t holds '$n', not '101 50'"; fi
		fi
	fi
	pg_cleanup "$d"
	return $rc
}
register "postgres/open-transaction" test_postgres_txn
register "postgres/open-transaction-ipcns" test_postgres_txn ipcns
