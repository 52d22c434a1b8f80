# Desktop scenario 3 (issue 12, scenario 1), --fb drm --init systemd --display weston: a single-GPU
# desktop as it really runs: systemd as PID 1, weston as display-manager.service holding bochs-drm's
# DRM node as master, fbcon on bochs-drm's framebuffer; libvirtd with gpuhook as its qemu hook and
# a domain with the GPU as a managed='no' hostdev, profile [display] mode = "takeover" (its
# default stop_services = ["display-manager.service"]). Proves on the real kernel and systemd:
#  - virsh start (--paused: QEMU holds the GPU, its vCPU does not run) stops the display manager (weston gone), unbinds fbcon, binds vfio-pci; the
#    domain's QEMU holds /dev/vfio/<group>;
#  - virsh destroy brings back bochs-drm, the frame buffer console (bound) and the display manager,
#    whose new weston holds the DRM node again as master; journal removed, no failed undo, no
#    warning; the log shows the five events in order; release's own check found the host back
#    (no NOT BACK in the log, `gpuhook status` exits 0 without one);
#  - screenshots before / during / after (shots/weston-*.png) show the desktop, the blank screen
#    of a GPU the host no longer drives, and the desktop again.
. "$RK_DIR/lib.sh"
. "$DT_DIR/lib-desktop.sh"
G=$(group_of $GPU)
wait_for 20 sh -c 'systemctl is-active -q display-manager.service' || rk_fail "display-manager.service did not come up"
check "display-manager.service before" active "$(systemctl is-active display-manager.service)"
w0=$(weston_master)
check "weston holds /dev/dri/card0 as DRM master before" "master=y" "${w0#* }"
check "bochs-drm drives the GPU before" bochs-drm "$(drv $GPU)"
check "the frame buffer console is bound before" "vtcon1=1" "$(fb_vtcons)"
shot weston-before settle
check "screenshot before: weston's desktop, settled" ok "$SHOT"

write_profile desk <<EOT
[gpu]
address = "$GPU"
[display]
mode = "takeover"
EOT
mkdir -p /run/rk/caps && cp "$DT_CACHE_DIR/libvirt-caps/"*.xml /run/rk/caps/ 2>/dev/null
lv_configure
lv_install_hook
lv_start || exit 1
lv_define desk no $GPU
snapshot > "$RK_STATE/before"

now_ms; t0=$MS
# --paused: QEMU starts and opens the GPU through vfio-pci, the hook sees every event, but the
# domain's vCPU (TCG inside this TCG guest) does not eat the guest's only CPU while we check.
out=$(virsh start --paused desk 2>&1); rc=$?
now_ms; say "virsh start --paused desk -> exit $rc in $((MS - t0)) ms: $out"
check "virsh start exit status" 0 "$rc"
say "during: $(dt_state); display-manager $(systemctl is-active display-manager.service)"
check "display-manager.service while the VM runs" inactive "$(systemctl is-active display-manager.service)"
check "no weston while the VM runs" none "$(weston_master)"
check "driver of $GPU while the VM runs" vfio-pci "$(drv $GPU)"
check "no frame buffer console while the VM runs" none "$(fb_vtcons)"
qp=$(qemu_pid desk)
check "the domain's QEMU holds /dev/vfio/$G" yes "$(holds_vfio_group "$qp" "$G")"
shot weston-during
check "screenshot during: the host draws nothing (one flat colour)" "ok flat" "$SHOT"

now_ms; t0=$MS
out=$(virsh destroy desk 2>&1); rc=$?
now_ms; say "virsh destroy desk -> exit $rc in $((MS - t0)) ms: $out"
check "virsh destroy exit status" 0 "$rc"
wait_for 30 test ! -e /run/gpuhook/desk.journal || rk_fail "the journal is still there 30 s after destroy"
say "after: $(dt_state); display-manager $(systemctl is-active display-manager.service)"
check "driver of $GPU after destroy" bochs-drm "$(drv $GPU)"
check "the frame buffer console is bound again after destroy" "vtcon1=1" "$(fb_vtcons)"
check "display-manager.service after destroy" active "$(systemctl is-active display-manager.service)"
wait_for 15 sh -c "awk '\$1 == \"weston\" && \$4 == \"y\"' /sys/kernel/debug/dri/0/clients | grep -q ." ||
  rk_fail "no weston became DRM master within 15 s of destroy"
w1=$(weston_master)
check "a new weston holds /dev/dri/card0 as DRM master after destroy" "master=y" "${w1#* }"
check "it is a new weston process" yes "$([ "${w1%% *}" != "${w0%% *}" ] && echo yes || echo no)"
check "journal after destroy" absent "$([ -e /run/gpuhook/desk.journal ] && echo present || echo absent)"
check "gpuhook's events for desk, in order" "prepare start started stopped release" "$(log_events desk)"
lines=$(log_lines "[desk ")
check_has "log: the display manager was stopped" "stop display-manager.service" "$lines"
check_has "log: its undo ran" "service.stop ok" "$lines"
check_lacks "log: no failed undo" "FAILED" "$lines"
check_lacks "log: no warning" " warning " "$lines"
check_lacks "log: release's check found the host back" "NOT BACK" "$lines"
st=$("$GPUHOOK" status 2>&1); rc=$?
say "gpuhook status -> exit $rc"
printf '%s\n' "$st" | sed 's/^/RK         status| /'
check "gpuhook status exit status after destroy" 0 "$rc"
check_lacks "gpuhook status: nothing NOT BACK" "NOT BACK" "$st"
shot weston-after settle
check "screenshot after: weston's desktop again, settled" ok "$SHOT"
snapshot > "$RK_STATE/after"
check_same "state before start == after destroy" "$RK_STATE/before" "$RK_STATE/after"
lv_stop
