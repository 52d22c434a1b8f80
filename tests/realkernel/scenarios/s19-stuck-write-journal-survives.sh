# Scenario 19 (issue 10), layout laptop, `gpuhook hook` by hand, test build's fault points.
# Proves: a guarded sysfs write whose child is still alive at its deadline is treated as "may
# have happened". Profile: [timeouts] unbind = 1; GPUHOOK_FAULT=slow-write:snd_hda_intel/unbind:12000
# makes the unbind of 01:00.1 from snd_hda_intel complete 12 s late (a driver stuck in unbind).
#  - prepare fails (exit 1) and rolls back;
#  - while the late writer still sleeps, no journal may be deleted: after the prepare (whose
#    journal names that writer: pending_pid=<its pid>) and after a release run at once, win's
#    journal is still there (the undo of 01:00.1 cannot be known done before the write happened);
#  - once the writer is gone (its unbind has happened), a release restores exactly: 01:00.1
#    back on snd_hda_intel (the real driver link), overrides "(null)", journal gone, snapshot
#    identical to the one before prepare.
# Second part, same boot (independent: it starts from the restored host): the late write is in
# RELEASE. A normal prepare, then a release with GPUHOOK_FAULT=slow-write:vfio-pci/unbind:8000
# (both functions' unbinds from vfio-pci land 8 s late): release exits 0 and keeps the journal,
# naming the pending writers (pending_pid); a `gpuhook restore win` run at once, while they still
# sleep, must not remove the journal either; once they are gone, a restore puts both functions
# back on their drivers, removes the journal, and the snapshot equals the one before.
# A gpuhook that trusts the link it sees during the rollback (01:00.1 still on snd_hda_intel)
# deletes the journal at once, and the late unbind leaves 01:00.1 without a driver.
. "$RK_DIR/lib.sh"
write_profile win <<EOT
[gpu]
address = "$DGPU"

[timeouts]
unbind = 1
EOT
jstate() { [ -e "/run/gpuhook/$1.journal" ] && echo present || echo absent; }
# The late writer: a child of the prepare's gpuhook, outliving it. Between events no other
# gpuhook process runs here, so any process whose executable is gpuhook is that writer.
GH_EXE=$(readlink -f "$GPUHOOK")
writer_pids() { ls -l /proc/[0-9]*/exe 2>/dev/null | grep -F -- "-> $GH_EXE" | sed 's,.*/proc/\([0-9]*\)/exe.*,\1,'; }
writer_alive() { [ -n "$(writer_pids)" ]; }
writer_gone() { ! writer_alive; }
snapshot > "$RK_STATE/before"
now_ms; T0=$MS
GPUHOOK_FAULT=slow-write:snd_hda_intel/unbind:12000 gh win prepare begin < /dev/null
PREP_RC=$GH_RC PREP_ERR=$GH_ERR
# What the checks need is recorded first and the release follows at once: under a loaded TCG
# guest a few forks take a second, and the late write must still be pending during the release.
W1=$(writer_pids | head -n1); J1=$(jstate win); cp /run/gpuhook/win.journal "$RK_STATE/j1" 2>/dev/null
gh win release end < /dev/null
REL_RC=$GH_RC
W2=$(writer_pids | head -n1); J2=$(jstate win); D2=$(rk_drivers_line $DGPU $DGPU_AUDIO)
say "after prepare: late writer ${W1:-gone}, journal $J1; after the first release: late writer ${W2:-gone}, journal $J2, $D2"
check "prepare exit status (the unbind of $DGPU_AUDIO timed out)" 1 "$PREP_RC"
check_has "prepare's stderr says the write may still complete" "may still complete" "$PREP_ERR"
check "the late writer outlives the prepare (precondition: the write is still pending)" yes "$([ -n "$W1" ] && echo yes || echo no)"
check "the late writer outlives the first release (precondition: the release ran while it slept)" yes "$([ -n "$W2" ] && echo yes || echo no)"
check "journal after the failed prepare, while the late write is pending" present "$J1"
[ -z "$W1" ] || check_has "the journal names the pending writer" "pending_pid=$W1" "$(cat "$RK_STATE/j1" 2>/dev/null)"
check "release exit status" 0 "$REL_RC"
[ -z "$W2" ] || check "journal after a release while the late write is pending" present "$J2"
wait_for 25 writer_gone || rk_fail "the late writer still runs 25 s later"
now_ms; say "the late writer is gone, $((MS - T0)) ms after the prepare began: $(rk_drivers_line $DGPU $DGPU_AUDIO); journal $(jstate win)"
if [ "$(jstate win)" = present ]; then
  sed 's/^/RK         journal| /' /run/gpuhook/win.journal
  gh win release end < /dev/null
  check "second release exit status" 0 "$GH_RC"
fi
say "end: $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU at the end" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO at the end (the late unbind undone)" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "driver_override of $DGPU_AUDIO at the end" "(null)" "$(ovr $DGPU_AUDIO)"
check "journal at the end" absent "$(jstate win)"
snapshot > "$RK_STATE/after"
check_same "before prepare == after the late write and the release" "$RK_STATE/before" "$RK_STATE/after"

say "--- part 2: the late write is in release"
gh win prepare begin < /dev/null
check "part 2: prepare exit status" 0 "$GH_RC"
GPUHOOK_FAULT=slow-write:vfio-pci/unbind:8000 gh win release end < /dev/null
REL_RC=$GH_RC
W1=$(writer_pids | tr '\n' ' '); J1=$(jstate win); cp /run/gpuhook/win.journal "$RK_STATE/j2" 2>/dev/null
# A person follows the advice at once: `gpuhook restore win` while the late writers still sleep.
OUT=$("$GPUHOOK" restore win 2>&1); rc1=$?
W2=$(writer_pids | tr '\n' ' '); J2=$(jstate win)
say "part 2: after the slowed release: late writer(s) ${W1:-gone}, journal $J1; after an immediate restore (exit $rc1): writer(s) ${W2:-gone}, journal $J2, $(rk_drivers_line $DGPU $DGPU_AUDIO)"
printf '%s\n' "$OUT" | sed 's/^/RK         restore| /'
check "part 2: release exit status" 0 "$REL_RC"
check "part 2: a late writer outlives the release (precondition)" yes "$([ -n "$W1" ] && echo yes || echo no)"
check "part 2: journal after a release whose unbinds are still pending" present "$J1"
[ -z "$W1" ] || check_has "part 2: the journal names a pending writer of the release" "pending_pid=" "$(cat "$RK_STATE/j2" 2>/dev/null)"
[ -z "$W2" ] || check "part 2: journal after a restore run while the release's writers still live" present "$J2"
wait_for 25 writer_gone || rk_fail "part 2: the late writers still run 25 s later"
say "part 2: the late writers are gone: $(rk_drivers_line $DGPU $DGPU_AUDIO); journal $(jstate win)"
if [ "$(jstate win)" = present ]; then
  OUT=$("$GPUHOOK" restore win 2>&1); rc=$?
  printf '%s\n' "$OUT" | sed 's/^/RK         restore| /'
  check "part 2: gpuhook restore exit status" 0 "$rc"
fi
check "part 2: driver of $DGPU at the end" virtio-pci "$(drv $DGPU)"
check "part 2: driver of $DGPU_AUDIO at the end" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "part 2: journal at the end" absent "$(jstate win)"
snapshot > "$RK_STATE/after2"
check_same "part 2: before == after the late writes and the restore" "$RK_STATE/before" "$RK_STATE/after2"
