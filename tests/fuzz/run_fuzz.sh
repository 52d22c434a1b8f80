#!/bin/sh
# Runs one libFuzzer target for a bounded time on a copy of its seed corpus (the committed corpus
# is never written to). A crash leaves its input in ARTIFACTS and fails the test.
#   run_fuzz.sh TARGET SEED_DIR SECONDS ARTIFACTS [DICT]
set -eu
target=$1 seeds=$2 seconds=$3 artifacts=$4 dict=${5:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/gpuhook-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work"/
mkdir -p "$artifacts"
set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 \
  -artifact_prefix="$artifacts/$(basename "$target")-"
[ -n "$dict" ] && set -- "$@" -dict="$dict"
exec "$target" "$@" "$work"
