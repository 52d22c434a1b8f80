#!/bin/sh
# desktop-vm.sh: runs one desktop scenario (ctest label "desktop"). Boots Debian's own kernel (the
# EFI-stub /boot/vmlinuz-*, started by OVMF's UEFI firmware) under QEMU software emulation (TCG) as a
# single-GPU desktop: one bochs VGA at 00:02.0 that the firmware's GOP frame buffer (efifb) sits on,
# an emulated Intel IOMMU, this machine's / shared read-only over 9p under a tmpfs overlay (the
# gpuhook binary under test runs inside unchanged). The scenario script runs as root inside and
# reports with tests/realkernel/lib.sh's checks; the verdict is its RK-RESULT line.
# The harness follows the project's recipe /work/shared/recipes/desktopvm (README there: facts and
# traps) and tests/realkernel's conventions.
#
#   desktop-vm.sh --gpuhook BIN --name NAME [--fb efifb|drm] [--init tini|systemd]
#                 [--display none|weston] [--timeout SEC] [--mem MB] [--logdir DIR] [--src DIR]
#                 [--env KEY=VALUE]... [--expect-fail TEXT] [--smp N] [--dgpu] SCENARIO.sh
#     --fb efifb    bochs-drm never loads (modprobe.blacklist=bochs): efifb owns the only GPU, no DRM
#                   driver, as on a desktop whose NVIDIA driver runs without KMS
#     --fb drm      (default) bochs-drm loads at boot, as udev would: it replaces efifb (the kernel
#                   unregisters efi-framebuffer.0) and the console moves to bochs-drm's framebuffer
#     --init tini   (default) no systemd: the scenario runs chrooted under tini (fastest)
#     --init systemd  systemd as PID 1 with desktop.target (journald, udev, the display manager if
#                   any, the scenario as desktop-guest.service); generators masked
#     --display weston  weston 10 (DRM backend, pixman) as display-manager.service on tty7
#     --smp N       N vCPUs (default DT_SMP, else 1); CPU isolation needs 2
#     --dgpu        a second, non-boot display device at 00:06.0 (QEMU's secondary-vga, class 0380,
#                   its own IOMMU group; bochs-drm drives it unless --fb efifb): the "dGPU" a
#                   profile can pass through while the boot VGA keeps the host's display
#                   (DT_DGPU=0000:00:06.0 in the scenario's environment)
#
# Screenshots (QMP screendump of the VGA output, PNG) land in LOGDIR/NAME/shots/: in the guest,
# `shot NAME [settle]` (lib-desktop.sh) asks for one over the virtio-serial port "dt.shot".
# --expect-fail TEXT inverts the verdict for detector tests (as tests/realkernel/rk-vm.sh): exit 0
# only when the scenario ran to its end, failed, and one of its failed checks (RK-FAIL) contains
# TEXT; --env RK_HOOK_FAULT=<GPUHOOK_FAULT value> gives libvirtd's hook a deliberately broken gpuhook.
# Exit: 0 pass; 1 fail; 77 skipped (QEMU, the kernel image, OVMF or an --init/--display program is
# missing, and CI is not "true"). Console: LOGDIR/NAME/console.log (host seconds since QEMU started
# on each line). Cache: ${DT_CACHE:-/var/tmp/gpuhook-desktop}/<kernel>-<harness hash>/initrd.gz.
# Environment: DT_SMP (vCPUs, default 1: faster than 2 on a 2-core host), DT_MEM (MiB, default 1536;
# --mem wins), DT_KERNEL (kernel version, default the newest with a /boot/vmlinuz-*).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
FB=drm INIT=tini DM=none TMO=150 MEM=${DT_MEM:-1536} NAME= GPUHOOK= SRC= LOGDIR= EXTRA_ENV= EXPECT_FAIL=
SMP=${DT_SMP:-1} DGPU=
while [ $# -gt 0 ]; do
  case "$1" in
    --fb) FB=$2; shift ;;
    --init) INIT=$2; shift ;;
    --display) DM=$2; shift ;;
    --timeout) TMO=$2; shift ;;
    --mem) MEM=$2; shift ;;
    --smp) SMP=$2; shift ;;
    --dgpu) DGPU=0000:00:06.0 ;;
    --name) NAME=$2; shift ;;
    --gpuhook) GPUHOOK=$2; shift ;;
    --src) SRC=$2; shift ;;
    --logdir) LOGDIR=$2; shift ;;
    --expect-fail) EXPECT_FAIL=$2; shift ;;
    --env)
      case "$2" in [A-Za-z_]*=*) ;; *) echo "desktop-vm.sh: --env needs KEY=VALUE, not '$2'" >&2; exit 2 ;; esac
      EXTRA_ENV="$EXTRA_ENV
