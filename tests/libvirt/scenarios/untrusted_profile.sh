# Scenario c. A profile that root must not trust: group-writable (0664), then owned by another
# user. `virsh start` is refused each time, and virsh's error says why and gives the exact
# chown/chmod that fixes it; nothing changes on the host. With the fix applied, the trust
# refusal is gone: the profile is read, and the start is refused for the next reason, the GPU
# address (fffe:fe:1f.6, which no machine has, so nothing can ever be bound here).
vm=untrusted
prof=/etc/gpuhook/vms/$vm.toml
write_profile $vm 0664 <<'P'
[gpu]
address = "fffe:fe:1f.6"
P
define_domain $vm
pci_before=$(host_pci_state)
advice="fix: chown root:root $prof && chmod 0644 $prof"

if out=$(virsh start $vm 2>&1); then fail "virsh start succeeded with a group-writable profile:
$out"; fi
expect_contains "$out" "Hook script execution failed" "virsh's error names the hook"
expect_contains "$out" "$prof is writable by group or others (mode 0664)" "virsh's error says why"
expect_contains "$out" "$advice" "virsh's error gives the chown/chmod"
expect_contains "$out" "gpuhook: nothing on the host was changed." "virsh's error"
expect_eq "$(virsh domstate $vm)" "shut off" "state after the refused start"
ok "group-writable profile refused with the chown/chmod advice"

chmod 0644 "$prof"
chown 65534:65534 "$prof"
if out=$(virsh start $vm 2>&1); then fail "virsh start succeeded with a profile owned by uid 65534:
$out"; fi
expect_contains "$out" "$prof is owned by uid 65534, not root" "virsh's error says why"
expect_contains "$out" "$advice" "virsh's error gives the chown/chmod"
expect_eq "$(virsh domstate $vm)" "shut off" "state after the refused start"
ok "profile owned by another user refused with the chown/chmod advice"

chown root:root "$prof"
[ ! -e /sys/bus/pci/devices/fffe:fe:1f.6 ] || fail "this machine has a PCI device fffe:fe:1f.6; pick another address"
if out=$(virsh start $vm 2>&1); then fail "virsh start succeeded for a GPU that does not exist:
$out"; fi
expect_not_contains "$out" "chmod 0644" "after chown/chmod the profile is trusted"
expect_contains "$out" "the GPU fffe:fe:1f.6 of $prof does not exist on this host" "the next refusal"
expect_eq "$(host_pci_state)" "$pci_before" "PCI drivers after the run"
[ ! -e /run/gpuhook/$vm.journal ] || fail "a journal is left: $(cat /run/gpuhook/$vm.journal)"
ok "with the advice applied the trust refusal is gone; no driver changed"
