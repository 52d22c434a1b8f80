# Desktop scenario 1 (issue 17), --fb efifb --init tini: the firmware frame buffer (efifb) owns the
# only GPU, no DRM driver is loaded (a single-GPU desktop whose NVIDIA driver runs without KMS).
# `gpuhook hook` by hand, [display] mode = "takeover", two full cycles. Proves on the real kernel:
#  - plan and check say before the first start that the firmware framebuffer and its console will
#    not come back until reboot;
#  - prepare unbinds the fbcon vtconsole and efi-framebuffer.0, binds vfio-pci; binding vfio-pci
#    unregisters the efi-framebuffer.0 platform device (sysfb, kernel >= 6.0) and fbcon's
#    vtconsole vanishes with the last framebuffer;
#  - each release gives the GPU back to its previous driver (none), removes the journal and the
#    claim and completes: no "FAILED", no "release incomplete", no error line; the first one logs
#    "cannot be restored until reboot" once for efi-framebuffer.0 and once for its console, with
#    one hint that is true for this single-GPU machine; the second has nothing of the firmware
#    framebuffer left to plan or undo (no warning); `gpuhook status` is clean after each;
#  - the second cycle ends exactly where the first one did (snapshot identical).
. "$RK_DIR/lib.sh"
. "$DT_DIR/lib-desktop.sh"
G=$(group_of $GPU)
check "the firmware frame buffer owns the GPU at boot (efi-framebuffer.0)" bound "$(efifb_state)"
check "no DRM driver on $GPU at boot" none "$(drv $GPU)"
check "the frame buffer console (found by name) is bound at boot" "vtcon1=1" "$(fb_vtcons)"
check "$GPU is the boot VGA" 1 "$(cat $PCI/$GPU/boot_vga)"
write_profile desk <<EOT
[gpu]
address = "$GPU"
[display]
mode = "takeover"
EOT
cat > /run/rk/desk.xml <<EOT
<domain type='kvm'><name>desk</name><os firmware='efi'><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
<devices><hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x00' slot='0x02' function='0x0'/></source></hostdev></devices></domain>
EOT
out=$("$GPUHOOK" plan desk 2>&1); say "gpuhook plan desk -> exit $?"
printf '%s\n' "$out" | sed 's/^/RK         plan| /'
check_has "plan says the firmware framebuffer will not come back until reboot" "will not come back until reboot" "$out"
out=$("$GPUHOOK" check desk --xml /run/rk/desk.xml 2>&1); say "gpuhook check desk -> exit $?"
printf '%s\n' "$out" | sed 's/^/RK         check| /'
check_has "check says the firmware framebuffer will not come back until reboot" "will not come back until reboot" "$out"
shot efifb-before

for cycle in 1 2; do
  say "---- cycle $cycle"
  from=$(( $(log_lines | wc -l) + 1 ))
  gh desk prepare begin < /dev/null
  check "cycle $cycle: prepare exit status" 0 "$GH_RC"
  say "during: $(dt_state)"
  check "cycle $cycle: driver of $GPU after prepare" vfio-pci "$(drv $GPU)"
  check "cycle $cycle: /dev/vfio/$G after prepare" yes "$([ -c /dev/vfio/$G ] && echo yes || echo no)"
  check "cycle $cycle: efi-framebuffer.0 after prepare (vfio-pci evicts the firmware framebuffer)" gone "$(efifb_state)"
  check "cycle $cycle: no frame buffer console while the VM has the GPU" none "$(fb_vtcons)"
  [ $cycle = 1 ] && shot efifb-during
  gh desk release end < /dev/null
  check "cycle $cycle: release exit status" 0 "$GH_RC"
  say "after: $(dt_state)"
  check "cycle $cycle: driver of $GPU after release (its previous driver)" none "$(drv $GPU)"
  check "cycle $cycle: driver_override of $GPU after release" "(null)" "$(ovr $GPU)"
  check "cycle $cycle: journal after release" absent "$([ -e /run/gpuhook/desk.journal ] && echo present || echo absent)"
  check "cycle $cycle: claim after release" absent "$([ -e /run/gpuhook/claims/$GPU ] && echo present || echo absent)"
  lines=$(tail -n +$from "$LOG")
  check_lacks "cycle $cycle: no failed undo" "FAILED" "$lines"
  check_has "cycle $cycle: every journaled step is accounted for" "event release done" "$lines"
  check_lacks "cycle $cycle: release is not incomplete" "release incomplete" "$lines"
  check_lacks "cycle $cycle: no error line" " error " "$lines"
  if [ $cycle = 1 ]; then
    check_has "cycle 1: prepare released the firmware framebuffer" "release boot framebuffer efi-framebuffer.0" "$lines"
    check_has "cycle 1: one warning for the framebuffer" "undo 3 fb.release: cannot be restored until reboot" "$lines"
    check_has "cycle 1: one warning for its console" "undo 2 vtcon.unbind: cannot be restored until reboot" "$lines"
    check "cycle 1: warning lines" 3 "$(printf '%s\n' "$lines" | grep -c ' warning ')"
    check "cycle 1: hint lines (one: the same hint for both)" 1 "$(printf '%s\n' "$lines" | grep -c 'hint:')"
    check_has "cycle 1: the hint is true for this single-GPU machine" \
      "hint: $GPU is the only GPU and has no driver now: the text console is gone until reboot, or until a DRM driver with a framebuffer binds $GPU; the desktop is not affected" "$lines"
  else
    # The firmware framebuffer went for good in cycle 1: nothing of it is planned or undone again.
    check_lacks "cycle 2: prepare plans no framebuffer step" "framebuffer" "$lines"
    check_lacks "cycle 2: no warning" " warning " "$lines"
  fi
  st=$("$GPUHOOK" status 2>&1); src=$?
  printf '%s\n' "$st" | sed 's/^/RK         status| /'
  check "cycle $cycle: gpuhook status exit status" 0 "$src"
  check_lacks "cycle $cycle: status reports no inconsistency" "!" "$st"
  check_lacks "cycle $cycle: status sends nobody to restore" "restore" "$st"
  snapshot > "$RK_STATE/after-$cycle"
done
check_same "the second cycle ends where the first one did" "$RK_STATE/after-1" "$RK_STATE/after-2"
shot efifb-after
dmesg | grep -iE 'efifb|efi-framebuffer|vfio|fbcon|Console: switching' | tail -12 | sed 's/^/RK         dmesg| /'
