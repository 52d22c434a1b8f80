#!/bin/bash
# A real libvirtd (Debian's), isolated from this machine, with gpuhook as its QEMU hook.
#
#   libvirtd-sandbox.sh --gpuhook BIN SCENARIO [ARGS...]   libvirtd with BIN as hooks/qemu
#   libvirtd-sandbox.sh --no-hook SCENARIO [ARGS...]       libvirtd with no hook (the scenario installs one)
#   libvirtd-sandbox.sh --no-libvirtd SCENARIO [ARGS...]   only the namespaces and mounts
#
# Runs SCENARIO (a bash script, sourced with lib.sh, see tests/README.md) as root inside
# private mount, PID and network namespaces:
#   - tmpfs over /run, /var/lib/libvirt, /var/log, /var/cache/libvirt; tmpfs overlays over /etc,
#     /var/lib and /usr/local (so /etc/libvirt and a fresh, empty /etc/gpuhook are writable, and
#     nothing written there reaches the host: it lands in $SBX/etc-upper, $SBX/lib-upper, ...);
#     $SBX, a tmpfs, for the scenario's own files (and TMPDIR);
#   - no cgroup file system (unmounted in the namespace), so libvirtd creates no host cgroups;
#   - a test qemu.conf (root, no security driver, no cgroups, no namespaces) and a libvirtd.conf
#     that logs every command libvirtd runs (the hook calls, their exit status and output);
#   - /etc/libvirt/hooks/qemu -> BIN, and /etc/libvirt/hooks/qemu.d/zz-recorder beside it, which
#     appends each event libvirtd sends to $SBX/events ("vm op sub extra stdin-bytes");
#   - virtlogd, then libvirtd under `tini -s`, started only after the hook exists; waits (bounded)
#     until libvirtd answers.
# Teardown on any exit: domains destroyed, daemons stopped; the PID namespace ends with the
# scenario, so the kernel kills anything left over, and the mounts vanish with the namespace.
# With --no-libvirtd, the libvirt mounts and daemons are left out and /etc/gpuhook does not exist
# (install tests).
# Exit: the scenario's status; 77 (skip) when not root or namespaces are unavailable.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
usage() {
  echo "usage: $0 --gpuhook BIN | --no-hook | --no-libvirtd  SCENARIO [ARGS...]" >&2
  exit 2
}
# Sets LIBVIRTD (start libvirtd), HOOK (place BIN as the hook), GPUHOOK, SCENARIO, SCN_ARGS.
parse_args() {
  LIBVIRTD=1 HOOK=1 GPUHOOK=""
  case "${1:-}" in
    --gpuhook) [ $# -ge 2 ] || usage; GPUHOOK=$2; shift 2 ;;
    --no-hook) HOOK=0; shift ;;
    --no-libvirtd) LIBVIRTD=0 HOOK=0; shift ;;
    *) usage ;;
  esac
  [ $# -ge 1 ] || usage
  SCENARIO=$1
  shift
  SCN_ARGS=("$@")
}

if [ "${GPUHOOK_SBX_INNER:-}" != 1 ]; then
  # ---- outside: check, make the namespaces, report the wall time ----
  [ "$(id -u)" = 0 ] || { echo "SKIP: the libvirtd sandbox needs root (namespaces, libvirtd as root)"; exit 77; }
  parse_args "$@"
  [ "$HOOK" = 0 ] || [ -x "$GPUHOOK" ] || { echo "FAIL: gpuhook binary '$GPUHOOK' is not executable" >&2; exit 1; }
  [ -f "$SCENARIO" ] || { echo "FAIL: no scenario '$SCENARIO'" >&2; exit 1; }
  need="unshare mount mountpoint awk"
  [ "$LIBVIRTD" = 1 ] && need="$need libvirtd virtlogd virsh tini qemu-system-x86_64"
  for c in $need; do
    command -v "$c" >/dev/null || { echo "FAIL: $c is not installed (tests/run.sh installs it)" >&2; exit 1; }
  done
  dirs="/run /var/log /var/lib /usr/local /etc"
  [ "$LIBVIRTD" = 1 ] && dirs="$dirs /var/lib/libvirt /var/cache/libvirt"
  for d in $dirs; do
    [ -d "$d" ] || { echo "FAIL: $d does not exist (is libvirt-daemon-system installed?)" >&2; exit 1; }
  done
  if ! unshare --mount --propagation private --pid --fork --mount-proc --net true 2>/dev/null; then
    echo "SKIP: cannot create mount/PID/network namespaces here (unshare failed)"
    exit 77
  fi
  name=$(basename "$SCENARIO" .sh)
  W=$(mktemp -d /tmp/gpuhook-sbx.XXXXXX)
  trap 'rmdir "$W" 2>/dev/null || true' EXIT
  t0=$(now)
  rc=0
  GPUHOOK_SBX_INNER=1 GPUHOOK_SBX_DIR=$W \
    unshare --mount --propagation private --pid --kill-child --mount-proc --net -- bash "$0" "$@" || rc=$?
  case $rc in 0) verdict=PASS ;; 77) verdict=SKIP ;; *) verdict="FAIL (exit $rc)" ;; esac
  echo "sandbox: $name: $verdict in $(secs "$t0" "$(now)") s wall"
  exit $rc
