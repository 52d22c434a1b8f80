# Install test (iv): --uninstall removes exactly what the install added: the tree (prefix with
# other content in it, hooks dir with a foreign hook, manifest dir, /etc/gpuhook) is the same
# before the install and after the uninstall, byte for byte. Profiles written meanwhile are kept;
# a hook link the user re-pointed elsewhere is kept; without a manifest it refuses.
. "$(dirname "$SCENARIO")/lib-install.sh"

# A: foreign hook; the prefix already exists with someone else's program in bin/.
write_foreign_hook
mkdir -p "$PREFIX/bin" && printf '#!/bin/sh\n' >"$PREFIX/bin/other-tool" && chmod 0755 "$PREFIX/bin/other-tool"
before=$(tree_state "$T" /etc/gpuhook)
run_install
[ -x "$BIN" ] || fail "install did not install $BIN"
[ "$(tree_state "$T" /etc/gpuhook)" != "$before" ] || fail "install changed nothing"
run_install --uninstall
expect_eq "$(tree_state "$T" /etc/gpuhook)" "$before" "tree after install + uninstall, compared with before"
expect_foreign_intact
ok "uninstall removed exactly what install added; foreign hook and other-tool kept"

# B: empty hooks dir; a profile written after the install is kept, with its directories.
rm -rf "$T" /etc/gpuhook
mkdir -p "$HOOKS"
run_install
printf '[gpu]\naddress = "0000:01:00.0"\n' >/etc/gpuhook/vms/win11.toml
run_install --uninstall
[ ! -e "$BIN" ] || fail "$BIN still there after uninstall"
[ ! -e "$HOOKS/qemu" ] && [ ! -L "$HOOKS/qemu" ] || fail "$HOOKS/qemu still there after uninstall"
[ -f /etc/gpuhook/vms/win11.toml ] || fail "uninstall removed the profile /etc/gpuhook/vms/win11.toml"
ok "profile kept by uninstall"

# C: the user re-pointed hooks/qemu at another program after the install: uninstall keeps it.
rm -rf "$T" /etc/gpuhook
mkdir -p "$HOOKS"
run_install
ln -sfn /bin/true "$HOOKS/qemu"
run_install --uninstall
expect_eq "$(readlink "$HOOKS/qemu" 2>&1)" /bin/true "a hooks/qemu link that is no longer gpuhook's"
ok "re-pointed hook link kept"

# D: nothing recorded, nothing to remove: refuse.
rc=0
o=$(sh "$INSTALL_SH" --prefix "$PREFIX" --hooks-dir "$HOOKS" --manifest-dir "$T/none" --no-reload --uninstall 2>&1) || rc=$?
expect_eq "$rc" 1 "uninstall without a manifest: exit status"
expect_contains "$o" "no install manifest" "uninstall without a manifest: message"
ok "uninstall without a manifest refuses"
