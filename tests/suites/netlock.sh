# The network lock (src/res/netlock.c): while a tree is frozen, dumped
# and not yet running again, the packets of its TCP sockets are dropped
# by an nft table inet stasis-held-*, so that a peer outside the tree
# only sees a pause.  The peer here is a python client outside the tree
# that streams numbered lines to an echo server in the tree the whole
# time and checks that every byte comes back, in order, without a reset.
# Only 127.0.0.1 and ports the kernel picks.  run.sh fails every test
# that leaves a stasis-* table behind.

# netlock_need CMD:PACKAGE...: the commands are there or their Debian
# packages are installed now; else REASON says which could not be.
netlock_need() {
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

# netlock_python: PY is python3, with nft there too; else REASON (skip).
netlock_python() {
	netlock_need nft:nftables || return 77
	PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
	{ [ -n "$PY" ] && [ -x "$PY" ]; } || { REASON="python3 not installed"; return 77; }
	return 0
}

# The echo server of the tree: listens on a port the kernel picks (written
# to ./port), accepts one client and sends back whatever it reads.
NL_SERVER='
import os, socket, sys
host = sys.argv[1]
l = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
l.bind((host, 0))
l.listen(1)
open("port.tmp", "w").write(str(l.getsockname()[1]))
os.rename("port.tmp", "port")
c, _ = l.accept()
while True:
    d = c.recv(65536)
    if not d:
        break
    c.sendall(d)
'

# The client outside the tree: sends "%08d\n" lines every 2 ms until ./stop
# exists, then ends its side and reads the echo to its end; ./result says
# "ok N" when all N lines came back in order, else what went wrong (a
# reset is "error: ConnectionResetError ...").  ./count is how many lines
# came back so far.
NL_CLIENT='
import os, socket, sys, threading, time
port = int(open("port").read())
s = socket.create_connection((sys.argv[1], port))
s.settimeout(60)
sent = [0]
err = []
def send():
    try:
        while not os.path.exists("stop"):
            s.sendall(b"%08d\n" % sent[0])
            sent[0] += 1
            time.sleep(0.002)
        s.shutdown(socket.SHUT_WR)
    except Exception as e:
        err.append("send: %s %s" % (type(e).__name__, e))
t = threading.Thread(target=send)
t.start()
got = b""
n = 0
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
        while len(got) >= 9:
            if got[:9] != b"%08d\n" % n:
                raise ValueError("line %d came back as %r" % (n, got[:9]))
            got = got[9:]
            n += 1
        if n % 50 == 0:
            open("count.tmp", "w").write(str(n))
            os.rename("count.tmp", "count")
except Exception as e:
    err.append("recv: %s %s" % (type(e).__name__, e))
t.join()
if not err and (got or n != sent[0]):
    err.append("%d lines sent, %d came back (%d bytes left over)" % (sent[0], n, len(got)))
open("result.tmp", "w").write("error: " + "; ".join(err) if err else "ok %d" % n)
os.rename("result.tmp", "result")
'

# start_streaming: the server in the tree (SCN_PID), the client streaming
# to it (CLIENT_PID), some lines echoed already; over NL_HOST (127.0.0.1
# unless a test sets ::1).
start_streaming() {
	mkdir -p "$TDIR/nl"
	start_prog "$TDIR/nl" server "$PY" -c "$NL_SERVER" "${NL_HOST:-127.0.0.1}" || return 1
	wait_file "$TDIR/nl/port" 10 "$SCN_PID" || { bad "the echo server does not listen"; return 1; }
	NL_PORT=$(cat "$TDIR/nl/port")
	(close_extra_fds
		cd "$TDIR/nl" && exec "$PY" -c "$NL_CLIENT" "${NL_HOST:-127.0.0.1}") </dev/null >>"$TDIR/client.log" 2>&1 &
	CLIENT_PID=$!
	disown "$CLIENT_PID"
	track "$CLIENT_PID"
	wait_file "$TDIR/nl/count" 10 "$CLIENT_PID" || { bad "the client got no echo"; return 1; }
}

# stream_count: lines echoed so far.
stream_count() {
	cat "$TDIR/nl/count" 2>/dev/null || echo 0
}

# stream_grows: more lines come back within 5 s than now.
stream_grows() {
	local n0 i
	n0=$(stream_count)
	for i in $(seq 100); do
		[ "$(stream_count)" -gt "$n0" ] && return 0
		sleep 0.05
	done
	bad "the stream stopped at $n0 lines (client: $(cat "$TDIR/nl/result" 2>/dev/null))"
}

# stream_result WANT: stop the client; its verdict matches WANT (a pattern).
stream_result() {
	local got
	touch "$TDIR/nl/stop"
	wait_file "$TDIR/nl/result" 60 "$CLIENT_PID" || { bad "the client gave no verdict"; return 1; }
	got=$(cat "$TDIR/nl/result")
	# shellcheck disable=SC2053
	[[ $got == $1 ]] || [[ $got == ${2:-$1} ]] || { bad "client: $got"; return 1; }
	[ "$VERBOSE" = 1 ] && echo "    (client: $got)"
	return 0
}

# no_lock WHEN: no lock table of the tree (root SCN_PID) exists.
no_lock() {
	local t
	t=$(nft_stasis_tables "$SCN_PID")
	[ -z "$t" ] || { bad "$1: nft table(s) ${t//$'\n'/ } exist"; return 1; }
}

# lock_holds WHEN: one stasis-held-* table of the tree (root SCN_PID)
# exists and drops the client's connection both ways (NL_PORT is the
# server's port).
lock_holds() {
	local t rules h=${NL_HOST:-127.0.0.1} ip=ip set=s0
	t=$(nft_stasis_tables "$SCN_PID")
	[ "$(echo "$t" | wc -w)" = 1 ] || { bad "$1: expected one stasis table, found: ${t//$'\n'/ }"; return 1; }
	NL_TABLE=$t
	[ "$h" = ::1 ] && ip=ip6 set=s1
	rules=$(nft list table inet "$t" 2>&1)
	# one element per connection, matched both ways
	if ! grep -Eq "$h . ($NL_PORT . $h . [0-9]+|[0-9]+ . $h . $NL_PORT)" <<<"$rules" ||
		! grep -q "$ip saddr . tcp sport . $ip daddr . tcp dport @$set drop" <<<"$rules" ||
		! grep -q "$ip daddr . tcp dport . $ip saddr . tcp sport @$set drop" <<<"$rules"; then
		bad "$1: table $t does not drop the connection to port $NL_PORT both ways: ${rules:0:300}"
		return 1
	fi
}

# dump -R while the client streams: no line lost, no reset, no table left.
test_netlock_dump_R() {
	need_stasis || return 1
	netlock_python || return $?
	start_streaming || return 1
	no_lock "before the dump" || return 1
	dump "$SCN_PID" "$TDIR/img" -R --tcp-established || return 1
	no_lock "after dump -R" || return 1
	stream_grows || return 1
	dump "$SCN_PID" "$TDIR/img2" -R --tcp-established || return 1
	stream_grows || return 1
	stream_result "ok *"
}
register netlock/stream-dump-R test_netlock_dump_R

# dump (the server is killed), a pause, restore: the lock is there from
# the dump to the restore, gone after; the client loses nothing.
test_netlock_dump_restore() {
	need_stasis || return 1
	netlock_python || return $?
	start_streaming || return 1
	dump "$SCN_PID" "$TDIR/img" --tcp-established || return 1
	wait_gone "$SCN_PID" || { bad "the server is still there after the dump"; return 1; }
	lock_holds "between dump and restore" || return 1
	"$STASIS" show -D "$TDIR/img" --json 2>/dev/null | grep -q "$NL_TABLE" ||
		{ bad "the image does not record table $NL_TABLE"; return 1; }
	sleep 0.5 # the client retransmits into the lock meanwhile
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	no_lock "after the restore" || return 1
	# the restore held the sockets with a table of its own until the tree ran
	grep -q "network lock: table inet stasis-held-$SCN_PID-r[0-9a-f]* holds 2 TCP socket(s)" \
		"$TDIR/restore$N_CMD.log" || { bad "the restore did not lock the network"; return 1; }
	stream_grows || return 1
	stream_result "ok *"
}
register netlock/stream-dump-restore test_netlock_dump_restore

# The same over IPv6 (::1).
test_netlock_dump_restore6() {
	local NL_HOST=::1
	test_netlock_dump_restore
}
register netlock/stream-dump-restore-ipv6 test_netlock_dump_restore6

# Both ends of a connection in the tree (inet_tcp's pair): its two sockets
# give one key, the last of the set, which must still be in it (a repeated
# last key left the set's last batch of elements unsent: the lock held
# nothing).
test_netlock_pair_in_set() {
	local t rules
	need_stasis || return 1
	start_scenario inet_tcp || return 1
	dump "$SCN_PID" "$TDIR/img" --tcp-established || return 1
	wait_gone "$SCN_PID" || { bad "the tree is still there after the dump"; return 1; }
	t=$(nft_stasis_tables "$SCN_PID")
	rules=$(nft list table inet "$t" 2>&1)
	grep -Eq "elements = \{ 127\.0\.0\.1 \. [0-9]+ \. 127\.0\.0\.1 \. [0-9]+" <<<"$rules" ||
		{ bad "table $t holds no connection: ${rules:0:300}"; return 1; }
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	no_lock "after the restore" || return 1
	check_scenario
}
register netlock/pair-in-set test_netlock_pair_in_set

# The same with --network-lock skip: the client's lines reach no socket
# between the kill and the restore, and it gets a reset (what the lock
# is there to prevent); no table at any time.
test_netlock_skip() {
	need_stasis || return 1
	netlock_python || return $?
	start_streaming || return 1
	dump "$SCN_PID" "$TDIR/img" --tcp-established --network-lock skip || return 1
	wait_gone "$SCN_PID" || { bad "the server is still there after the dump"; return 1; }
	no_lock "after dump --network-lock skip" || return 1
	sleep 0.3
	# the server may well see the reset too and exit: its restore is not the point
	stasis_cmd restore restore -D "$TDIR/img" -d
	adopt_image "$TDIR/img" "$SCN_PID"
	stream_result "error: *Reset*" "error: *Broken*"
}
register netlock/skip-resets test_netlock_skip

# bg_dump CRASH ARGS...: a dump with STASIS_TEST_CRASH=CRASH in the
# background, output in $TDIR/bg.{out,err}; DUMP_PID is the subshell that
# waits for it (no job notice when it dies of a signal), STASIS_PID the
# dump itself.
bg_dump() {
	local crash=$1 i
	shift
	(close_extra_fds
		STASIS_TEST_CRASH=$crash "$STASIS" dump -t "$SCN_PID" -D "$TDIR/img" "$@"
		exit $?) </dev/null >"$TDIR/bg.out" 2>"$TDIR/bg.err" &
	DUMP_PID=$!
	track "$DUMP_PID"
	STASIS_PID=""
	for i in $(seq 100); do
		STASIS_PID=$(children "$DUMP_PID")
		[ -n "$STASIS_PID" ] && break
		alive "$DUMP_PID" || break
		sleep 0.02
	done
}

# The lock while the dump is stopped with the tree frozen (after the
# records, STASIS_TEST_CRASH=records-stop), then -R: the table drops the
# connection both ways during the hold and is gone after it.
test_netlock_hold() {
	local i rc
	need_stasis || return 1
	netlock_python || return $?
	start_streaming || return 1
	bg_dump records-stop -R --tcp-established
	for i in $(seq 200); do
		[ -n "$STASIS_PID" ] && [ "$(proc_state "$STASIS_PID")" = T ] && break
		sleep 0.05
	done
	[ "$(proc_state "$STASIS_PID")" = T ] || { bad "the dump did not stop"; return 1; }
	lock_holds "while the dump is stopped" || { kill -CONT "$STASIS_PID"; return 1; }
	sleep 0.3
	kill -CONT "$STASIS_PID"
	wait "$DUMP_PID"
	rc=$?
	rc_ok "the dump" $rc "$TDIR/bg.err" || return 1
	no_lock "after the dump" || return 1
	stream_grows || return 1
	stream_result "ok *"
}
register netlock/hold-visible test_netlock_hold

# Failed dumps lift the lock and the tree goes on: refused (no
# --tcp-established), crashed (the rescue handler), killed (SIGKILL: the
# kernel drops the table with the netlink socket that owns it).
test_netlock_failed() {
	local how=$1 rc
	need_stasis || return 1
	netlock_python || return $?
	start_streaming || return 1
	case $how in
	refused)
		stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img"
		expect_error "a dump without --tcp-established" $? "$TDIR/err.err" || return 1
		;;
	crash | kill)
		if [ "$how" = crash ]; then bg_dump records --tcp-established; else bg_dump records-kill --tcp-established; fi
		wait "$DUMP_PID"
		rc=$?
		[ $rc -ge 128 ] || { bad "the dump exited with $rc, not by the signal asked for"; return 1; }
		;;
	esac
	no_image_left "$TDIR/img" || return 1
	no_lock "after the $how dump" || return 1
	[ "$how" = kill ] && return 0 # its sockets stay in repair mode: nothing flows
	stream_grows || return 1
	stream_result "ok *"
}
register netlock/failed-refused test_netlock_failed refused
register netlock/failed-crash test_netlock_failed crash
register netlock/failed-kill test_netlock_failed kill

