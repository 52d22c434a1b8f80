#!/bin/sh
# The Debian package, end to end, on this machine without changing it:
#   1. install/package.sh builds dist/gpuhook_<version>_<arch>.deb (dpkg-buildpackage);
#   2. lintian: no error, and no warning that tests/package/lintian-kept.txt does not list with its reason;
#   3. in a throw-away root (an overlay over / with its upper layer on tmpfs, in private mount and PID
#      namespaces; dpkg's database is in it, so dpkg and apt act on the copy), tests/package/inside.sh:
#      apt-get install ./gpuhook_*.deb, the hook link, man pages, bash completion, the installed
#      program, remove, purge, and the same next to a foreign hook.
# Usage: deb.sh SOURCE_DIR            (root; exit 77 = skipped)
set -eu
SRC=$(cd "$1" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: the package test needs root (overlay mounts, dpkg in the overlay)"; exit 77; }
for t in dpkg-buildpackage dh lintian unshare scdoc; do
  command -v "$t" >/dev/null 2>&1 || { echo "FAIL: $t is missing (tests/run.sh installs it)"; exit 1; }
done
T=$(mktemp -d /tmp/gpuhook-deb.XXXXXX)
trap 'rm -rf "$T"' EXIT
t0=$(date +%s)

# 1. Build (GPUHOOK_TEST_DEB=FILE: test that .deb instead, when iterating on the test itself).
# No debug information nor debug-symbol package (-g stripped from dpkg-buildflags): the .deb holds
# stripped binaries either way, and debug information is most of the compile time.
if [ -n "${GPUHOOK_TEST_DEB:-}" ]; then
  mkdir -p "$T/dist" && cp "$GPUHOOK_TEST_DEB" "$T/dist/"
else
  DEB_CXXFLAGS_STRIP=-g DEB_BUILD_OPTIONS="noautodbgsym ${DEB_BUILD_OPTIONS:-}" "$SRC/install/package.sh" --no-deps --out "$T/dist"
fi
DEB=$(ls "$T"/dist/gpuhook_*.deb)
case "$DEB" in *"gpuhook_$(sed -n 's/^project(gpuhook VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")_$(dpkg --print-architecture).deb") ;;
  *) echo "FAIL: the package is named $DEB, not gpuhook_<version>_<arch>.deb"; exit 1 ;; esac
echo "== built $(basename "$DEB") in $(( $(date +%s) - t0 )) s"
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' > "$T/contents"
for f in /usr/bin/gpuhook /usr/lib/gpuhook/gpuhook-full.so /usr/share/man/man8/gpuhook.8.gz \
  /usr/share/man/man5/gpuhook.toml.5.gz /usr/share/bash-completion/completions/gpuhook \
  /usr/share/zsh/vendor-completions/_gpuhook /usr/share/fish/vendor_completions.d/gpuhook.fish \
  /usr/share/doc/gpuhook/examples/gpuhook.toml /usr/share/doc/gpuhook/examples/vms/laptop-mux.toml \
  /usr/share/doc/gpuhook/copyright; do
  grep -qxF "$f" "$T/contents" || { echo "FAIL: the package lacks $f"; cat "$T/contents"; exit 1; }
done
if grep -E '^/usr/local|^/etc/libvirt' "$T/contents"; then echo "FAIL: files outside Debian's places"; exit 1; fi

# 2. lintian.
t1=$(date +%s)
lintian --tag-display-limit 0 --display-info "$DEB" > "$T/lintian" 2>&1 || true
echo "== lintian ($(( $(date +%s) - t1 )) s):"; sed 's/^/   /' "$T/lintian"
if grep -q '^E: ' "$T/lintian"; then echo "FAIL: lintian reports errors"; exit 1; fi
kept=$(sed -n 's/^\([a-z0-9-]*\) .*/\1/p' "$SRC/tests/package/lintian-kept.txt")
sed -n 's/^W: gpuhook[^:]*: \([a-z0-9-]*\).*/\1/p' "$T/lintian" | sort -u | while read -r tag; do
  echo "$kept" | grep -qx "$tag" || { echo "FAIL: lintian warning $tag is not in tests/package/lintian-kept.txt (fix it, or list it there with the reason)"; exit 1; }
done

# 3. Install, use, remove and purge in a throw-away root.
t2=$(date +%s)
cp "$DEB" "$T/gpuhook.deb"
cp "$SRC/tests/package/inside.sh" "$SRC/completions/gpuhook.bash" "$T/"
unshare --mount --propagation private --pid --fork --kill-child sh -eu -c '
  T=$1
  mkdir "$T/ov" && mount -t tmpfs tmpfs "$T/ov" && mkdir "$T/ov/upper" "$T/ov/work" "$T/ov/root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$T/ov/upper,workdir=$T/ov/work" "$T/ov/root"
  R=$T/ov/root
  mount -t proc proc "$R/proc"
  mount --rbind /dev "$R/dev"
  mount -t tmpfs tmpfs "$R/run"
  mount -t tmpfs tmpfs "$R/tmp"
  cp "$T/gpuhook.deb" "$T/inside.sh" "$R/tmp/"
  chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 TERM=dumb sh -eu /tmp/inside.sh /tmp/gpuhook.deb
  # What the whole round left behind in the copy of / (the upper layer), other than apt and dpkg
  # records, the .deb itself and the formatted pages man-db cached when the test ran man
  # (man-db'"'"'s, which it expires itself): nothing with gpuhook in its path but the user profile.
  (cd "$T/ov/upper" && find . ! -type c -path "*gpuhook*" | sed "s|^\.||" | grep -v -e "^/tmp/" -e "^/var/log/apt/" -e "^/var/cache/apt/" -e "^/var/cache/man/cat[58]/gpuhook" \
    -e "^/etc/gpuhook$" -e "^/etc/gpuhook/vms$" -e "^/etc/gpuhook/vms/win11.toml$" || true) > "$T/left"
  if [ -s "$T/left" ]; then echo "FAIL: after purge these are left:"; cat "$T/left"; exit 1; fi
  echo "ok: after purge nothing of the package is left in the root (the user profile kept)"
' sh "$T"
echo "== package: PASS (build $(( t1 - t0 )) s, lintian $(( t2 - t1 )) s, install/remove/purge $(( $(date +%s) - t2 )) s)"
