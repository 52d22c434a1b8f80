# Scenario 9 (issue 6), layout laptop, test build. gpuhook is SIGKILLed in the middle of
# prepare, after the first function went to vfio-pci (GPUHOOK_FAULT=after-apply:pci.vfio:1,
# through a wrapper, since libvirtd gives hooks a clean environment). Proves: `virsh start`
# fails and says the hook failed, the domain stays shut off, libvirtd still runs gpuhook's
# release, which restores the host exactly (drivers, overrides, /dev/vfio, modules, claims)
# from the journal the killed hook left; the journal is gone afterwards.
. "$RK_DIR/lib.sh"
lv_configure
RK_HOOK_FAULT=after-apply:pci.vfio:1 lv_install_hook
write_profile g <<EOT
[gpu]
address = "$DGPU"
EOT
lv_start || exit 1
lv_define g no $DGPU $DGPU_AUDIO
snapshot > "$RK_STATE/before"
say "BEFORE: $(rk_drivers_line $DGPU $DGPU_AUDIO)"
OUT=$(virsh start g 2>&1); rc=$?
printf '%s\n' "$OUT" | sed 's/^/RK         virsh| /'
check "virsh start g exit status (hook killed)" 1 "$rc"
check_has "virsh reports the hook's failure" "Hook script execution failed" "$OUT"
check "domain state after the failed start" "shut off" "$(domstate g)"
say "AFTER:  $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU after the failed start" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after the failed start" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "driver_override of $DGPU after the failed start" "(null)" "$(ovr $DGPU)"
check "journal after release" absent "$([ -e /run/gpuhook/g.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before == after the failed start" "$RK_STATE/before" "$RK_STATE/after"
check "gpuhook's events for g (libvirtd runs stopped and release after a failed prepare)" "prepare stopped release" "$(log_events g)"
check_has "log: release restored the journal the killed hook left" "restoring" "$(log_lines "[g release")"
check_has "log: the killed prepare's lines reached the file (its last completed step)" "): load module vfio-pci" "$(log_lines "[g prepare")"
check_lacks "log: the killed prepare never logged its end" "event prepare ok" "$(log_lines "[g prepare")"
show_log "[g "