$2"; shift ;;
    -h|--help) sed -n '2,/^set -eu/{/^#/p}' "$0"; exit 0 ;;
    -*) echo "desktop-vm.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
[ $# -eq 1 ] || { echo "usage: desktop-vm.sh [options] SCENARIO.sh (see --help)" >&2; exit 2; }
SCENARIO=$(readlink -f "$1")
[ -n "$NAME" ] || NAME=$(basename "$SCENARIO" .sh)
[ -n "$SRC" ] || SRC=$(cd "$HERE/../.." && pwd)
[ -n "$LOGDIR" ] || LOGDIR=${TMPDIR:-/tmp}/gpuhook-desktop-logs
case $FB in efifb|drm) ;; *) echo "desktop-vm.sh: --fb efifb|drm, not '$FB'" >&2; exit 2 ;; esac
case $INIT in tini|systemd) ;; *) echo "desktop-vm.sh: --init tini|systemd, not '$INIT'" >&2; exit 2 ;; esac
case $DM in none|weston) ;; *) echo "desktop-vm.sh: --display none|weston, not '$DM'" >&2; exit 2 ;; esac
[ "$DM" = none ] || [ "$INIT" = systemd ] || { echo "desktop-vm.sh: --display $DM needs --init systemd" >&2; exit 2; }
[ "$DM" = none ] || [ "$FB" = drm ] || { echo "desktop-vm.sh: --display $DM needs a DRM driver (--fb drm)" >&2; exit 2; }

say() { printf 'desktop: %s\n' "$*"; }
unavailable() {   # a missing prerequisite skips on a developer machine; in CI (CI=true) it fails
  if [ "${CI:-}" = true ]; then say "FAIL (CI=true, so not skipped): $*"; exit 1; fi
  say "SKIPPED: $*"; exit 77
}

# 1. Prerequisites.
command -v qemu-system-x86_64 >/dev/null 2>&1 || unavailable "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
K=${DT_KERNEL:-}
if [ -z "$K" ]; then
  for v in $(ls /lib/modules 2>/dev/null | sort -V -r); do [ -f "/boot/vmlinuz-$v" ] && { K=$v; break; }; done
fi
[ -n "$K" ] && [ -f "/boot/vmlinuz-$K" ] && [ -d "/lib/modules/$K" ] ||
  unavailable "no kernel image with modules (/boot/vmlinuz-*, /lib/modules/*): apt-get install linux-image-amd64"
CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd} VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
[ -f "$CODE" ] && [ -f "$VARS" ] || unavailable "no UEFI firmware ($CODE, $VARS): apt-get install ovmf"
[ "$INIT" = tini ] || [ -x /lib/systemd/systemd ] || unavailable "--init systemd: /lib/systemd/systemd is missing (apt-get install systemd)"
[ "$DM" != weston ] || [ -x /usr/bin/weston ] || unavailable "--display weston: /usr/bin/weston is missing (apt-get install weston)"
for t in busybox cpio gzip python3 modprobe depmod flock sha256sum; do
  command -v $t >/dev/null 2>&1 || { say "FAIL: $t is missing (tests/run.sh installs what the tests need)"; exit 1; }