# A restore that fails (the server's output file is missing) lifts its own
# lock but leaves the dump's, so the client still waits; the next restore
# lifts it and the client goes on.
test_netlock_restore_fails() {
	local rc
	need_stasis || return 1
	netlock_python || return $?
	start_streaming || return 1
	dump "$SCN_PID" "$TDIR/img" --tcp-established || return 1
	wait_gone "$SCN_PID" || { bad "the server is still there after the dump"; return 1; }
	lock_holds "after the dump" || return 1
	mv "$TDIR/server.out" "$TDIR/server.out.away"
	stasis_cmd bad restore -D "$TDIR/img" -d
	rc=$?
	mv "$TDIR/server.out.away" "$TDIR/server.out"
	expect_error "a restore without the server's output file" $rc "$TDIR/bad.err" || return 1
	lock_holds "after the failed restore" || return 1
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	no_lock "after the restore" || return 1
	stream_result "ok *"
}
register netlock/restore-fails test_netlock_restore_fails

# ---------------------------------------------------------------- programs

# free_port: a TCP port of 127.0.0.1 free right now.
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# open_conn PORT: KV_FD is a connection to 127.0.0.1:PORT once it listens.
open_conn() {
	local i
	KV_FD=""
	for i in $(seq 100); do
		{ exec {KV_FD}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null && return 0
		KV_FD=""
		sleep 0.05
	done
	bad "nothing listens on 127.0.0.1:$1"
}

# kv_ask REQUEST N: send REQUEST (with \r\n) on KV_FD and read N answer
# lines into KV_ANSWER (joined by |, \r dropped).
kv_ask() {
	local i l
	KV_ANSWER=""
	printf '%s\r\n' "$1" >&"$KV_FD"
	for ((i = 0; i < $2; i++)); do
		read -r -t 20 l <&"$KV_FD" || { KV_ANSWER+="(nothing)"; return 1; }
		KV_ANSWER+="${KV_ANSWER:+|}${l%$'\r'}"
	done
}

# kv_expect REQUEST N WANT: the answer to REQUEST is WANT.
kv_expect() {
	kv_ask "$1" "$2"
	[ "$KV_ANSWER" = "$3" ] || { bad "'$1' got '$KV_ANSWER', expected '$3'"; return 1; }
}

# kv_cycle NAME: dump the server (killed, --tcp-established), check the
# lock holds its port, restore it; the connection KV_FD stays open.
kv_cycle() {
	dump "$SCN_PID" "$TDIR/img" --tcp-established || return 1
	wait_gone "$SCN_PID" || { bad "$1 still there after the dump"; return 1; }
	tree_gone "$TDIR/img" || return 1
	nft list ruleset 2>/dev/null |
		grep -Eq "127.0.0.1 . ($KV_PORT . 127.0.0.1 . [0-9]+|[0-9]+ . 127.0.0.1 . $KV_PORT)" ||
		{ bad "no network lock holds port $KV_PORT between dump and restore"; return 1; }
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	no_lock "after the restore of $1"
}

# redis-server with a named client connection that stores keys, is kept
# through dump (killed) and restore, and reads them back on the same
# connection, then counts on.
# shellcheck disable=SC2016 # RESP bulk lengths: "$5" is what redis sends
test_netlock_redis() {
	local rc=0
	need_stasis || return 1
	netlock_python || return $?
	netlock_need redis-server:redis-server || return 77
	KV_PORT=$(free_port)
	mkdir -p "$TDIR/redis"
	start_prog "$TDIR/redis" redis redis-server --port "$KV_PORT" --bind 127.0.0.1 \
		--save "" --appendonly no --daemonize no || return 1
	open_conn "$KV_PORT" || return 1
	kv_expect "CLIENT SETNAME keeper" 1 "+OK" &&
		kv_expect "SET k1 hello" 1 "+OK" &&
		kv_expect "SET k2 world" 1 "+OK" &&
		kv_expect "INCR n" 1 ":1" &&
		kv_cycle redis-server &&
		kv_expect "GET k1" 2 '$5|hello' &&
		kv_expect "GET k2" 2 '$5|world' &&
		kv_expect "CLIENT GETNAME" 2 '$6|keeper' &&
		kv_expect "INCR n" 1 ":2" || rc=1
	exec {KV_FD}>&-
	return $rc
}
register prog/netlock-redis test_netlock_redis

# memcached (4 threads) likewise: keys stored before the dump come back
# on the kept connection after the restore, and a new key can be stored.
test_netlock_memcached() {
	local rc=0
	need_stasis || return 1
	netlock_python || return $?
	netlock_need memcached:memcached || return 77
	KV_PORT=$(free_port)
	mkdir -p "$TDIR/memcached"
	start_prog "$TDIR/memcached" memcached memcached -u root -l 127.0.0.1 -p "$KV_PORT" \
		-U 0 -t 4 -m 16 || return 1
	open_conn "$KV_PORT" || return 1
	printf 'set k1 0 0 5\r\nhello\r\n' >&"$KV_FD"
	kv_ask "set k2 0 0 5"$'\r\n'"world" 2
	[ "$KV_ANSWER" = "STORED|STORED" ] || { bad "set got '$KV_ANSWER'"; exec {KV_FD}>&-; return 1; }
	kv_cycle memcached &&
		kv_expect "get k1 k2" 5 "VALUE k1 0 5|hello|VALUE k2 0 5|world|END" &&
		kv_expect "incr k1 1" 1 "CLIENT_ERROR cannot increment or decrement non-numeric value" &&
		kv_ask "set k3 0 0 1"$'\r\n'"7" 1 && [ "$KV_ANSWER" = STORED ] &&
		kv_expect "incr k3 5" 1 "12" || rc=1
	[ $rc = 0 ] || [ -n "$REASON" ] || REASON="memcached after restore: '$KV_ANSWER'"
	exec {KV_FD}>&-
	return $rc
}
register prog/netlock-memcached test_netlock_memcached

# ------------------------------------------------------------ half-closed

# A server in the tree that shut its connection down for writing, its
# client outside.  HC_MODE fin-wait2: it said hello and shut down (the
# client read both), then reads the client's numbered lines to their end
# and writes "ok N" to ./verdict.  fin-wait1: it wrote ./sent bytes of a
# pattern while the client read nothing, then shut down, so that its FIN
# waits behind the bytes the client had no room for; it then waits for
# the client's end.  ./state is its TCP state once it shut down.
HC_SERVER='
import os, socket, struct, sys
mode = sys.argv[1]
def put(name, text):
    open(name + ".tmp", "w").write(text)
    os.rename(name + ".tmp", name)
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
put("port", str(l.getsockname()[1]))
c, _ = l.accept()
if mode == "fin-wait2":
    c.sendall(b"hello\n")
else:
    c.setblocking(False)
    n = 0
    try:
        while True:
            n += c.send(bytes((n + i) % 251 for i in range(65536)))
    except BlockingIOError:
        pass
    c.setblocking(True)
    put("sent", str(n))
c.shutdown(socket.SHUT_WR)
import time
time.sleep(0.2)
put("state", str(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]))
got = b""
n = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    got += d
    while len(got) >= 9:
        if got[:9] != b"%08d\n" % n:
            put("verdict", "line %d came as %r" % (n, got[:9]))
            sys.exit(1)
        got = got[9:]
        n += 1
