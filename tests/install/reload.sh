# Install with a running libvirtd (the sandbox's, started with no hook at all): install.sh, without
# --no-reload, places the hook in /etc/libvirt/hooks and reloads libvirtd, which then runs the
# installed gpuhook for every event of a domain, with no restart. --uninstall (also reloading)
# takes it away again: libvirtd no longer calls it.
. "$(dirname "$SCENARIO")/lib-install.sh"
HOOKS=/etc/libvirt/hooks
RELOAD_OPT=
[ ! -e $HOOKS ] || fail "the sandbox's libvirtd was to start without hooks: $(ls -la $HOOKS)"
pidof libvirtd >/dev/null || fail "no libvirtd running in the sandbox"

mark=$(($(wc -l <"$LIBVIRTD_LOG") + 1))
run_install
expect_contains "$out" "sent SIGHUP to libvirtd" "install.sh reloads libvirtd"
wait_for "libvirtd to find the installed hook after the reload" 20 \
  sh -c "tail -n +$mark '$LIBVIRTD_LOG' | grep -q 'Found hook script $HOOKS/qemu\$'"
expect_eq "$(readlink $HOOKS/qemu)" "$BIN" "the hook libvirtd found"
ok "install reloaded libvirtd; it found $HOOKS/qemu"

define_domain vm1
virsh -q start vm1 >/dev/null || fail "virsh start vm1"
virsh -q destroy vm1 >/dev/null || fail "virsh destroy vm1"
expect_eq "$(hook_calls vm1)" $'prepare begin -\nstart begin -\nstarted begin -\nstopped end -\nrelease end -' \
  "calls of the installed hook in libvirtd's log"
expect_eq "$(hook_results vm1 | cut -f2 | sort -u)" "exit=0" "exit status of every call"
ok "libvirtd ran the installed gpuhook for every event, without a restart"

mark=$(($(wc -l <"$LIBVIRTD_LOG") + 1))
run_install --uninstall
expect_contains "$out" "sent SIGHUP to libvirtd" "--uninstall reloads libvirtd"
wait_for "libvirtd to drop the hook after the reload" 20 \
  sh -c "tail -n +$mark '$LIBVIRTD_LOG' | grep -q 'No hook script $HOOKS/qemu\$'"
define_domain vm2
virsh -q start vm2 >/dev/null || fail "virsh start vm2 after uninstall"
virsh -q destroy vm2 >/dev/null || fail "virsh destroy vm2"
expect_eq "$(hook_calls vm2)" "" "hook calls after uninstall"
ok "after --uninstall libvirtd runs no hook"
