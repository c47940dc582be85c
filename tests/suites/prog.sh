# tests/suites/prog.sh - real programs checkpointed in the middle of work
# (sourced by tests/run.sh).

PIPE_DIRS="i18n perl zoneinfo"	# under /usr/share: about 40 MB for tar

# pipeline_cmd: the pipeline, as sh -c runs it; writes sum (and status).
# shellcheck disable=SC2016
PIPELINE='tar c --sort=name -C /usr/share $0 2>/dev/null | bzip2 -9 | sha256sum >sum.tmp; echo $? >status; mv sum.tmp sum'

# test_pipeline MODE: `tar c | bzip2 | sha256sum` dumped mid-stream (pipes
# with data in flight, files at an offset) gives the checksum of an
# uninterrupted run.  MODE once: dump, restore; x3: three cycles.
test_pipeline() {
	local mode=$1 ref dir=$TDIR/pipe img cycles=1 i n limit
	need_stasis || return 1
	for i in tar bzip2 sha256sum; do
		command -v $i >/dev/null || { REASON="$i not installed"; return 77; }
	done
	[ "$mode" = x3 ] && cycles=3
	# shellcheck disable=SC2086
	ref=$(tar c --sort=name -C /usr/share $PIPE_DIRS 2>/dev/null | bzip2 -9 | sha256sum) ||
		{ bad "the reference pipeline failed"; return 1; }
	mkdir -p "$dir"
	# shellcheck disable=SC2086
	start_prog "$dir" pipeline sh -c "$PIPELINE" "$PIPE_DIRS" || return 1
	for ((i = 1; i <= cycles; i++)); do
		# mid-stream: all four processes exist and bzip2 has output
		limit=$(($(now_ms) + 20000))
		until n=$(pgrep -c -s "$SCN_PID" 2>/dev/null) && [ "$n" -ge 4 ] && sleep 0.3; do
			[ -e "$dir/sum" ] && { bad "the pipeline finished before dump $i"; return 1; }
			[ "$(now_ms)" -lt $limit ] || { bad "the pipeline did not start"; return 1; }
			sleep 0.02
		done
		img=$TDIR/img$i
		dump "$SCN_PID" "$img" || return 1
		[ -e "$dir/sum" ] && { bad "the pipeline had finished when it was dumped"; return 1; }
		n=$(image_pids "$img" | wc -l)
		[ "$n" -eq 4 ] || { bad "the image holds $n processes, not sh, tar, bzip2, sha256sum"; return 1; }
		tree_gone "$img" || return 1
		restore_detached "$img" "$SCN_PID" || return 1
	done
	wait_file "$dir/sum" 120 "$SCN_PID"
	[ -e "$dir/sum" ] || { bad "the restored pipeline did not finish within 120 s"; return 1; }
	wait_gone "$SCN_PID" || { bad "the pipeline's shell did not exit"; return 1; }
	[ "$(cat "$dir/status")" = 0 ] || { bad "sha256sum exited with $(cat "$dir/status")"; return 1; }
	[ "$(cat "$dir/sum")" = "$ref" ] ||
		{ bad "checksum after restore $(cat "$dir/sum") differs from the uninterrupted $ref"; return 1; }
	return 0
}

register prog/pipeline-once test_pipeline once
register prog/pipeline-x3 test_pipeline x3

# a wide tree: restore rebuilds part of it on its second driver thread
for m in once x3 leave-running pidns; do
	register "wide/$m" test_cr wide $m
done

# parent and child sharing pipes with 60 KiB and 200 KiB in flight
for m in once x3 leave-running pidns; do
	register "pipe60k/$m" test_cr pipe60k $m
done