put("verdict", "ok %d" % n if not got else "%d bytes left over" % len(got))
'

# The client: HC_MODE fin-wait2: reads hello and the end, then sends lines
# every 2 ms until ./stop, and ends its side (./sent-lines: how many).
# fin-wait1: waits for ./go, reads the pattern to its end and checks it
# (./read: "ok N" or what was wrong), then ends its side.
HC_CLIENT='
import os, socket, sys, time
mode = sys.argv[1]
def put(name, text):
    open(name + ".tmp", "w").write(text)
    os.rename(name + ".tmp", name)
s = socket.create_connection(("127.0.0.1", int(open("port").read())))
s.settimeout(60)
try:
    if mode == "fin-wait2":
        f = s.makefile("rb")
        if f.readline() != b"hello\n" or f.read(1) != b"":
            put("read", "no hello and end")
            sys.exit(1)
        n = 0
        while not os.path.exists("stop"):
            s.sendall(b"%08d\n" % n)
            n += 1
            time.sleep(0.002)
        put("sent-lines", str(n))
    else:
        while not os.path.exists("go"):
            time.sleep(0.02)
        n = 0
        while True:
            d = s.recv(65536)
            if not d:
                break
            if d != bytes((n + i) % 251 for i in range(len(d))):
                put("read", "pattern broken at byte %d" % n)
                sys.exit(1)
            n += len(d)
        put("read", "ok %d" % n)
    s.shutdown(socket.SHUT_WR)
