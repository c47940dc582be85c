#!/bin/bash
# Make the fuzz seeds in tests/fuzz/corpus: dump a few of the suite's
# scenarios and cut each image's page data to one page per task
# (build/fuzz/seed), keeping those under 64 KiB.  Run as root, after make.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$REPO/build
OUT=$REPO/tests/fuzz/corpus
# shellcheck source=../lib.sh
. "$REPO/tests/lib.sh" # close_extra_fds
SCENARIOS=${SCENARIOS:-"counter sleeper tree3 threads50 files pipe60k piperead sharedfd
	signals evfds epollset unix_stream unix_dgram unix_listen unix_scm ev_ptimer ev_fifo
	ev_inotify ev_pidfd fs_memfd fs_ghost fs_opath fs_locks tty_pty forker pgrpdead
	subreaper creds guard mapshared sysv_ipc mq_posix ns_uts_time pidns_tree inet_tcp
	inet_udp inet_listen inet_raw nl_sock pkt_sock fid_sig fid_ghost fid_fown fid_mm
	sem_timed sig_timed"}
TMP=$(mktemp -d /tmp/stasis-seed.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

seed_one() {
	local name=$1 dir=$TMP/$1 pid opts=""
	mkdir -p "$dir"
	(close_extra_fds && cd "$dir" && exec setsid "$BUILD/tests/$name" "$dir") </dev/null >"$dir/log" 2>&1 &
	disown $!
	for _ in $(seq 100); do
		[ -s "$dir/ready" ] && break
		sleep 0.1
	done
	[ -s "$dir/ready" ] || { echo "$name: not ready"; return 1; }
	read -r pid _ <"$dir/ready"
	case $name in
	fs_locks) opts=--file-locks ;;
	inet_tcp | inet_listen) opts=--tcp-established ;;
	esac
	# shellcheck disable=SC2086
	if ! timeout 30 "$BUILD/stasis" dump -t "$pid" -D "$dir/img" $opts 2>"$dir/err"; then
		echo "$name: dump failed: $(head -1 "$dir/err")"
		kill -9 -- -"$pid" 2>/dev/null
		return 1
	fi
	kill -9 -- -"$pid" "$pid" 2>/dev/null
	"$BUILD/fuzz/seed" "$dir/img" "$dir/small" || { echo "$name: seed failed"; return 1; }
	if [ "$(stat -c %s "$dir/small/stasis.img")" -gt 65536 ]; then
		echo "$name: $(stat -c %s "$dir/small/stasis.img") bytes, too big"
		return 1
	fi
	cp "$dir/small/stasis.img" "$OUT/$name.img"
	echo "$name: $(stat -c %s "$OUT/$name.img") bytes"
}

for s in $SCENARIOS; do
	seed_one "$s"
done
