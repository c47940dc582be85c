# tests/suites/fsobj.sh - files that are not plain paths: memfds, deleted
# files, /dev/shm objects, O_PATH fds, file locks; the file checks of
# restore; a python multiprocessing Pool.

for m in once x3 leave-running pidns; do
	register "fs_memfd/$m" test_cr fs_memfd $m
done
