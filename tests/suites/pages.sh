# tests/suites/pages.sh - the page paths of restore (sourced by tests/run.sh).
#
# Restore fills private anonymous memory through userfaultfd (UFFDIO_COPY,
# src/res/pages_uffd.c) and everything else by preadv (src/res/pages.c).
# pages_zoo holds every shape of memory both must get right; it runs on
# the fast path (which the restore log must show was taken) and with the
# fast path forced off (STASIS_TEST_NO_UFFD=1, as on a kernel without it).

# used_uffd: did any restore of this test fill pages through userfaultfd?
used_uffd() {
	grep -qs "by userfaultfd" "$TDIR"/restore*.log
}

test_pages_fast() {
	local scn=$1 mode=$2
	test_cr "$scn" "$mode" || return 1
	used_uffd || { bad "no restore filled its pages through userfaultfd"; return 1; }
}

test_pages_plain() {
	local scn=$1 rc
	STASIS_TEST_NO_UFFD=1 test_cr "$scn" once
	rc=$?
	[ $rc = 0 ] || return $rc
	! used_uffd || { bad "STASIS_TEST_NO_UFFD=1 restore still used userfaultfd"; return 1; }
}

register pages_zoo/once test_pages_fast pages_zoo once
register pages_zoo/x3 test_pages_fast pages_zoo x3
register pages_zoo/pidns test_cr pages_zoo pidns
register pages_zoo/plain test_pages_plain pages_zoo
register bigmem/plain test_pages_plain bigmem
