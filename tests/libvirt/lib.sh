# Helpers for sandbox scenarios (sourced by libvirtd-sandbox.sh inside the namespaces).
# Every check prints what it expected and what it got, and exits non-zero on a mismatch.
# shellcheck shell=bash
LIBVIRTD_LOG=/var/log/libvirt/libvirtd.log
GPUHOOK_LOG=/var/log/gpuhook/gpuhook.log

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds; fails after SECONDS.
wait_for() {
  local what=$1 limit=$2
  shift 2
  local end=$(($(date +%s%N) / 1000000 + limit * 1000))
  until "$@" >/dev/null 2>&1; do
    [ $(($(date +%s%N) / 1000000)) -lt $end ] || fail "timed out after ${limit} s waiting for $what"
    sleep 0.05
  done
}

# expect_contains TEXT NEEDLE WHAT: TEXT must contain NEEDLE (fixed string).
expect_contains() {
  if ! grep -qF -- "$2" <<<"$1"; then
    printf 'FAIL: %s: expected to find\n  %s\nin:\n%s\n' "$3" "$2" "$(sed 's/^/  | /' <<<"$1")" >&2
    exit 1
  fi
}
expect_not_contains() {
  if grep -qF -- "$2" <<<"$1"; then
    printf 'FAIL: %s: did not expect\n  %s\nin:\n%s\n' "$3" "$2" "$(sed 's/^/  | /' <<<"$1")" >&2
    exit 1
  fi
}
expect_eq() {
  if [ "$1" != "$2" ]; then
    printf 'FAIL: %s:\n  expected: %s\n  got:      %s\n' "$3" "$2" "$1" >&2
    exit 1
  fi
}
# expect_same_file A B WHAT: byte-for-byte equal; shows a diff when not.
expect_same_file() {
  if ! cmp -s "$1" "$2"; then
    echo "FAIL: $3 (diff expected -> got):" >&2
    diff -u "$1" "$2" >&2 || true
    exit 1
  fi
}
ok() { echo "ok: $*"; }

# A TCG domain with no disk: enough for libvirtd to run QEMU and every hook event.
domain_xml() {
  cat <<EOF
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <memballoon model='none'/>
    ${2:-}
  </devices>
</domain>
EOF
}
define_domain() {
  domain_xml "$@" > "$SBX/$1.xml"
  virsh -q define "$SBX/$1.xml" >/dev/null || fail "virsh define $1"
}

# write_profile VM MODE: the profile text on stdin, to /etc/gpuhook/vms/VM.toml, root-owned.
write_profile() {
  cat > "/etc/gpuhook/vms/$1.toml"
  chown root:root "/etc/gpuhook/vms/$1.toml"
  chmod "$2" "/etc/gpuhook/vms/$1.toml"
}

# Every PCI device of this host with its driver and driver_override: what gpuhook could change.
host_pci_state() {
  local d drv ov
  for d in /sys/bus/pci/devices/*; do
    drv=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null || true)
    ov=$(cat "$d/driver_override" 2>/dev/null || echo -)
    echo "$(basename "$d") driver=${drv:-none} override=$ov"
  done
  echo "vfio-pci driver loaded: $([ -d /sys/bus/pci/drivers/vfio-pci ] && echo yes || echo no)"
}

# Every file on the sandbox's writable trees (/run, /var/log, and what was written to /etc,
# /var/lib and /usr/local) except libvirt's own: anything gpuhook creates shows up here.
files_snapshot() {
  find /run /var/log "$SBX/etc-upper" "$SBX/lib-upper" "$SBX/local-upper" -xdev 2>/dev/null |
    grep -v -e '^/run/libvirt' -e '^/var/log/libvirt' -e "^$SBX/etc-upper/libvirt" | sort
}

# The hook calls of gpuhook (/etc/libvirt/hooks/qemu) that libvirtd's log shows for VM, one per
# line: "op sub extra".
hook_calls() {
  grep -o "About to run .*/etc/libvirt/hooks/qemu $1 [a-z]* [a-z-]* [^ ]*" "$LIBVIRTD_LOG" |
    sed "s|.*/etc/libvirt/hooks/qemu $1 ||" || true
}
# What became of each of those calls, from libvirtd's log: one line per call,
# "op sub extra<TAB>exit=N<TAB>stdout: '...' stderr: '...'" (newlines in the output shown as \n).
# libvirtd logs a failed hook as "unexpected exit status N" before its "Result" line.
hook_results() {
  awk -v hook="/etc/libvirt/hooks/qemu $1 " '
    function flush() { if (cur != "") { printf "%s\texit=%s\t%s\n", key, ex[cur], txt; cur = "" } }
    /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / {
      flush()
      th = $3
      if (index($0, "About to run ") && (i = index($0, hook))) { pend[th] = substr($0, i + length(hook)); ex[th] = 0; next }
      if ((th in pend) && index($0, "unexpected exit status ") && index($0, hook)) {
        s = substr($0, index($0, "unexpected exit status ") + 23); split(s, a, ":"); ex[th] = a[1]; next
      }
      if ((th in pend) && index($0, "virCommandRun:") && index($0, "Result ")) {
        cur = th; key = pend[th]; delete pend[th]; txt = substr($0, index($0, "stdout: ")); next
      }
      next
    }
    cur != "" { txt = txt "\\n" $0 }
    END { flush() }' "$LIBVIRTD_LOG"
}
# Events the qemu.d recorder saw for VM (it runs after gpuhook): "op sub extra stdin-bytes".
recorded_events() {
  awk -v vm="$1" '$1 == vm { print $2, $3, $4, $5 }' "$SBX/events"
}

sbx_diagnostics() {
  echo "---- diagnostics ----" >&2
  if [ -f "$SBX/events" ]; then
    echo "hook events recorded:" >&2
    sed 's/^/  /' "$SBX/events" >&2
  fi
  if [ -f "$LIBVIRTD_LOG" ]; then
    echo "libvirtd log, hook lines:" >&2
    grep -E 'hooks/qemu|Result|error' "$LIBVIRTD_LOG" | tail -n 40 | cut -c1-400 | sed 's/^/  /' >&2 || true
  fi
  if [ -f "$GPUHOOK_LOG" ]; then
    echo "$GPUHOOK_LOG:" >&2
    tail -n 40 "$GPUHOOK_LOG" | sed 's/^/  /' >&2
  fi
}
