# Desktop scenario 4 (issue 12, scenarios 2-5 in one boot), --fb drm --init systemd --display
# weston: the same single-GPU desktop as d03 (weston as display-manager.service, DRM master of
# bochs-drm's card0, fbcon on bochs-drm's framebuffer), gpuhook run by hand as libvirt would
# (`gpuhook hook desk prepare begin -`, `... release end -`). Each part prints what it checked.
#  A. holders: a process the display manager does not own (a unit of its own
#     holding card0: bochs has no render node; and a background process of the scenario's unit holding card0) makes
#     prepare refuse, naming both (name, pid, node, unit), and NOTHING changed: the same weston
#     still DRM master, display-manager.service never stopped (same MainPID and
#     ActiveEnterTimestamp), no journal, state snapshot identical. With holders = "terminate" both
#     end and the takeover proceeds; release brings the desktop back.
#  B. modules: unload_modules = ["drm_kms_helper"] (used by bochs, which stays) is refused before
#     any change; unload_modules = ["bochs"] (the emulated card's DRM driver) is unloaded after
#     the display manager stopped, loaded back on release and bound to the GPU again (bochs-drm).
#     A process holding the GPU's fbdev node (/dev/fb0, which pins bochs) is refused before any
#     change too (gpuhook found it only when modprobe -r failed, after the display manager had
#     stopped: fixed with this test), and with holders = "terminate" it ends before the unload.
#  C. services (with B's cycle): of two extra units in stop_services, the one running before the
#     VM is stopped and started again on release, the one stopped before is not started.
#  D. rollback: a real failure after the display manager stopped (vfio-pci cannot be loaded: an
#     `install vfio_pci /bin/false` line in modprobe.d) makes prepare fail and roll back in
#     process; a hook killed right after it stopped the display manager (GPUHOOK_FAULT=
#     after-apply:service.stop:1) is rolled back by release from the journal, as libvirt calls it.
#     Both times the desktop comes back as in d03 (display manager active, a new weston DRM
#     master, fbcon bound, GPU on bochs-drm), no journal, the state snapshot identical.
# Screenshots: desk-before, desk-during (B: the host draws nothing), desk-after-rollback.
. "$RK_DIR/lib.sh"
. "$DT_DIR/lib-desktop.sh"
J=/run/gpuhook/desk.journal
journal() { [ -e $J ] && echo present || echo absent; }
alive() { kill -0 "$1" 2>/dev/null && echo alive || echo gone; }
# unchanged LABEL: the desktop exactly as before the refused prepare (weston $W, dm_stamp $ST).
unchanged() {
  check "$1: the same weston is still DRM master" "$W" "$(weston_master)"
  check "$1: display-manager.service never stopped (MainPID, ActiveEnterTimestamp)" "$ST" "$(dm_stamp)"
  check "$1: no journal" absent "$(journal)"
  snapshot > "$RK_STATE/now"
  check_same "$1: state unchanged" "$RK_STATE/before" "$RK_STATE/now"
}
fresh() { W=$(weston_master); ST=$(dm_stamp); }

wait_for 30 sh -c 'systemctl is-active -q display-manager.service' || rk_fail "display-manager.service did not come up"
wait_for 15 sh -c "awk '\$1 == \"weston\" && \$4 == \"y\"' /sys/kernel/debug/dri/0/clients | grep -q ." ||
  rk_fail "weston did not become DRM master within 15 s of boot"
fresh
check "weston holds /dev/dri/card0 as DRM master before" "master=y" "${W#* }"
check "bochs-drm drives the GPU before" bochs-drm "$(drv $GPU)"
check "the frame buffer console is bound before" "vtcon1=1" "$(fb_vtcons)"
say "display manager: $ST; weston: $W; bochs refcnt $(cat /sys/module/bochs/refcnt)"
shot desk-before settle
check "screenshot before: weston's desktop, settled" ok "$SHOT"
# Test units (DefaultDependencies=no: a unit with the default dependencies pulls in sysinit.target,
# which loads modules and adds device nodes, and takes a minute here).
mkdir -p /run/systemd/system
unit() { printf '[Unit]\nDescription=%s (gpuhook test)\nDefaultDependencies=no\n[Service]\nExecStart=%s\n' "$1" "$2" > "/run/systemd/system/$1.service"; }
unit gpu-holder "/bin/sh -c 'exec 3</dev/dri/card0; exec sleep 600'"
unit aux-running "/bin/sleep 3600"
unit aux-stopped "/bin/sleep 3600"
systemctl daemon-reload
snapshot > "$RK_STATE/before"

# --- A. holders --------------------------------------------------------------------------------
say "A. a holder the display manager does not own"
systemctl start gpu-holder.service
sleep 600 3</dev/dri/card0 &
bg=$!
wait_for 10 sh -c 'ls -l /proc/$(systemctl show -p MainPID --value gpu-holder.service)/fd | grep -q card0' ||
  rk_fail "gpu-holder.service does not hold card0"
