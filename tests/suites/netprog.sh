# Real network servers through dump (killed) and restore, with peers
# outside the tree that keep their connections: nginx (a root master and
# www-data workers, a keep-alive connection reused after restore),
# python3's http.server (a request half sent at the dump, finished after
# the restore), dnsmasq (UDP and TCP queries, a TCP connection held by its
# forked child) and sshd (a live session over a pty: a ticker in the
# shell keeps ticking, typed commands run).  Only 127.0.0.0/8 and ports
# the kernel picks; the Debian packages are installed once per run when
# missing (a skip says which could not be).

NP_PACKAGES="nginx:nginx-light dnsmasq:dnsmasq-base sshd:openssh-server ssh:openssh-client ssh-keygen:openssh-client nft:nftables"
NP_APT_TRIED=0

# np_need CMD...: the commands are there, or one apt-get install (per run,
# of every package of this file that is missing) brought them; else
# REASON names what could not be installed.
np_need() {
	local c e miss=() all=()
	for c in "$@"; do
		[ "$c" = sshd ] && [ -x /usr/sbin/sshd ] && continue
		command -v "$c" >/dev/null || miss+=("$c")
	done
	[ ${#miss[@]} = 0 ] && return 0
	if [ "$NP_APT_TRIED" = 0 ] && [ "$(id -u)" = 0 ]; then
		NP_APT_TRIED=1
		for e in $NP_PACKAGES; do
			{ [ "${e%%:*}" = sshd ] && [ -x /usr/sbin/sshd ]; } ||
				command -v "${e%%:*}" >/dev/null || all+=("${e#*:}")
		done
		{ apt-get install -y -qq "${all[@]}" ||
			{ apt-get update -qq && apt-get install -y -qq "${all[@]}"; }; } >/dev/null 2>&1
		np_need "$@"
		return
	fi
	REASON="cannot install the package(s) of ${miss[*]}"
	return 1
}

# np_python: NP_PY is python3 (the peers and the probes are python).
np_python() {
	NP_PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
	{ [ -n "$NP_PY" ] && [ -x "$NP_PY" ]; } || { REASON="python3 not installed"; return 77; }
}

# np_port [HOST]: a TCP (and UDP) port of HOST (127.0.0.1) free right now.
np_port() {
	"$NP_PY" -c '
import socket, sys
h = sys.argv[1]
while True:
    t = socket.socket(); t.bind((h, 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind((h, p))
        print(p)
        break
    except OSError:
        pass' "${1:-127.0.0.1}"
}

# np_connect PORT: NP_FD is a connection to 127.0.0.1:PORT once it listens.
np_connect() {
	local i
	NP_FD=""
	for i in $(seq 100); do
		{ exec {NP_FD}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null && return 0
		NP_FD=""
		sleep 0.05
	done
	bad "nothing listens on 127.0.0.1:$1"
}

# np_close: close NP_FD if open.
np_close() {
	[ -n "${NP_FD:-}" ] && exec {NP_FD}>&-
	NP_FD=""
	return 0
}

# np_response: read one HTTP response from NP_FD; NP_GOT is "STATUS BODY"
# (the body's \r and \n dropped).
np_response() {
	local line len=0 status body=""
	NP_GOT="(no answer)"
	read -r -t 10 _ status _ <&"$NP_FD" || return 1
	while read -r -t 10 line <&"$NP_FD"; do
		line=${line%$'\r'}
		[ -z "$line" ] && break
		[[ ${line,,} == content-length:* ]] && len=${line#*: }
	done
	[ "$len" -gt 0 ] && read -r -t 10 -N "$len" body <&"$NP_FD"
	body=${body//$'\r'/}
	NP_GOT="$status ${body//$'\n'/}"
}

# np_get PATH WANT: a GET on the kept connection NP_FD answers WANT (a
# pattern).
np_get() {
	printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&"$NP_FD"
	np_response
	# shellcheck disable=SC2053
	[[ $NP_GOT == $2 ]] || { bad "GET $1: '$NP_GOT', expected '$2'"; return 1; }
}

# np_snap WHEN: a /proc snapshot of SCN_PID and each of its descendants
# as state.WHEN.PID (but the short-lived children of the process whose
# PID the file NP_TRANSIENT holds, if set); NP_SNAPPED lists them.
np_snap() {
	local p skip=""
	NP_SNAPPED=""
	[ -n "${NP_TRANSIENT:-}" ] && skip=" $(children "$(cat "$NP_TRANSIENT")") "
	for p in "$SCN_PID" $(descendants "$SCN_PID"); do
		[[ $skip == *" $p "* ]] && continue
		snapshot "$p" "$TDIR/state.$1.$p" || return 1
		NP_SNAPPED+=" $p"
	done
}

# np_same: every process np_snap saw before the dump looks the same now.
np_same() {
	local p
	for p in $NP_SNAPPED; do
		alive "$p" || { bad "process $p ($(grep -m1 '^Name:' "$TDIR/state.before.$p")) is gone after the restore"; return 1; }
		snapshot "$p" "$TDIR/state.after.$p" || return 1
		compare_state "$TDIR/state.before.$p" "$TDIR/state.after.$p" "after restore (pid $p)" "$DETAILS" ||
			return 1
	done
}

# np_cycle NAME: dump the tree of SCN_PID (killed, --tcp-established),
# wait until its PIDs are free, hold the lock a moment and restore it;
# the processes look the same from /proc before and after.
np_cycle() {
	np_snap before || return 1
	dump "$SCN_PID" "$TDIR/img" --tcp-established || return 1
	wait_gone "$SCN_PID" || { bad "$1 still there after the dump"; return 1; }
	tree_gone "$TDIR/img" || return 1
	sleep 0.2 # the peers retransmit into the lock meanwhile
	restore_detached "$TDIR/img" "$SCN_PID" || return 1
	[ -z "$(nft_stasis_tables "$SCN_PID")" ] || { bad "a network lock is left after the restore of $1"; return 1; }
	np_same
}

# np_uid PID: the real uid of PID.
np_uid() {
	awk '/^Uid:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# ------------------------------------------------------------------ nginx

# nginx with its master (root) and two workers (www-data): a keep-alive
# connection made before the dump gets its second answer from the same
# worker after the restore; the workers are www-data still, and a new
# connection is answered too.
test_np_nginx() {
	local port w0 w1 kids k rc=0
	need_stasis || return 1
	np_python || return $?
	np_need nginx nft || return 77
	id www-data >/dev/null 2>&1 || { REASON="no user www-data"; return 77; }
	port=$(np_port)
	mkdir -p "$TDIR/ngx"
	cat >"$TDIR/ngx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
user www-data;
pid $TDIR/ngx/nginx.pid;
error_log $TDIR/ngx/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $TDIR/ngx/body;
	proxy_temp_path $TDIR/ngx/proxy;
	fastcgi_temp_path $TDIR/ngx/fastcgi;
	uwsgi_temp_path $TDIR/ngx/uwsgi;
	scgi_temp_path $TDIR/ngx/scgi;
	keepalive_timeout 300;
	server {
		listen 127.0.0.1:$port;
		location / { default_type text/plain; return 200 "worker \$pid\n"; }
	}
}
EOF
	start_prog "$TDIR/ngx" nginx nginx -e "$TDIR/ngx/error.log" -p "$TDIR/ngx" -c "$TDIR/ngx/nginx.conf" ||
		return 1
	np_connect "$port" || return 1
	np_get /a "200 worker *" || { np_close; return 1; }
	w0=${NP_GOT##* }
	kids=$(children "$SCN_PID")
	[ "$(echo "$kids" | wc -w)" = 2 ] || { bad "nginx has workers '$kids', expected 2"; np_close; return 1; }
	[[ " $kids " == *" $w0 "* ]] || { bad "worker $w0 is not a child of the master ($kids)"; np_close; return 1; }
	np_cycle nginx || { np_close; return 1; }
	np_get /b "200 worker $w0" || rc=1
	np_close
	[ $rc = 0 ] || return 1
	[ "$(children "$SCN_PID" | tr ' ' '\n' | sort | tr '\n' ' ')" = "$(echo "$kids" | tr ' ' '\n' | sort | tr '\n' ' ')" ] ||
		{ bad "the workers after restore are '$(children "$SCN_PID")', not '$kids'"; return 1; }
	for k in $kids; do
		[ "$(np_uid "$k")" = "$(id -u www-data)" ] || { bad "worker $k runs as uid $(np_uid "$k"), not www-data"; return 1; }
	done
	[ "$(np_uid "$SCN_PID")" = 0 ] || { bad "the master runs as uid $(np_uid "$SCN_PID")"; return 1; }
	np_connect "$port" || return 1
	np_get /c "200 worker *" || rc=1
	w1=${NP_GOT##* }
	np_close
	[ $rc = 0 ] || return 1
	[[ " $kids " == *" $w1 "* ]] || { bad "a new connection was answered by $w1, not a worker ($kids)"; return 1; }
	return 0
}
register prog/netprog-nginx-keepalive test_np_nginx

# ------------------------------------------------------------ http.server

# python3's http.server (a thread per connection): a request whose header
# is half sent at the dump (the handler's thread waits in the middle of a
# header line) is finished after the restore and answered; the same
# connection serves one more.
test_np_http_half() {
	local port
	need_stasis || return 1
	np_python || return $?
	np_need nft || return 77
	mkdir -p "$TDIR/www"
	printf 'half-%s\n' 0123456789 >"$TDIR/www/page.txt"
	port=$(np_port)
	start_prog "$TDIR/www" http "$NP_PY" -m http.server --bind 127.0.0.1 --protocol HTTP/1.1 "$port" ||
		return 1
	np_connect "$port" || return 1
	printf 'GET /page.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: abc' >&"$NP_FD"
	sleep 0.3
	np_cycle http.server || { np_close; return 1; }
	printf 'def\r\n\r\n' >&"$NP_FD"
	np_response
	[ "$NP_GOT" = "200 half-0123456789" ] ||
		{ bad "the request finished after the restore got '$NP_GOT'"; np_close; return 1; }
	np_get /page.txt "200 half-0123456789" || { np_close; return 1; }
	np_close
}
register prog/netprog-http-half-request test_np_http_half

# ---------------------------------------------------------------- dnsmasq

# The DNS peer: NP_DNS ADDR PORT MODE.  MODE udp / tcp: one query for
# alpha.test on a new socket, prints the answer.  keep: a TCP connection
# asks once (./q1), waits for ./go, asks again on it (./q2).
NP_DNS='
import os, socket, struct, sys, time
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def put(name, text):
    open(name + ".tmp", "w").write(text)
    os.rename(name + ".tmp", name)
def query(qid):
    p = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for part in b"alpha.test".split(b"."):
        p += bytes([len(part)]) + part
    return p + b"\0" + struct.pack(">HH", 1, 1)
def answer(r, qid):
    if struct.unpack(">H", r[:2])[0] != qid:
        return "id %d" % struct.unpack(">H", r[:2])[0]
    n = struct.unpack(">H", r[6:8])[0]
    return "rcode %d answers %d %s" % (r[3] & 15, n, socket.inet_ntoa(r[-4:]) if n else "-")
def tcp_ask(f, s, qid):
    q = query(qid)
    s.sendall(struct.pack(">H", len(q)) + q)
    n = struct.unpack(">H", f.read(2))[0]
    return answer(f.read(n), qid)
try:
    if mode == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.sendto(query(7), (host, port))
        print(answer(s.recv(4096), 7))
    elif mode == "tcp":
        s = socket.create_connection((host, port), timeout=5)
        print(tcp_ask(s.makefile("rb"), s, 8))
    else:
        s = socket.create_connection((host, port), timeout=30)
        f = s.makefile("rb")
        put("q1", tcp_ask(f, s, 9))
        while not os.path.exists("go"):
            time.sleep(0.02)
        put("q2", tcp_ask(f, s, 10))
except Exception as e:
    print("error: %s %s" % (type(e).__name__, e))
    if mode == "keep":
        put("q2" if os.path.exists("q1") else "q1", "error: %s %s" % (type(e).__name__, e))
'

# dnsmasq (dropping to nobody, no upstream, one host record) on an address
# of 127.0.0.0/8 of its own: it answers UDP and TCP queries before and
# after the restore, and a TCP connection open at the dump (served by the
# child dnsmasq forks for it, dumped with the tree) answers again.
test_np_dnsmasq() {
	local addr port want="rcode 0 answers 1 127.0.0.77" got m peer
	need_stasis || return 1
	np_python || return $?
	np_need dnsmasq nft || return 77
	addr=127.0.$((RANDOM % 200 + 20)).$((RANDOM % 200 + 20))
	port=$(np_port "$addr")
	mkdir -p "$TDIR/dns"
	start_prog "$TDIR/dns" dnsmasq dnsmasq -k --no-resolv --no-hosts --host-record=alpha.test,127.0.0.77 \
		--listen-address="$addr" --bind-interfaces --port="$port" --pid-file= \
		--log-facility=- --log-queries || return 1
	for m in udp tcp; do
		for _ in $(seq 50); do
			got=$("$NP_PY" -c "$NP_DNS" "$addr" "$port" $m)
			[ "$got" = "$want" ] && break
			sleep 0.1
		done
		[ "$got" = "$want" ] || { bad "$m query before the dump: '$got'"; return 1; }
	done
	(close_extra_fds
		cd "$TDIR/dns" && exec "$NP_PY" -c "$NP_DNS" "$addr" "$port" keep) </dev/null >>"$TDIR/peer.log" 2>&1 &
	peer=$!
	disown "$peer"
	track "$peer"
	wait_file "$TDIR/dns/q1" 10 "$peer" || { bad "the kept TCP connection got no first answer"; return 1; }
	[ "$(cat "$TDIR/dns/q1")" = "$want" ] || { bad "first query on the kept connection: $(cat "$TDIR/dns/q1")"; return 1; }
	[ -n "$(children "$SCN_PID")" ] || { bad "dnsmasq forked no child for the TCP connection"; return 1; }
	np_cycle dnsmasq || return 1
	for m in udp tcp; do
		got=$("$NP_PY" -c "$NP_DNS" "$addr" "$port" $m)
		[ "$got" = "$want" ] || { bad "$m query after the restore: '$got'"; return 1; }
	done
	touch "$TDIR/dns/go"
	wait_file "$TDIR/dns/q2" 10 "$peer" || { bad "the kept TCP connection got no answer after the restore"; return 1; }
	[ "$(cat "$TDIR/dns/q2")" = "$want" ] ||
		{ bad "query on the kept connection after the restore: $(cat "$TDIR/dns/q2")"; return 1; }
	[ "$(np_uid "$SCN_PID")" = "$(id -u nobody)" ] || { bad "dnsmasq runs as uid $(np_uid "$SCN_PID") after restore"; return 1; }
}
register prog/netprog-dnsmasq test_np_dnsmasq

# ------------------------------------------------------------------- sshd

# np_ticks: lines the ticker wrote so far.
np_ticks() {
	local n
	n=$(wc -l <"$TDIR/ssh/ticks" 2>/dev/null) || n=0
	echo "${n:-0}"
}

# np_ticking: more ticks within 3 s than now.
np_ticking() {
	local n0
	n0=$(np_ticks)
	for _ in $(seq 60); do
		[ "$(np_ticks)" -gt "$n0" ] && return 0
		sleep 0.05
	done
	bad "$1: the ticker stopped at $n0 ticks"
}

# np_typed WORD: "echo WORD-\$((6*7))" typed into the session prints
# WORD-42 (the computed text, not the echo of what was typed).
np_typed() {
	# shellcheck disable=SC2016 # the shell of the session expands it
	printf 'echo %s-$((6*7))\n' "$1" >&"$NP_SSH_IN"
	wait_log "$TDIR/ssh/session.out" "$1-42" 10 || { bad "'$1' typed into the session did not run"; return 1; }
}

# sshd (its own host key, a key pair the test makes, root by key only) on
# 127.0.0.1: a session of ssh -tt (outside the tree, its keyboard a fifo
# the test writes) runs a ticker in its shell; through dump and restore
# of sshd with the session's processes, the ticker keeps ticking, typed
# commands run, and a new login works.
test_np_sshd() {
	local port ssh_opts rc=0 client got NP_TRANSIENT=$TDIR/ssh/ticker
	need_stasis || return 1
	np_python || return $?
	np_need sshd ssh ssh-keygen nft || return 77
	port=$(np_port)
	mkdir -p "$TDIR/ssh" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$TDIR/ssh/host" &&
		ssh-keygen -q -t ed25519 -N '' -f "$TDIR/ssh/id" &&
		cp "$TDIR/ssh/id.pub" "$TDIR/ssh/authorized_keys" || { bad "ssh-keygen failed"; return 1; }
	cat >"$TDIR/ssh/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $TDIR/ssh/host
AuthorizedKeysFile $TDIR/ssh/authorized_keys
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PrintMotd no
PrintLastLog no
UseDNS no
EOF
	start_prog "$TDIR/ssh" sshd /usr/sbin/sshd -D -e -f "$TDIR/ssh/sshd_config" || return 1
	wait_log "$TDIR/sshd.out" "Server listening" 10 || { bad "sshd does not listen: $(head -n 2 "$TDIR/sshd.out")"; return 1; }
	ssh_opts=(-F /dev/null -i "$TDIR/ssh/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
		-o BatchMode=yes -o LogLevel=ERROR -p "$port")
	mkfifo "$TDIR/ssh/keys"
	exec {NP_SSH_IN}<>"$TDIR/ssh/keys"
	(close_extra_fds
		exec ssh -tt "${ssh_opts[@]}" root@127.0.0.1) <"$TDIR/ssh/keys" >"$TDIR/ssh/session.out" 2>&1 &
	client=$!
	disown "$client"
	track "$client"
	printf 'cd %q; while :; do echo tick; sleep 0.1; done >>ticks & echo $! >ticker\n' "$TDIR/ssh" >&"$NP_SSH_IN"
	{ np_typed before && np_ticking "before the dump"; } || rc=1
	[ $rc = 0 ] && { np_cycle sshd || rc=1; }
	[ $rc = 0 ] && { alive "$client" || bad "ssh lost its session (it exited: $(tail -c 200 "$TDIR/ssh/session.out"))"; } || rc=1
	[ $rc = 0 ] && { np_ticking "after the restore" && np_typed after; } || rc=1
	if [ $rc = 0 ]; then
		# shellcheck disable=SC2016 # the remote shell expands it
		got=$(timeout 20 ssh "${ssh_opts[@]}" root@127.0.0.1 'echo new-$((1+1))' </dev/null 2>&1)
		[ "$got" = new-2 ] || { bad "a new login after the restore: '$got'"; rc=1; }
	fi
	exec {NP_SSH_IN}>&-
	return $rc
}
register prog/netprog-sshd-session test_np_sshd
