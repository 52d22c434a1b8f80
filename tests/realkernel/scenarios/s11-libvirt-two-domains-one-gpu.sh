# Scenario 11 (issue 6), layout laptop. Two domains, g1 and g2, both with the dGPU's functions
# (managed='no') and a gpuhook profile each. Proves: g1 starts; g2's start is refused with
# gpuhook's "0000:01:00.0 is in use by VM g1" in virsh's error; g2 stays shut off; g1 keeps
# running with the functions on vfio-pci, its journal and claims intact after g2's release;
# destroying g1 then restores the host.
. "$RK_DIR/lib.sh"
lv_configure
lv_install_hook
for d in g1 g2; do
  write_profile $d <<EOT
[gpu]
address = "$DGPU"
EOT
done
lv_start || exit 1
lv_define g1 no $DGPU $DGPU_AUDIO
lv_define g2 no $DGPU $DGPU_AUDIO
snapshot > "$RK_STATE/before"
OUT=$(virsh start g1 2>&1); rc=$?
check "virsh start g1 exit status" 0 "$rc"
OUT=$(virsh start g2 2>&1); rc=$?
printf '%s\n' "$OUT" | sed 's/^/RK         virsh| /'
check "virsh start g2 exit status (refused)" 1 "$rc"
check_has "g2's refusal names the first VM" "0000:01:00.0 is in use by VM g1" "$OUT"
check "g2 state" "shut off" "$(domstate g2)"
check "g1 state after g2's refused start" running "$(domstate g1)"
check "driver of $DGPU after g2's refused start" vfio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after g2's refused start" vfio-pci "$(drv $DGPU_AUDIO)"
check "g1's journal after g2's release" present "$([ -f /run/gpuhook/g1.journal ] && echo present || echo absent)"
check "g2's journal" absent "$([ -e /run/gpuhook/g2.journal ] && echo present || echo absent)"
check "claims after g2's release" "g1 g1" "$(cat /run/gpuhook/claims/$DGPU /run/gpuhook/claims/$DGPU_AUDIO 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
OUT=$(virsh destroy g1 2>&1); rc=$?
check "virsh destroy g1 exit status" 0 "$rc"
say "AFTER: $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU after destroying g1" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after destroying g1" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "g1's journal after destroy" absent "$([ -e /run/gpuhook/g1.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before == after" "$RK_STATE/before" "$RK_STATE/after"
show_log "[g2 "
