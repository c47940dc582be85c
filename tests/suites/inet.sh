# Inet sockets: TCP and UDP over IPv4 and IPv6 (src/res/inet.c, tcp.c,
# udp.c).  Every test talks only to 127.0.0.1 and ::1.  No pidns mode: a
# copy next to the running original would need the original's ports
# (same network namespace).
for m in once x3 leave-running; do
	register "inet_listen/$m" test_cr inet_listen $m
done
for m in once x3 leave-running; do
	register "inet_udp/$m" test_cr inet_udp $m
done

# Established connections (--tcp-established): a pair inside the process
# with data in flight both ways, unread and never sent.
test_inet_tcp() {
	local DUMP_OPTS=--tcp-established
	test_cr inet_tcp "$1"
}
for m in once x3 leave-running; do
	register "inet_tcp/$m" test_inet_tcp $m
done

# Without --tcp-established an established connection is refused with one
# line naming pid, fd, addresses and the option; the tree goes on.
test_inet_tcp_refused() {
	need_stasis || return 1
	start_scenario inet_tcp || return 1
	dump_refused "dump of an established connection without --tcp-established" \
		"pid $SCN_PID fd [0-9]*: established TCP connection 127.0.0.1:[0-9]* -> 127.0.0.1:[0-9]* (dump with --tcp-established" ||
		return 1
	check_scenario
}
register bad/inet-tcp-refused test_inet_tcp_refused

# dump -R --tcp-established: repair mode is switched off again and the
# original's connections go on with every byte (its own check).
test_inet_tcp_goes_on() {
	need_stasis || return 1
	start_scenario inet_tcp || return 1
	dump "$SCN_PID" "$TDIR/img" -R --tcp-established || return 1
	sleep 0.2
	check_scenario
}
register inet_tcp/dump-R-goes-on test_inet_tcp_goes_on

# inet_client DIR: a client outside the tree (bash and /dev/tcp) that
# connects to the port in DIR/port and says hello; then, for N = 1, 2, 3,
# once DIR/goN exists, says pingN and writes the answer it gets (or
# "nothing") to DIR/answerN.
inet_client() {
	local d=$1 i l
	while [ ! -s "$d/port" ]; do sleep 0.05; done
	exec 3<>"/dev/tcp/127.0.0.1/$(cat "$d/port")" || exit 1
	echo hello >&3
	read -r -t 10 l <&3
	echo "$l" >"$d/welcome"
	for i in 1 2 3; do
		while [ ! -e "$d/go$i" ]; do sleep 0.05; done
		echo "ping$i" >&3
		read -r -t 10 l <&3 || l="nothing (read: $?)"
		echo "$l" >"$d/answer$i.tmp"
		mv "$d/answer$i.tmp" "$d/answer$i"
	done
	exec sleep 60
}

# start_inet_server: the client in the background (CLIENT_PID), then the
# server scenario; the client has its welcome.
start_inet_server() {
	(close_extra_fds
		inet_client "$TDIR") </dev/null >>"$TDIR/client.log" 2>&1 &
	CLIENT_PID=$!
	disown "$CLIENT_PID"
	track "$CLIENT_PID"
	start_scenario inet_server || return 1
	[ "$(cat "$TDIR/welcome" 2>/dev/null)" = welcome ] ||
		{ bad "the client got no welcome before the dump"; return 1; }
}

# client_answer N WANT: round N of the client got WANT (a pattern).
client_answer() {
	local ans
	touch "$TDIR/go$1"
	wait_file "$TDIR/answer$1" 10 "$CLIENT_PID" ||
		{ bad "the client wrote no answer $1"; return 1; }
	ans=$(cat "$TDIR/answer$1")
	# shellcheck disable=SC2053
	[[ $ans == $2 ]] || { bad "round $1: the client got '$ans', expected $2"; return 1; }
}

# A server in the tree, its client outside: the client keeps its
# connection through dump (the socket closes silently in repair mode) and
# restore, and gets its answer afterwards; three times in a row.
test_inet_peer_outside() {
	local i
	need_stasis || return 1
	start_inet_server || return 1
	for i in 1 2 3; do
		dump "$SCN_PID" "$TDIR/img$i" --tcp-established || return 1
		wait_gone "$SCN_PID" || { bad "server $SCN_PID still there after dump $i"; return 1; }
		tree_gone "$TDIR/img$i" || return 1
		restore_detached "$TDIR/img$i" "$SCN_PID" || return 1
		client_answer $i "pong$i" || return 1
	done
	alive "$CLIENT_PID" || { bad "the client died"; return 1; }
	check_scenario
}
register inet_tcp/peer-outside test_inet_peer_outside

