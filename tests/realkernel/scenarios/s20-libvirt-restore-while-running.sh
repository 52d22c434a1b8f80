# Scenario 20 (issue 10), layout laptop, libvirtd with gpuhook as its hook.
# Proves: `gpuhook restore g` while g runs (its QEMU holds /dev/vfio/<group>) is refused, naming
# QEMU's pid, and changes nothing: both functions stay on vfio-pci, the journal stays, the domain
# keeps running, the snapshot is the same as before the restore. `virsh destroy g` then restores
# the host (snapshot identical to the one before `virsh start`).
. "$RK_DIR/lib.sh"
lv_configure
lv_install_hook
write_profile g <<EOT
[gpu]
address = "$DGPU"
EOT
lv_start || exit 1
lv_define g no $DGPU $DGPU_AUDIO
G=$(group_of $DGPU)
snapshot > "$RK_STATE/before"
OUT=$(virsh start g 2>&1); rc=$?
check "virsh start g exit status" 0 "$rc"
[ $rc = 0 ] || printf '%s\n' "$OUT" | sed 's/^/RK         virsh| /'
QP=$(qemu_pid g)
check "g's QEMU (pid ${QP:-none}) holds /dev/vfio/$G" yes "$(holds_vfio_group "${QP:-0}" "$G")"
snapshot > "$RK_STATE/running"
OUT=$("$GPUHOOK" restore g 2>&1); rc=$?
printf '%s\n' "$OUT" | sed 's/^/RK         restore| /'
check "gpuhook restore g while QEMU runs: exit status (refused)" 1 "$rc"
check_has "the refusal names QEMU's pid" "$QP" "$OUT"
check "g state after the refused restore" running "$(domstate g)"
check "driver of $DGPU after the refused restore" vfio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after the refused restore" vfio-pci "$(drv $DGPU_AUDIO)"
check "g's journal after the refused restore" present "$([ -f /run/gpuhook/g.journal ] && echo present || echo absent)"
if on_driver $DGPU vfio-pci && on_driver $DGPU_AUDIO vfio-pci; then
  snapshot > "$RK_STATE/now"
  check_same "the refused restore changed nothing" "$RK_STATE/running" "$RK_STATE/now"
else
  # An unbind from vfio-pci while QEMU holds the device waits in the kernel until QEMU lets go,
  # holding the device's lock: reading its sysfs attributes (the snapshot) would block with it.
  rk_fail "the restore took the devices from the running QEMU (snapshot skipped: it would block until QEMU ends)"
fi
OUT=$(timeout 60 virsh destroy g 2>&1); rc=$?
check "virsh destroy g exit status" 0 "$rc"
say "AFTER: $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU after destroy" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after destroy" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "g's journal after destroy" absent "$([ -e /run/gpuhook/g.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before start == after destroy" "$RK_STATE/before" "$RK_STATE/after"
