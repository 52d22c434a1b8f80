# Scenario 1 (issue 3), layout laptop, `gpuhook hook` run by hand.
# Proves: prepare binds BOTH dGPU functions (the whole IOMMU group's endpoints of its slot) to
# vfio-pci through the real kernel's driver_override/unbind/drivers_probe, /dev/vfio/<group>
# appears, vfio-pci is loaded on demand; release gives them back to virtio-pci and snd_hda_intel
# with driver_override reading "(null)", removes the journal, and leaves every piece of sysfs
# state gpuhook could touch exactly as before (drivers, overrides, /dev/vfio, consoles,
# framebuffers, DRM and sound devices, modules, claims).
# Part 2, the default [host] unload_vfio = false (issue 14): release leaves vfio-pci loaded, owned
# by /run/gpuhook/.host.journal and shown by status; the next prepare loads nothing; `gpuhook
# restore --all-modules` then unloads what Debian's modprobe brought along with it (vfio,
# vfio_iommu_type1, ...) and the module set is exactly the one before part 2.
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

# --- Part 2: the default keeps vfio-pci loaded; restore --all-modules gives back the module set.
printf '[gpu]\naddress = "%s"\n' "$DGPU" > /etc/gpuhook/vms/win.toml   # no unload_vfio: the default
snapshot > "$RK_STATE/before2"
gh win prepare begin < /dev/null
check "default: prepare exit status" 0 "$GH_RC"
check_has "default: the journal records keep_loaded=1" "keep_loaded=1" "$(cat /run/gpuhook/win.journal 2>/dev/null)"
gh win release end < /dev/null
check "default: driver of $DGPU after release" virtio-pci "$(drv $DGPU)"
check "default: driver of $DGPU_AUDIO after release" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "default: vfio_pci still loaded after release" yes "$(grep -q '^vfio_pci ' /proc/modules && echo yes || echo no)"
check_has "default: the host journal owns it" "kept=1" "$(cat /run/gpuhook/.host.journal 2>/dev/null)"
check_has "default: status names it" "vfio-pci (loaded for VM win): kept loaded" "$("$GPUHOOK" status 2>&1)"
gh win prepare begin < /dev/null
check "default: second prepare exit status" 0 "$GH_RC"
check "default: the second prepare loads nothing" no "$(grep -q module.load /run/gpuhook/win.journal && echo yes || echo no)"
check "default: driver of $DGPU on the second start" vfio-pci "$(drv $DGPU)"
gh win release end < /dev/null
check "default: vfio_pci still loaded after the second release" yes "$(grep -q '^vfio_pci ' /proc/modules && echo yes || echo no)"
OUT=$("$GPUHOOK" restore --all-modules 2>&1); rc=$?
say "gpuhook restore --all-modules -> $rc: $OUT"
check "restore --all-modules exit status" 0 "$rc"
check "host journal after restore --all-modules" absent "$([ -e /run/gpuhook/.host.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after2"
check_same "state (module set included) before part 2 == after restore --all-modules" "$RK_STATE/before2" "$RK_STATE/after2"
