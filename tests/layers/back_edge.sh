#!/bin/sh
# Proves the layer check can fail: on a copy of hook/ with one back-edge planted (engine/
# including steps/), hook/check_layers.cmake must fail and name the file, the line and the rule;
# on the real tree it must pass.
set -eu
SRC=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cmake -DSRC="$SRC/hook" -DSTAMP="$T/ok" -P "$SRC/hook/check_layers.cmake" || { echo "FAIL: the real tree does not pass"; exit 1; }
cp -r "$SRC/hook" "$T/hook"
sed -i '1i #include "steps/steps.h"' "$T/hook/engine/engine.cpp"
if cmake -DSRC="$T/hook" -DSTAMP="$T/ok2" -P "$SRC/hook/check_layers.cmake" >"$T/out" 2>&1; then
  echo "FAIL: a back-edge engine -> steps passed the check"; exit 1
fi
grep -q 'hook/engine/engine.cpp: #include "steps/steps.h"' "$T/out" || { echo "FAIL: the file is not named:"; cat "$T/out"; exit 1; }
grep -q "layer 'engine' may include only" "$T/out" || { echo "FAIL: the rule is not named:"; cat "$T/out"; exit 1; }
[ ! -e "$T/ok2" ] || { echo "FAIL: the stamp was written"; exit 1; }
echo "PASS: the real tree passes; a planted back-edge fails the build, naming the file and the rule"
