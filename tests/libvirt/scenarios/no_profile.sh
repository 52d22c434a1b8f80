# Scenario a. A VM without a gpuhook profile: libvirtd runs gpuhook (as hooks/qemu) for every
# event of a real start and destroy; gpuhook exits 0 each time, prints nothing on stdout or stderr,
# and creates no file (no /run/gpuhook, no /var/log/gpuhook); the host's PCI drivers are unchanged.
# Evidence that gpuhook ran: libvirtd's own log of each hook command, its exit status and output,
# and the qemu.d recorder that libvirtd runs right after it.
vm=plain
expect_eq "$(readlink /etc/libvirt/hooks/qemu)" "$GPUHOOK" "hooks/qemu is the gpuhook under test"
define_domain $vm
pci_before=$(host_pci_state)
files_before=$(files_snapshot)

out=$(virsh start $vm 2>&1) || fail "virsh start $vm failed:
$out"
expect_eq "$(virsh domstate $vm)" "running" "state after start"
out=$(virsh destroy $vm 2>&1) || fail "virsh destroy $vm failed:
$out"
expect_eq "$(virsh domstate $vm)" "shut off" "state after destroy"
ok "TCG domain started and destroyed through virsh"

want=$'prepare begin -\nstart begin -\nstarted begin -\nstopped end -\nrelease end -'
expect_eq "$(hook_calls $vm)" "$want" "gpuhook calls in libvirtd's log"
expect_eq "$(recorded_events $vm | cut -d' ' -f1-3)" "$want" "events the qemu.d recorder saw after gpuhook"
recorded_events $vm | awk '$4 < 200 { exit 1 }' || fail "libvirtd sent no domain XML on stdin: $(recorded_events $vm)"
results=$(hook_results $vm)
expect_eq "$(wc -l <<<"$results")" 5 "results of gpuhook calls in libvirtd's log:
$results
"
while IFS=$'\t' read -r call status output; do
  expect_eq "$status" "exit=0" "exit status of gpuhook for '$call'"
  expect_eq "$output" "stdout: '' stderr: ''" "output of gpuhook for '$call'"
done <<<"$results"
ok "gpuhook ran for all 5 events: exit 0, nothing on stdout or stderr"

for p in /run/gpuhook /var/log/gpuhook; do
  [ ! -e $p ] || fail "$p was created for a VM without a profile: $(ls -la $p)"
done
expect_eq "$(files_snapshot)" "$files_before" "files outside libvirt's own directories after the run"
expect_eq "$(ls -A /etc/gpuhook/vms)" "" "profiles directory untouched"
expect_eq "$(host_pci_state)" "$pci_before" "PCI drivers after the run"
ok "no file created, no driver changed"
