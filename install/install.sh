#!/bin/sh
# gpuhook installer: dependencies, build, install, hook placement, libvirtd reload.
#
#   sudo ./install/install.sh [options]          install (or update) gpuhook
#   sudo ./install/install.sh --uninstall        remove exactly what the installs added
#
# options:
#   --prefix DIR        install under DIR (default /usr/local): DIR/bin/gpuhook
#   --hooks-dir DIR     libvirt's hooks directory (default /etc/libvirt/hooks)
#   --manifest-dir DIR  where the install manifest is kept (default /var/lib/gpuhook)
#   --no-deps           do not install the build dependencies with apt-get
#   --no-reload         do not reload libvirtd afterwards
#   --demo              afterwards, run the whole cycle in QEMU with an emulated IOMMU
#   --binary PATH       install this already built gpuhook: no dependencies, no build (machines
#                       that cannot build, e.g. the read-only guests of tests/realkernel)
#   --uninstall         remove what the manifest records (give the same --*-dir options)
#   -h, --help          this text
#
# The hook goes to <hooks-dir>/qemu as a link to the installed gpuhook when there is no qemu hook
# yet (or it is already ours); otherwise to <hooks-dir>/qemu.d/gpuhook, never replacing someone
# else's hook. Every file, directory and link an install adds is recorded in the manifest;
# --uninstall removes those (directories only when empty, links only while they are gpuhook's),
# so profiles in /etc/gpuhook/vms and logs are kept.
set -eu

