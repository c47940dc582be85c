# tests/suites/memperf.sh - the ways restore fills anonymous memory (sourced
# by tests/run.sh).
#
# Dump writes the page record with workers straight into the mapped image
# (src/res/pages.c; STASIS_DUMP_WORKERS=N, 0 streams it through one writer
# thread as before).  Private anonymous memory is filled through userfaultfd (UFFDIO_COPY from
# the image's page cache, src/res/pages_uffd.c) either by a crew of
# controller threads that took the child's userfaultfd with pidfd_getfd
# (the default), or by the restore child itself when that hand-off is not
# possible (STASIS_UFFD_WORKERS=0 simulates a kernel without pidfd_getfd),
# or by preadv when there is no userfaultfd at all (STASIS_TEST_NO_UFFD=1,
# tests/suites/pages.sh).  Each must restore every shape of memory of
# pages_zoo and the 256 MiB of bigmem exactly; a copy that fails leaves
# nothing behind.

# memperf_log RE: the restore log of this test shows RE.
memperf_log() {
	grep -qsE "$1" "$TDIR"/restore*.log
}

# test_memperf_dump N SCENARIO: the dump's page record written by N workers
# into the mapped image (0: streamed through the writer thread); the
# restore checks every byte, and the page checksum.
test_memperf_dump() {
	local n=$1 scn=$2 rc want
	STASIS_DUMP_WORKERS=$n test_cr "$scn" once
	rc=$?
	[ $rc = 0 ] || return $rc
	want="workers $n\)"
	[ "$n" = 0 ] && want="streamed 1\)"
	grep -qsE "pages in .*$want" "$TDIR"/*.log ||
		{ bad "no dump log says its pages went $want"; return 1; }
}

# test_memperf_crew N SCENARIO [GOT]: a crew of at most N workers fills the
# memory, GOT of them (default N; a worker takes at least 32 MiB).
test_memperf_crew() {
	local n=$1 scn=$2 got=${3:-$1} rc
	STASIS_UFFD_WORKERS=$n test_cr "$scn" once
	rc=$?
	[ $rc = 0 ] || return $rc
	memperf_log "by userfaultfd, $got workers" ||
		{ bad "no restore log says its pages were filled by $got userfaultfd workers"; return 1; }
}

# test_memperf_child SCENARIO: no hand-off; the restore child copies alone.
test_memperf_child() {
	local scn=$1 rc
	STASIS_UFFD_WORKERS=0 test_cr "$scn" once
	rc=$?
	[ $rc = 0 ] || return $rc
	memperf_log "by userfaultfd, [0-9.]+ ms" ||
		{ bad "the restore child did not fill its pages through userfaultfd"; return 1; }
	! memperf_log "by userfaultfd, [0-9]+ workers" ||
		{ bad "STASIS_UFFD_WORKERS=0 still handed the pages to the controller"; return 1; }
}

# test_memperf_fault SCENARIO [WORKERS]: restore:uffd_copy (a failed
# UFFDIO_COPY) makes restore -d fail, leaves no process of the tree and the
# image unchanged, and the next restore succeeds (the fault loop's checks);
# the point must be reached.
test_memperf_fault() {
	local rc
	STASIS_UFFD_WORKERS=${2:-2} FAULT_ONLY='^restore:uffd_copy$' test_fault_loop "$1"
	rc=$?
	[ $rc = 0 ] || return $rc
	grep -q "restore: 1 points reached and held" "$TDIR/summary" ||
		{ bad "restore:uffd_copy was not reached: $(tail -n 1 "$TDIR/summary")"; return 1; }
}

# test_memperf_corrupt: one byte flipped in the middle of bigmem's pages;
# the restore, whose crew copies them while the verifier hashes them,
# fails on the checksum before the tree is released, and leaves nothing.
test_memperf_corrupt() {
	local img=$TDIR/img f size off b rc
	need_stasis || return 1
	start_scenario bigmem || return 1
	dump "$SCN_PID" "$img" || return 1
	tree_gone "$img" || return 1
	f=$img/$IMG_NAME
	size=$(stat -c %s "$f")
	off=$((size / 2))
	b=$(od -An -tu1 -j$off -N1 "$f" | tr -d ' ')
	printf '%b' "\\$(printf %03o $((b ^ 0x01)))" | dd of="$f" bs=1 seek=$off conv=notrunc status=none
	# shellcheck disable=SC2034 # read by adopt (run.sh)
	SCN_START=""
	STASIS_UFFD_WORKERS=2 stasis_cmd rst restore -D "$img" -d
	rc=$?
	expect_error "restore of an image with a flipped page byte" $rc "$TDIR/rst.err" ||
		{ adopt "$SCN_PID"; return 1; }
	grep -q "fail their checksum" "$TDIR/rst.err" ||
		{ bad "the restore failed, but not on the page checksum: $ERR_LINE"; return 1; }
	tree_gone "$img" || { REASON="after the failed restore: $REASON"; return 1; }
}

register memperf/corrupt test_memperf_corrupt
register memperf/dump2 test_memperf_dump 2 pages_zoo
register memperf/dump-stream test_memperf_dump 0 pages_zoo
register memperf/crew2 test_memperf_crew 2 bigmem
register memperf/zoo-crew test_memperf_crew 2 pages_zoo 1
register memperf/child test_memperf_child bigmem
register memperf/fault-crew test_memperf_fault bigmem 2
register memperf/fault-child test_memperf_fault bigmem 0
