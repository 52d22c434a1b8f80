#!/bin/sh
# gpuhook benchmarks: one command, a few tables (see tests/README.md).
#
#   tests/bench/run.sh [--rounds N] [--realkernel [ROUNDS]]
#       (default 2000; as any user; --realkernel needs root, QEMU and a kernel image)
#
# 1. Event latency of a VM without a profile, as libvirtd runs it (fork+exec, domain XML on
#    stdin, until reaped), interleaved: /bin/true (the limit: a process start), gpuhook (libc
#    only; loads the rest of itself only for managed VMs and verbs), the whole program linked as
#    one dynamic executable (what gpuhook was before), and the classic bash dispatcher
#    (tests/bench/dispatcher.sh). Medians, p10/p90, ratios, peak RSS.
# 2. Peak memory and latency of the hook for a managed VM (a --root tree on tmpfs whose GPU does
#    not exist, so prepare is refused after parsing the profile and planning; a release with a
#    journal to undo; a prepare with 64 MiB on stdin; the plan verb).
# 3. Google Benchmark: prepare/start/started/release on the fake reference laptop, per step.
# 4. With --realkernel (default 5 rounds): in one real-kernel guest (tests/realkernel, QEMU TCG,
#    laptop layout, vfio-pci loaded first), interleaved: gpuhook's prepare+release against the
#    same sysfs writes done bare, and `virsh start`+`destroy` with gpuhook binding managed='no'
#    hostdevs against libvirt's own managed='yes' detach with no hook; medians, ratios, and the
#    per-step lines of gpuhook's log (tests/realkernel/scenarios/timing.sh).
# Nothing here is pass/fail: the figures depend on the machine, printed first.
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=2000 RK=0 RK_ROUNDS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --realkernel) RK=1; case "${2:-}" in [0-9]*) RK_ROUNDS=$2; shift ;; esac ;;
    *) echo "usage: tests/bench/run.sh [--rounds N] [--realkernel [ROUNDS]]" >&2; exit 2 ;;
  esac
  shift
done
B=$SRC/build-bench
JOBS=$(nproc); [ "$JOBS" -gt 2 ] && JOBS=2