PREFIX=/usr/local
HOOKS=/etc/libvirt/hooks
DEPS=1 RELOAD=1 DEMO=0 UNINSTALL=0 PREBUILT=
MANIFEST_DIR=/var/lib/gpuhook
usage_error() { printf 'install.sh: %s\nTry: install.sh --help\n' "$*" >&2; exit 2; }
# dir_arg OPTION VALUE: the value of a directory option, which must be given and absolute.
dir_arg() {
  [ -n "$2" ] || usage_error "$1 needs a directory"
  case "$2" in /*) ;; *) usage_error "$1 must be an absolute path, not '$2'" ;; esac
  printf '%s' "$2"
}
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix|--hooks-dir|--manifest-dir)
      [ $# -ge 2 ] || usage_error "$1 needs a directory"
      v=$(dir_arg "$1" "$2") || exit 2
      case "$1" in --prefix) PREFIX=$v ;; --hooks-dir) HOOKS=$v ;; *) MANIFEST_DIR=$v ;; esac
      shift ;;
    --no-deps) DEPS=0 ;;
    --no-reload) RELOAD=0 ;;
    --demo) DEMO=1 ;;
    --binary)
      [ $# -ge 2 ] || usage_error "--binary needs the path of a built gpuhook"
      PREBUILT=$2; shift ;;
    --uninstall) UNINSTALL=1 ;;
    -h|--help) sed -n '2,/^set -eu$/{/^#/{s/^# \{0,1\}//;p}}' "$0"; exit 0 ;;
    *) usage_error "unknown option $1" ;;
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
  # The binary the hook links point at ("bin" line); a link is removed only while it still does.
  ourbin=$(sed -n 's/^bin //p' "$MANIFEST" | tail -n 1)
  [ -n "$ourbin" ] || ourbin=$BIN
  # Newest first: links, then files, then directories (deepest first; only when empty).
  tac "$MANIFEST" | while read -r kind path; do
    case "$kind" in
      link)
        if [ -L "$path" ] && [ "$(readlink "$path")" = "$ourbin" ]; then rm -f "$path" && say "removed $path"
        elif [ -e "$path" ] || [ -L "$path" ]; then say "kept $path: it is no longer gpuhook's link"; fi ;;
      file) if [ -f "$path" ] && [ ! -L "$path" ]; then rm -f "$path" && say "removed $path"; fi ;;
      dir)
        case "$MANIFEST_DIR/" in "$path"/*) continue ;; esac  # holds the manifest: last
        rmdir "$path" 2>/dev/null && say "removed empty $path" || true ;;
    esac
  done
  # The manifest, then its directory and the parents the install created for it, deepest first.
  manifest_dirs=$(sed -n 's/^dir //p' "$MANIFEST" | tac | while read -r d; do
    case "$MANIFEST_DIR/" in "$d"/*) echo "$d" ;; esac; done)
  rm -f "$MANIFEST"
  [ -z "$manifest_dirs" ] || printf '%s\n' "$manifest_dirs" | while read -r d; do rmdir "$d" 2>/dev/null || true; done
  reload_libvirt
  say "uninstalled (profiles in /etc/gpuhook and logs in /var/log/gpuhook are kept)"
  exit 0
fi

# Nothing is changed when the hook cannot be placed: someone else's qemu.d/gpuhook is in the way.
ours() { [ -L "$1" ] && [ "$(readlink -f "$1")" = "$(readlink -f "$BIN")" ]; }
if [ -e "$HOOKS/qemu" ] && ! ours "$HOOKS/qemu" && ! ours "$HOOKS/qemu.d/gpuhook" &&
  { [ -e "$HOOKS/qemu.d/gpuhook" ] || [ -L "$HOOKS/qemu.d/gpuhook" ]; }; then
  die "$HOOKS/qemu.d/gpuhook exists and is not gpuhook's; move it away first (nothing was changed)"
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
      libboost1.81-dev libtomlplusplus-dev libspdlog-dev libpugixml-dev libgtest-dev libgmock-dev scdoc >/dev/null
  else
    cat >&2 <<'PKGS'
gpuhook-install: no apt-get here. Install these, then rerun with --no-deps:
  Arch:   base-devel cmake pkgconf libvirt boost tomlplusplus spdlog pugixml gtest scdoc
  Fedora: gcc-c++ cmake pkgconf libvirt-devel boost-devel tomlplusplus-devel spdlog-devel pugixml-devel gtest-devel gmock-devel scdoc
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
# install_tree DEST: what `cmake --install` puts under DEST: the program, the example profiles, the
# man pages gpuhook(8) and gpuhook.toml(5), and the bash, zsh and fish completions.
install_tree() {
  if [ -n "$PREBUILT" ]; then
    install -D -m 0755 "$PREBUILT" "$1/bin/gpuhook"
    # The rest of the program, the module gpuhook-full.so, is built next to it.
    if [ -f "$(dirname "$PREBUILT")/gpuhook-full.so" ]; then
      install -D -m 0644 "$(dirname "$PREBUILT")/gpuhook-full.so" "$1/lib/gpuhook/gpuhook-full.so"
    fi
    mkdir -p "$1/share/gpuhook/config" && cp -R "$SRC/config/." "$1/share/gpuhook/config/"
    # The man pages built next to it (build/man/), and the shell completions.
    for page in "$(dirname "$PREBUILT")"/../man/gpuhook.8 "$(dirname "$PREBUILT")"/../man/gpuhook.toml.5; do
      if [ -f "$page" ]; then install -D -m 0644 "$page" "$1/share/man/man${page##*.}/$(basename "$page")"; fi
    done
    install -D -m 0644 "$SRC/completions/gpuhook.bash" "$1/share/bash-completion/completions/gpuhook"
    install -D -m 0644 "$SRC/completions/_gpuhook" "$1/share/zsh/site-functions/_gpuhook"
    install -D -m 0644 "$SRC/completions/gpuhook.fish" "$1/share/fish/vendor_completions.d/gpuhook.fish"
  else
    cmake --install "$SRC/build-release" --prefix "$1" >/dev/null
  fi
}

# 3. Install the program and the example profiles; record what is new, as it is added (an
# install that stops half-way still leaves a manifest that --uninstall can use).
record() { grep -qxF "$1 $2" "$MANIFEST" 2>/dev/null || echo "$1 $2" >> "$MANIFEST"; }
# make_dir DIR: creates DIR and its missing parents, recording each one it creates.
make_dir() {
  [ -d "$1" ] && return 0
  make_dir "$(dirname "$1")"
  mkdir "$1" && record dir "$1"
}
# The manifest's directory first (and its missing parents): it records itself.
new_dirs="" d=$MANIFEST_DIR
while [ ! -d "$d" ]; do new_dirs="$d${new_dirs:+
$new_dirs}"; d=$(dirname "$d"); done
mkdir -p "$MANIFEST_DIR"
[ -z "$new_dirs" ] || { chmod 0755 "$MANIFEST_DIR"; printf '%s\n' "$new_dirs" | while read -r d; do record dir "$d"; done; }
record bin "$BIN"
# What `cmake --install` will add: install into a staging directory first, then record each path
# not yet under the prefix, parents before children.
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
install_tree "$STAGE"
make_dir "$PREFIX"
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort) | while read -r rel; do
  rel=${rel#./}
  if [ -d "$STAGE/$rel" ] && [ ! -L "$STAGE/$rel" ]; then
    [ -d "$PREFIX/$rel" ] || record dir "$PREFIX/$rel"
  elif [ ! -e "$PREFIX/$rel" ] && [ ! -L "$PREFIX/$rel" ]; then
    record file "$PREFIX/$rel"
  fi
done
rm -rf "$STAGE"
install_tree "$PREFIX"
say "installed $BIN ($("$BIN" --version))"
for d in /etc/gpuhook /etc/gpuhook/vms; do
  make_dir "$d"
  chown root:root "$d"; chmod 0755 "$d"
done

# 4. Place the hook, never over someone else's, and only once: libvirtd runs hooks/qemu and then
# every hooks/qemu.d/* for each event, so two gpuhook links would run every event twice.
make_dir "$HOOKS"
if ours "$HOOKS/qemu"; then
  say "hook: $HOOKS/qemu is already gpuhook"
elif ours "$HOOKS/qemu.d/gpuhook"; then
  say "hook: $HOOKS/qemu.d/gpuhook is already gpuhook"
elif [ ! -e "$HOOKS/qemu" ] && [ ! -L "$HOOKS/qemu" ]; then
  ln -s "$BIN" "$HOOKS/qemu"; record link "$HOOKS/qemu"
  say "hook: $HOOKS/qemu -> $BIN"
else
  make_dir "$HOOKS/qemu.d"
  ln -s "$BIN" "$HOOKS/qemu.d/gpuhook"; record link "$HOOKS/qemu.d/gpuhook"
  say "hook: $HOOKS/qemu is another program's; gpuhook runs after it from $HOOKS/qemu.d/gpuhook"
fi

# 5. libvirtd discovers hooks when it starts (or reloads).
reload_libvirt
ls -l "$HOOKS"/qemu "$HOOKS"/qemu.d 2>/dev/null | sed 's/^/  /' || true
say "next: write /etc/gpuhook/vms/<vm>.toml (examples in $PREFIX/share/gpuhook/config/), then: gpuhook check <vm>"

# 6. Optional: the whole cycle on a real kernel with an emulated IOMMU, no spare GPU needed.
if [ "$DEMO" = 1 ]; then
  say "demonstration: QEMU boots Debian's kernel with an emulated IOMMU and a laptop-like GPU; libvirtd inside starts a VM with the dGPU"
  exec "$SRC/tests/realkernel/demo.sh"
fi
