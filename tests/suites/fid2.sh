# tests/suites/fid2.sh - more of issue 10: sharing and per-task state that
# must come back exactly, sourced by tests/run.sh.  Scenarios:
# tests/scenarios/fid_*.c.

# three processes sharing one fd table (CLONE_FILES, a child and a
# grandchild) and a fourth with its own: they come back sharing one table,
# the fds opened after the clones opened once
for m in once x3 leave-running pidns; do
	register "fid2/files-$m" test_cr fid_files $m
done
