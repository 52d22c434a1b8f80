# install.sh's command line: --help (also for a non-root user) lists every option and exits 0
# without doing anything; a wrong option or a missing option value exits 2 with a clear message.
INSTALL_SH=${1:?}
before=$(find /etc/gpuhook /var/lib/gpuhook 2>/dev/null || true)
rc=0; h=$(sh "$INSTALL_SH" --help 2>&1) || rc=$?
expect_eq "$rc" 0 "install.sh --help exit status"
for o in --prefix --hooks-dir --manifest-dir --no-deps --no-reload --uninstall --demo --help; do
  expect_contains "$h" "$o" "--help mentions $o"
done
expect_not_contains "$h" "set -eu" "--help shows no script code"
if grep -q '^#' <<<"$h"; then fail "--help shows comment markers:
$h"; fi
# As nobody, from a copy: the checkout itself may not be readable by nobody (e.g. under /root).
install -m 0755 "$INSTALL_SH" "$SBX/install-copy.sh"
rc=0; h2=$(setpriv --reuid=65534 --regid=65534 --clear-groups sh "$SBX/install-copy.sh" -h 2>&1) || rc=$?
expect_eq "$rc:$h2" "0:$h" "-h as user nobody"
ok "--help"
rc=0; e=$(sh "$INSTALL_SH" --bogus 2>&1) || rc=$?
expect_eq "$rc" 2 "unknown option: exit status"
expect_contains "$e" "unknown option --bogus" "unknown option: message"
for o in --prefix --hooks-dir --manifest-dir; do
  rc=0; e=$(sh "$INSTALL_SH" --no-deps $o 2>&1) || rc=$?
  expect_eq "$rc" 2 "$o without a value: exit status"
  expect_contains "$e" "$o needs a directory" "$o without a value: message"
done
rc=0; e=$(sh "$INSTALL_SH" --prefix relative/dir --no-deps 2>&1) || rc=$?
expect_eq "$rc" 2 "a relative --prefix: exit status"
expect_contains "$e" "--prefix must be an absolute path" "a relative --prefix: message"
expect_eq "$(find /etc/gpuhook /var/lib/gpuhook 2>/dev/null || true)" "$before" "nothing installed by --help or a bad command line"
ok "bad command lines refused with exit 2"
