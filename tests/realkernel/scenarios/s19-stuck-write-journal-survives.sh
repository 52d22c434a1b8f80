# Scenario 19 (issue 10), layout laptop, `gpuhook hook` by hand, test build's fault points.
# Proves: a guarded sysfs write whose child is still alive at its deadline is treated as "may
# have happened". Profile: [timeouts] unbind = 1; GPUHOOK_FAULT=slow-write:snd_hda_intel/unbind:4000
# makes the unbind of 01:00.1 from snd_hda_intel complete 4 s late (a driver stuck in unbind).
#  - prepare fails (exit 1) and rolls back;
#  - while the late writer still sleeps, no journal may be deleted: after the prepare and after
#    a release run at once, win's journal is still there (the undo of 01:00.1 cannot be known
#    done before the write has happened);
#  - once the writer is gone (its unbind has happened), a release restores exactly: 01:00.1
#    back on snd_hda_intel (the real driver link), overrides "(null)", journal gone, snapshot
#    identical to the one before prepare.
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
writer_alive() { ls -l /proc/[0-9]*/exe 2>/dev/null | grep -qF -- "-> $GH_EXE"; }
writer_gone() { ! writer_alive; }
snapshot > "$RK_STATE/before"
now_ms; T0=$MS
GPUHOOK_FAULT=slow-write:snd_hda_intel/unbind:4000 gh win prepare begin < /dev/null
check "prepare exit status (the unbind of $DGPU_AUDIO timed out)" 1 "$GH_RC"
check_has "prepare's stderr: it rolled back or kept the journal" "gpuhook" "$GH_ERR"
alive=no; writer_alive && alive=yes
say "after prepare: late writer alive: $alive; $(rk_drivers_line $DGPU $DGPU_AUDIO); journal $(jstate win)"
check "the late writer outlives the prepare (precondition: the write is still pending)" yes "$alive"
if [ $alive = yes ]; then
  check "journal after the failed prepare, while the late write is pending" present "$(jstate win)"
fi
gh win release end < /dev/null
check "release exit status" 0 "$GH_RC"
alive=no; writer_alive && alive=yes
say "after the first release: late writer alive: $alive; $(rk_drivers_line $DGPU $DGPU_AUDIO); journal $(jstate win)"
if [ $alive = yes ]; then
  check "journal after a release while the late write is pending" present "$(jstate win)"
fi
wait_for 15 writer_gone || rk_fail "the late writer still runs 15 s later"
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
