# Event objects and timers: inotify, pidfd, POSIX timers, named FIFOs,
# and the refusals (fanotify, SysV IPC, ...).  Scenarios: tests/scenarios/ev_*.c.

# inotify: no pidns mode, since the copy and the original watch the same
# files, so the copy's check queues events in the original
for m in once x3 leave-running; do
	register "ev_inotify/$m" test_cr ev_inotify $m
done

for m in once x3 leave-running; do
	register "ev_fifo/$m" test_cr ev_fifo $m
done

for m in once x3 leave-running pidns; do
	register "ev_pidfd/$m" test_cr ev_pidfd $m
done

for m in once x3 leave-running pidns; do
	register "ev_ptimer/$m" test_cr ev_ptimer $m
done