T=$(mktemp -d "${TMPDIR:-/tmp}/gpuhook-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
echo "building $B (Release) ..."
if ! { cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=Release -DGPUHOOK_BENCH=ON -DGPUHOOK_FAULT_POINTS=OFF &&
       nice cmake --build "$B" -j"$JOBS" --target benchmarks; } > "$T/build.log" 2>&1; then
  cat "$T/build.log" >&2
  exit 1
fi
cp "$SRC/tests/fuzz/corpus/domain_xml/win11-qemu-override.xml" "$T/domain.xml"  # a 1.7 KiB domain
mkdir -p "$T/hooks/qemu.d/other-vm/prepare/begin"
cp "$SRC/tests/bench/dispatcher.sh" "$T/hooks/qemu"
printf '#!/bin/sh\nexit 0\n' > "$T/hooks/qemu.d/other-vm/prepare/begin/noop"
chmod +x "$T/hooks/qemu" "$T/hooks/qemu.d/other-vm/prepare/begin/noop"
VM=gpuhook-bench-no-such-vm   # no /etc/gpuhook/vms/$VM.toml on any machine
[ ! -e "/etc/gpuhook/vms/$VM.toml" ] || { echo "bench: /etc/gpuhook/vms/$VM.toml exists?" >&2; exit 1; }

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
  "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); kernel $(uname -r)"
echo "os: $(. /etc/os-release && echo "$PRETTY_NAME"); compiler: $(c++ --version | head -1)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo

X=$T/domain.xml
echo "== 1. event latency, VM without a profile: \`gpuhook hook $VM release end -\`, domain XML on stdin"
"$B/tests/bench/bench_startup" --rounds "$ROUNDS" --warmup 100 --ref dispatcher --title "no-profile event" \
  "/bin/true=$X=/bin/true" \
  "gpuhook=$X=$B/hook/gpuhook hook $VM release end -" \
  "before: the whole program in one dynamic executable=$X=$B/tests/bench/bench_monolithic hook $VM release end -" \
  "dispatcher=$X=$T/hooks/qemu $VM release end -"
echo

echo "== 2. a managed VM (--root tree): latency and peak memory of the hook process"
# The root on tmpfs when there is one, like /run: the journal is fsync()ed at every update, and
# on a shared disk that measures the disk's other users.
R=$(mktemp -d /dev/shm/gpuhook-bench-root.XXXXXX 2>/dev/null) || R=$T/root
trap 'rm -rf "$T" "$R"' EXIT
mkdir -p "$R/etc/gpuhook/vms" "$R/run/gpuhook/claims"
printf '[gpu]\naddress = "0000:01:00.0"\n[host]\nstop_services = ["nvidia-persistenced.service"]\nunload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]\n' \
  > "$R/etc/gpuhook/vms/win11.toml"
chmod 0755 "$R/etc/gpuhook" "$R/etc/gpuhook/vms"; chmod 0644 "$R/etc/gpuhook/vms/win11.toml"
head -c $((64 << 20)) /dev/zero | tr '\0' '<' > "$T/64MiB"
: > "$T/empty"
# A release with a journal to read and undo (claims only: nothing under the root to unbind).
J="gpuhook-journal 1\nvm win11\n"
for f in 0 1 2 3; do J="${J}step $((f + 1)) claim phase=prepare address=0000:01:00.$f vm=win11\ndone $((f + 1))\n"; done
REL=$T/release.sh
cat > "$REL" <<EOS
#!/bin/sh
for f in 0 1 2 3; do echo win11 > "$R/run/gpuhook/claims/0000:01:00.\$f"; done
printf '$J' > "$R/run/gpuhook/win11.journal"
exec "$B/hook/gpuhook" --root "$R" hook win11 release end -
EOS
chmod +x "$REL"
ROUNDS2=$((ROUNDS / 10)); [ "$ROUNDS2" -ge 20 ] || ROUNDS2=20
"$B/tests/bench/bench_startup" --rounds "$ROUNDS2" --warmup 5 --title "managed VM" \
  "/bin/true=$X=/bin/true" \
  "prepare, refused after planning=$X=$B/hook/gpuhook --root $R hook win11 prepare begin -" \
  "the same, one dynamic executable=$X=$B/tests/bench/bench_monolithic --root $R hook win11 prepare begin -" \
  "release, 4 journaled steps (sh + gpuhook)=$T/empty=$REL" \
  "prepare, 64 MiB on stdin=$T/64MiB=$B/hook/gpuhook --root $R hook win11 prepare begin -" \
  "plan verb=$T/empty=$B/hook/gpuhook --root $R plan win11"
echo "(prepare exits 1 by design here: the GPU of the profile does not exist under the root)"
echo

echo "== 3. prepare/start/started/release on the fake reference laptop (Google Benchmark, per step)"
"$B/tests/bench/bench_fake" --benchmark_counters_tabular=false 2>&1 | grep -v '^\*\*\*'

if [ "$RK" = 1 ]; then
  echo
  echo "== 4. on the real kernel (QEMU TCG, one vCPU: compare the columns, not the absolute values), $RK_ROUNDS rounds"
  mkdir -p "$T/rk"
  # The guest sees this machine's / read-only: the build must be readable from there (it is).
  if "$SRC/tests/realkernel/rk-vm.sh" --gpuhook "$B/hook/gpuhook" --src "$SRC" --logdir "$T/rk" --name bench-timing \
       --layout laptop --timeout $((300 + 120 * RK_ROUNDS)) --env RK_PRELOAD_VFIO=1 --env RK_TIMING_ROUNDS="$RK_ROUNDS" \
       --env RK_TIMING_LIBVIRT=1 "$SRC/tests/realkernel/scenarios/timing.sh" > "$T/rk/out.txt" 2>&1; then
    grep -a 'RK timing|' "$T/rk/bench-timing/console.log" | sed 's/^.*RK timing| //'
  else
    tail -n 40 "$T/rk/out.txt" >&2
    echo "bench: the real-kernel guest failed (above)" >&2
    exit 1
  fi
fi
