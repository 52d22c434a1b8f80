#!/bin/sh
# gpuhook installer: dependencies, build, install, hook placement, libvirtd reload.
#
#   sudo ./install/install.sh [--prefix DIR] [--no-deps] [--hooks-dir DIR] [--no-reload] [--demo]
#                             [--binary PATH]
#   sudo ./install/install.sh --uninstall      removes exactly what an install added
#
# --binary PATH installs an already built gpuhook instead of building one (no dependencies, no
# build): for machines that cannot build, e.g. the read-only guests of tests/realkernel.
# The hook goes to <hooks-dir>/qemu as a link to the installed gpuhook when there is no qemu hook
# yet (or it is already ours); otherwise to <hooks-dir>/qemu.d/gpuhook, never replacing someone
# else's hook. What was added is recorded in /var/lib/gpuhook/install-manifest for --uninstall.
set -eu

PREFIX=/usr/local
HOOKS=/etc/libvirt/hooks
DEPS=1 RELOAD=1 DEMO=0 UNINSTALL=0 PREBUILT=
MANIFEST_DIR=/var/lib/gpuhook
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=$2; shift ;;
    --hooks-dir) HOOKS=$2; shift ;;
    --manifest-dir) MANIFEST_DIR=$2; shift ;;
    --no-deps) DEPS=0 ;;
    --no-reload) RELOAD=0 ;;
    --demo) DEMO=1 ;;
    --binary) PREBUILT=$2; shift ;;
    --uninstall) UNINSTALL=1 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
MANIFEST=$MANIFEST_DIR/install-manifest
BIN=$PREFIX/bin/gpuhook
say() { printf 'gpuhook-install: %s\n' "$*"; }
die() { printf 'gpuhook-install: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it installs packages and writes /etc/libvirt/hooks)"

reload_libvirt() {
  [ "$RELOAD" = 1 ] || { say "not reloading libvirtd (--no-reload): restart it before the hook is used"; return 0; }
  done_any=0
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for u in libvirtd.service virtqemud.service; do
      if systemctl is-active --quiet "$u"; then
        # libvirtd looks for hooks when it starts; a reload (SIGHUP) rescans them too.
        systemctl reload "$u" 2>/dev/null || systemctl restart "$u"
        say "reloaded $u so it sees the hook"; done_any=1
      fi
    done
  else
    for p in libvirtd virtqemud; do
      if pid=$(pidof "$p" 2>/dev/null); then kill -HUP $pid && say "sent SIGHUP to $p ($pid)"; done_any=1; fi
    done
  fi
  [ "$done_any" = 1 ] || say "libvirtd is not running: it will find the hook when it starts"
}

if [ "$UNINSTALL" = 1 ]; then
  [ -f "$MANIFEST" ] || die "no install manifest at $MANIFEST: nothing recorded to remove"
  # Newest first; a link is removed only while it still points at our binary.
  tac "$MANIFEST" | while read -r kind path; do
    case "$kind" in
      link) if [ -L "$path" ]; then rm -f "$path" && say "removed $path"; fi ;;
      file) rm -f "$path" && say "removed $path" ;;
      dir)  rmdir "$path" 2>/dev/null && say "removed empty $path" || true ;;
    esac
  done
  rm -f "$MANIFEST"; rmdir "$MANIFEST_DIR" 2>/dev/null || true
  reload_libvirt
  say "uninstalled (profiles in /etc/gpuhook and logs in /var/log/gpuhook are kept)"
  exit 0
fi

if [ -n "$PREBUILT" ]; then
  [ -f "$PREBUILT" ] && [ -x "$PREBUILT" ] || die "--binary $PREBUILT: not an executable file"
  "$PREBUILT" --version >/dev/null 2>&1 || die "--binary $PREBUILT: does not run (gpuhook --version failed)"
  DEPS=0
fi