except Exception as e:
    put("read", "error: %s %s" % (type(e).__name__, e))
    sys.exit(1)
time.sleep(60)
'

# hc_start MODE: the server (SCN_PID) and its client (CLIENT_PID), the
# server shut down and in the TCP state of MODE (4 FIN_WAIT1, 5 FIN_WAIT2).
hc_start() {
	local want
	mkdir -p "$TDIR/hc"
	start_prog "$TDIR/hc" server "$PY" -c "$HC_SERVER" "$1" || return 1
	wait_file "$TDIR/hc/port" 10 "$SCN_PID" || { bad "the server does not listen"; return 1; }
	(close_extra_fds
		cd "$TDIR/hc" && exec "$PY" -c "$HC_CLIENT" "$1") </dev/null >>"$TDIR/client.log" 2>&1 &
	CLIENT_PID=$!
	disown "$CLIENT_PID"
	track "$CLIENT_PID"
	wait_file "$TDIR/hc/state" 10 "$SCN_PID" || { bad "the server did not shut down"; return 1; }
	want=$([ "$1" = fin-wait1 ] && echo 4 || echo 5)
	[ "$(cat "$TDIR/hc/state")" = "$want" ] ||
		{ bad "the server is in TCP state $(cat "$TDIR/hc/state"), not $1"; return 1; }
}

