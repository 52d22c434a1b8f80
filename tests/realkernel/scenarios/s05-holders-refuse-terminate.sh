# Scenario 5 (issue 4), layout laptop, `gpuhook hook` run by hand.
# A process holds the dGPU's DRM render node (found through /sys/class/drm, not by name).
# Proves: with the default [host] holders = "refuse", prepare refuses (exit 1) naming the
# process and its pid, and nothing changed; with holders = "terminate" the process ends and the
# detach succeeds; release restores the host (drivers, overrides, /dev/vfio, modules, claims).
. "$RK_DIR/lib.sh"
NODE=
for n in $(drm_nodes_of $DGPU); do case $n in */renderD*) NODE=$n ;; esac; done
say "the render node of $DGPU is ${NODE:-missing}"
[ -n "$NODE" ] || rk_fail "no DRM render node under $DGPU in /sys/class/drm"
write_profile win <<EOT
[gpu]
address = "$DGPU"
EOT
# The holder: a child of this shell (which stays busy while gpuhook runs), like a GPU program
# started from a terminal.
sleep 600 < "$NODE" &
HOLDER=$!
wait_for 5 test "$(readlink /proc/$HOLDER/fd/0)" = "$NODE" || rk_fail "the holder did not open $NODE"
say "holder: sleep, pid $HOLDER, fd 0 -> $(readlink /proc/$HOLDER/fd/0)"
snapshot > "$RK_STATE/before"

gh win prepare begin < /dev/null
check "prepare exit status with a holder and holders = refuse" 1 "$GH_RC"
check_has "the refusal names the process" "sleep ($HOLDER)" "$GH_ERR"
check_has "the refusal names the node" "$NODE" "$GH_ERR"
check_has "the refusal says nothing was changed" "nothing on the host was changed" "$GH_ERR"
check "the holder still runs after the refusal" yes "$(kill -0 $HOLDER 2>/dev/null && echo yes || echo no)"
snapshot > "$RK_STATE/refused"
check_same "sysfs state before == after the refusal" "$RK_STATE/before" "$RK_STATE/refused"

write_profile win <<EOT
[gpu]
address = "$DGPU"
[host]
holders = "terminate"
EOT
gh win prepare begin < /dev/null
check "prepare exit status with holders = terminate" 0 "$GH_RC"
wait $HOLDER 2>/dev/null
HRC=$?
check "the holder was ended by SIGTERM (its exit status 128+15)" 143 "$HRC"
check "driver of $DGPU after prepare" vfio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after prepare" vfio-pci "$(drv $DGPU_AUDIO)"
check_has "log: the terminated process is named" "sleep ($HOLDER) holds $NODE" "$(log_lines terminating)"
say "prepare with terminate took ${GH_MS} ms (the step's own time: $(log_lines 'terminate processes holding' | grep -o '([0-9]* ms)'))"

gh win release end < /dev/null
check "release exit status" 0 "$GH_RC"
check "driver of $DGPU after release" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after release" snd_hda_intel "$(drv $DGPU_AUDIO)"
check "journal after release" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before == after release" "$RK_STATE/before" "$RK_STATE/after"
