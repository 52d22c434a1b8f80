# Helpers for the install tests; sourced by each test inside the sandbox (after tests/libvirt/lib.sh).
# The test's arguments: the install script under test.
# shellcheck shell=bash
INSTALL_SH=${1:?the install script under test}
T=$SBX/t                 # everything the install may touch, besides /etc/gpuhook
PREFIX=$T/prefix
HOOKS=$T/hooks
MAN=$T/var/lib/gpuhook   # its parents do not exist either: the install creates and records them
BIN=$PREFIX/bin/gpuhook
mkdir -p "$T"

RELOAD_OPT=--no-reload   # reload.sh clears it: install.sh then reloads the sandbox's libvirtd

# run_install [ARGS...]: install.sh with the test's directories; fails the test on a non-zero exit.
# Its output is in $out.
run_install() {
  local rc=0
  out=$(sh "$INSTALL_SH" --prefix "$PREFIX" --hooks-dir "$HOOKS" --manifest-dir "$MAN" --no-deps $RELOAD_OPT "$@" 2>&1) ||
    rc=$?
  [ "$rc" = 0 ] || fail "install.sh $* exited $rc:
$out"
}

# tree_state PATH...: every path below each PATH with its type, mode, owner, link target and a
# hash of its content; "PATH absent" for a missing one. Two equal states = the same trees.
tree_state() {
  local p path type rest
  for p in "$@"; do
    if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo "$p absent"; continue; fi
    find "$p" -printf '%p %y %m %u:%g %l\n' | LC_ALL=C sort | while read -r path type rest; do
      if [ "$type" = f ]; then echo "$path $type $rest $(sha256sum <"$path" | cut -c1-16)"
      else echo "$path $type $rest"; fi
    done
  done
}

# gpuhook_links: every link in the hooks dir (and qemu.d) that resolves to the installed binary.
gpuhook_links() {
  local l
  for l in "$HOOKS"/qemu "$HOOKS"/qemu.d/*; do
    [ -L "$l" ] && [ "$(readlink -f "$l")" = "$(readlink -f "$BIN")" ] && echo "$l"
  done
  return 0
}

# expect_silent_hook PATH: PATH, run the way libvirtd runs a hook, for a VM without a profile,
# exits 0 and prints nothing (gpuhook recognised its hook name).
expect_silent_hook() {
  local o rc=0
  o=$(echo "<domain type='qemu'><name>novm</name></domain>" | "$1" novm prepare begin - 2>&1) || rc=$?
  expect_eq "$rc:$o" "0:" "$1 run as libvirt's hook for a VM without a profile (exit:output)"
}

# write_foreign_hook: someone else's qemu hook, mode 0750, and a copy to compare with.
write_foreign_hook() {
  mkdir -p "$HOOKS"
  printf '#!/bin/sh\n# site hook: not gpuhook\nlogger -t site-hook "$@" 2>/dev/null\nexit 0\n' >"$HOOKS/qemu"
  chmod 0750 "$HOOKS/qemu"
  cp -p "$HOOKS/qemu" "$T/foreign.orig"
}
expect_foreign_intact() {
  [ -f "$HOOKS/qemu" ] && [ ! -L "$HOOKS/qemu" ] || fail "the foreign hook $HOOKS/qemu is no longer a file: $(ls -la "$HOOKS")"
  expect_same_file "$T/foreign.orig" "$HOOKS/qemu" "the foreign hook, byte for byte"
  expect_eq "$(stat -c '%a %U' "$HOOKS/qemu")" "$(stat -c '%a %U' "$T/foreign.orig")" "the foreign hook's mode and owner"
}
