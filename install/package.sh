#!/bin/sh
# Builds the Debian package dist/gpuhook_<version>_<arch>.deb from debian/, with dpkg-buildpackage
# and debhelper, from Debian's packages only.
#
#   ./install/package.sh [options]       then: sudo apt-get install ./dist/gpuhook_*.deb
#
# options:
#   --no-deps    do not install the build dependencies (dpkg-dev, debhelper and debian/control's
#                Build-Depends) with apt-get; needed when not run as root
#   --out DIR    put the .deb in DIR (default: dist/ of this clone)
#   -h, --help   this text
#
# The source (the files git knows, with their changes in the work tree) is copied to
# ${TMPDIR:-/var/tmp}/gpuhook-package/ and built there, so the clone gets nothing but the .deb.
# The path is always the same, so that ccache, when installed, makes rebuilds fast.
set -eu

DEPS=1 OUT=
usage_error() { printf 'package.sh: %s\nTry: package.sh --help\n' "$*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --no-deps) DEPS=0 ;;
    --out)
      [ $# -ge 2 ] && [ -n "$2" ] || usage_error "--out needs a directory"
      OUT=$2; shift ;;
    -h|--help) sed -n '2,/^set -eu$/{/^#/{s/^# \{0,1\}//;p}}' "$0"; exit 0 ;;
    *) usage_error "unknown option $1" ;;
  esac
  shift
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/dist}
say() { printf 'gpuhook-package: %s\n' "$*"; }
die() { printf 'gpuhook-package: %s\n' "$*" >&2; exit 1; }

# One version: CMakeLists.txt's project() is the source of truth; debian/changelog must agree.
VERSION=$(sed -n 's/^project(gpuhook VERSION \([0-9][0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ -n "$VERSION" ] || die "cannot read the version from project(gpuhook VERSION ...) in CMakeLists.txt"
DEBVERSION=$(sed -n '1s/^gpuhook (\([^)]*\)).*/\1/p' "$SRC/debian/changelog")
[ "$DEBVERSION" = "$VERSION" ] || die "debian/changelog is at $DEBVERSION but CMakeLists.txt at $VERSION: add a debian/changelog entry for $VERSION (dch -v $VERSION)"

if [ "$DEPS" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "installing the build dependencies needs root: run with sudo, or install them and pass --no-deps"
  command -v apt-get >/dev/null 2>&1 || die "no apt-get: install dpkg-dev, debhelper and debian/control's Build-Depends, then rerun with --no-deps"
  say "installing the build dependencies with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends dpkg-dev debhelper >/dev/null
  apt-get build-dep -y -qq "$SRC" >/dev/null
fi
for tool in dpkg-buildpackage dh; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: apt-get install dpkg-dev debhelper (or run without --no-deps)"
done

WORK=${TMPDIR:-/var/tmp}/gpuhook-package
TREE=$WORK/gpuhook-$VERSION
rm -rf "$TREE"
mkdir -p "$TREE"
if [ -d "$SRC/.git" ] && command -v git >/dev/null 2>&1; then
  (cd "$SRC" && git ls-files -z --cached --others --exclude-standard) | (cd "$SRC" && xargs -0 cp --parents -d -t "$TREE" 2>/dev/null) || true
  # Files deleted in the work tree but still known to git are simply absent.
else
  (cd "$SRC" && tar --exclude='./build*' --exclude=./dist --exclude=./.git -cf - .) | (cd "$TREE" && tar -xf -)
fi
[ -f "$TREE/debian/rules" ] || die "copying the source to $TREE failed"

ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
DEB=gpuhook_${VERSION}_${ARCH}.deb
say "building $DEB in $TREE"
[ -d /usr/lib/ccache ] && PATH=/usr/lib/ccache:$PATH && export PATH
rm -f "$WORK/$DEB"
(cd "$TREE" && DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" dpkg-buildpackage -b -us -uc >"$WORK/build.log" 2>&1) ||
  { tail -n 40 "$WORK/build.log" >&2; die "dpkg-buildpackage failed; the whole log: $WORK/build.log"; }
[ -f "$WORK/$DEB" ] || die "dpkg-buildpackage made no $DEB (log: $WORK/build.log)"
mkdir -p "$OUT"
cp "$WORK/$DEB" "$OUT/$DEB"
say "built $OUT/$DEB"
say "install: sudo apt-get install $OUT/$DEB"
