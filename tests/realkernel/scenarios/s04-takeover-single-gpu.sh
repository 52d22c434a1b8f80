# Scenario 4 (issue 4), layout single, `gpuhook hook` run by hand.
# One GPU (00:02.0, bochs-drm, boot VGA) with the frame buffer console on it, profile in
# [display] mode = "takeover". Proves: with no systemd the services step is skipped with a note
# in the log; prepare unbinds the frame buffer vtconsole and moves the only GPU to vfio-pci
# (once its last framebuffer is gone the kernel unregisters fbcon's vtconsole altogether: the
# vtconN directory disappears while the VM has the GPU, and comes back with the driver);
# release gives back bochs-drm and the console binding, and nothing else differs from before
# (drivers, overrides, vtconsole binds, /sys/class/graphics and drm, /dev/vfio, modules, claims).
. "$RK_DIR/lib.sh"
GPU=0000:00:02.0
G=$(group_of $GPU)
VT=
for v in /sys/class/vtconsole/*; do grep -q "frame buffer" "$v/name" && VT=${v##*/}; done
say "the frame buffer console is $VT (bind=$(cat /sys/class/vtconsole/$VT/bind)); the GPU $GPU is in group $G"
check "$GPU is the boot VGA" 1 "$(cat $PCI/$GPU/boot_vga)"
write_profile solo <<EOT
[gpu]
address = "$GPU"
[display]
mode = "takeover"
EOT
snapshot > "$RK_STATE/before"
say "before: $(rk_drivers_line $GPU); $VT bind=$(cat /sys/class/vtconsole/$VT/bind); fb: $(ls /sys/class/graphics | tr '\n' ' ')"
gh solo prepare begin < /dev/null
check "prepare exit status" 0 "$GH_RC"
vt_state() { if [ -e /sys/class/vtconsole/$VT ]; then echo "bind=$(cat /sys/class/vtconsole/$VT/bind)"; else echo gone; fi; }
say "during: $(rk_drivers_line $GPU); $VT $(vt_state); fb: $(ls /sys/class/graphics | tr '\n' ' ')"
check "driver of $GPU after prepare" vfio-pci "$(drv $GPU)"
check "$VT (frame buffer console) no longer bound after prepare" yes "$(case $(vt_state) in bind=1) echo no ;; *) echo yes ;; esac)"
check "no framebuffer left on $GPU after prepare" none "$(ls /sys/class/graphics | grep -c '^fb[0-9]' | sed 's/^0$/none/')"
check "/dev/vfio/$G after prepare" yes "$([ -c /dev/vfio/$G ] && echo yes || echo no)"
check_has "log: the services step is skipped with a note (no systemd)" "systemd is not running: [host] stop_services skipped" "$(log_lines note:)"
check_has "log: the console step" "ok" "$(log_lines "unbind console $VT")"

gh solo release end < /dev/null
check "release exit status" 0 "$GH_RC"
say "after:  $(rk_drivers_line $GPU); $VT bind=$(cat /sys/class/vtconsole/$VT/bind); fb: $(ls /sys/class/graphics | tr '\n' ' ')"
check "driver of $GPU after release" bochs-drm "$(drv $GPU)"
check "$VT bind after release" 1 "$(cat /sys/class/vtconsole/$VT/bind)"
check "driver_override of $GPU after release" "(null)" "$(ovr $GPU)"
check "journal after release" absent "$([ -e /run/gpuhook/solo.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before prepare == after release" "$RK_STATE/before" "$RK_STATE/after"
