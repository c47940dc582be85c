# tests/suites/priv.sh - what a restorer may be given (sourced by tests/run.sh).

# test_restore_unprivileged_root_image: an image of root's process, made
# readable to nobody, restored by nobody: refused with one line naming the
# uid it cannot give, before anything is forked; the original runs on.
test_restore_unprivileged_root_image() {
	local img=$TDIR/img pub rc
	need_stasis || return 1
	command -v setpriv >/dev/null || { REASON="setpriv (util-linux) is missing"; return 77; }
	start_scenario counter || return 1
	dump "$SCN_PID" "$img" -R || return 1
	# a copy nobody can read, outside the runner's private directory
	pub=$(mktemp -d /tmp/stasis-priv.XXXXXX) || { bad "mktemp failed"; return 1; }
	cp "$img/$IMG_NAME" "$pub/" && chmod 755 "$pub" && chmod 644 "$pub/$IMG_NAME"
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		"$STASIS" restore -D "$pub" -d >"$TDIR/nobody.out" 2>"$TDIR/nobody.err"
	rc=$?
	rm -rf "$pub"
	expect_error "restore by nobody of root's image" $rc "$TDIR/nobody.err" || return 1
	grep -q "has uid 0, which this restorer (uid 65534, without CAP_SETUID) cannot give" "$TDIR/nobody.err" ||
		{ bad "the error does not name the uid it cannot give: $ERR_LINE"; return 1; }
	check_scenario
}
register bad/restore-unprivileged-root-image test_restore_unprivileged_root_image