done
[ -x /usr/bin/tini ] || { say "FAIL: /usr/bin/tini is missing (apt-get install tini)"; exit 1; }
[ -n "$GPUHOOK" ] && [ -x "$GPUHOOK" ] || { say "FAIL: --gpuhook must name the built gpuhook binary"; exit 1; }
GPUHOOK=$(readlink -f "$GPUHOOK")
[ "$(id -u)" = 0 ] || { say "FAIL: run as root (QEMU exports / over 9p with the owners the guest's root needs)"; exit 1; }

# 2. The cached initramfs: busybox, the modules that reach the 9p root, bochs-drm (loaded unless
# --fb efifb), desktop-init.sh as /init. The kernel is the EFI-stub vmlinuz itself: OVMF cannot
# start the uncompressed vmlinux (PVH) that tests/realkernel boots faster.
MODS_BASE="virtio_pci 9pnet_virtio 9p overlay virtio_console"
MODS_GPU="bochs"
HARNESS_VERSION=1   # bump when the way the initramfs is built changes
HV=$( (cat "$HERE/desktop-init.sh"; echo "$MODS_BASE/$MODS_GPU/$HARNESS_VERSION") | sha256sum | cut -c1-12)
CACHE=${DT_CACHE:-/var/tmp/gpuhook-desktop}/$K-$HV
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # two tests under ctest -j2 may want to build it at once
if [ ! -s "$CACHE/initrd.gz" ]; then
  S=$(mktemp -d)
  mkdir -p "$S/bin" "$S/sbin" "$S/proc" "$S/sys" "$S/dev" "$S/r" "$S/w" "$S/lib/modules/$K"
  cp /bin/busybox "$S/bin/busybox"
  for a in sh mount umount chroot switch_root mkdir cp cat echo sleep poweroff insmod ls uname tr basename \
           readlink rm ln; do ln -s busybox "$S/bin/$a"; done
  # The kernel's own module requests (request_module) run /sbin/modprobe in this root while the
  # scenario runs chrooted (tini): send them to the real modprobe in the shared root.
  printf '#!/bin/sh\nexec /bin/chroot /r /sbin/modprobe "$@"\n' > "$S/sbin/modprobe"
  chmod 755 "$S/sbin/modprobe"
  addmods() {   # addmods LIST MODULE...: modules and their dependencies, in load order, into /mods.LIST
    l=$1; shift; : > "$S/mods.$l"
    for m in "$@"; do
      modprobe -S "$K" --show-depends "$m" | awk '$1=="insmod"{print $2}' | while read -r f; do
        rel=${f#/lib/modules/$K/}
        cat "$S"/mods.* | grep -qxF "$rel" && continue
        echo "$rel" >> "$S/mods.$l"
        mkdir -p "$S/lib/modules/$K/$(dirname "$rel")"
        cp "$f" "$S/lib/modules/$K/$rel"
      done
    done
  }
  # shellcheck disable=SC2086
  addmods base $MODS_BASE
  # shellcheck disable=SC2086
  addmods gpu $MODS_GPU
  cp "$HERE/desktop-init.sh" "$S/init"
  chmod 755 "$S/init"
  (cd "$S" && find . | cpio -o -H newc --quiet | gzip -1) > "$CACHE/initrd.gz.tmp"
  mv "$CACHE/initrd.gz.tmp" "$CACHE/initrd.gz"
  rm -rf "$S"
fi
flock -u 9

# 3. This run: console log, output share, screenshots, and a second initramfs (cpio archives
# concatenate) with the run's settings and, for systemd, its unit files.
RUN=$LOGDIR/$NAME
rm -rf "$RUN"
mkdir -p "$RUN/out" "$RUN/shots"
CONSOLE=$RUN/console.log
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo "RK_NAME=$(q "$NAME")"
  echo "RK_LAYOUT=desktop"
  echo "RK_SCENARIO=$(q "$SCENARIO")"
  echo "RK_DIR=$(q "$(cd "$HERE/../realkernel" && pwd)")"
  echo "DT_DIR=$(q "$HERE")"
  echo "DT_FB=$FB"
  echo "DT_INIT=$INIT"
  echo "DT_DISPLAY=$DM"
  echo "DT_DGPU=$DGPU"
  echo "GPUHOOK=$(q "$GPUHOOK")"
  echo "SRC=$(q "$SRC")"
  echo "DT_CACHE_DIR=$(q "$CACHE")"
  printf '%s\n' "$EXTRA_ENV" | while IFS= read -r kv; do
    case "$kv" in [A-Za-z_]*=*) echo "${kv%%=*}=$(q "${kv#*=}")" ;; esac
  done
} > "$RUN/rk.env"
X=$(mktemp -d)
trap 'rm -rf "$X"' EXIT
mkdir -p "$X/a/units"
cp "$RUN/rk.env" "$X/a/rk.env"
if [ "$INIT" = systemd ]; then
  U=$X/a/units
  # desktop.target (systemd.unit= on the kernel command line) wants only journald, udev and its
  # coldplug, the display manager (if any) and the scenario. Both services have
  # DefaultDependencies=no so that they pull in nothing else. SuccessAction/FailureAction belong
  # in [Unit] (in [Service] systemd ignores them and the VM never powers off).
  cat > "$U/desktop.target" <<EOT
