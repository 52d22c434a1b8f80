# Scenario 1 (issue 3), layout laptop, `gpuhook hook` run by hand.
# Proves: prepare binds BOTH dGPU functions (the whole IOMMU group's endpoints of its slot) to
# vfio-pci through the real kernel's driver_override/unbind/drivers_probe, /dev/vfio/<group>
# appears, vfio-pci is loaded on demand; release gives them back to virtio-pci and snd_hda_intel
# with driver_override reading "(null)", removes the journal, and leaves every piece of sysfs
# state gpuhook could touch exactly as before (drivers, overrides, /dev/vfio, consoles,
# framebuffers, DRM and sound devices, modules, claims).
. "$RK_DIR/lib.sh"
G=$(group_of $DGPU)
say "the dGPU $DGPU and its audio $DGPU_AUDIO are in IOMMU group $G (found in sysfs)"
check "01:00.1 shares the dGPU's group" "$G" "$(group_of $DGPU_AUDIO)"
write_profile win <<EOT
[gpu]
address = "$DGPU"
EOT
snapshot > "$RK_STATE/before"
say "before:  $(rk_drivers_line $DGPU $DGPU_AUDIO); /dev/vfio: $(ls /dev/vfio 2>/dev/null | tr '\n' ' ')"

gh win prepare begin < /dev/null
check "prepare exit status" 0 "$GH_RC"
say "during:  $(rk_drivers_line $DGPU $DGPU_AUDIO); /dev/vfio: $(ls /dev/vfio 2>/dev/null | tr '\n' ' ')"
check "driver of $DGPU after prepare" vfio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after prepare" vfio-pci "$(drv $DGPU_AUDIO)"
check "driver_override of $DGPU after prepare" vfio-pci "$(ovr $DGPU)"
check "/dev/vfio/$G is a character device after prepare" yes "$([ -c /dev/vfio/$G ] && echo yes || echo no)"
check "journal /run/gpuhook/win.journal after prepare" present "$([ -f /run/gpuhook/win.journal ] && echo present || echo absent)"
check "the iGPU 00:02.0 is untouched" bochs-drm "$(drv 0000:00:02.0)"
check "the root port 00:01.0 is untouched" pcieport "$(drv 0000:00:01.0)"

gh win release end < /dev/null
check "release exit status" 0 "$GH_RC"
say "after:   $(rk_drivers_line $DGPU $DGPU_AUDIO); /dev/vfio: $(ls /dev/vfio 2>/dev/null | tr '\n' ' ')"
check "driver of $DGPU after release" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after release" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "driver_override of $DGPU after release" "(null)" "$(ovr $DGPU)"
check "driver_override of $DGPU_AUDIO after release" "(null)" "$(ovr $DGPU_AUDIO)"
check "/dev/vfio/$G after release" absent "$([ -e /dev/vfio/$G ] && echo present || echo absent)"
check "journal after release" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before prepare == after release" "$RK_STATE/before" "$RK_STATE/after"

L=$(log_lines)
check_has "log: prepare event" "event prepare begin" "$L"
check_has "log: bind step for $DGPU" "ok" "$(log_lines "bind $DGPU to vfio-pci")"
check_has "log: bind step for $DGPU_AUDIO" "ok" "$(log_lines "bind $DGPU_AUDIO to vfio-pci")"
check_has "log: release restored the journal" "restoring" "$L"
check_has "log: release event done" "event release done" "$L"
