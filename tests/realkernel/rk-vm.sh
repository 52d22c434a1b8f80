#!/bin/sh
# rk-vm.sh: runs one real-kernel scenario. Boots Debian's kernel under QEMU (TCG, no KVM needed)
# with QEMU's emulated Intel IOMMU and a chosen PCI layout, shares this machine's / read-only over
# 9p (so the gpuhook binary under test runs inside unchanged), runs the scenario script inside as
# root and reports its result. QEMU runs under `timeout`; the guest console is kept as a log file.
#
#   rk-vm.sh --gpuhook BIN --src DIR --name NAME [--layout laptop|messy|single] [--timeout SEC]
#            [--logdir DIR] [--env KEY=VALUE]... [--expect-fail TEXT] [--smp N] SCENARIO.sh
#   (layouts: laptop|messy|single|dual)
#
# Layouts, as the guest's kernel sees them (IOMMU group numbers differ per layout: never assume):
#   laptop  00:02.0 VGA (bochs-drm, the "iGPU"); behind root port 00:01.0 a two-function "dGPU":
#           01:00.0 virtio-gpu-pci (class 0380, virtio-pci, DRM card + render node) and
#           01:00.1 ich9-intel-hda (snd_hda_intel); both functions share one IOMMU group.
#   messy   laptop + root port 00:04.0 -> PCIe-to-PCI bridge holding 03:01.0 secondary-vga and
#           03:02.0 e1000: a dGPU that shares its group with a NIC (no ACS on the path).
#   single  one VGA at 00:02.0 (bochs-drm) with the frame buffer console on it.
#   dual    laptop + a second two-function "dGPU" behind its own root port 00:03.0:
#           02:00.0 virtio-gpu-pci + 02:00.1 ich9-intel-hda, in an IOMMU group of its own
#           (two VMs, each with its own GPU, both on vfio-pci).
#
# Exit: 0 pass; 1 fail (the failed checks are printed); 77 skipped (QEMU or the kernel image is
# missing and CI is not "true"). --expect-fail TEXT inverts the verdict for detector tests: exit 0
# only when the scenario ran to its end, failed, and a failed check's line contains TEXT.
#
# Cache (initramfs + uncompressed kernel, rebuilt when the kernel or this harness changes):
#   ${RK_CACHE:-/var/tmp/gpuhook-realkernel}/<kernel>-<harness hash>/
# Environment: RK_KERNEL (kernel version, default: newest with /boot/vmlinuz-*), RK_SMP (vCPUs,
# default 1; --smp N wins: a scenario that needs N CPUs), RK_MEM (MiB, default 1536), RK_KEEP_QUIET=1 (print only the summary).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
LAYOUT=laptop TMO=180 NAME= GPUHOOK= SRC= LOGDIR= EXPECT_FAIL= EXTRA_ENV= SMP_OPT=
while [ $# -gt 0 ]; do
  case "$1" in
    --layout) LAYOUT=$2; shift ;;
    --timeout) TMO=$2; shift ;;
    --name) NAME=$2; shift ;;
    --gpuhook) GPUHOOK=$2; shift ;;
    --src) SRC=$2; shift ;;
    --logdir) LOGDIR=$2; shift ;;
    --env)
      case "$2" in [A-Za-z_]*=*) ;; *) echo "rk-vm.sh: --env needs KEY=VALUE, not '$2'" >&2; exit 2 ;; esac
      EXTRA_ENV="$EXTRA_ENV
$2"; shift ;;
    --expect-fail) EXPECT_FAIL=$2; shift ;;
    --smp) SMP_OPT=$2; shift ;;   # guest vCPUs for this scenario (CPU isolation needs 2)
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) echo "rk-vm.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
[ $# -eq 1 ] || { echo "usage: rk-vm.sh [options] SCENARIO.sh (see --help)" >&2; exit 2; }
SCENARIO=$(readlink -f "$1")
[ -n "$NAME" ] || NAME=$(basename "$SCENARIO" .sh)
[ -n "$SRC" ] || SRC=$(cd "$HERE/../.." && pwd)
[ -n "$LOGDIR" ] || LOGDIR=${TMPDIR:-/tmp}/gpuhook-realkernel-logs
case $LAYOUT in laptop|messy|single|dual) ;; *) echo "rk-vm.sh: unknown layout $LAYOUT" >&2; exit 2 ;; esac

say() { printf 'realkernel: %s\n' "$*"; }
# A missing prerequisite skips the test on a developer machine; in CI (CI=true) it fails it.
unavailable() {
  if [ "${CI:-}" = true ]; then say "FAIL (CI=true, so not skipped): $*"; exit 1; fi
  say "SKIPPED: $*"; exit 77
}

# 1. Prerequisites.
command -v qemu-system-x86_64 >/dev/null 2>&1 || unavailable "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
K=${RK_KERNEL:-}
if [ -z "$K" ]; then
  for v in $(ls /lib/modules 2>/dev/null | sort -V -r); do
    [ -f "/boot/vmlinuz-$v" ] && { K=$v; break; }
  done
