# tests/suites/mntns.sh - trees in a mount namespace of their own (sourced
# by tests/run.sh).

# mntns_tree: PID 1 of a PID and a mount namespace of its own (as from
# `unshare --fork --pid --mount`) with a tmpfs of files (one held open,
# one written by a child through its fd, a hard link, a symlink), a
# read-only bind of a part of it, and binds of a host directory and a
# host file; the runner compares the mount table before and after.
register mntns_tree/once test_cr mntns_tree once
register mntns_tree/x3 test_cr mntns_tree x3
