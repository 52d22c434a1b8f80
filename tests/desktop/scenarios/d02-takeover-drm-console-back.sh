# Desktop scenario 2 (issue 17), --fb drm --init tini: booted through UEFI on efifb, then bochs-drm
# loaded as udev would (a DRM driver with fbdev emulation): it replaced efifb (the kernel
# unregistered efi-framebuffer.0) and the console moved to bochs-drm's framebuffer. `gpuhook hook`
# by hand, [display] mode = "takeover". Proves on the real kernel:
#  - plan says nothing about a framebuffer lost until reboot (the GPU's own DRM driver gives the
#    console a framebuffer again);
#  - prepare unbinds the frame buffer console and moves the GPU to vfio-pci; the console's
#    vtconsole vanishes with bochs-drm's framebuffer;
#  - release gives the GPU back to bochs-drm, and the frame buffer console (found by name) is
#    bound again; no warning, no failed undo, journal removed, `gpuhook status` clean, and the
#    host is as before (snapshot identical).
. "$RK_DIR/lib.sh"
. "$DT_DIR/lib-desktop.sh"
G=$(group_of $GPU)
check "bochs-drm drives the GPU at boot" bochs-drm "$(drv $GPU)"
check "bochs-drm replaced the firmware framebuffer at boot" gone "$(efifb_state)"
check "the frame buffer console (found by name) is bound at boot" "vtcon1=1" "$(fb_vtcons)"
check_has "/proc/fb is bochs-drm's" "bochs" "$(cat /proc/fb)"
write_profile desk <<EOT
[gpu]
address = "$GPU"
[display]
mode = "takeover"
EOT
out=$("$GPUHOOK" plan desk 2>&1); say "gpuhook plan desk -> exit $?"
printf '%s\n' "$out" | sed 's/^/RK         plan| /'
check_lacks "plan: no framebuffer lost until reboot with a DRM driver of its own" "until reboot" "$out"
snapshot > "$RK_STATE/before"
shot drm-before settle
gh desk prepare begin < /dev/null
check "prepare exit status" 0 "$GH_RC"
say "during: $(dt_state)"
check "driver of $GPU after prepare" vfio-pci "$(drv $GPU)"
check "/dev/vfio/$G after prepare" yes "$([ -c /dev/vfio/$G ] && echo yes || echo no)"
check "no frame buffer console while the VM has the GPU (it vanished with bochs-drm's framebuffer)" none "$(fb_vtcons)"
shot drm-during
gh desk release end < /dev/null
check "release exit status" 0 "$GH_RC"
say "after: $(dt_state)"
check "driver of $GPU after release" bochs-drm "$(drv $GPU)"
check "the frame buffer console is bound again after release" "vtcon1=1" "$(fb_vtcons)"
check "driver_override of $GPU after release" "(null)" "$(ovr $GPU)"
check "journal after release" absent "$([ -e /run/gpuhook/desk.journal ] && echo present || echo absent)"
lines=$(log_lines "[desk release")
check_has "release: the console step is undone" "vtcon.unbind ok" "$lines"
check_lacks "release: no warning" " warning " "$lines"
check_lacks "release: no failed undo" "FAILED" "$lines"
st=$("$GPUHOOK" status 2>&1); src=$?
printf '%s\n' "$st" | sed 's/^/RK         status| /'
check "gpuhook status exit status" 0 "$src"
check_lacks "status reports no inconsistency" "!" "$st"
snapshot > "$RK_STATE/after"
check_same "state before prepare == after release" "$RK_STATE/before" "$RK_STATE/after"
echo "console back on bochs-drm after the takeover" > /dev/tty1
shot drm-after settle