hp=$(systemctl show -p MainPID --value gpu-holder.service)
say "holders: gpu-holder.service sleep $hp (card0), background sleep $bg (card0)"
write_profile desk <<EOT
[gpu]
address = "$GPU"
[display]
mode = "takeover"
EOT
gh desk prepare begin < /dev/null
check "A: prepare refused" 1 "$GH_RC"
check_has "A: refusal names the unit's holder" "sleep ($hp) holds /dev/dri/card0 ($GPU) and runs in gpu-holder.service" "$GH_ERR"
check_has "A: refusal names the background holder" "sleep ($bg) holds /dev/dri/card0 ($GPU) and runs in desktop-guest.service" "$GH_ERR"
check_has "A: refused before stopping anything" "refused before stopping anything" "$GH_ERR"
unchanged "A after the refusal"

write_profile desk <<EOT
[gpu]
address = "$GPU"
[display]
mode = "takeover"
[host]
holders = "terminate"
EOT
gh desk prepare begin < /dev/null
check "A: prepare with holders = terminate" 0 "$GH_RC"
check "A: the unit's holder ($hp) ended" gone "$(alive "$hp")"
check "A: the background holder ($bg) ended" gone "$(alive "$bg")"
wait "$bg" 2>/dev/null
check "A: display-manager.service while the VM runs" inactive "$(systemctl is-active display-manager.service)"
check "A: driver of $GPU while the VM runs" vfio-pci "$(drv $GPU)"
check_has "A: log: the holders were terminated" "terminating: " "$(log_lines '[desk prepare')"
gh desk release end < /dev/null
check "A: release exit status" 0 "$GH_RC"
check_desktop_back "after release (A)" "${W%% *}"
check "A: no journal after release" absent "$(journal)"
snapshot > "$RK_STATE/now"
check_same "A: state after release == before" "$RK_STATE/before" "$RK_STATE/now"

# --- B. modules --------------------------------------------------------------------------------
say "B. unload_modules with the card's DRM driver (bochs: $(modinfo -F filename bochs))"
fresh
write_profile desk <<EOT
[gpu]
address = "$GPU"
[display]
mode = "takeover"
[host]
unload_modules = ["drm_kms_helper"]
EOT
gh desk prepare begin < /dev/null
check "B: prepare refused (drm_kms_helper is used by bochs)" 1 "$GH_RC"
check_has "B: refusal names the module that uses it" "module drm_kms_helper in [host] unload_modules is used by module bochs" "$GH_ERR"
unchanged "B after the module refusal"

# A process that holds the GPU's fbdev node: what it pins, and whether prepare refuses before
# any change.
r0=$(cat /sys/module/bochs/refcnt)
sleep 600 3</dev/fb0 &
fbp=$!
wait_for 5 sh -c "ls -l /proc/$fbp/fd | grep -q /dev/fb0"
say "B: sleep $fbp holds /dev/fb0 ($(readlink -f /sys/class/graphics/fb0/device)): bochs refcnt $r0 -> $(cat /sys/module/bochs/refcnt), drm_kms_helper $(cat /sys/module/drm_kms_helper/refcnt)"
write_profile desk <<EOT
[gpu]
address = "$GPU"
[display]
mode = "takeover"
[host]
unload_modules = ["bochs"]
EOT
gh desk prepare begin < /dev/null
check "B: prepare refused (a process holds /dev/fb0)" 1 "$GH_RC"
check_has "B: refusal names the fbdev holder" "sleep ($fbp) holds /dev/fb0 ($GPU) and runs in desktop-guest.service" "$GH_ERR"
if [ "$GH_RC" = 0 ]; then gh desk release end < /dev/null; fi
kill "$fbp"; wait "$fbp" 2>/dev/null
if [ "$GH_RC" = 1 ]; then unchanged "B after the fbdev refusal"; else check_desktop_back "after the fbdev case" "${W%% *}"; fresh; fi