# test_inet_refused KIND WORDS: the dump (with --tcp-established) of a
# socket of KIND is refused, the error names pid and fd 3 and contains
# WORDS; nothing is left and the scenario's socket is as it was.
test_inet_refused() {
	local kind=$1 words=$2 rc
	need_stasis || return 1
	export INET_REFUSE=$kind
	start_scenario inet_refuse
	rc=$?
	unset INET_REFUSE
	[ $rc = 0 ] || return 1
	stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img" --tcp-established
	expect_error "dump of a $kind socket" $? "$TDIR/err.err" || return 1
	grep -q "pid $SCN_PID fd 3.*$words" "$TDIR/err.err" ||
		{ bad "the error does not name pid $SCN_PID fd 3 and '$words': $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register bad/inet-accept-queue test_inet_refused accept-queue "waiting in its accept queue"
register bad/inet-syn-sent test_inet_refused syn-sent "in state SYN_SENT"
register bad/inet-half-closed test_inet_refused closing "in state CLOSING"
register bad/inet-raw test_inet_refused raw "raw IPv4 socket (protocol 1) has a socket filter attached"
register bad/inet-packet test_inet_refused packet "packet socket has an mmap'ed ring"
register bad/inet-multicast test_inet_refused multicast "IP_MULTICAST_TTL set: multicast is not supported"
register bad/inet-urgent test_inet_refused urgent "urgent data (MSG_OOB) pending"
register bad/inet-netns test_inet_refused netns "AF_INET stream socket of another network namespace"

# restore --tcp-close: the server's connection comes back closed (an
# unconnected socket), its listener listening; the outside client's next
# line gets a reset.
test_inet_tcp_close() {
	local rc
	need_stasis || return 1
	export INET_SERVER_CLOSED=1
	start_inet_server
	rc=$?
	unset INET_SERVER_CLOSED
	[ $rc = 0 ] || return 1
	dump "$SCN_PID" "$TDIR/img" --tcp-established || return 1
	wait_gone "$SCN_PID" || { bad "server $SCN_PID still there after the dump"; return 1; }
	tree_gone "$TDIR/img" || return 1
	RESTORE_OPTS=--tcp-close restore_detached "$TDIR/img" "$SCN_PID" || return 1
	client_answer 1 "nothing*" || return 1
	check_scenario
}
register inet_tcp/restore-tcp-close test_inet_tcp_close

# dump -R with the client outside: the original goes on serving it on the
# same connection (repair mode switched off without a window probe).
test_inet_peer_outside_R() {
	need_stasis || return 1
	start_inet_server || return 1
	dump "$SCN_PID" "$TDIR/img" -R --tcp-established || return 1
	client_answer 1 pong1 || return 1
	dump "$SCN_PID" "$TDIR/img2" -R --tcp-established || return 1
	client_answer 2 pong2 || return 1
	check_scenario
}
register inet_tcp/peer-outside-dump-R test_inet_peer_outside_R

# A dump that crashes after the records of the task were written, its
# sockets in repair mode (STASIS_TEST_CRASH=records):
# its rescue handler switches repair mode off, so the connections go on
# with every byte (the scenario's own check).
test_inet_tcp_crash() {
	local rc
	need_stasis || return 1
	start_scenario inet_tcp || return 1
	STASIS_TEST_CRASH=records stasis_cmd err dump -t "$SCN_PID" -D "$TDIR/img" --tcp-established
	rc=$?
	[ $rc -eq $((128 + 11)) ] || { bad "the dump exited with $rc, not by the SIGSEGV asked for"; return 1; }
	grep -q "putting the tree back" "$TDIR/err.err" ||
		{ bad "the crashing dump did not say it put the tree back: $(head -n 1 "$TDIR/err.err")"; return 1; }
	no_image_left "$TDIR/img" || return 1
	sleep 0.2
	check_scenario
}
register bad/inet-tcp-dump-crash test_inet_tcp_crash

# A listener shared by a parent and its worker, the worker holding the
# accepted end of a connection whose client end the parent holds.
test_inet_fork() {
	local DUMP_OPTS=--tcp-established
	test_cr inet_fork "$1"
}
for m in once x3 leave-running; do
	register "inet_fork/$m" test_inet_fork $m
done

# A connection busy when frozen; after dump -R the killed original leaves
# a TIME_WAIT on the connection's addresses, which the restore takes over.
test_inet_pingpong() {
	local DUMP_OPTS=--tcp-established
	test_cr inet_pingpong "$1"
}
for m in once x3 leave-running; do
	register "inet_pingpong/$m" test_inet_pingpong $m
done

# The dumped subtree (child K alone) holds a connection its parent holds
# too: refused (repair mode would stay on in the parent), and the parent's
# socket is not left in repair mode.
test_inet_shared_outside() {
	local k rc
	need_stasis || return 1
	export INET_REFUSE=shared
	start_scenario inet_refuse
	rc=$?
	unset INET_REFUSE
	[ $rc = 0 ] || return 1
	read -r k <"$TDIR/pids"
	stasis_cmd err dump -t "$k" -D "$TDIR/img" --tcp-established
	expect_error "dump of a connection also held outside the tree" $? "$TDIR/err.err" || return 1
	grep -q "pid $k fd 3: TCP connection .* is also held by a process outside the tree" "$TDIR/err.err" ||
		{ bad "the error does not say the connection is held outside: $ERR_LINE"; return 1; }
	no_image_left "$TDIR/img" || return 1
	check_scenario
}
register bad/inet-shared-outside test_inet_shared_outside

# ---------------------------------------------------------------- programs

# http_get FD PATH: one HTTP/1.1 request on the open connection FD; prints
# the status code and the body's length.
http_get() {
	local fd=$1 line len=0 status body
	printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&"$fd"
	read -r -t 10 _ status _ <&"$fd" || { echo "none"; return 1; }
	while read -r -t 10 line <&"$fd"; do
		line=${line%$'\r'}
		[ -z "$line" ] && break
		[[ ${line,,} == content-length:* ]] && len=${line#*: }
	done
	read -r -t 10 -N "$len" body <&"$fd"
	echo "$status ${#body}"
}

# python3's http.server (HTTP/1.1, a thread per connection) serving a
# directory: a client outside the tree keeps its connection open across
# dump --tcp-established and restore and gets a second page on it; a new
# connection after the restore works too.
test_python_http() {
	local py port got i
	need_stasis || return 1
	py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
	{ [ -n "$py" ] && [ -x "$py" ]; } || { REASON="python3 not installed"; return 77; }
	mkdir -p "$TDIR/www"
	head -c 1234 /dev/zero | tr '\0' a >"$TDIR/www/page.txt"
	port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	start_prog "$TDIR/www" http "$py" -m http.server --bind 127.0.0.1 --protocol HTTP/1.1 "$port" ||
		return 1
	for i in $(seq 100); do
		{ exec {HTTP_FD}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null && break
		HTTP_FD=""
		sleep 0.05
	done
	[ -n "$HTTP_FD" ] || { bad "http.server does not listen on $port"; return 1; }
	got=$(http_get "$HTTP_FD" /page.txt)
	[ "$got" = "200 1234" ] || { bad "first request: '$got'"; exec {HTTP_FD}>&-; return 1; }
	sleep 0.2
	dump "$SCN_PID" "$TDIR/img" --tcp-established || { exec {HTTP_FD}>&-; return 1; }
	wait_gone "$SCN_PID" || { bad "http.server still there after the dump"; exec {HTTP_FD}>&-; return 1; }
	tree_gone "$TDIR/img" || { exec {HTTP_FD}>&-; return 1; }
	restore_detached "$TDIR/img" "$SCN_PID" || { exec {HTTP_FD}>&-; return 1; }
	got=$(http_get "$HTTP_FD" /page.txt)
	exec {HTTP_FD}>&-
	[ "$got" = "200 1234" ] || { bad "request on the kept connection after restore: '$got'"; return 1; }
	exec {HTTP_FD}<>"/dev/tcp/127.0.0.1/$port" || { bad "no new connection after restore"; return 1; }
	got=$(http_get "$HTTP_FD" /page.txt)
	exec {HTTP_FD}>&-
	[ "$got" = "200 1234" ] || { bad "request on a new connection after restore: '$got'"; return 1; }
	return 0
}
register prog/python-http-keepalive test_python_http
