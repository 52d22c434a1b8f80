# Scenario 15 (issue 10), layout laptop, `gpuhook hook` run by hand.
# Proves: no exception escapes an event, and one undo that cannot run does not stop the others.
# The profile has a [[commands]] when = "prepare" whose run is a valid program and whose undo is
# an executable script WITHOUT "#!" (execve fails with ENOEXEC). Release:
#  - exits 0, and every other step is undone: both dGPU functions back on their drivers with
#    driver_override "(null)", vfio-pci unloaded, claims gone (the sysfs snapshot, which holds
#    no journal, is identical to the one before prepare);
#  - the log and stderr name the undo program and why it failed (exec format error / no "#!");
#  - the journal is kept, with the command step (and, as the README says, the older steps, whose
#    undos are idempotent: the final restore below proves re-running them changes nothing).
# Then, with the script fixed (a "#!/bin/sh" line added), `gpuhook restore win` runs the kept
# undo and removes the journal.
. "$RK_DIR/lib.sh"
U=/run/rk/undo-no-shebang
printf 'echo undone > /run/rk/undo-ran\n' > $U
chmod 0755 $U
write_profile win <<EOT
[gpu]
address = "$DGPU"

[[commands]]
when = "prepare"
run = ["/bin/true"]
undo = ["$U"]
EOT
snapshot > "$RK_STATE/before"
gh win prepare begin < /dev/null
check "prepare exit status" 0 "$GH_RC"
check "driver of $DGPU after prepare" vfio-pci "$(drv $DGPU)"
check_has "journal after prepare holds the command step" " command " "$(cat /run/gpuhook/win.journal 2>/dev/null)"

gh win release end < /dev/null
check "release exit status" 0 "$GH_RC"
say "after:   $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU after release" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after release" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "driver_override of $DGPU after release" "(null)" "$(ovr $DGPU)"
check "driver_override of $DGPU_AUDIO after release" "(null)" "$(ovr $DGPU_AUDIO)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before prepare == after release (every other step undone)" "$RK_STATE/before" "$RK_STATE/after"
J=$(cat /run/gpuhook/win.journal 2>/dev/null)
sed 's/^/RK         journal| /' /run/gpuhook/win.journal 2>/dev/null
check "journal after release" present "$([ -f /run/gpuhook/win.journal ] && echo present || echo absent)"
# Which steps stay: the issue's brief says only the failed one; the README (main) says the failed
# one "with every older step for the next try" (their undos are idempotent). Either way the
# command step stays, and no step newer than it (there is none here: it is the last one).
kept=$(printf '%s\n' "$J" | awk '$1=="step"{print $2 ":" $3}' | tr '\n' ' ' | sed 's/ $//')
say "steps kept in the journal: $kept"
check_has "the journal keeps the command step" ":command" "$kept"
check "the command step is the newest one kept" command "$(printf '%s\n' "$J" | awk '$1=="step"{k=$3} END{print k}')"
L=$(log_lines "[win release")
check_has "log: the failed undo names its program" "$U" "$L"
# Why it failed: execve's ENOEXEC ("Exec format error"), or gpuhook's own words about "#!".
why=$(printf '%s\n' "$L" | grep -F -- "$U" | grep -ciE 'exec format|#!|not executable|cannot (be )?execute|cannot run' || true)
[ "$why" -gt 0 ] && check "log: the line naming $U says why it failed (exec format error / #!)" yes yes ||
  rk_fail "log: the line naming $U should say why it failed (exec format error, no #!); the release's lines were: $(printf '%s\n' "$L" | tr '\n' '|')"
check_has "stderr of release names the undo program" "$U" "$GH_ERR"
check "the undo script never ran" absent "$([ -e /run/rk/undo-ran ] && echo present || echo absent)"

printf '#!/bin/sh\necho undone > /run/rk/undo-ran\n' > $U
OUT=$("$GPUHOOK" restore win 2>&1); rc=$?
printf '%s\n' "$OUT" | sed 's/^/RK         restore| /'
check "gpuhook restore win (script fixed) exit status" 0 "$rc"
check "the fixed undo ran" present "$([ -e /run/rk/undo-ran ] && echo present || echo absent)"
check "journal after restore" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after2"
check_same "sysfs state before prepare == after restore" "$RK_STATE/before" "$RK_STATE/after2"
