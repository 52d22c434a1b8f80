# Install test (iii): installing again changes nothing (same tree, same manifest), with an empty
# hooks dir and with a foreign hook; and when the foreign hook goes away between two installs,
# there is still exactly one gpuhook hook (libvirtd would otherwise run it twice per event).
. "$(dirname "$SCENARIO")/lib-install.sh"
for layout in empty foreign; do
  rm -rf "$T" /etc/gpuhook
  mkdir -p "$HOOKS"
  [ $layout = foreign ] && write_foreign_hook
  run_install
  first=$(tree_state "$T" /etc/gpuhook)
  run_install
  expect_eq "$(tree_state "$T" /etc/gpuhook)" "$first" "tree after a second install ($layout hooks dir)"
  expect_contains "$out" "already gpuhook" "second install says the hook is in place ($layout)"
  [ $layout = foreign ] && expect_foreign_intact
  expect_eq "$(gpuhook_links | wc -l)" 1 "gpuhook hooks after two installs ($layout)"
  ok "second install is a no-op ($layout hooks dir)"
done
rm "$HOOKS/qemu" "$T/foreign.orig"
run_install
expect_eq "$(gpuhook_links)" "$HOOKS/qemu.d/gpuhook" "gpuhook hooks after the foreign hook went away and a reinstall"
ok "exactly one gpuhook hook after the foreign hook went away"
