# Scenario 16 (issue 10), layout dual (two dGPUs, each with its audio function, in IOMMU groups
# of their own), `gpuhook hook` run by hand.
# Proves: VM a's release and VM b's prepare, on different GPUs, run at the same time without
# breaking each other. a's prepare loads vfio-pci (journal: module.load); then a's release and
# b's prepare are started together (b 0, 200 and 400 ms after a, one round each). Every round:
# b's prepare succeeds, both of b's functions end on vfio-pci and /dev/vfio/<b's group> exists,
# vfio-pci is still loaded (a's release must not unload it while b's devices are bound to it),
# a's functions are back on virtio-pci and snd_hda_intel, a's journal is gone, b's is there. b's
# release then restores its GPU; vfio-pci, which b's prepare may have found loaded, is unloaded
# by the test when no journal did it, and the snapshot equals the one before the round.
. "$RK_DIR/lib.sh"
B_GPU=0000:02:00.0 B_AUDIO=0000:02:00.1
GA=$(group_of $DGPU) GB=$(group_of $B_GPU)
say "a: $DGPU $DGPU_AUDIO in group $GA; b: $B_GPU $B_AUDIO in group $GB"
check "b's audio shares b's group" "$GB" "$(group_of $B_AUDIO)"
[ "$GA" != "$GB" ] && [ "$GA" != none ] || rk_fail "the two dGPUs must be in different IOMMU groups: a $GA, b $GB"
write_profile a <<EOT
[gpu]
address = "$DGPU"
EOT
write_profile b <<EOT
[gpu]
address = "$B_GPU"
EOT
snapshot > "$RK_STATE/before"
BEFORE_MODS=$(grep '^modules ' "$RK_STATE/before")
jstate() { [ -e "/run/gpuhook/$1.journal" ] && echo present || echo absent; }
# Unload what the round left loaded and no journal recorded (vfio-pci and what came with it).
unload_extra_modules() {
  local i m extra
  for i in 1 2 3 4; do
    extra=
    while read -r m _; do case " ${BEFORE_MODS#modules } " in *" $m "*) ;; *) extra="$extra $m" ;; esac; done < /proc/modules
    [ -n "$extra" ] || return 0
    [ $i = 1 ] && say "modules loaded by the round and not unloaded by a journal:$extra (unloaded by the test)"
    for m in $extra; do rmmod "$m" 2>/dev/null; done
  done
}

for off in 0 0.2 0.4; do
  say "--- round: b's prepare ${off}s after a's release"
  gh a prepare begin < /dev/null
  check "[$off] a's prepare exit status" 0 "$GH_RC"
  check "[$off] a's $DGPU on vfio-pci" vfio-pci "$(drv $DGPU)"
  check_has "[$off] a's journal loaded vfio-pci (module.load)" " module.load " "$(cat /run/gpuhook/a.journal 2>/dev/null)"
  "$GPUHOOK" hook a release end - < /dev/null 2> "$RK_STATE/a.err" & pa=$!
  [ "$off" = 0 ] || sleep "$off"
  "$GPUHOOK" hook b prepare begin - < /dev/null 2> "$RK_STATE/b.err" & pb=$!
  wait $pa; ra=$?
  wait $pb; rb=$?
  say "[$off] a release -> $ra, b prepare -> $rb: $(rk_drivers_line $DGPU $DGPU_AUDIO $B_GPU $B_AUDIO); vfio-pci $([ -d /sys/bus/pci/drivers/vfio-pci ] && echo loaded || echo 'not loaded')"
  sed 's/^/RK         b stderr| /' "$RK_STATE/b.err"
  check "[$off] a's release exit status" 0 "$ra"
  check "[$off] b's prepare exit status" 0 "$rb"
  check "[$off] driver of b's $B_GPU" vfio-pci "$(drv $B_GPU)"
  check "[$off] driver of b's $B_AUDIO" vfio-pci "$(drv $B_AUDIO)"
  check "[$off] vfio-pci still loaded" loaded "$([ -d /sys/bus/pci/drivers/vfio-pci ] && echo loaded || echo 'not loaded')"
  check "[$off] /dev/vfio/$GB (b's group)" present "$([ -c /dev/vfio/$GB ] && echo present || echo absent)"
  check "[$off] driver of a's $DGPU" virtio-pci "$(drv $DGPU)"
  check "[$off] driver of a's $DGPU_AUDIO" snd_hda_intel "$(drv $DGPU_AUDIO)"
  check "[$off] driver_override of a's $DGPU" "(null)" "$(ovr $DGPU)"
  check "[$off] a's journal" absent "$(jstate a)"
  check "[$off] b's journal" present "$(jstate b)"
  gh b release end < /dev/null
  check "[$off] driver of b's $B_GPU after b's release" virtio-pci "$(drv $B_GPU)"
  check "[$off] driver of b's $B_AUDIO after b's release" snd_hda_intel "$(drv $B_AUDIO)"
  check "[$off] b's journal after its release" absent "$(jstate b)"
  # Start the next round clean even when this one failed (the failure is already counted).
  [ "$(jstate a)" = absent ] || { say "[$off] cleanup: gpuhook restore a"; "$GPUHOOK" restore a >/dev/null 2>&1; }
  unload_extra_modules
  snapshot > "$RK_STATE/after"
  check_same "[$off] sysfs state before the round == after it" "$RK_STATE/before" "$RK_STATE/after"
done
