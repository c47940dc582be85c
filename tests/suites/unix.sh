# Unix sockets: pairs, queues, names, listeners (src/res/unix.c).
for m in once x3 leave-running; do
	register "unix_dgram/$m" test_cr unix_dgram $m
done
for m in once x3 leave-running pidns; do
	register "unix_stream/$m" test_cr unix_stream $m
done
for m in once x3 leave-running pidns; do
	register "unix_listen/$m" test_cr unix_listen $m
done
