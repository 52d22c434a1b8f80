# Scenario f. `gpuhook setup VM` against the real libvirtd: a domain defined with only the GPU's
# first function as a managed='yes' hostdev, and no profile.
#   - without a terminal and without --yes: exit 2, domain and files unchanged;
#   - --dry-run: the diff on stdout, exit 0, nothing changed;
#   - --yes: the domain (read back from libvirtd) has both functions as managed='no' hostdevs and
#     the laptop's subsystem ids (1462:11c8 = 5218:4552) as qemu:override on alias hostdev0; the
#     profile is written root 0600 with setup's marker; the old XML is kept as a 0600 backup;
#     it ends with check's report;
#   - a second --yes changes nothing (same XML, no new backup);
#   - --undo --yes restores the exact old definition (dumpxml --inactive --security-info equal)
#     and removes the profile.
# The host side is a fake sysfs under --root, as in check_contract (this host has no GPU).
vm=setupme
export LIBVIRT_DEFAULT_URI=qemu:///system
ROOT=$SBX/root

attr() { mkdir -p "$(dirname "$1")"; printf '%s\n' "$2" > "$1"; }
pci_dev() {  # pci_dev PATH-UNDER-/sys/devices ADDR CLASS VENDOR DEVICE SUBVENDOR SUBDEVICE DRIVER GROUP BOOT_VGA
  local p=$ROOT/sys/devices/$1 a=$2
  attr "$p/class" "$3"; attr "$p/vendor" "$4"; attr "$p/device" "$5"
  attr "$p/subsystem_vendor" "$6"; attr "$p/subsystem_device" "$7"
  attr "$p/driver_override" "(null)"
  [ "$3" = 0x030000 ] && attr "$p/boot_vga" "${10}"
  mkdir -p "$ROOT/sys/bus/pci/drivers/$8" "$ROOT/sys/kernel/iommu_groups/$9/devices" "$ROOT/sys/bus/pci/devices"
  ln -s "$(realpath --relative-to="$p" "$ROOT/sys/bus/pci/drivers/$8")" "$p/driver"
  ln -s "$(realpath --relative-to="$p" "$ROOT/sys/kernel/iommu_groups/$9")" "$p/iommu_group"
  ln -s "$(realpath --relative-to="$ROOT/sys/bus/pci/devices" "$p")" "$ROOT/sys/bus/pci/devices/$a"
  ln -s "$(realpath --relative-to="$ROOT/sys/kernel/iommu_groups/$9/devices" "$p")" "$ROOT/sys/kernel/iommu_groups/$9/devices/$a"
  ln -s "$(realpath --relative-to="$ROOT/sys/bus/pci/drivers/$8" "$p")" "$ROOT/sys/bus/pci/drivers/$8/$a"
}
pci_dev pci0000:00/0000:00:00.0 0000:00:00.0 0x060000 0x8086 0x3e10 0x1462 0x11c8 skl_uncore 0 0
pci_dev pci0000:00/0000:00:02.0 0000:00:02.0 0x030000 0x8086 0x3e9b 0x1462 0x11c8 i915 0 1
pci_dev pci0000:00/0000:00:01.0 0000:00:01.0 0x060400 0x8086 0x1901 0x1462 0x11c8 pcieport 2 0
pci_dev pci0000:00/0000:00:01.0/0000:01:00.0 0000:01:00.0 0x030000 0x10de 0x1c8d 0x1462 0x11c8 nouveau 1 0
pci_dev pci0000:00/0000:00:01.0/0000:01:00.1 0000:01:00.1 0x040300 0x10de 0x10f1 0x1462 0x11c8 snd_hda_intel 1 0
attr "$ROOT/sys/class/dmi/id/chassis_type" 10
attr "$ROOT/proc/cmdline" "BOOT_IMAGE=/vmlinuz root=/dev/sda1 intel_iommu=on iommu=pt"
mkdir -p -m 0755 "$ROOT/etc/gpuhook/vms" "$ROOT/var/lib"

define_domain $vm "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev>"
dump() { virsh dumpxml --inactive --security-info $vm; }
before=$(dump)
prof=$ROOT/etc/gpuhook/vms/$vm.toml
setup() { rc=0; out=$("$GPUHOOK" --root "$ROOT" setup $vm "$@" </dev/null 2>"$SBX/setup.err") || rc=$?; err=$(cat "$SBX/setup.err"); }

setup
expect_eq "$rc" 2 "setup without a terminal and without --yes: exit status"
expect_contains "$err" "nothing changed" "its message"
expect_eq "$(dump)" "$before" "domain after a refused setup"
[ ! -e "$prof" ] || fail "a profile was written by a refused setup"
ok "no terminal, no --yes: exit 2, nothing changed"

setup --dry-run
expect_eq "$rc" 0 "setup --dry-run: exit status ($err)"
expect_contains "$out" "-    <hostdev mode='subsystem' type='pci' managed='yes'>" "dry run diff: the managed='yes' line goes"
expect_contains "$out" "+        <address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>" "dry run diff: the audio function comes"
expect_contains "$out" "dry run: nothing changed" "dry run says so"
expect_eq "$(dump)" "$before" "domain after --dry-run"
[ ! -e "$prof" ] || fail "a profile was written by --dry-run"
ok "--dry-run prints the diff and changes nothing"

setup --yes
[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "setup --yes: exit status $rc: $err"
expect_contains "$out" "Check of VM $vm" "setup ends with check's report"
after=$(dump)
python3 - "$after" <<'PY' || fail "the domain after setup, as libvirtd has it: $after"
import sys, xml.etree.ElementTree as ET
d = ET.fromstring(sys.argv[1])
hd = []
for h in d.find("devices").findall("hostdev"):
    a = h.find("source/address")
    hd.append((int(a.get("bus"), 16), int(a.get("slot"), 16), int(a.get("function"), 16), h.get("managed")))
assert sorted(hd) == [(1, 0, 0, "no"), (1, 0, 1, "no")], hd
Q = "{http://libvirt.org/schemas/domain/qemu/1.0}"
props = {(dev.get("alias"), p.get("name")): p.get("value")
         for dev in d.iter(Q + "device") for p in dev.iter(Q + "property")}
assert props == {("hostdev0", "x-pci-sub-vendor-id"): "5218", ("hostdev0", "x-pci-sub-device-id"): "4552"}, props
PY
expect_eq "$(stat -c '%a %u' "$prof")" "600 0" "the profile's mode and owner"
expect_contains "$(head -1 "$prof")" "Written by \`gpuhook setup\`" "the profile's marker"
backups=$(ls "$ROOT/var/lib/gpuhook/backups")
expect_eq "$backups" "$vm.0001.xml" "one backup"
expect_eq "$(stat -c '%a' "$ROOT/var/lib/gpuhook/backups/$vm.0001.xml") $(stat -c '%a' "$ROOT/var/lib/gpuhook/backups")" "600 700" "backup modes"
ok "setup --yes: both functions managed='no', override 5218:4552 on hostdev0, profile 0600, backup 0600"

setup --yes
expect_contains "$out" "nothing to change" "second setup"
expect_eq "$(dump)" "$after" "domain after a second setup"
expect_eq "$(ls "$ROOT/var/lib/gpuhook/backups")" "$vm.0001.xml" "no second backup"
ok "a second setup changes nothing"

setup --undo --yes
expect_eq "$rc" 0 "setup --undo: exit status ($err)"
expect_eq "$(dump)" "$before" "domain after --undo (the exact old definition)"
[ ! -e "$prof" ] || fail "--undo left the profile"
ok "--undo restores the exact old definition and removes the profile"
