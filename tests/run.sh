#!/bin/sh
# The whole test suite on a fresh Debian 12 machine, as root: installs what the tests need,
# builds with test-only fault points, runs every ctest label, then the unit tests again under
# ASan+UBSan, then each fuzz target for a bounded time. Prints the ctest summary.
#
#   sudo ./tests/run.sh            everything (about 10 minutes on 2 cores)
#   sudo ./tests/run.sh --quick    unit tests only
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
[ "$(id -u)" = 0 ] || { echo "tests/run.sh: run as root (it installs packages; real-system tests bind PCI drivers inside QEMU)" >&2; exit 1; }
JOBS=$(nproc)

# 1. What the tests need, from Debian's archive.
PKGS="build-essential cmake pkg-config libvirt-dev libboost1.81-dev libtomlplusplus-dev libspdlog-dev
  libpugixml-dev libgtest-dev libgmock-dev libbenchmark-dev clang-14 libfuzzer-14-dev libclang-rt-14-dev
  qemu-system-x86 ovmf linux-image-amd64 busybox-static tini cpio kmod python3 libvirt-daemon-system libvirt-clients
  systemd weston dbus dbus-user-session libpam-systemd
  util-linux procps
  scdoc dpkg-dev debhelper lintian man-db bash-completion zsh fish"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "tests/run.sh: installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

START=$(date +%s)
phase() { echo "== tests/run.sh: $* (at $(( $(date +%s) - START )) s)"; }
# run_ctest DIR ARGS...: ctest in DIR; adds its counts to the totals printed at the end.
PASSED=0 FAILED=0 rc=0
run_ctest() {
  d=$1; shift
  out=$(mktemp)
  (cd "$d" && ctest "$@") 2>&1 | tee "$out"
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$out" | tail -1)
  rm -f "$out"
  if [ -z "$line" ]; then FAILED=$((FAILED + 1)); rc=1; return; fi
  total=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/')
  failed=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/')
  PASSED=$((PASSED + total - failed)); FAILED=$((FAILED + failed))
  [ "$failed" = 0 ] || rc=1
}

# 2. Build with the test-only fault points.
phase "building build-tests"
# (-O2 without debug info: the suite compiles four times on two cores, debug info is most of it)
cmake -S "$SRC" -B "$SRC/build-tests" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O2 -DGPUHOOK_FAULT_POINTS=ON >/dev/null
cmake --build "$SRC/build-tests" -j"$JOBS"

# 3. Every test: unit, libvirt, install, realkernel, and the fuzz seed corpora replayed.
if [ "$QUICK" = 1 ]; then
  cd "$SRC/build-tests" && exec ctest --output-on-failure -L unit -j"$JOBS"
fi
phase "every test of build-tests"
run_ctest "$SRC/build-tests" --output-on-failure -j"$JOBS" --timeout 900

# 4. The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer (with the fault
#    matrix, the hostile-input tests on the binary, and the fuzz seed corpora replayed).
phase "the unit tests under ASan+UBSan"
cmake -S "$SRC" -B "$SRC/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DGPUHOOK_SANITIZE=ON >/dev/null
cmake --build "$SRC/build-asan" -j"$JOBS" --target gpuhook_unit gpuhook fuzzers man
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# The one test that loads libvirt into the process (its in-process test driver) runs without the
# leak check: at exit LeakSanitizer's tracer (gcc 12) crashes reading a dynamic TLS block of a
# library libvirt loads ("Tracer caught signal 11 ... DTLS"), after the test passed. ASan and
# UBSan still check it; every other test of verb_check runs with the leak check.
LIBVIRT_IN_PROCESS='Check\.TheDomainIsReadThroughLibvirtsApiReadOnly'
run_ctest "$SRC/build-asan" --output-on-failure -L unit -j"$JOBS" -E "$LIBVIRT_IN_PROCESS"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
run_ctest "$SRC/build-asan" --output-on-failure -L unit -R "$LIBVIRT_IN_PROCESS"
unset ASAN_OPTIONS UBSAN_OPTIONS

# 5. Each fuzz target (libFuzzer, clang-14, ASan+UBSan) for GPUHOOK_FUZZ_SECONDS (default 15) on a
#    copy of its seed corpus (tests/fuzz/corpus/<target>); a crash fails the run and leaves its
#    input in build-fuzz/tests/fuzz/artifacts/. Longer runs: tests/README.md.
phase "fuzzing"
cmake -S "$SRC" -B "$SRC/build-fuzz" -DCMAKE_CXX_COMPILER=clang++-14 -DGPUHOOK_FUZZ=ON \
  -DGPUHOOK_FUZZ_SECONDS="${GPUHOOK_FUZZ_SECONDS:-15}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g1" >/dev/null
cmake --build "$SRC/build-fuzz" -j"$JOBS" --target fuzzers
run_ctest "$SRC/build-fuzz" --output-on-failure -L fuzz -j"$JOBS"
phase "done"
echo "all: $PASSED passed, $FAILED failed"
exit $rc