fi
[ -n "$K" ] && [ -f "/boot/vmlinuz-$K" ] && [ -d "/lib/modules/$K" ] ||
  unavailable "no kernel image with modules (/boot/vmlinuz-*, /lib/modules/*): apt-get install linux-image-amd64"
for t in busybox cpio gzip python3 timeout modprobe flock sha256sum; do
  command -v $t >/dev/null 2>&1 || { say "FAIL: $t is missing (tests/run.sh installs what the tests need)"; exit 1; }
done
[ -x /usr/bin/tini ] || { say "FAIL: /usr/bin/tini is missing (apt-get install tini)"; exit 1; }
[ -n "$GPUHOOK" ] && [ -x "$GPUHOOK" ] || { say "FAIL: --gpuhook must name the built gpuhook binary"; exit 1; }
GPUHOOK=$(readlink -f "$GPUHOOK")
[ "$(id -u)" = 0 ] || { say "FAIL: run as root (QEMU exports / over 9p with the owners the guest's root needs)"; exit 1; }

# 2. The cached boot files: the kernel as an uncompressed ELF (boots directly through PVH, about
# 2 s faster than the bzImage under TCG) and a small initramfs that mounts the 9p root.
# Modules that must be in the initramfs (everything else is loaded from the 9p root).
INITRD_MODULES="9p 9pnet_virtio virtio_pci overlay"
HARNESS_VERSION=1   # bump when the way the initramfs is built changes
HV=$( (cat "$HERE/guest-init.sh"; echo "$INITRD_MODULES $HARNESS_VERSION") | sha256sum | cut -c1-12)
CACHE=${RK_CACHE:-/var/tmp/gpuhook-realkernel}/$K-$HV
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # two tests under ctest -j2 may want to build it at once
if [ ! -s "$CACHE/vmlinux" ]; then
  python3 - "/boot/vmlinuz-$K" "$CACHE/vmlinux.tmp" <<'PY' || cp "/boot/vmlinuz-$K" "$CACHE/vmlinux.tmp"
import lzma, sys
data = open(sys.argv[1], 'rb').read()
off = data.find(b'\xfd7zXZ\x00')
if off < 0:
    sys.exit(1)
out = lzma.LZMADecompressor().decompress(data[off:])
if out[:4] != b'\x7fELF':
    sys.exit(1)
open(sys.argv[2], 'wb').write(out)
PY
  mv "$CACHE/vmlinux.tmp" "$CACHE/vmlinux"
fi
if [ ! -s "$CACHE/initrd.gz" ]; then
  S=$(mktemp -d)
  mkdir -p "$S/bin" "$S/sbin" "$S/proc" "$S/sys" "$S/dev" "$S/r" "$S/w" "$S/lib/modules/$K"
  cp /bin/busybox "$S/bin/busybox"
  for a in sh mount umount chroot mkdir cp cat echo sleep poweroff insmod ls uname; do ln -s busybox "$S/bin/$a"; done
  # The kernel's own module requests (request_module: HDA codecs, ...) run /sbin/modprobe in the
  # initramfs root; send them to the real modprobe in the 9p root.
  printf '#!/bin/sh\nexec /bin/chroot /r /sbin/modprobe "$@"\n' > "$S/sbin/modprobe"
  chmod 755 "$S/sbin/modprobe"
  : > "$S/modlist"
  for m in $INITRD_MODULES; do
    modprobe -S "$K" --show-depends "$m" | awk '$1=="insmod"{print $2}' | while read -r f; do
      rel=${f#/lib/modules/$K/}
      grep -qxF "$rel" "$S/modlist" && continue
      echo "$rel" >> "$S/modlist"
      mkdir -p "$S/lib/modules/$K/$(dirname "$rel")"
      cp "$f" "$S/lib/modules/$K/$rel"
    done
  done
  cp "$HERE/guest-init.sh" "$S/init"
  chmod 755 "$S/init"
  (cd "$S" && find . | cpio -o -H newc --quiet | gzip -1) > "$CACHE/initrd.gz.tmp"
  mv "$CACHE/initrd.gz.tmp" "$CACHE/initrd.gz"
  rm -rf "$S"
fi
flock -u 9

# 3. This run: a fresh directory with the console log and the guest's output share.
RUN=$LOGDIR/$NAME
rm -rf "$RUN"
mkdir -p "$RUN/out"
CONSOLE=$RUN/console.log
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo "RK_NAME=$(q "$NAME")"
  echo "RK_LAYOUT=$(q "$LAYOUT")"
  echo "RK_SCENARIO=$(q "$SCENARIO")"
  echo "RK_DIR=$(q "$HERE")"
  echo "GPUHOOK=$(q "$GPUHOOK")"
  echo "SRC=$(q "$SRC")"
  echo "RK_CACHE_DIR=$(q "$CACHE")"
  printf '%s\n' "$EXTRA_ENV" | while IFS= read -r kv; do
    case "$kv" in [A-Za-z_]*=*) echo "${kv%%=*}=$(q "${kv#*=}")" ;; esac
  done
} > "$RUN/rk.env"
# The per-run settings go in as a second, tiny initramfs (cpio archives concatenate).
X=$(mktemp -d)
cp "$RUN/rk.env" "$X/rk.env"
cat "$CACHE/initrd.gz" > "$X/initrd"
(cd "$X" && echo rk.env | cpio -o -H newc --quiet | gzip -1) >> "$X/initrd"

