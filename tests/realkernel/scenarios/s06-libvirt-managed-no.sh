# Scenario 6 (issue 6; also the foundation's libvirtd check of issue 2), layout laptop.
# libvirtd 9.0 runs in the guest with gpuhook installed as /etc/libvirt/hooks/qemu, and a TCG
# domain has both dGPU functions as managed='no' hostdevs (libvirt only checks they are on
# vfio-pci: the binding is gpuhook's job). Proves, through real libvirtd, real vfio-pci and a
# real IOMMU: `virsh start` succeeds; while the domain runs both functions are on vfio-pci and
# its QEMU holds /dev/vfio/<group>; after `virsh destroy` they are back on virtio-pci and
# snd_hda_intel with driver_override "(null)", the journal is gone, the host's sysfs state is as
# before; the log shows every event (prepare, start, started, stopped, release) and the steps.
# RK_HOOK_FAULT=skip-release runs it against a deliberately broken gpuhook (detector test).
. "$RK_DIR/lib.sh"
G=$(group_of $DGPU)
lv_configure
lv_install_hook
write_profile g <<EOT
[gpu]
address = "$DGPU"
EOT
lv_start || exit 1
lv_define g no $DGPU $DGPU_AUDIO
snapshot > "$RK_STATE/before"
say "BEFORE:  $(rk_drivers_line $DGPU $DGPU_AUDIO); /dev/vfio: $(ls /dev/vfio 2>/dev/null | tr '\n' ' ')"

OUT=$(virsh start g 2>&1); rc=$?
say "virsh start g -> exit $rc: $OUT"
check "virsh start g (managed='no' hostdevs) exit status" 0 "$rc"
check "domain state after start" running "$(domstate g)"
say "DURING:  $(rk_drivers_line $DGPU $DGPU_AUDIO); /dev/vfio: $(ls /dev/vfio 2>/dev/null | tr '\n' ' ')"
check "driver of $DGPU while the domain runs" vfio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO while the domain runs" vfio-pci "$(drv $DGPU_AUDIO)"
QP=$(qemu_pid g)
check "the domain's QEMU (pid ${QP:-none}) holds /dev/vfio/$G" yes "$(holds_vfio_group "$QP" $G)"
check "journal while the domain runs" present "$([ -f /run/gpuhook/g.journal ] && echo present || echo absent)"

OUT=$(virsh destroy g 2>&1); rc=$?
say "virsh destroy g -> exit $rc: $OUT"
check "virsh destroy g exit status" 0 "$rc"
say "AFTER:   $(rk_drivers_line $DGPU $DGPU_AUDIO); /dev/vfio: $(ls /dev/vfio 2>/dev/null | tr '\n' ' ')"
check "driver of $DGPU after destroy" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after destroy" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "driver_override of $DGPU after destroy" "(null)" "$(ovr $DGPU)"
check "driver_override of $DGPU_AUDIO after destroy" "(null)" "$(ovr $DGPU_AUDIO)"
check "journal after destroy" absent "$([ -e /run/gpuhook/g.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before start == after destroy" "$RK_STATE/before" "$RK_STATE/after"

check "gpuhook's events for g, in order" "prepare start started stopped release" "$(log_events g)"
L=$(log_lines "[g ")
check_has "log: prepare binds $DGPU" "bind $DGPU to vfio-pci" "$(log_lines "ok" | grep -F "[g prepare")"
check_has "log: prepare binds $DGPU_AUDIO" "bind $DGPU_AUDIO to vfio-pci" "$(log_lines "ok" | grep -F "[g prepare")"
check_has "log: prepare ends ok" "event prepare ok" "$L"
check_has "log: release undoes the pci.vfio steps" "pci.vfio ok" "$(log_lines "[g release")"
check_has "log: release ends" "event release done" "$L"
say "gpuhook's log for g:"
show_log "[g "
