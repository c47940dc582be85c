# tests/suites/tty.sh - terminals, shell jobs and job control (src/res/tty.c).

# The pty scenario in the usual modes.
for m in once x3 leave-running; do
	register "tty_pty/$m" test_cr tty_pty $m
done

# Stopped jobs stay stopped (WORKDIR/stopped) and SIGCONT continues them.
for m in once x3 leave-running; do
	register "tty_stop/$m" test_cr tty_stop $m
done
