# Scenario 8 (issue 6), layout messy: the GPU 03:01.0 shares its IOMMU group with the e1000 NIC
# 03:02.0 (behind a PCIe-to-PCI bridge; see scenario 2 for why it is not 01:00.0 here). The
# domain has 03:01.0 as a managed='no' hostdev and a gpuhook profile. Proves: `virsh start`
# fails and virsh's error carries gpuhook's message naming the NIC, the domain stays shut off,
# no driver or override changed, no journal is left.
. "$RK_DIR/lib.sh"
GPU=0000:03:01.0 NIC=0000:03:02.0
lv_configure
lv_install_hook
write_profile g <<EOT
[gpu]
address = "$GPU"
EOT
lv_start || exit 1
lv_define g no $GPU
snapshot > "$RK_STATE/before"
say "BEFORE: $(rk_drivers_line $GPU $NIC)"
OUT=$(virsh start g 2>&1); rc=$?
printf '%s\n' "$OUT" | sed 's/^/RK         virsh| /'
check "virsh start g exit status (refused)" 1 "$rc"
check_has "virsh's error carries gpuhook's message" "gpuhook: cannot prepare VM g" "$OUT"
check_has "virsh's error names the NIC" "$NIC" "$OUT"
check_has "virsh's error names the NIC's driver" "e1000" "$OUT"
check "domain state after the refusal" "shut off" "$(domstate g)"
say "AFTER:  $(rk_drivers_line $GPU $NIC)"
check "journal after the refusal" absent "$([ -e /run/gpuhook/g.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before == after the refused start" "$RK_STATE/before" "$RK_STATE/after"
show_log "[g "