[Unit]
Description=gpuhook desktop test target
Wants=systemd-journald.service systemd-udevd.service systemd-udev-trigger.service desktop-guest.service
$([ "$DM" = none ] || echo "Wants=display-manager.service")
AllowIsolate=yes
EOT
  cat > "$U/desktop-guest.service" <<EOT
[Unit]
Description=gpuhook desktop scenario
DefaultDependencies=no
After=sysinit.target systemd-udev-trigger.service display-manager.service
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=exec
Environment=PATH=/usr/sbin:/usr/bin:/sbin:/bin
ExecStart=/bin/bash $HERE/guest-main.sh
StandardOutput=journal+console
StandardError=inherit
TimeoutStartSec=infinity
EOT
  if [ "$DM" = weston ]; then
    # weston 10 as root: its direct launcher (logind and weston-launch are tried first and fail:
    # no session) on a VT of its own (chvt from busybox: kbd is not installed); systemd-notify.so
    # makes Type=notify work; --use-pixman: bochs has no 3D; --idle-time=0: never blank.
    cat > "$U/display-manager.service" <<EOT
[Unit]
Description=Weston on the GPU (stands in for a display manager)
DefaultDependencies=no
After=sysinit.target systemd-udev-trigger.service
[Service]
Type=notify
Environment=XDG_RUNTIME_DIR=/run/weston
RuntimeDirectory=weston
RuntimeDirectoryMode=0700
ExecStartPre=/bin/busybox chvt 7
ExecStart=/usr/bin/weston --backend=drm-backend.so --use-pixman --tty=7 --continue-without-input --idle-time=0 --modules=systemd-notify.so
StandardOutput=journal
StandardError=journal
EOT
  fi
fi
cat "$CACHE/initrd.gz" > "$X/initrd"
(cd "$X/a" && find . | cpio -o -H newc --quiet | gzip -1) >> "$X/initrd"
cp "$VARS" "$X/vars.fd"   # OVMF writes its variable store: a fresh copy each run

