# Scenario 12 (issue 6), layout laptop. A foreign /etc/libvirt/hooks/qemu (a script appending
# its arguments to a file) is already installed. install/install.sh --no-deps --no-reload
# --prefix <tmp> --binary <built gpuhook> (the guest's / is read-only and TCG is slow: it
# installs the binary built on the host) must leave the foreign hook alone and put gpuhook in
# hooks/qemu.d/. Proves: both run on a start/destroy (the foreign hook's file shows every event;
# gpuhook's log shows its steps) and the host is restored.
. "$RK_DIR/lib.sh"
lv_configure
cat > /etc/libvirt/hooks/qemu <<'EOH'
#!/bin/sh
echo "$*" >> /var/tmp/foreign-hook.log
cat > /dev/null
exit 0
EOH
chmod 0755 /etc/libvirt/hooks/qemu
FOREIGN=$(md5sum < /etc/libvirt/hooks/qemu)
OUT=$("$SRC/install/install.sh" --no-deps --no-reload --prefix /var/tmp/inst --binary "$GPUHOOK" 2>&1); rc=$?
printf '%s\n' "$OUT" | sed 's/^/RK         install| /'
check "install.sh exit status" 0 "$rc"
check "the foreign hook is untouched" "$FOREIGN" "$(md5sum < /etc/libvirt/hooks/qemu)"
check "gpuhook is installed in qemu.d" /var/tmp/inst/bin/gpuhook "$(readlink /etc/libvirt/hooks/qemu.d/gpuhook)"
check "the installed binary is the one built" "$(md5sum < "$GPUHOOK")" "$(md5sum < /var/tmp/inst/bin/gpuhook)"
write_profile g <<EOT
[gpu]
address = "$DGPU"
EOT
lv_start || exit 1
lv_define g no $DGPU $DGPU_AUDIO
snapshot > "$RK_STATE/before"
OUT=$(virsh start g 2>&1); rc=$?
check "virsh start g exit status" 0 "$rc"
check "driver of $DGPU while the domain runs" vfio-pci "$(drv $DGPU)"
OUT=$(virsh destroy g 2>&1); rc=$?
check "virsh destroy g exit status" 0 "$rc"
sed 's/^/RK         foreign-hook.log| /' /var/tmp/foreign-hook.log
check "the foreign hook saw every event" "g prepare begin -|g start begin -|g started begin -|g stopped end -|g release end -" \
  "$(tr '\n' '|' < /var/tmp/foreign-hook.log | sed 's/|$//')"
check "gpuhook's events for g, in order" "prepare start started stopped release" "$(log_events g)"
check_has "log: gpuhook's prepare steps ran" "bind $DGPU to vfio-pci" "$(log_lines "[g prepare")"
check "driver of $DGPU after destroy" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after destroy" snd_hda_intel "$(drv $DGPU_AUDIO)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before start == after destroy" "$RK_STATE/before" "$RK_STATE/after"
