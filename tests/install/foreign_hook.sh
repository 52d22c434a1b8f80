# Install test (ii): a foreign qemu hook is present. gpuhook goes to <hooks>/qemu.d/gpuhook and
# the foreign hook is untouched, byte for byte, mode and owner.
. "$(dirname "$SCENARIO")/lib-install.sh"
write_foreign_hook
run_install
expect_foreign_intact
[ -L "$HOOKS/qemu.d/gpuhook" ] || fail "no $HOOKS/qemu.d/gpuhook: $(ls -laR "$HOOKS")
$out"
expect_eq "$(readlink "$HOOKS/qemu.d/gpuhook")" "$BIN" "qemu.d/gpuhook points at the installed binary"
expect_eq "$(gpuhook_links)" "$HOOKS/qemu.d/gpuhook" "links to gpuhook in the hooks dir"
expect_contains "$out" "another program's" "install.sh says where the hook went"
ok "gpuhook in qemu.d, foreign hook untouched"
expect_silent_hook "$HOOKS/qemu.d/gpuhook"
ok "qemu.d/gpuhook runs as libvirt's hook"
