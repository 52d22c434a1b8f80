# Scenario 10 (issue 6), layout laptop. libvirtd is restarted while the domain runs. Proves:
# libvirtd reconnects to the running QEMU and runs gpuhook's reconnect event, which finds the
# journal matching the host and keeps the VM running (`virsh domstate` running after the
# restart, functions still on vfio-pci); a later destroy restores the host.
. "$RK_DIR/lib.sh"
lv_configure
lv_install_hook
write_profile g <<EOT
[gpu]
address = "$DGPU"
EOT
lv_start || exit 1
lv_define g no $DGPU $DGPU_AUDIO
snapshot > "$RK_STATE/before"
OUT=$(virsh start g 2>&1); rc=$?
check "virsh start g exit status" 0 "$rc"
QP=$(qemu_pid g)
say "running: QEMU pid $QP; $(rk_drivers_line $DGPU $DGPU_AUDIO); restarting libvirtd"
lv_stop
check "the domain's QEMU survives libvirtd's stop" yes "$(kill -0 "$QP" 2>/dev/null && echo yes || echo no)"
lv_start || exit 1
wait_for 30 sh -c "grep -qF 'event reconnect' $LOG"
check "domain state after the libvirtd restart" running "$(domstate g)"
check "same QEMU process after the restart" "$QP" "$(qemu_pid g)"
check "driver of $DGPU after the restart" vfio-pci "$(drv $DGPU)"
check_has "log: reconnect event" "event reconnect begin" "$(log_lines "[g reconnect")"
check_has "log: reconnect found the journal matching the host" "journal matches the host" "$(log_lines "[g reconnect")"
OUT=$(virsh destroy g 2>&1); rc=$?
check "virsh destroy g exit status" 0 "$rc"
say "AFTER: $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU after destroy" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after destroy" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "journal after destroy" absent "$([ -e /run/gpuhook/g.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before start == after destroy" "$RK_STATE/before" "$RK_STATE/after"
check "gpuhook's events for g, in order" "prepare start started reconnect stopped release" "$(log_events g)"
show_log "[g "