# hc_cycle MODE: dump (killed) or dump -R (MODE -R), restore if killed.
hc_cycle() {
	if [ "${1:-}" = -R ]; then
		dump "$SCN_PID" "$TDIR/img" -R --tcp-established
		return
	fi
	dump "$SCN_PID" "$TDIR/img" --tcp-established || return 1
	wait_gone "$SCN_PID" || { bad "the server is still there after the dump"; return 1; }
	sleep 0.3
	restore_detached "$TDIR/img" "$SCN_PID"
}

# FIN_WAIT2 (its FIN sent and acknowledged): the client's lines still
# reach the server, every one, through dump and restore (or dump -R).
test_hc_fin_wait2() {
	need_stasis || return 1
	netlock_python || return $?
	hc_start fin-wait2 || return 1
	sleep 0.2
	hc_cycle "${1:-}" || return 1
	sleep 0.3
	touch "$TDIR/hc/stop"
	wait_file "$TDIR/hc/verdict" 20 "$SCN_PID" || { bad "the server gave no verdict"; return 1; }
	[ -s "$TDIR/hc/sent-lines" ] || { bad "client: $(cat "$TDIR/hc/read" 2>/dev/null)"; return 1; }
	[ "$(cat "$TDIR/hc/verdict")" = "ok $(cat "$TDIR/hc/sent-lines")" ] ||
		{ bad "server: $(cat "$TDIR/hc/verdict"), client sent $(cat "$TDIR/hc/sent-lines") lines"; return 1; }
	[ "$VERBOSE" = 1 ] && echo "    (server: $(cat "$TDIR/hc/verdict") lines)"
	return 0
}
register inet_tcp/fin-wait2-restore test_hc_fin_wait2
register inet_tcp/fin-wait2-dump-R test_hc_fin_wait2 -R