# Explicit addresses: the layouts stay the same whatever the harness adds (9p shares at 00:1x).
DEV="-device VGA,bus=pcie.0,addr=02.0"
case $LAYOUT in
  laptop|messy|dual)
    DEV="$DEV -device pcie-root-port,id=rp1,bus=pcie.0,addr=01.0,slot=1,chassis=1
      -device virtio-gpu-pci,bus=rp1,addr=00.0,multifunction=on
      -audiodev none,id=snd0 -device ich9-intel-hda,id=hda1,bus=rp1,addr=00.1 -device hda-duplex,bus=hda1.0,audiodev=snd0" ;;
esac
[ "$LAYOUT" = dual ] && DEV="$DEV -device pcie-root-port,id=rp3,bus=pcie.0,addr=03.0,slot=3,chassis=3
      -device virtio-gpu-pci,bus=rp3,addr=00.0,multifunction=on
      -audiodev none,id=snd1 -device ich9-intel-hda,id=hda2,bus=rp3,addr=00.1 -device hda-duplex,bus=hda2.0,audiodev=snd1"
[ "$LAYOUT" = messy ] && DEV="$DEV -device pcie-root-port,id=rp2,bus=pcie.0,addr=04.0,slot=2,chassis=2
      -device pcie-pci-bridge,id=br1,bus=rp2,addr=00.0 -device secondary-vga,bus=br1,addr=01.0
      -netdev user,id=n0,restrict=on -device e1000,bus=br1,addr=02.0,netdev=n0"

SMP=${SMP_OPT:-${RK_SMP:-1}}
MEM=${RK_MEM:-1536}
say "$NAME: layout $LAYOUT, kernel $K, -smp $SMP, timeout ${TMO}s; console: $CONSOLE"
T0=$(date +%s.%N)
rc=0
# no_timer_check: under a loaded host the TCG guest can miss the boot-time check that the timer
# interrupt arrives through the interrupt-remapped IO-APIC, and the kernel then panics ("timer
# doesn't work through Interrupt-remapped IO-APIC"); the check proves nothing here.
# shellcheck disable=SC2086
timeout -k 5 "$TMO" qemu-system-x86_64 -accel tcg -machine q35,kernel-irqchip=split -m "$MEM" -smp "$SMP" \
  -nodefaults -display none -serial stdio -no-reboot \
  -device intel-iommu,intremap=on,caching-mode=on $DEV \
  -fsdev local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=fs0,mount_tag=hostroot,bus=pcie.0,addr=10.0 \
  -fsdev local,id=fs1,path="$RUN/out",security_model=none \
  -device virtio-9p-pci,fsdev=fs1,mount_tag=rkout,bus=pcie.0,addr=11.0 \
  -kernel "$CACHE/vmlinux" -initrd "$X/initrd" \
  -append "console=ttyS0 intel_iommu=on iommu=pt quiet panic=-1 no_timer_check" </dev/null >"$CONSOLE" 2>&1 || rc=$?
T1=$(date +%s.%N)
rm -rf "$X"
WALL=$(echo "$T0 $T1" | awk '{printf "%.1f", $2-$1}')

# Libvirt's QEMU capabilities probed in this guest: kept for the next guest (libvirtd skips its
# ~5 s probe when its cache is valid; libvirtd itself checks validity).
if [ -d "$RUN/out/libvirt-caps" ] && [ ! -d "$CACHE/libvirt-caps" ]; then
  # mv -T: when another test got there first, keep its copy (never nest one in the other).
  cp -r "$RUN/out/libvirt-caps" "$CACHE/libvirt-caps.$$" && mv -T "$CACHE/libvirt-caps.$$" "$CACHE/libvirt-caps" 2>/dev/null ||
    rm -rf "$CACHE/libvirt-caps.$$"
fi

# 4. The verdict. The guest prints "RK ..." lines (its story and every failed check) and one
# "RK-RESULT PASS|FAIL" line at the end; it also writes out/result.
[ "${RK_KEEP_QUIET:-0}" = 1 ] || grep -a '^RK' "$CONSOLE" | grep -av '^RK-RESULT' || true
result=$(cat "$RUN/out/result" 2>/dev/null || true)
grep -aq '^RK-RESULT' "$CONSOLE" || result=
verdict=
case "$result" in
  PASS*) verdict=pass ;;
  FAIL*) verdict=fail ;;
  *)
    verdict=broken
    if [ $rc = 124 ] || [ $rc = 137 ]; then say "$NAME: the guest did not finish within ${TMO}s (QEMU killed)"
    else say "$NAME: the guest ended without a result (QEMU exit $rc)"; fi
    say "last lines of the console:"
    tail -n 40 "$CONSOLE" | sed 's/^/  | /'
    ;;
esac
failed_checks() { grep -a '^RK-FAIL' "$CONSOLE"; }
. "$HERE/verdict.sh"
rk_exit