fi

# ---- inside the namespaces (PID 1 here) ----
parse_args "$@"
[ -z "$GPUHOOK" ] || GPUHOOK=$(readlink -f "$GPUHOOK")
SCENARIO=$(readlink -f "$SCENARIO")
SBX=$GPUHOOK_SBX_DIR
export GPUHOOK SBX HERE

mount -t tmpfs -o mode=0755 sbx "$SBX"
mkdir -p "$SBX/tmp"
# overlay DIR: DIR stays readable as it is, and every write to it lands in $SBX/<name>-upper.
overlay() {
  local n
  n=$(basename "$1")
  mkdir -p "$SBX/$n-upper" "$SBX/$n-work"
  mount -t overlay overlay -o "lowerdir=$1,upperdir=$SBX/$n-upper,workdir=$SBX/$n-work" "$1"
}
overlay /etc
overlay /var/lib
overlay /usr/local
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=0755 log /var/log
if [ "$LIBVIRTD" = 1 ]; then
  mount -t tmpfs -o mode=0755 lib /var/lib/libvirt
  mount -t tmpfs -o mode=0711 cache /var/cache/libvirt
  # No cgroup file system in here: libvirtd then creates no cgroup for its domains on the host.
  if mountpoint -q /sys/fs/cgroup; then umount -R /sys/fs/cgroup; fi
fi
export TMPDIR=$SBX/tmp
mkdir -p /run/lock

# Fresh gpuhook config: root-owned, 0755, empty (absent for install tests).
rm -rf /etc/gpuhook
[ "$LIBVIRTD" = 0 ] || mkdir -m 0755 /etc/gpuhook /etc/gpuhook/vms

teardown() {
  local rc=$?
  trap - EXIT
  if [ "$LIBVIRTD" = 1 ] && [ -S /run/libvirt/libvirt-sock ]; then
    for d in $(virsh list --name 2>/dev/null); do virsh destroy "$d" >/dev/null 2>&1 || true; done
  fi
  for p in ${TINI_PID:-} ${VIRTLOGD_PID:-}; do kill -TERM "$p" 2>/dev/null || true; done
  for p in ${TINI_PID:-} ${VIRTLOGD_PID:-}; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
  done
  exit $rc  # PID 1 exits: the kernel kills whatever is left in this namespace
}
trap teardown EXIT

# shellcheck source=lib.sh
. "$HERE/lib.sh"

if [ "$LIBVIRTD" = 1 ]; then
  # Nothing of the host's libvirt state: no defined domains, networks, pools, hooks.
  rm -rf /etc/libvirt/qemu /etc/libvirt/storage /etc/libvirt/secrets /etc/libvirt/hooks
  mkdir -p /etc/libvirt/qemu /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu
  cat > /etc/libvirt/qemu.conf <<'EOF'
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
EOF
  cat > /etc/libvirt/libvirtd.conf <<EOF
log_filters = "1:util.command 1:util.hook 3:*"
log_outputs = "1:file:$LIBVIRTD_LOG"
EOF
  if [ "$HOOK" = 1 ]; then
    mkdir -p /etc/libvirt/hooks/qemu.d
    ln -s "$GPUHOOK" /etc/libvirt/hooks/qemu
    cat > /etc/libvirt/hooks/qemu.d/zz-recorder <<EOF
#!/bin/sh
# Runs after gpuhook for every QEMU event: records what libvirtd sent.
n=\$(wc -c | tr -d ' ')
echo "\$1 \$2 \$3 \$4 \$n" >> $SBX/events
EOF
    chmod 0755 /etc/libvirt/hooks/qemu.d/zz-recorder
    : > "$SBX/events"
  fi

  t_setup=$(now)
  virtlogd & VIRTLOGD_PID=$!
  wait_for "virtlogd's socket" 20 test -S /run/libvirt/virtlogd-sock
  tini -s -- libvirtd & TINI_PID=$!
  wait_for "libvirtd's socket" 30 test -S /run/libvirt/libvirt-sock
  wait_for "libvirtd to answer" 30 virsh -q uri
  echo "sandbox: libvirtd up in $(secs "$t_setup" "$(now)") s"
fi

t_scn=$(now)
rc=0
( set -euo pipefail; . "$SCENARIO" "${SCN_ARGS[@]}" ) || rc=$?
echo "sandbox: scenario $(basename "$SCENARIO" .sh) ran $(secs "$t_scn" "$(now)") s, exit $rc"
if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then sbx_diagnostics; fi
exit $rc