APPEND="console=ttyS0 intel_iommu=on iommu=pt quiet panic=-1 no_timer_check dt.init=$INIT"
[ "$INIT" = systemd ] && APPEND="$APPEND systemd.unit=desktop.target systemd.show_status=0"
[ "$FB" = efifb ] && APPEND="$APPEND dt.bochs=0 modprobe.blacklist=bochs"   # udev must not load it either
case $SMP in [1-9]|[1-9][0-9]) ;; *) echo "desktop-vm.sh: --smp N (1-99), not '$SMP'" >&2; exit 2 ;; esac
say "$NAME: UEFI, --fb $FB, --init $INIT, --display $DM${DGPU:+, --dgpu}, kernel $K, -smp $SMP, timeout ${TMO}s; console: $CONSOLE"
T0=$(date +%s.%N)
rc=0
set -- qemu-system-x86_64 -accel tcg -machine q35,kernel-irqchip=split -m "$MEM" -smp "$SMP" \
  -nodefaults -display none -serial stdio -no-reboot \
  -drive if=pflash,format=raw,unit=0,readonly=on,file="$CODE" -drive if=pflash,format=raw,unit=1,file="$X/vars.fd" \
  -device intel-iommu,intremap=on,caching-mode=on \
  -device VGA,bus=pcie.0,addr=2.0 \
  -fsdev local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=fs0,mount_tag=hostroot,bus=pcie.0,addr=3.0 \
  -device virtio-serial-pci,bus=pcie.0,addr=4.0 \
  -chardev socket,id=shot,path="$X/shot.sock",server=on,wait=off -device virtserialport,chardev=shot,name=dt.shot \
  -fsdev local,id=fs1,path="$RUN/out",security_model=none \
  -device virtio-9p-pci,fsdev=fs1,mount_tag=dtout,bus=pcie.0,addr=5.0 \
  -qmp unix:"$X/qmp.sock",server=on,wait=off \
  -kernel "/boot/vmlinuz-$K" -initrd "$X/initrd" -append "$APPEND"
[ -z "$DGPU" ] || set -- "$@" -device secondary-vga,bus=pcie.0,addr=6.0
python3 "$HERE/supervise.py" "$CONSOLE" "$TMO" "$X" "$RUN/shots" "$@" || rc=$?
T1=$(date +%s.%N)
# Libvirt's QEMU capabilities probed in this guest: kept for the next guest (libvirtd skips its
# ~10 s probe when its cache is valid; libvirtd itself checks validity).
if [ -d "$RUN/out/libvirt-caps" ] && [ ! -d "$CACHE/libvirt-caps" ]; then
  cp -r "$RUN/out/libvirt-caps" "$CACHE/libvirt-caps.$$" && mv -T "$CACHE/libvirt-caps.$$" "$CACHE/libvirt-caps" 2>/dev/null ||
    rm -rf "$CACHE/libvirt-caps.$$"
fi
WALL=$(echo "$T0 $T1" | awk '{printf "%.1f", $2-$1}')

# 4. The verdict: the guest prints "RK ..." lines and one "RK-RESULT PASS|FAIL" at the end, and
# writes out/result.
# Under systemd the lines come through journald: "[  42.28] [   22.50] bash[209]: RK ...".
rk_lines() { sed -n 's/^\[ *[0-9.]*\] \(\[ *[0-9.]*\] [^ :]*\[[0-9]*\]: \)\{0,1\}\(RK.*\)/\2/p' "$CONSOLE"; }
rk_lines | grep -av '^RK-RESULT' || true
result=$(cat "$RUN/out/result" 2>/dev/null || true)
rk_lines | grep -aq '^RK-RESULT' || result=
verdict=
case "$result" in
  PASS*) verdict=pass ;;
  FAIL*) verdict=fail ;;
  *)
    verdict=broken
    if [ $rc = 124 ]; then say "$NAME: the guest did not finish within ${TMO}s (QEMU killed)"
    else say "$NAME: the guest ended without a result (supervisor exit $rc)"; fi
    say "last lines of the console:"
    tail -n 40 "$CONSOLE" | sed 's/^/  | /'
    ;;
esac
failed_checks() { rk_lines | grep -a '^RK-FAIL'; }
. "$HERE/../realkernel/verdict.sh"
rk_exit
