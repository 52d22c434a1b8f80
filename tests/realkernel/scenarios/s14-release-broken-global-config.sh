# Scenario 14 (issue 10), layout laptop, `gpuhook hook` run by hand.
# Proves: journals live in /run/gpuhook/<vm>.journal whatever /etc/gpuhook/gpuhook.toml says, and
# release does not depend on the global config.
#  1. gpuhook.toml says `[state] dir = "/run/elsewhere"` at prepare. The README (main) refuses
#     that key unless it names /run/gpuhook; the issue's brief allowed a warning instead. Either
#     way nothing may ever be written under /run/elsewhere: refused -> the message names
#     "[state] dir", nothing changed, and the prepare is repeated with the [state] table removed;
#     accepted -> the journal is /run/gpuhook/win.journal and the log warns about the key.
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
[log]
level = "info"

[state]
dir = "/run/elsewhere"
EOT
snapshot > "$RK_STATE/before"
gh win prepare begin < /dev/null
check "files under /run/elsewhere after prepare" "" "$(find /run/elsewhere 2>/dev/null | tr '\n' ' ')"
if [ "$GH_RC" != 0 ]; then
  say "prepare refused the config with [state] dir (exit $GH_RC)"
  check_has "the refusal names the [state] dir key" "[state] dir" "$GH_ERR"
  check "journal after the refused prepare" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
  snapshot > "$RK_STATE/now"
  check_same "the refused prepare changed nothing" "$RK_STATE/before" "$RK_STATE/now"
  write_global <<'EOT'
[log]
level = "info"
EOT
  gh win prepare begin < /dev/null
  check "prepare exit status (config without [state])" 0 "$GH_RC"
else
  say "prepare accepted the config with [state] dir"
  check_has "log: a warning names the [state] dir key" "[state] dir" "$(log_lines "[win prepare" | grep -i warn)"
fi
check "driver of $DGPU after prepare" vfio-pci "$(drv $DGPU)"
check "journal at /run/gpuhook/win.journal" present "$([ -f /run/gpuhook/win.journal ] && echo present || echo absent)"

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
