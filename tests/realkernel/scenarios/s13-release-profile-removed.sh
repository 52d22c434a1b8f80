# Scenario 13 (issue 10), layout laptop, `gpuhook hook` run by hand.
# Proves: a VM is gpuhook's for release when it has a journal, even without a profile. The
# profile is removed while the VM "runs" (after prepare); release still undoes the journal: both
# dGPU functions back on virtio-pci and snd_hda_intel with driver_override "(null)", vfio-pci
# unloaded, claims gone, journal gone, and the sysfs snapshot identical to the one before prepare.
# Same boot, independent parts each starting from the restored host: the profile made writable
# by others while the VM runs (untrusted: gpuhook must not act on what it says), then the
# profile edited into a syntax error -> release restores all the same, snapshot identical.
# Against a gpuhook whose "is this VM ours?" test looks only at the profile, release does nothing
# and the dGPU stays on vfio-pci.
. "$RK_DIR/lib.sh"
write_profile win <<EOT
[gpu]
address = "$DGPU"
EOT
snapshot > "$RK_STATE/before"
say "before:  $(rk_drivers_line $DGPU $DGPU_AUDIO)"
gh win prepare begin < /dev/null
check "prepare exit status" 0 "$GH_RC"
check "driver of $DGPU after prepare" vfio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after prepare" vfio-pci "$(drv $DGPU_AUDIO)"
check "journal after prepare" present "$([ -f /run/gpuhook/win.journal ] && echo present || echo absent)"

rm /etc/gpuhook/vms/win.toml
say "profile /etc/gpuhook/vms/win.toml removed while the VM runs"
gh win release end < /dev/null
check "release exit status" 0 "$GH_RC"
say "after:   $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU after release without profile" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after release without profile" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "driver_override of $DGPU after release" "(null)" "$(ovr $DGPU)"
check "driver_override of $DGPU_AUDIO after release" "(null)" "$(ovr $DGPU_AUDIO)"
check "journal after release without profile" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before prepare == after release without profile" "$RK_STATE/before" "$RK_STATE/after"
check_has "log: the release event of win was handled" "restoring" "$(log_lines "[win release")"

say "--- the profile made writable by others (untrusted) while the VM runs"
write_profile win <<EOT
[gpu]
address = "$DGPU"
EOT
gh win prepare begin < /dev/null
check "second prepare exit status" 0 "$GH_RC"
check "driver of $DGPU after the second prepare" vfio-pci "$(drv $DGPU)"
chmod 0666 /etc/gpuhook/vms/win.toml
gh win release end < /dev/null
check "release exit status (untrusted profile)" 0 "$GH_RC"
check "driver of $DGPU after release with an untrusted profile" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after release with an untrusted profile" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "journal after release with an untrusted profile" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after2"
check_same "sysfs state before the first prepare == after release with an untrusted profile" "$RK_STATE/before" "$RK_STATE/after2"

say "--- the profile edited into a syntax error while the VM runs"
write_profile win <<EOT
[gpu]
address = "$DGPU"
EOT
gh win prepare begin < /dev/null
check "third prepare exit status" 0 "$GH_RC"
check "driver of $DGPU after the third prepare" vfio-pci "$(drv $DGPU)"
printf '[gpu\naddress = \n' > /etc/gpuhook/vms/win.toml
gh win release end < /dev/null
check "release exit status (broken profile)" 0 "$GH_RC"
check "driver of $DGPU after release with a broken profile" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after release with a broken profile" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "journal after release with a broken profile" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after3"
check_same "sysfs state before the first prepare == after release with a broken profile" "$RK_STATE/before" "$RK_STATE/after3"