# FIN_WAIT1 (its FIN behind bytes the client had no room for): after
# restore (or dump -R) the client reads every byte, then the end.
test_hc_fin_wait1() {
	need_stasis || return 1
	netlock_python || return $?
	hc_start fin-wait1 || return 1
	hc_cycle "${1:-}" || return 1
	touch "$TDIR/hc/go"
	wait_file "$TDIR/hc/read" 30 "$CLIENT_PID" || { bad "the client read no end"; return 1; }
	[ "$(cat "$TDIR/hc/read")" = "ok $(cat "$TDIR/hc/sent")" ] ||
		{ bad "client: $(cat "$TDIR/hc/read"), server sent $(cat "$TDIR/hc/sent") bytes"; return 1; }
	wait_file "$TDIR/hc/verdict" 20 "$SCN_PID" || { bad "the server saw no end from the client"; return 1; }
	[ "$(cat "$TDIR/hc/verdict")" = "ok 0" ] || { bad "server: $(cat "$TDIR/hc/verdict")"; return 1; }
	[ "$VERBOSE" = 1 ] && echo "    (client: $(cat "$TDIR/hc/read") bytes)"
	return 0
}
register inet_tcp/fin-wait1-restore test_hc_fin_wait1
register inet_tcp/fin-wait1-dump-R test_hc_fin_wait1 -R