# --- B + C. unload bochs; two more units in stop_services ---------------------------------------
say "C. aux-running.service runs, aux-stopped.service does not"
systemctl start aux-running.service
check "C: aux-running.service before" active "$(systemctl is-active aux-running.service)"
check "C: aux-stopped.service before" inactive "$(systemctl is-active aux-stopped.service)"
aux0=$(systemctl show -p MainPID --value aux-running.service)
fresh
snapshot > "$RK_STATE/before"
sleep 600 3</dev/fb0 &
fbp=$!
wait_for 5 sh -c "ls -l /proc/$fbp/fd | grep -q /dev/fb0"
say "B: sleep $fbp holds /dev/fb0 again: with holders = terminate it ends before bochs is unloaded"
write_profile desk <<EOT
[gpu]
address = "$GPU"
[display]
mode = "takeover"
[host]
stop_services = ["display-manager.service", "aux-running.service", "aux-stopped.service"]
unload_modules = ["bochs"]
holders = "terminate"
EOT
lines0=$(wc -l < "$LOG")
gh desk prepare begin < /dev/null
check "B: prepare exit status" 0 "$GH_RC"
check "B: the fbdev holder ($fbp) ended" gone "$(alive "$fbp")"
wait "$fbp" 2>/dev/null
check "B: bochs unloaded" absent "$(grep -q '^bochs ' /proc/modules && echo loaded || echo absent)"
check "B: driver of $GPU while the VM runs" vfio-pci "$(drv $GPU)"
check "B: display-manager.service while the VM runs" inactive "$(systemctl is-active display-manager.service)"
check "C: aux-running.service while the VM runs" inactive "$(systemctl is-active aux-running.service)"
check "C: aux-stopped.service while the VM runs" inactive "$(systemctl is-active aux-stopped.service)"
order=$(tail -n +"$((lines0 + 1))" "$LOG" | sed -n 's/.*step [0-9]* ok ([^)]*): //p' | grep -E '^(stop |terminate processes|unload module|load module)' | tr '\n' ';')
say "B: prepare's steps in order: $order"
check "B: order: services stopped, holders ended, then bochs unloaded, then vfio-pci loaded" \
  "stop display-manager.service;stop aux-running.service;stop aux-stopped.service;terminate processes holding the GPU;unload module bochs;load module vfio-pci;" \
  "$order"
shot desk-during
check "screenshot during: the host draws nothing (one flat colour)" "ok flat" "$SHOT"
gh desk release end < /dev/null
check "B: release exit status" 0 "$GH_RC"
check "B: bochs loaded again" loaded "$(grep -q '^bochs ' /proc/modules && echo loaded || echo absent)"
check_desktop_back "after release (B)" "${W%% *}"
check "C: aux-running.service started again" active "$(systemctl is-active aux-running.service)"
check "C: it is a new process" yes "$([ "$(systemctl show -p MainPID --value aux-running.service)" != "$aux0" ] && echo yes || echo no)"
check "C: aux-stopped.service not started" inactive "$(systemctl is-active aux-stopped.service)"
check "B: no journal after release" absent "$(journal)"
lines=$(tail -n +"$((lines0 + 1))" "$LOG")
check_lacks "B: log: no failed undo" "FAILED" "$lines"
check_lacks "B: log: release found nothing amiss" "NOT BACK" "$lines"
snapshot > "$RK_STATE/now"
check_same "B: state after release == before" "$RK_STATE/before" "$RK_STATE/now"
systemctl stop aux-running.service

# --- D. rollback after the display manager stopped ------------------------------------------------
say "D1. a real failure after the display manager stopped: vfio-pci cannot be loaded"
fresh
snapshot > "$RK_STATE/before"
write_profile desk <<EOT
[gpu]
address = "$GPU"
[display]
mode = "takeover"
EOT
check "D1: vfio-pci is not loaded before" absent "$([ -d /sys/bus/pci/drivers/vfio-pci ] && echo loaded || echo absent)"
echo 'install vfio_pci /bin/false' > /etc/modprobe.d/gpuhook-test-no-vfio.conf
lines0=$(wc -l < "$LOG")
gh desk prepare begin < /dev/null
rm -f /etc/modprobe.d/gpuhook-test-no-vfio.conf
check "D1: prepare failed" 1 "$GH_RC"
check_has "D1: the error names the step" "cannot load module vfio-pci" "$GH_ERR"
lines=$(tail -n +"$((lines0 + 1))" "$LOG")
check_has "D1: log: the display manager had stopped" "): stop display-manager.service" "$lines"
check_has "D1: log: rolled back" "rolling back" "$lines"
check_has "D1: log: the display manager's stop undone" "service.stop ok" "$lines"
check_desktop_back "after the rollback (D1)" "${W%% *}"
check "D1: no journal after the rollback" absent "$(journal)"
snapshot > "$RK_STATE/now"
check_same "D1: state after the rollback == before" "$RK_STATE/before" "$RK_STATE/now"

say "D2. the hook killed right after it stopped the display manager; release rolls back"
fresh
GPUHOOK_FAULT=after-apply:service.stop:1 gh desk prepare begin < /dev/null
check "D2: the hook was killed (SIGKILL)" 137 "$GH_RC"
check "D2: display-manager.service stopped" inactive "$(systemctl is-active display-manager.service)"
check "D2: journal kept" present "$(journal)"
gh desk release end < /dev/null
check "D2: release exit status" 0 "$GH_RC"
check_desktop_back "after release of the killed prepare (D2)" "${W%% *}"
check "D2: no journal after release" absent "$(journal)"
shot desk-after-rollback settle
check "screenshot after the rollbacks: weston's desktop again, settled" ok "$SHOT"
snapshot > "$RK_STATE/now"
check_same "D2: state after release == before" "$RK_STATE/before" "$RK_STATE/now"
