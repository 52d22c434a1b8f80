# Desktop scenario 11 (issue 12: the laptop layout on the real stack), --fb drm --init systemd
# --display weston --dgpu: weston (display-manager.service) is DRM master of the boot GPU's card0
# (bochs-drm on 00:02.0, fbcon on its framebuffer), and a second display device at 00:06.0
# (QEMU's secondary-vga, also driven by bochs-drm: card1) plays the laptop's dGPU. A profile in
# the default mode (external) for the dGPU, run by hand as libvirt would:
#  - plan: the dGPU goes to vfio-pci, and nothing of the desktop is touched (no service stopped,
#    no console unbound, no framebuffer released);
#  - prepare: the dGPU is on vfio-pci with /dev/vfio/<group>, its card1 gone; the SAME weston is
#    still DRM master of card0, display-manager.service never stopped (MainPID and
#    ActiveEnterTimestamp unchanged), fbcon still bound, the boot GPU still on bochs-drm, and the
#    screen still shows the desktop (screenshot);
#  - release: the dGPU back on bochs-drm with its card1, the desktop still the same weston, no
#    journal, no NOT BACK, `gpuhook status` exit 0, the state snapshot identical to before.
. "$RK_DIR/lib.sh"
. "$DT_DIR/lib-desktop.sh"
D=$DT_DGPU
[ -n "$D" ] || rk_fail "no dGPU: this scenario needs desktop-vm.sh --dgpu"
cards_of() { local c l=; for c in /sys/bus/pci/devices/$1/drm/card*; do [ -e "$c" ] && l="$l ${c##*/}"; done; echo "${l# }"; }

wait_for 30 sh -c 'systemctl is-active -q display-manager.service' || rk_fail "display-manager.service did not come up"
wait_for 15 sh -c "awk '\$1 == \"weston\" && \$4 == \"y\"' /sys/kernel/debug/dri/0/clients | grep -q ." ||
  rk_fail "weston did not become DRM master within 15 s of boot"
W=$(weston_master); ST=$(dm_stamp)
say "display manager: $ST; weston: $W; boot GPU $GPU: $(cards_of $GPU); dGPU $D: $(cards_of $D), group $(group_of $D)"
check "weston holds the boot GPU's card0 as DRM master before" "master=y" "${W#* }"
check "bochs-drm drives the boot GPU before" bochs-drm "$(drv $GPU)"
check "bochs-drm drives the dGPU before" bochs-drm "$(drv $D)"
check "the frame buffer console is bound before" "vtcon1=1" "$(fb_vtcons)"
check "weston does not hold the dGPU's card" no \
  "$(ls -l /proc/${W%% *}/fd 2>/dev/null | grep -q -- "-> /dev/dri/$(cards_of $D)\$" && echo yes || echo no)"
shot lap-before settle
check "screenshot before: weston's desktop, settled" ok "$SHOT"

write_profile lap <<EOT
[gpu]
address = "$D"
EOT
snapshot > "$RK_STATE/before"
P=$("$GPUHOOK" plan lap 2>&1); rc=$?
printf '%s\n' "$P" | sed 's/^/RK         plan| /'
check "plan exit status" 0 "$rc"
check_has "plan: the dGPU goes to vfio-pci" "bind $D" "$P"
check_lacks "plan: no service is stopped" "stop display-manager" "$P"
check_lacks "plan: no console is unbound" "unbind frame buffer console" "$P"

gh lap prepare begin < /dev/null
check "prepare exit status" 0 "$GH_RC"
check "driver of the dGPU after prepare" vfio-pci "$(drv $D)"
check "/dev/vfio/$(group_of $D) after prepare" yes "$([ -c /dev/vfio/$(group_of $D) ] && echo yes || echo no)"
check "the dGPU's DRM card is gone after prepare" "" "$(cards_of $D)"
check "the boot GPU is untouched" bochs-drm "$(drv $GPU)"
check "the same weston is still DRM master of card0" "$W" "$(weston_master)"
check "display-manager.service never stopped (MainPID, ActiveEnterTimestamp)" "$ST" "$(dm_stamp)"
check "the frame buffer console is still bound" "vtcon1=1" "$(fb_vtcons)"
shot lap-during settle
check "screenshot while the VM has the dGPU: the desktop is still drawn" ok "$SHOT"

gh lap release end < /dev/null
check "release exit status" 0 "$GH_RC"
wait_for 10 sh -c "[ -n \"\$(ls /sys/bus/pci/devices/$D/drm 2>/dev/null)\" ]"
check "driver of the dGPU after release" bochs-drm "$(drv $D)"
check "the dGPU has its DRM card again" yes "$([ -n "$(cards_of $D)" ] && echo yes || echo no)"
check "the same weston is DRM master of card0 after release" "$W" "$(weston_master)"
check "display-manager.service never stopped, after release" "$ST" "$(dm_stamp)"
check "journal after release" absent "$([ -e /run/gpuhook/lap.journal ] && echo present || echo absent)"
check_lacks "log: release check found nothing NOT BACK" "NOT BACK" "$(log_lines "[lap release")"
"$GPUHOOK" status > "$RK_STATE/status" 2>&1; rc=$?
check "gpuhook status exit status after release" 0 "$rc"
snapshot > "$RK_STATE/after"
check_same "state before prepare == after release" "$RK_STATE/before" "$RK_STATE/after"
shot lap-after settle
check "screenshot after: weston's desktop, settled" ok "$SHOT"
