#!/bin/sh
# demo.sh: gpuhook's whole cycle on a real kernel, for a person with no spare GPU (about a minute).
#
#   sudo ./tests/realkernel/demo.sh         (install/install.sh --demo runs this)
#   sudo ./tests/realkernel/demo.sh --desktop   (about two minutes)
#
# QEMU boots Debian's kernel in software emulation with an emulated IOMMU and a laptop-like
# PCI layout: an "iGPU" and a two-function "dGPU" (a GPU and its HDMI audio) in one IOMMU group.
# Inside, libvirtd runs with gpuhook as its QEMU hook and starts a VM that gets the dGPU, then
# destroys it. You see which driver each dGPU function has before, while the VM runs and after,
# and gpuhook's log of the run. It is tests/realkernel's scenario 6, with its checks.
# Needs root and Debian 12 (installs: qemu-system-x86 linux-image-amd64 busybox-static tini cpio
# python3 libvirt-daemon-system libvirt-clients, and the build dependencies if it must build).
# --desktop: the single-GPU desktop instead (tests/desktop's d03): OVMF boots the kernel with
# systemd and weston as the display manager on the only GPU; libvirtd starts a VM that takes it and
# destroys it; the desktop comes back. Screenshots of the guest's screen before, during and after
# are kept as PNGs (it also installs ovmf, weston, systemd).
# GPUHOOK=/path/to/gpuhook uses that binary instead of looking for a build.
set -eu
DESKTOP=0
[ "${1:-}" = --desktop ] && DESKTOP=1
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
say() { printf '%s\n' "$*"; }
[ "$(id -u)" = 0 ] || { say "demo.sh: run as root (QEMU exports / to the guest, which binds PCI drivers)"; exit 1; }

# 1. What the demonstration needs.
PKGS="qemu-system-x86 linux-image-amd64 busybox-static tini cpio python3 kmod libvirt-daemon-system libvirt-clients procps util-linux"
missing=
[ $DESKTOP = 0 ] || PKGS="$PKGS ovmf weston systemd"
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  command -v apt-get >/dev/null 2>&1 || { say "demo.sh: missing:$missing (this demonstration needs Debian 12 or apt)"; exit 1; }
  say "== installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# 2. gpuhook: a build of this tree, or build one.
BIN=${GPUHOOK:-}
if [ -z "$BIN" ]; then
  for b in build-release build build-tests; do
    if [ -x "$SRC/$b/hook/gpuhook" ]; then
      # Up to date with this tree (an incremental build: nothing to do when it already is).
      say "== bringing $SRC/$b up to date"
      cmake --build "$SRC/$b" -j"$(nproc)" --target gpuhook gpuhook-full >/dev/null || exit 1
      BIN=$SRC/$b/hook/gpuhook; break
    fi
  done
fi
if [ -z "$BIN" ]; then
  say "== no build of gpuhook found: building one (release) in $SRC/build-release"
  DEPS="build-essential cmake pkg-config libvirt-dev libboost1.81-dev libtomlplusplus-dev libspdlog-dev libpugixml-dev"
  missing=
  for p in $DEPS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  # shellcheck disable=SC2086
  [ -z "$missing" ] || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null; }
  cmake -S "$SRC" -B "$SRC/build-release" -DCMAKE_BUILD_TYPE=Release -DGPUHOOK_TESTS=OFF >/dev/null
  cmake --build "$SRC/build-release" -j"$(nproc)" >/dev/null
  BIN=$SRC/build-release/hook/gpuhook
fi
say "== gpuhook under test: $BIN ($("$BIN" --version))"
if [ $DESKTOP = 1 ]; then
  say "== booting Debian's kernel $(ls /lib/modules | sort -V | tail -1) under QEMU with UEFI (OVMF), systemd, and weston on the only GPU;"
  say "   inside: libvirtd with gpuhook as its hook, a VM 'desk' with that GPU (profile: [display] mode = \"takeover\")"
  LOGDIR=${TMPDIR:-/tmp}/gpuhook-demo
  mkdir -p "$LOGDIR"
  rc=0
  "$SRC/tests/desktop/desktop-vm.sh" --gpuhook "$BIN" --src "$SRC" --logdir "$LOGDIR" --name desktop --fb drm \
    --init systemd --display weston --mem 2048 --timeout 300 "$SRC/tests/desktop/scenarios/d03-libvirt-weston-takeover.sh" \
    > "$LOGDIR.summary" 2>&1 || rc=$?
  say ""
  grep -a -E '^RK \[.*(hook:|libvirtd up|virsh |during:|after:|screenshot)' "$LOGDIR.summary" | grep -av '\] ok: ' |
    sed -E 's/^RK \[ *([0-9.]+)\] /  [guest \1 s] /'
  say ""
  say "== what gpuhook logged (/var/log/gpuhook/gpuhook.log in the guest)"
  grep -a '^RK-LOG ' "$LOGDIR.summary" | sed -E 's/^RK-LOG [0-9T:.+-]+ /  /'
  say ""
  say "== checks: $(grep -a -c '^RK \[.*\] ok: ' "$LOGDIR.summary" || true) passed; screenshots:"
  for f in before during after; do f=$LOGDIR/desktop/shots/weston-$f.png; [ -e "$f" ] && say "  $f"; done
  grep -a '^RK-FAIL' "$LOGDIR.summary" | sed 's/^/  /' || true
  tail -n 1 "$LOGDIR.summary" | sed 's/^desktop: /== /'
  exit $rc
fi
say "== booting Debian's kernel $(ls /lib/modules | sort -V | tail -1) under QEMU (software emulation, emulated Intel IOMMU);"
say "   inside: libvirtd with gpuhook as /etc/libvirt/hooks/qemu, a VM 'g' with the dGPU 01:00.0 and its audio 01:00.1"
LOGDIR=${TMPDIR:-/tmp}/gpuhook-demo
rc=0
RK_KEEP_QUIET=1 "$HERE/rk-vm.sh" --gpuhook "$BIN" --src "$SRC" --logdir "$LOGDIR" --name demo --layout laptop \
  --timeout 300 "$HERE/scenarios/s06-libvirt-managed-no.sh" > "$LOGDIR.summary" 2>&1 || rc=$?
CONSOLE=$LOGDIR/demo/console.log

# 3. The story, from the guest's console.
say ""
grep -a -E '^RK \[.*(hook:|libvirtd up|BEFORE|virsh |DURING|AFTER)' "$CONSOLE" | grep -av '\] ok: ' | sed -E 's/^RK \[ *([0-9.]+)\] /  [guest \1 s] /'
say ""
say "== what gpuhook logged (/var/log/gpuhook/gpuhook.log in the guest)"
grep -a '^RK         log| ' "$CONSOLE" | sed -E 's/^RK         log\| [0-9T:.+-]+ /  /'
say ""
n_ok=$(grep -a -c '^RK \[.*\] ok: ' "$CONSOLE" || true)
say "== checks: $n_ok passed, e.g.:"
grep -a -E '^RK \[.*\] ok: (the domain.s QEMU|driver_override of 0000:01:00.0 after|journal after destroy|sysfs state|gpuhook.s events)' "$CONSOLE" |
  sed -E 's/^RK \[ *[0-9.]+\] ok: /  ok: /'
if grep -aq '^RK-FAIL' "$CONSOLE"; then
  say "== FAILED checks:"
  grep -a '^RK-FAIL' "$CONSOLE" | sed 's/^/  /'
fi
tail -n 1 "$LOGDIR.summary" | sed 's/^realkernel: /== /'
exit $rc
