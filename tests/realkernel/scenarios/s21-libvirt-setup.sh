# Scenario 21 (issue 11), layout laptop: `gpuhook setup` from a bare domain to a working
# passthrough, then back. The domain has only the dGPU's first function, as managed='yes', and
# there is no profile. `gpuhook setup g --gpu 01:00.0 --yes` (this layout's "dGPU" shares its
# slot with an Intel audio function, so doctor calls it integrated and setup takes it only when
# named) must leave every function of the card as managed='no' hostdevs, a trusted profile, and
# a backup; virsh start binds both functions to vfio-pci, virsh destroy gives them back; a second
# setup changes nothing; --dry-run changes nothing; --undo restores the exact old definition and
# removes the profile.
. "$RK_DIR/lib.sh"
lv_configure
lv_install_hook
lv_start || exit 1
lv_define g yes $DGPU
dump() { virsh dumpxml --inactive --security-info g; }
before=$(dump)
setup() { SRC_RC=0; SOUT=$("$GPUHOOK" setup g "$@" </dev/null 2>"$RK_STATE/setup.err") || SRC_RC=$?; SERR=$(cat "$RK_STATE/setup.err"); }

setup --gpu $DGPU --dry-run
check "setup --dry-run exit status ($SERR)" 0 "$SRC_RC"
check_has "setup --dry-run: the diff adds the audio function" "function='0x1'/>" "$SOUT"
check "domain after --dry-run" same "$([ "$(dump)" = "$before" ] && echo same || echo changed)"
check "profile after --dry-run" absent "$([ -e /etc/gpuhook/vms/g.toml ] && echo present || echo absent)"

setup --gpu $DGPU --yes
say "gpuhook setup g --gpu $DGPU --yes -> exit $SRC_RC"
printf '%s\n' "$SOUT" | sed 's/^/RK         setup| /'
[ -z "$SERR" ] || printf '%s\n' "$SERR" | sed 's/^/RK         setup stderr| /'
after=$(dump)
check "domain after setup: hostdevs (function, managed)" "0x0 no 0x1 no" \
  "$(printf '%s\n' "$after" | python3 -c 'import sys,xml.etree.ElementTree as E; d=E.fromstring(sys.stdin.read()); print(" ".join(h.find("source/address").get("function")+" "+h.get("managed") for h in d.find("devices").findall("hostdev")))')"
check "profile mode and owner" "600 0" "$(stat -c '%a %u' /etc/gpuhook/vms/g.toml 2>&1)"
check "backups" "g.0001.xml" "$(ls /var/lib/gpuhook/backups 2>&1)"
check_has "setup ends with check's report" "Check of VM g" "$SOUT"

snapshot > "$RK_STATE/before"
say "BEFORE:  $(rk_drivers_line $DGPU $DGPU_AUDIO)"
OUT=$(virsh start g 2>&1); rc=$?
say "virsh start g -> exit $rc: $OUT"
check "virsh start g exit status" 0 "$rc"
say "DURING:  $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU while the domain runs" vfio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO while the domain runs" vfio-pci "$(drv $DGPU_AUDIO)"
OUT=$(virsh destroy g 2>&1); rc=$?
say "virsh destroy g -> exit $rc: $OUT"
say "AFTER:   $(rk_drivers_line $DGPU $DGPU_AUDIO)"
check "driver of $DGPU after destroy" virtio-pci "$(drv $DGPU)"
check "driver of $DGPU_AUDIO after destroy" snd_hda_intel "$(drv $DGPU_AUDIO)"
# setup's profile has the default [host] unload_vfio = false: vfio-pci stays for the next start,
# and `gpuhook restore --all-modules` gives back the module set of before.
check "vfio_pci still loaded after destroy (default)" yes "$(grep -q '^vfio_pci ' /proc/modules && echo yes || echo no)"
OUT=$("$GPUHOOK" restore --all-modules 2>&1); rc=$?
check "restore --all-modules exit status" 0 "$rc"
snapshot > "$RK_STATE/after"
check_same "sysfs state before start == after destroy and restore --all-modules" "$RK_STATE/before" "$RK_STATE/after"

setup --gpu $DGPU --yes
check_has "a second setup" "nothing to change" "$SOUT"
check "domain after a second setup" same "$([ "$(dump)" = "$after" ] && echo same || echo changed)"
check "backups after a second setup" "g.0001.xml" "$(ls /var/lib/gpuhook/backups 2>&1)"

setup --undo --yes
check "setup --undo exit status ($SERR)" 0 "$SRC_RC"
check "domain after --undo (exactly the old definition)" same "$([ "$(dump)" = "$before" ] && echo same || echo changed)"
check "profile after --undo" absent "$([ -e /etc/gpuhook/vms/g.toml ] && echo present || echo absent)"
show_log "[g "