# Shut down by the peer (its FIN replayed at restore).  PF_MODE close-wait:
# the client sent ./lines lines and shut down; the server read them to
# the end and waits (CLOSE_WAIT) for ./go, then reads the end again and
# answers "got N" before it closes.  last-ack: the server also wrote ./sent
# bytes the client did not read yet and shut down, its FIN stuck behind
# them (LAST_ACK); after ./go the client reads them and the end.
PF_SERVER='
import os, socket, sys, time
mode = sys.argv[1]
def put(name, text):
    open(name + ".tmp", "w").write(text)
    os.rename(name + ".tmp", name)
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
put("port", str(l.getsockname()[1]))
c, _ = l.accept()
got = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    got += d
n = got.count(b"\n")
sent = 0
if mode == "last-ack":
    c.setblocking(False)
    try:
        while True:
            sent += c.send(bytes((sent + i) % 251 for i in range(65536)))
    except BlockingIOError:
        pass
    c.setblocking(True)
    put("sent", str(sent))
    c.shutdown(socket.SHUT_WR)
time.sleep(0.2)
put("state", str(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]))
while not os.path.exists("go"):
    time.sleep(0.02)
c.settimeout(10)
try:
    again = c.recv(1)
except Exception as e:
    again = repr(e).encode()
if mode == "close-wait":
    c.sendall(b"got %d\n" % n)
c.close()
put("verdict", "ok %d" % n if again == b"" else "read %r after the end" % again)
'

PF_CLIENT='
import os, socket, sys, time
mode = sys.argv[1]
def put(name, text):
    open(name + ".tmp", "w").write(text)
    os.rename(name + ".tmp", name)
s = socket.create_connection(("127.0.0.1", int(open("port").read())))
s.settimeout(60)
for i in range(1000):
    s.sendall(b"%08d\n" % i)
s.shutdown(socket.SHUT_WR)
while not os.path.exists("go"):
    time.sleep(0.02)
try:
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    if mode == "close-wait":
        put("read", "ok" if got == b"got 1000\n" else "got %r" % got[:40])
    else:
        ok = got == bytes(i % 251 for i in range(len(got)))
        put("read", "ok %d" % len(got) if ok else "pattern broken")
except Exception as e:
    put("read", "error: %s %s" % (type(e).__name__, e))
time.sleep(60)
'

# test_peer_fin MODE [-R]: the server in the tree in CLOSE_WAIT or
# LAST_ACK is dumped (killed and restored, or -R); then the server still
# reads the end, and the client gets its answer or every byte, then the end.
test_peer_fin() {
	local want
	need_stasis || return 1
	netlock_python || return $?
	mkdir -p "$TDIR/hc"
	start_prog "$TDIR/hc" server "$PY" -c "$PF_SERVER" "$1" || return 1
	wait_file "$TDIR/hc/port" 10 "$SCN_PID" || { bad "the server does not listen"; return 1; }
	(close_extra_fds
		cd "$TDIR/hc" && exec "$PY" -c "$PF_CLIENT" "$1") </dev/null >>"$TDIR/client.log" 2>&1 &
	CLIENT_PID=$!
	disown "$CLIENT_PID"
	track "$CLIENT_PID"
	wait_file "$TDIR/hc/state" 10 "$SCN_PID" || { bad "the server did not get the end"; return 1; }
	want=$([ "$1" = close-wait ] && echo 8 || echo 9)
	[ "$(cat "$TDIR/hc/state")" = "$want" ] ||
		{ bad "the server is in TCP state $(cat "$TDIR/hc/state"), not $1"; return 1; }
	hc_cycle "${2:-}" || return 1
	touch "$TDIR/hc/go"
	wait_file "$TDIR/hc/verdict" 20 "$SCN_PID" || { bad "the server gave no verdict"; return 1; }
	[ "$(cat "$TDIR/hc/verdict")" = "ok 1000" ] || { bad "server: $(cat "$TDIR/hc/verdict")"; return 1; }
	wait_file "$TDIR/hc/read" 30 "$CLIENT_PID" || { bad "the client read no end"; return 1; }
	if [ "$1" = close-wait ]; then
		[ "$(cat "$TDIR/hc/read")" = ok ] || { bad "client: $(cat "$TDIR/hc/read")"; return 1; }
	else
		[ "$(cat "$TDIR/hc/read")" = "ok $(cat "$TDIR/hc/sent")" ] ||
			{ bad "client: $(cat "$TDIR/hc/read"), server sent $(cat "$TDIR/hc/sent")"; return 1; }
	fi
}
register inet_tcp/close-wait-restore test_peer_fin close-wait
register inet_tcp/close-wait-dump-R test_peer_fin close-wait -R
register inet_tcp/last-ack-restore test_peer_fin last-ack
register inet_tcp/last-ack-dump-R test_peer_fin last-ack -R

