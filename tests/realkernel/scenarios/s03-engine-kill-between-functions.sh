# Scenario 3 (issue 3), layout laptop, `gpuhook hook` run by hand, test build's fault points.
# Proves: when the hook is SIGKILLed right after the first function went to vfio-pci and before
# the second one did (GPUHOOK_FAULT=after-apply:pci.vfio:1), the journal on disk is enough for
# release to put the host back exactly as before: both functions on their host drivers,
# overrides cleared, modules, /dev/vfio and claims as before, journal gone.
. "$RK_DIR/lib.sh"
G=$(group_of $DGPU)
write_profile win <<EOT
[gpu]
address = "$DGPU"
EOT
snapshot > "$RK_STATE/before"
say "before: $(rk_drivers_line $DGPU $DGPU_AUDIO)"
GPUHOOK_FAULT=after-apply:pci.vfio:1 gh win prepare begin < /dev/null
check "prepare was killed by SIGKILL (exit status 128+9)" 137 "$GH_RC"
say "killed: $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "first function on vfio-pci when killed" vfio-pci "$(drv $DGPU)"
check "second function still on its host driver when killed" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "journal left by the killed hook" present "$([ -f /run/gpuhook/win.journal ] && echo present || echo absent)"
sed 's/^/RK         journal| /' /run/gpuhook/win.journal
# The killed hook's log lines must be in the file (it never ran a destructor or a flush).
check_has "log: the killed prepare's lines reached the file (its last completed step)" "): load module vfio-pci" "$(log_lines "[win prepare")"

gh win release end < /dev/null
check "release exit status" 0 "$GH_RC"
say "after:  $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU after release" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after release" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "driver_override of $DGPU after release" "(null)" "$(ovr $DGPU)"
check "journal after release" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before the killed prepare == after release" "$RK_STATE/before" "$RK_STATE/after"
check_has "log: release restored from the journal" "restoring" "$(log_lines "restoring")"
