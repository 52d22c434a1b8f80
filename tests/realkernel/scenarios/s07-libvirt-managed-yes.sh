# Scenario 7 (issue 6), layout laptop: as scenario 6 with managed='yes' hostdevs, so libvirt's
# own detach (virNodeDeviceDetach at start, reattach at destroy) runs next to gpuhook: gpuhook
# binds the group in prepare, libvirt finds the functions already on vfio-pci; at destroy
# libvirt gives them back first, then gpuhook's release runs. Proves the two coexist: start
# succeeds, both functions on vfio-pci while running, everything back (drivers, overrides,
# /dev/vfio, modules) after destroy, journal gone, no failed undo in the log.
. "$RK_DIR/lib.sh"
G=$(group_of $DGPU)
lv_configure
lv_install_hook
write_profile g <<EOT
[gpu]
address = "$DGPU"
EOT
lv_start || exit 1
lv_define g yes $DGPU $DGPU_AUDIO
snapshot > "$RK_STATE/before"
say "BEFORE:  $(rk_drivers_line $DGPU $DGPU_AUDIO)"
OUT=$(virsh start g 2>&1); rc=$?
say "virsh start g -> exit $rc: $OUT"
check "virsh start g (managed='yes' hostdevs) exit status" 0 "$rc"
check "domain state after start" running "$(domstate g)"
say "DURING:  $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU while the domain runs" vfio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO while the domain runs" vfio-pci "$(drv $DGPU_AUDIO)"
check "the domain's QEMU holds /dev/vfio/$G" yes "$(holds_vfio_group "$(qemu_pid g)" $G)"
OUT=$(virsh destroy g 2>&1); rc=$?
say "virsh destroy g -> exit $rc: $OUT"
check "virsh destroy g exit status" 0 "$rc"
say "AFTER:   $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU after destroy" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after destroy" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "driver_override of $DGPU after destroy" "(null)" "$(ovr $DGPU)"
check "driver_override of $DGPU_AUDIO after destroy" "(null)" "$(ovr $DGPU_AUDIO)"
check "journal after destroy" absent "$([ -e /run/gpuhook/g.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before start == after destroy" "$RK_STATE/before" "$RK_STATE/after"
check "gpuhook's events for g, in order" "prepare start started stopped release" "$(log_events g)"
check_lacks "log: no failed undo" "FAILED" "$(log_lines "[g release")"
check_has "log: release ends" "event release done" "$(log_lines "[g release")"
show_log "[g "
