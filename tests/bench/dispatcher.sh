#!/bin/bash
# The classic libvirt hook dispatcher that GPU passthrough guides have users install as
# /etc/libvirt/hooks/qemu, written here from its description for the benchmark: it looks for
# <hooks>/qemu.d/<vm>/<op>/<sub-op>/ and runs every executable there with the hook's arguments
# (a file at that path is run directly). For a VM without such a directory it does nothing.
GUEST_NAME="$1"
HOOK_NAME="$2"
STATE_NAME="$3"
BASEDIR="$(dirname "$0")"
HOOKPATH="$BASEDIR/qemu.d/$GUEST_NAME/$HOOK_NAME/$STATE_NAME"
set -e
if [ -f "$HOOKPATH" ]; then
  "$HOOKPATH" "$@"
elif [ -d "$HOOKPATH" ]; then
  while read -r file; do
    "$file" "$@"
  done <<< "$(find -L "$HOOKPATH" -maxdepth 1 -type f -executable -print)"
fi
