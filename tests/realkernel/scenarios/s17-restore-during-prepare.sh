# Scenario 17 (issue 10), layout laptop, `gpuhook hook` by hand, test build's fault points.
# Proves: `gpuhook restore win` started while a prepare of win is half-way (01:00.0 already on
# vfio-pci, the unbind of 01:00.1 from snd_hda_intel slowed by 4 s with
# GPUHOOK_FAULT=slow-write:snd_hda_intel/unbind:4000) never leaves the host half-prepared: the
# restore either waits for the prepare's locks and then restores everything, or refuses naming
# the running event ("prepare"). When both have ended the host is either fully prepared (both
# functions on vfio-pci, win's journal and claims; a release then restores it) or fully restored
# (snapshot identical to before, no journal). (The probe write, /sys/bus/pci/drivers_probe, has no
# address in its path; the unbind's path names the driver, and only 01:00.1 is on snd_hda_intel.)
. "$RK_DIR/lib.sh"
write_profile win <<EOT
[gpu]
address = "$DGPU"
EOT
jstate() { [ -e "/run/gpuhook/$1.journal" ] && echo present || echo absent; }
snapshot > "$RK_STATE/before"
GPUHOOK_FAULT=slow-write:snd_hda_intel/unbind:4000 "$GPUHOOK" hook win prepare begin - < /dev/null 2> "$RK_STATE/prep.err" & pp=$!
say "prepare of win started (pid $pp), the unbind of $DGPU_AUDIO slowed by 4 s"
half() { on_driver $DGPU vfio-pci && [ -f /run/gpuhook/win.journal ]; }
if wait_for 20 half; then
  say "half-way: $(rk_drivers_line $DGPU $DGPU_AUDIO); prepare running: $(kill -0 $pp 2>/dev/null && echo yes || echo no)"
else
  rk_fail "the prepare never got 01:00.0 onto vfio-pci with its journal written: $(rk_drivers_line $DGPU $DGPU_AUDIO)"
fi
check "the prepare is still running when the restore starts (precondition)" yes "$(kill -0 $pp 2>/dev/null && echo yes || echo no)"
OUT=$("$GPUHOOK" restore win 2>&1); rr=$?
printf '%s\n' "$OUT" | sed 's/^/RK         restore| /'
say "restore -> exit $rr; prepare running: $(kill -0 $pp 2>/dev/null && echo yes || echo no)"
wait $pp; rp=$?
say "prepare -> exit $rp; now: $(rk_drivers_line $DGPU $DGPU_AUDIO); journal $(jstate win)"
sed 's/^/RK         prepare stderr| /' "$RK_STATE/prep.err"
check "prepare exit status" 0 "$rp"
if [ "$rr" != 0 ]; then
  check_has "the refused restore names the running event" "prepare" "$OUT"
fi
snapshot > "$RK_STATE/end"
if cmp -s "$RK_STATE/before" "$RK_STATE/end" && [ "$(jstate win)" = absent ]; then
  say "the host ended fully restored (the restore waited for the prepare, exit $rr)"
  check "restore exit status when it ran after the prepare" 0 "$rr"
  check_same "fully restored: before == end" "$RK_STATE/before" "$RK_STATE/end"
else
  say "the host did not end restored: it must be fully prepared"
  check "fully prepared: driver of $DGPU" vfio-pci "$(drv $DGPU)"
  check "fully prepared: driver of $DGPU_AUDIO" vfio-pci "$(drv $DGPU_AUDIO)"
  check "fully prepared: win's journal" present "$(jstate win)"
  check "fully prepared: claims" "win win" "$(cat /run/gpuhook/claims/$DGPU /run/gpuhook/claims/$DGPU_AUDIO 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
  check "fully prepared: the journal has both pci.vfio steps" 2 "$(grep -c '^step [0-9]* pci.vfio ' /run/gpuhook/win.journal 2>/dev/null)"
  gh win release end < /dev/null
  check "journal after release" absent "$(jstate win)"
  snapshot > "$RK_STATE/after"
  check_same "before prepare == after release" "$RK_STATE/before" "$RK_STATE/after"
fi