# 1. Build dependencies.
if [ "$DEPS" = 1 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    say "installing build dependencies with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends build-essential cmake pkg-config libvirt-dev \
      libboost1.81-dev libtomlplusplus-dev libspdlog-dev libpugixml-dev libgtest-dev libgmock-dev >/dev/null
  else
    cat >&2 <<'PKGS'
gpuhook-install: no apt-get here. Install these, then rerun with --no-deps:
  Arch:   base-devel cmake pkgconf libvirt boost tomlplusplus spdlog pugixml gtest
  Fedora: gcc-c++ cmake pkgconf libvirt-devel boost-devel tomlplusplus-devel spdlog-devel pugixml-devel gtest-devel gmock-devel
PKGS
    exit 1
  fi
fi

# 2. Build (release, no tests, no fault points), unless a built binary was given.
if [ -z "$PREBUILT" ]; then
  say "building"
  cmake -S "$SRC" -B "$SRC/build-release" -DCMAKE_BUILD_TYPE=Release -DGPUHOOK_TESTS=OFF >/dev/null
  cmake --build "$SRC/build-release" -j"$(nproc)" >/dev/null
fi

# 3. Install the program and the example profiles.
mkdir -p "$MANIFEST_DIR"; chmod 0755 "$MANIFEST_DIR"
: > "$MANIFEST.new"
record() { grep -qxF "$1 $2" "$MANIFEST" 2>/dev/null || echo "$1 $2" >> "$MANIFEST.new"; }
[ -f "$MANIFEST" ] && cat "$MANIFEST" > "$MANIFEST.new.keep" || : > "$MANIFEST.new.keep"
[ -e "$BIN" ] || record file "$BIN"
if [ -n "$PREBUILT" ]; then
  # What `cmake --install` puts in place: the program and the example profiles.
  install -D -m 0755 "$PREBUILT" "$BIN"
  if [ -d "$SRC/config" ]; then
    mkdir -p "$PREFIX/share/gpuhook/config" && cp -R "$SRC/config/." "$PREFIX/share/gpuhook/config/"
  fi
else
  cmake --install "$SRC/build-release" --prefix "$PREFIX" >/dev/null
fi
say "installed $BIN ($("$BIN" --version))"
for d in /etc/gpuhook /etc/gpuhook/vms; do
  if [ ! -d "$d" ]; then mkdir -p "$d"; record dir "$d"; fi
  chown root:root "$d"; chmod 0755 "$d"
done

# 4. Place the hook, never over someone else's.
[ -d "$HOOKS" ] || { mkdir -p "$HOOKS"; record dir "$HOOKS"; }
ours() { [ -L "$1" ] && [ "$(readlink -f "$1")" = "$(readlink -f "$BIN")" ]; }
if [ ! -e "$HOOKS/qemu" ] && [ ! -L "$HOOKS/qemu" ]; then
  ln -s "$BIN" "$HOOKS/qemu"; record link "$HOOKS/qemu"
  say "hook: $HOOKS/qemu -> $BIN"
elif ours "$HOOKS/qemu"; then
  say "hook: $HOOKS/qemu is already gpuhook"
else
  [ -d "$HOOKS/qemu.d" ] || { mkdir -p "$HOOKS/qemu.d"; record dir "$HOOKS/qemu.d"; }
  if ! ours "$HOOKS/qemu.d/gpuhook"; then
    [ -e "$HOOKS/qemu.d/gpuhook" ] && die "$HOOKS/qemu.d/gpuhook exists and is not ours; move it away first"
    ln -s "$BIN" "$HOOKS/qemu.d/gpuhook"; record link "$HOOKS/qemu.d/gpuhook"
  fi
  say "hook: $HOOKS/qemu is another program's; gpuhook runs after it from $HOOKS/qemu.d/gpuhook"
fi
cat "$MANIFEST.new.keep" "$MANIFEST.new" > "$MANIFEST"; rm -f "$MANIFEST.new" "$MANIFEST.new.keep"

# 5. libvirtd discovers hooks when it starts (or reloads).
reload_libvirt
ls -l "$HOOKS"/qemu "$HOOKS"/qemu.d 2>/dev/null | sed 's/^/  /' || true
say "next: write /etc/gpuhook/vms/<vm>.toml (examples in $PREFIX/share/gpuhook/config/), then: gpuhook check <vm>"

# 6. Optional: the whole cycle on a real kernel with an emulated IOMMU, no spare GPU needed.
if [ "$DEMO" = 1 ]; then
  say "demonstration: QEMU boots Debian's kernel with an emulated IOMMU and a laptop-like GPU; libvirtd inside starts a VM with the dGPU"
  exec "$SRC/tests/realkernel/demo.sh"
fi