# Both ends in the tree, half-closed (inet_refuse's kinds, saved now): fd 3
# in CLOSE_WAIT (its peer in FIN_WAIT2), or in LAST_ACK (its FIN behind
# bytes the peer has no room for); the scenario checks fd 3's state after
# restore.  CLOSING (both FINs crossed) is refused: bad/inet-half-closed.
# No leave-running mode: the original's end, killed outside repair mode,
# leaves its half-closed sockets on the listener's port, which has no
# SO_REUSEADDR.
test_pair_half_closed() {
	local DUMP_OPTS=--tcp-established rc
	export INET_REFUSE=$1
	test_cr inet_refuse "$2"
	rc=$?
	unset INET_REFUSE
	return $rc
}
for m in once x3; do
	register "inet_tcp/pair-close-wait/$m" test_pair_half_closed close-wait $m
	register "inet_tcp/pair-last-ack/$m" test_pair_half_closed last-ack $m
done

# ------------------------------------------------------- raw and ping

# with_ping_range COMMAND...: run COMMAND with net.ipv4.ping_group_range
# open to every group (ping sockets), put back as it was afterwards.
with_ping_range() {
	local old rc
	old=$(cat /proc/sys/net/ipv4/ping_group_range 2>/dev/null) ||
		{ REASON="no net.ipv4.ping_group_range"; return 77; }
	echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range ||
		{ REASON="cannot set net.ipv4.ping_group_range"; return 77; }
	"$@"
	rc=$?
	echo "$old" >/proc/sys/net/ipv4/ping_group_range
	return $rc
}

# Raw sockets (ICMP with a filter, IP_HDRINCL, ICMPv6 with a filter) and
# ping sockets (IPv4 bound and connected, IPv6): FILE_INET_RAW.  No pidns
# mode: the ping identifier is taken by the original in the same network
# namespace.
for m in once x3 leave-running; do
	register "inet_raw/$m" with_ping_range test_cr inet_raw $m
done

# A ping socket whose restore cannot make one (ping_group_range closed
# between dump and restore): one line naming the socket and the sysctl,
# nothing left running.
test_inet_ping_refused() {
	need_stasis || return 1
	start_scenario inet_raw || return 1
	dump "$SCN_PID" "$TDIR/img" || return 1
	wait_gone "$SCN_PID" || { bad "inet_raw still there after the dump"; return 1; }
	echo "1 0" >/proc/sys/net/ipv4/ping_group_range
	stasis_cmd rst restore -D "$TDIR/img" -d
	expect_error "a restore of a ping socket without ping_group_range" $? "$TDIR/rst.err" || return 1
	grep -q "pid $SCN_PID: ICMP ping socket (protocol 1) bound to 127.0.0.1:[0-9]*: creating it failed: .*ping_group_range" "$TDIR/rst.err" ||
		{ bad "the error does not name the ping socket and the sysctl: $ERR_LINE"; return 1; }
	[ ! -e "/proc/$SCN_PID" ] || { adopt "$SCN_PID"; bad "pid $SCN_PID runs after a failed restore"; return 1; }
}
register bad/inet-ping-no-group with_ping_range test_inet_ping_refused
