# Scenario d. A profile whose GPU is a real PCI device of this host, which has no IOMMU, so the
# device cannot be given to a VM: `virsh start` is refused with gpuhook's IOMMU message and hint,
# nothing on the host changes (drivers, driver_override, no journal), and gpuhook's log
# (/var/log/gpuhook/gpuhook.log in the sandbox) has the event line, the refusal and the hint.
# On a machine with an IOMMU this scenario does not apply (prepare could bind a real device):
# it is skipped there.
vm=nogpu
if [ -n "$(ls -A /sys/kernel/iommu_groups 2>/dev/null)" ]; then
  echo "SKIP: this machine has an IOMMU; the scenario needs a host without one"
  exit 77
fi
# The profile's GPU: a display device if the host has one, else any endpoint (not a bridge).
addr=""
for d in /sys/bus/pci/devices/*; do
  case "$(cat "$d/class")" in 0x03*) addr=$(basename "$d"); break ;; esac
done
if [ -z "$addr" ]; then
  for d in /sys/bus/pci/devices/*; do
    case "$(cat "$d/class")" in 0x06*) ;; *) addr=$(basename "$d"); break ;; esac
  done
fi
[ -n "$addr" ] || { echo "SKIP: this machine has no PCI endpoint to name in a profile"; exit 77; }
[ ! -e "/sys/bus/pci/devices/$addr/iommu_group" ] || fail "$addr has an IOMMU group; refusing to go on"
echo "profile GPU: $addr (class $(cat /sys/bus/pci/devices/$addr/class))"

write_profile $vm 0644 <<P
[gpu]
address = "$addr"

[display]
mode = "external"
P
define_domain $vm
pci_before=$(host_pci_state)

if out=$(virsh start $vm 2>&1); then fail "virsh start succeeded without an IOMMU:
$out"; fi
expect_contains "$out" "Hook script execution failed" "virsh's error names the hook"
expect_contains "$out" "gpuhook: cannot prepare VM $vm: the IOMMU is off: $addr has no IOMMU group" "virsh's error"
expect_contains "$out" "gpuhook: what to do: enable VT-d/AMD-Vi in the firmware" "virsh's error has the hint"
expect_contains "$out" "gpuhook: nothing on the host was changed. Log: /var/log/gpuhook/gpuhook.log" "virsh's error"
ok "start refused with gpuhook's IOMMU message and hint"

expect_eq "$(virsh domstate $vm)" "shut off" "state after the refused start"
expect_eq "$(host_pci_state)" "$pci_before" "PCI drivers and overrides after the refused start"
[ ! -e /run/gpuhook/$vm.journal ] || fail "a journal was written: $(cat /run/gpuhook/$vm.journal)"
ok "domain shut off, no driver changed, no journal"

[ -f "$GPUHOOK_LOG" ] || fail "no $GPUHOOK_LOG"
log=$(grep -F "[$vm prepare " "$GPUHOOK_LOG") || fail "no line of the prepare event in $GPUHOOK_LOG: $(cat "$GPUHOOK_LOG")"
expect_contains "$log" "event prepare begin - (vm $vm)" "the event line in the log"
expect_contains "$log" "error [$vm prepare" "the refusal logged as an error"
expect_contains "$log" "refused: the IOMMU is off: $addr has no IOMMU group" "the refusal in the log"
expect_contains "$log" "hint: enable VT-d/AMD-Vi" "the hint in the log"
ok "the log has the event, the refusal and the hint"

results=$(hook_results $vm)
expect_eq "$(cut -f1,2 <<<"$results")" $'prepare begin -\texit=1\nstopped end -\texit=0\nrelease end -\texit=0' \
  "gpuhook's exit status per event"
expect_contains "$(grep '^release' <<<"$results")" "stdout: '' stderr: ''" "release is silent"
ok "release after the refused prepare: exit 0, silent"
