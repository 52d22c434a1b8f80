# Scenario b. A profile with a misspelt key, a value of the wrong type and a bad PCI address:
# `virsh start` fails, and virsh's error carries gpuhook's lines with all three problems, each as
# path:line:col at the place in the file; the domain stays shut off, no driver changed, no journal;
# libvirtd then runs stopped and release, and gpuhook's release exits 0 with no output.
vm=broken
prof=/etc/gpuhook/vms/$vm.toml
write_profile $vm 0644 <<'P'
# three mistakes, each must be reported at its line and column
[gpu]
address = "0000:01:00"

[display]
mode = "external"

[host]
unbind_consoles = "yes"

[timeouts]
evnet = 30
P
# Where each mistake is, from the file itself: line, and column of its first character.
pos() { awk -v pat="$1" 'i = index($0, pat) { print NR ":" i; exit }' "$prof"; }
want_addr="$prof:$(pos '"0000:01:00"'): [gpu] address '0000:01:00' is not a PCI address"
want_type="$prof:$(pos '"yes"'): [host] unbind_consoles must be true or false, not a string"
want_key="$prof:$(pos 'evnet'): unknown key 'evnet' in [timeouts]; did you mean 'event'?"

define_domain $vm
pci_before=$(host_pci_state)
if out=$(virsh start $vm 2>&1); then fail "virsh start $vm succeeded with a broken profile:
$out"; fi
expect_contains "$out" "Hook script execution failed" "virsh's error names the hook"
expect_contains "$out" "gpuhook: the profile of VM $vm is invalid, not starting it:" "virsh's error"
expect_contains "$out" "$want_addr" "bad address reported at its line:col"
expect_contains "$out" "$want_type" "wrong type reported at its line:col"
expect_contains "$out" "$want_key" "misspelt key reported at its line:col"
expect_contains "$out" "gpuhook: nothing on the host was changed." "virsh's error"
ok "virsh start refused with all three file:line:col errors"

expect_eq "$(virsh domstate $vm)" "shut off" "state after the refused start"
expect_eq "$(host_pci_state)" "$pci_before" "PCI drivers after the refused start"
[ ! -e /run/gpuhook/$vm.journal ] || fail "a journal was written for a refused start: $(cat /run/gpuhook/$vm.journal)"
ok "domain shut off, no driver changed, no journal"

expect_eq "$(hook_calls $vm)" $'prepare begin -\nstopped end -\nrelease end -' "gpuhook calls in libvirtd's log"
results=$(hook_results $vm)
prep=$(grep -P '^prepare begin -\t' <<<"$results") || fail "no result for prepare in libvirtd's log: $results"
expect_contains "$prep" $'\texit=1\t' "prepare's exit status"
expect_contains "$prep" "stdout: '' stderr: 'gpuhook: the profile" "prepare's stdout is empty"
for call in "stopped end -" "release end -"; do
  expect_eq "$(grep -P "^$call\t" <<<"$results")" "$call"$'\texit=0\t'"stdout: '' stderr: ''" "gpuhook's $call"
done
log=$(cat "$GPUHOOK_LOG")
expect_contains "$log" "[$vm release" "gpuhook log has the release"
expect_contains "$log" "nothing to restore: no journal" "release after a refused prepare"
expect_contains "$log" "event release done" "release finished"
ok "release ran after the refused start: exit 0, no output"
