# tests/suites/fidelity.sh - state that must come back exactly or be
# refused at dump (issue 10), sourced by tests/run.sh.  Scenarios:
# tests/scenarios/fid_*.c.

# a job stopped by SIGTSTP stays stopped by SIGTSTP; a SIGTRAP handler
# survives (raise and int3 reach it)
for m in once x3 leave-running; do
	register "fid_sig/$m" test_cr fid_sig $m
done

# the files of bound unix sockets keep mode, owner, group and times
for m in once x3 leave-running pidns; do
	register "fid_unixfile/$m" test_cr fid_unixfile $m
done
