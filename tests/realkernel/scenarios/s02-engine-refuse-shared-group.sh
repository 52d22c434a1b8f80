# Scenario 2 (issue 3), layout messy, `gpuhook hook` run by hand.
# On this layout the GPU that shares its IOMMU group with a NIC is 03:01.0 (secondary-vga behind
# a PCIe-to-PCI bridge, with the e1000 NIC 03:02.0): 01:00.0 sits alone with its audio function
# behind its own root port. Proves: a profile for 03:01.0 is refused (exit 1) with a message
# naming the NIC (0000:03:02.0, on e1000), and nothing changed (no driver, no override, no
# journal, no claim); and that the dGPU 01:00.0, whose group is clean, is not refused.
. "$RK_DIR/lib.sh"
GPU=0000:03:01.0 NIC=0000:03:02.0
G=$(group_of $GPU)
say "group $G holds: $(ls /sys/kernel/iommu_groups/$G/devices | tr '\n' ' ')"
check "the NIC $NIC is in the GPU's group" "$G" "$(group_of $NIC)"
check "the dGPU 01:00.0 has a group of its own (not the NIC's)" different "$([ "$(group_of $DGPU)" != "$G" ] && echo different || echo same)"
write_profile shared <<EOT
[gpu]
address = "$GPU"
EOT
snapshot > "$RK_STATE/before"
say "before: $(rk_drivers_line $GPU $NIC $DGPU $DGPU_AUDIO)"
gh shared prepare begin < /dev/null
check "prepare exit status (refused)" 1 "$GH_RC"
check_has "the refusal names the NIC's address" "$NIC" "$GH_ERR"
check_has "the refusal names the NIC's driver" "e1000" "$GH_ERR"
check_has "the refusal says nothing was changed" "nothing on the host was changed" "$GH_ERR"
say "after:  $(rk_drivers_line $GPU $NIC $DGPU $DGPU_AUDIO)"
check "journal after the refusal" absent "$([ -e /run/gpuhook/shared.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before == after the refused prepare" "$RK_STATE/before" "$RK_STATE/after"
check_has "log: the refusal is logged" "refused: IOMMU group $G" "$(log_lines refused)"

# The dGPU's own group is clean: `gpuhook plan` (changes nothing) does not refuse it.
write_profile dgpu <<EOT
[gpu]
address = "$DGPU"
EOT
P=$("$GPUHOOK" plan dgpu 2>&1); rc=$?
printf '%s\n' "$P" | sed 's/^/RK         plan| /'
check "gpuhook plan for 01:00.0 on this layout (exit status)" 0 "$rc"
check_lacks "the plan for 01:00.0 does not mention the NIC" "$NIC" "$P"
