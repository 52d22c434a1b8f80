# Scenario 14 (issue 10), layout laptop, `gpuhook hook` run by hand.
# Proves: journals live in /run/gpuhook/<vm>.journal whatever /etc/gpuhook/gpuhook.toml says, and
# release does not depend on the global config.
#  1. gpuhook.toml says `[state] dir = "/run/elsewhere"` at prepare: the journal is written to
#     /run/gpuhook/win.journal (nothing under /run/elsewhere), and the key is warned about in the
#     log as no longer used.
#  2. gpuhook.toml then has a syntax error at release: release still finds the journal and
#     restores: both functions back on their drivers, journal gone, snapshot identical to before.
# Against the old behaviour (state dir from the config; a broken config falls back to the default
# state dir) the journal is under /run/elsewhere and release finds nothing to restore.
. "$RK_DIR/lib.sh"
write_profile win <<EOT
[gpu]
address = "$DGPU"
EOT
write_global() { cat > /etc/gpuhook/gpuhook.toml; chmod 0644 /etc/gpuhook/gpuhook.toml; }
write_global <<'EOT'
[state]
dir = "/run/elsewhere"
EOT
snapshot > "$RK_STATE/before"
gh win prepare begin < /dev/null
check "prepare exit status (config with [state] dir)" 0 "$GH_RC"
check "driver of $DGPU after prepare" vfio-pci "$(drv $DGPU)"
check "journal at /run/gpuhook/win.journal, whatever [state] dir says" present "$([ -f /run/gpuhook/win.journal ] && echo present || echo absent)"
check "files under /run/elsewhere" "" "$(find /run/elsewhere 2>/dev/null | tr '\n' ' ')"
check_has "log: a warning names the [state] dir key" "[state] dir" "$(log_lines "[win prepare" | grep -i warn)"

write_global <<'EOT'
[log
level = "info"
EOT
say "gpuhook.toml now has a syntax error"
gh win release end < /dev/null
check "release exit status (broken global config)" 0 "$GH_RC"
say "after:   $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU after release with a broken config" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after release with a broken config" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "driver_override of $DGPU after release" "(null)" "$(ovr $DGPU)"
check "journal after release" absent "$([ -e /run/gpuhook/win.journal ] || [ -e /run/elsewhere/win.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before prepare == after release with a broken config" "$RK_STATE/before" "$RK_STATE/after"
check_has "log: release reported the broken config" "gpuhook.toml" "$(log_lines "[win release")"
