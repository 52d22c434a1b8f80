# lib.sh: helpers for real-kernel scenario scripts (bash, inside the guest, as root).
# Sourced by guest-main.sh and by every scenario. Nothing here hides a failure: every check
# prints what was expected and what was found, and is counted in /run/rk/checks.
#
#   say TEXT                         the scenario's story on the console ("RK [uptime] TEXT")
#   check LABEL EXPECTED ACTUAL      equality
#   check_has LABEL NEEDLE TEXT      TEXT contains NEEDLE (fixed string)
#   check_lacks LABEL NEEDLE TEXT    TEXT does not contain NEEDLE
#   check_same LABEL FILE1 FILE2     two snapshots are equal (prints the diff when not)
#   rk_fail TEXT                     a failure that is not a comparison
#   drv ADDR / ovr ADDR / group_of ADDR / rk_drivers_line ADDR...
#   snapshot                         the host state gpuhook may change, once it is stable
#   write_profile VM < TOML          /etc/gpuhook/vms/VM.toml (root-owned, 0644; unload_vfio = true added)
#   gh VM OP SUB [< XML]             `gpuhook hook VM OP SUB -`; sets GH_RC, GH_ERR, GH_MS
#   log_lines [PATTERN]              gpuhook's log (lines matching PATTERN)
#   libvirt: lv_configure, lv_start, lv_stop, lv_domain NAME MANAGED ADDR..., lv_define NAME MANAGED ADDR...

RK_STATE=/run/rk
mkdir -p "$RK_STATE"
touch "$RK_STATE/checks"
PCI=/sys/bus/pci/devices
LOG=/var/log/gpuhook/gpuhook.log
DGPU=0000:01:00.0
DGPU_AUDIO=0000:01:00.1

# Forks are expensive under TCG (tens of ms each): the helpers below use bash builtins where
# they can ($EPOCHREALTIME, read, globs) and one process per batch where they cannot.
uptime_s() { local u _; read -r u _ < /proc/uptime; echo "$u"; }
say() { local u _; read -r u _ < /proc/uptime; printf 'RK [%7s] %s\n' "$u" "$*"; }
# now_ms: milliseconds since the epoch, in $MS (no subshell).
now_ms() { MS=$(( ${EPOCHREALTIME/./} / 1000 )); }

# --- checks ---------------------------------------------------------------------------------
_pass() { echo "ok $1" >> "$RK_STATE/checks"; say "ok: $1"; }
_fail() { echo "FAIL $1" >> "$RK_STATE/checks"; printf 'RK-FAIL %s\n' "$1"; }
rk_fail() { _fail "$*"; }
check() {
  if [ "$2" = "$3" ]; then _pass "$1 = '$2'"
  else _fail "$1: expected '$2', got '$3'"; fi
}
check_has() {
  if printf '%s' "$3" | grep -qF -- "$2"; then _pass "$1 (has '$2')"
  else
    _fail "$1: expected text containing '$2'; the text was:"
    printf '%s\n' "$3" | head -n 40 | sed 's/^/RK-FAIL   | /'
  fi
}
check_lacks() {
  if printf '%s' "$3" | grep -qF -- "$2"; then
    _fail "$1: expected no '$2'; the text was:"
    printf '%s\n' "$3" | head -n 40 | sed 's/^/RK-FAIL   | /'
  else _pass "$1 (no '$2')"; fi
}
check_same() {
  if cmp -s "$2" "$3"; then _pass "$1 ($(wc -l < "$2") state lines identical)"
  else
    _fail "$1: the state differs (- before, + after):"
    diff -U0 "$2" "$3" | grep '^[-+][^-+]' | sed 's/^/RK-FAIL   | /'
  fi
}
rk_result() {
  local n f
  n=$(grep -c . "$RK_STATE/checks")
  f=$(grep -c '^FAIL' "$RK_STATE/checks")
  if [ "$n" -gt 0 ] && [ "$f" = 0 ]; then
    echo "PASS ($n checks)" > "$RK_STATE/out/result"; echo "RK-RESULT PASS ($n checks)"
  else
    echo "FAIL ($n checks, $f failed)" > "$RK_STATE/out/result"; echo "RK-RESULT FAIL ($n checks, $f failed)"
  fi
}

# --- devices --------------------------------------------------------------------------------
drv() { local l; l=$(readlink "$PCI/$1/driver" 2>/dev/null) && echo "${l##*/}" || echo none; }
ovr() { local v=missing; [ -e "$PCI/$1/driver_override" ] && read -r v < "$PCI/$1/driver_override"; echo "$v"; }
group_of() { local l; l=$(readlink "$PCI/$1/iommu_group" 2>/dev/null) && echo "${l##*/}" || echo none; }
on_driver() { [ -e "/sys/bus/pci/drivers/$2/$1" ]; }   # on_driver ADDR DRIVER, no fork
rk_drivers_line() { local a s=; for a in "$@"; do s="$s${s:+ }${a#0000:}=$(drv "$a")"; done; echo "$s"; }
# Endpoints of the layout whose host drivers must be bound before a scenario starts.
rk_layout_devices() {
  case $RK_LAYOUT in
    laptop) echo 0000:00:02.0 0000:01:00.0 0000:01:00.1 ;;
    messy) echo 0000:00:02.0 0000:01:00.0 0000:01:00.1 0000:03:01.0 0000:03:02.0 ;;
    dual) echo 0000:00:02.0 0000:01:00.0 0000:01:00.1 0000:02:00.0 0000:02:00.1 ;;
    single) echo 0000:00:02.0 ;;
  esac
}
# What udev's coldplug would load for the layout's devices.
rk_load_drivers() {
  local mods="bochs"
  case $RK_LAYOUT in
    laptop|dual) mods="bochs virtio_gpu snd_hda_intel" ;;
    messy) mods="bochs virtio_gpu snd_hda_intel e1000" ;;
  esac
  modprobe -a $mods || rk_fail "guest setup: modprobe -a $mods failed"
  [ "${RK_PRELOAD_VFIO:-0}" = 1 ] && { modprobe vfio-pci || rk_fail "guest setup: modprobe vfio-pci failed"; }
  return 0
}
# Polls until CMD succeeds; at most SECONDS (decimal) seconds.
wait_for() {
  local t=$1 end; shift
  now_ms; end=$(( MS + ${t%.*} * 1000 ))
  while ! "$@" >/dev/null 2>&1; do
    now_ms; [ "$MS" -lt "$end" ] || return 1
    sleep 0.05
  done
}
_all_bound() { local a; for a in $(rk_layout_devices); do [ -e "$PCI/$a/driver" ] || return 1; done; }
rk_settle_drivers() { wait_for 30 _all_bound && snapshot >/dev/null; }

# --- state snapshots ------------------------------------------------------------------------
# Everything gpuhook may change on this guest: each PCI function's driver and driver_override,
# /dev/vfio, the vtconsoles, framebuffers and DRM/sound devices (with the device each sits on),
# platform framebuffer drivers, loaded modules, gpuhook's claims. Taken when three reads 0.3 s
# apart agree (drivers probe asynchronously: the HDA codec, fbdev), at most after 10 s.
_snapshot_once() {
  local d l v n
  # Drivers: one stat for all links ("'.../0000:01:00.0/driver' -> '../../../bus/pci/drivers/x'").
  declare -A dr=()
  while IFS= read -r l; do
    [[ $l =~ devices/([^/]+)/driver\'\ -\>\ \'.*/([^/]+)\'$ ]] && dr[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
  done < <(stat -c '%N' "$PCI"/*/driver 2>/dev/null)
  for d in "$PCI"/*; do
    read -r v < "$d/driver_override"
    printf 'pci %s driver=%s override=%s\n' "${d##*/}" "${dr[${d##*/}]:-none}" "$v"
  done
  l=; for d in /dev/vfio/*; do [ -e "$d" ] && l="$l ${d##*/}"; done; printf 'vfio-nodes%s\n' "$l"
  for d in /sys/class/vtconsole/*; do
    read -r n < "$d/name"; read -r v < "$d/bind"
    printf 'vtcon %s name="%s" bind=%s\n' "${d##*/}" "$n" "$v"
  done
  # Class devices and the PCI function each sits on: one realpath for all of them.
  local links=(/sys/class/graphics/* /sys/class/drm/* /sys/class/sound/*)
  local i=0
  while IFS= read -r l; do
    d=${links[i]}; i=$((i + 1))
    [[ $d =~ /sys/class/([a-z]+)/(.+)$ ]] || continue
    local c=${BASH_REMATCH[1]} name=${BASH_REMATCH[2]} on=virtual
    [ "$name" = version ] && continue
    [[ $l =~ .*/([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])/ ]] && on=${BASH_REMATCH[1]}
    printf '%s %s on %s\n' "$c" "$name" "$on"
  done < <(realpath -m "${links[@]}")
  for d in /sys/bus/platform/devices/*; do
    case ${d##*/} in *framebuffer*|simple*|vesa*|efi*)
      l=none; [ -e "$d/driver" ] && l=$(readlink "$d/driver")
      printf 'platform %s driver=%s\n' "${d##*/}" "${l##*/}" ;;
    esac
  done
  local mods=()
  while read -r n _; do mods+=("$n"); done < /proc/modules
  printf 'modules %s\n' "$(printf '%s\n' "${mods[@]}" | sort | tr '\n' ' ')"
  l=; for d in /run/gpuhook/claims/*; do [ -e "$d" ] && l="$l ${d##*/}"; done; printf 'claims%s\n' "$l"
}
snapshot() {
  local a b i same=0
  a=$(_snapshot_once)
  for i in $(seq 30); do
    sleep 0.3
    b=$(_snapshot_once)
    if [ "$a" = "$b" ]; then same=$((same + 1)); [ $same -ge 2 ] && break; else same=0; fi
    a=$b
  done
  printf '%s\n' "$a"
}
# The dGPU's DRM nodes, found through sysfs (never by name): prints /dev/dri/<node> lines.
drm_nodes_of() {
  local d
  for d in /sys/class/drm/*; do
    case $(readlink -f "$d") in */$1/drm/*) ;; *) continue ;; esac
    case ${d##*/} in card[0-9]*-*) continue ;; esac   # connectors, not device nodes
    if [ -e "/dev/dri/${d##*/}" ]; then echo "/dev/dri/${d##*/}"; fi
  done
}

# --- gpuhook ----------------------------------------------------------------------------------
# The scenarios compare the whole module set before and after, so their profiles ask release to
# unload vfio-pci again ([host] unload_vfio = true is added unless the profile names the key):
# the default (kept loaded, `gpuhook restore --all-modules`) has its own part in s01.
write_profile() {
  local t
  mkdir -p /etc/gpuhook/vms
  chmod 0755 /etc/gpuhook /etc/gpuhook/vms
  t=$(cat)
  case $t in
    *unload_vfio*) ;;
    *$'\n[host]'*|'[host]'*) t=$(printf '%s\n' "$t" | sed '/^\[host\][[:space:]]*$/a unload_vfio = true') ;;
    *) t=$(printf '%s\n\n[host]\nunload_vfio = true' "$t") ;;
  esac
  printf '%s\n' "$t" > "/etc/gpuhook/vms/$1.toml"
  chmod 0644 "/etc/gpuhook/vms/$1.toml"
}
# gh VM OP SUB: runs the hook path by hand; stdin is the caller's (domain XML or /dev/null).
gh() {
  local t0
  now_ms; t0=$MS
  "$GPUHOOK" hook "$1" "$2" "$3" - 2>"$RK_STATE/gh.err"
  GH_RC=$?
  now_ms; GH_MS=$((MS - t0))
  GH_ERR=$(cat "$RK_STATE/gh.err")
  say "gpuhook hook $1 $2 $3 -> exit $GH_RC in ${GH_MS} ms"
  [ -z "$GH_ERR" ] || printf '%s\n' "$GH_ERR" | sed 's/^/RK         stderr| /'
}
log_lines() { if [ -f "$LOG" ]; then grep -F -- "${1:-}" "$LOG"; fi; }
show_log() { log_lines "${1:-}" | sed 's/^/RK         log| /'; }

# --- libvirt ----------------------------------------------------------------------------------
# libvirtd 9.0 in this guest: root, no security driver, no cgroups or namespaces (the guest has
# neither systemd nor a cgroup hierarchy libvirt can use). It must start after the hook exists.
lv_configure() {
  cat >> /etc/libvirt/qemu.conf <<'EOC'
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
EOC
  rm -rf /etc/libvirt/hooks /etc/libvirt/qemu/*.xml /etc/libvirt/qemu/autostart /etc/libvirt/qemu/networks/autostart
  mkdir -p /etc/libvirt/hooks /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu/capabilities
  # QEMU capabilities probed by an earlier guest (libvirtd validates them itself).
  cp /run/rk/caps/*.xml /var/cache/libvirt/qemu/capabilities/ 2>/dev/null
  echo 'log_outputs="3:file:/var/log/libvirt/libvirtd.log"' >> /etc/libvirt/libvirtd.conf
  return 0
}
lv_start() {
  local t0
  now_ms; t0=$MS
  pgrep -x virtlogd >/dev/null || virtlogd -d
  libvirtd -d || { rk_fail "libvirtd -d failed"; return 1; }
  wait_for 60 test -S /run/libvirt/libvirt-sock || { rk_fail "libvirtd did not open its socket in 60 s"; return 1; }
  virsh -q version >/dev/null 2>&1 || { rk_fail "virsh cannot talk to libvirtd"; return 1; }
  now_ms; say "libvirtd up in $((MS - t0)) ms"
  # Keep the probed capabilities for the next guest (rk-vm.sh moves them into its cache).
  if ! ls /run/rk/caps/*.xml >/dev/null 2>&1 && ls /var/cache/libvirt/qemu/capabilities/*.xml >/dev/null 2>&1; then
    mkdir -p /run/rk/out/libvirt-caps && cp /var/cache/libvirt/qemu/capabilities/*.xml /run/rk/out/libvirt-caps/
  fi
}
lv_stop() {
  local p
  p=$(cat /run/libvirtd.pid 2>/dev/null || pgrep -xo libvirtd)
  [ -n "$p" ] || return 0
  kill "$p"
  wait_for 30 sh -c "! kill -0 $p" || rk_fail "libvirtd ($p) did not stop in 30 s"
  rm -f /run/libvirt/libvirt-sock
}
# lv_domain NAME MANAGED(yes|no) ADDR...: a TCG domain with the given PCI functions as hostdevs.
lv_domain() {
  local name=$1 managed=$2 a
  shift 2
  echo "<domain type='qemu'><name>$name</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
  echo "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
  echo "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator><memballoon model='none'/>"
  for a in "$@"; do
    echo "<hostdev mode='subsystem' type='pci' managed='$managed'><source><address domain='0x${a:0:4}' bus='0x${a:5:2}' slot='0x${a:8:2}' function='0x${a:11:1}'/></source></hostdev>"
  done
  echo "</devices></domain>"
}
lv_define() {
  lv_domain "$@" > "/run/rk/$1.xml"
  virsh -q define "/run/rk/$1.xml" >/dev/null || rk_fail "virsh define $1 failed"
}
domstate() { virsh domstate "$1" 2>/dev/null | head -n1; }
# lv_install_hook [DIR/NAME]: gpuhook as libvirt's qemu hook (default /etc/libvirt/hooks/qemu).
# libvirtd gives hooks a clean environment, so a fault for a test build (RK_HOOK_FAULT, the
# value of GPUHOOK_FAULT) goes in through a wrapper script that execs gpuhook under a name
# ending in /qemu (gpuhook's hook mode).
lv_install_hook() {
  local at=${1:-/etc/libvirt/hooks/qemu}
  mkdir -p "$(dirname "$at")"
  if [ -n "${RK_HOOK_FAULT:-}" ]; then
    mkdir -p /run/rk/bin
    ln -sf "$GPUHOOK" /run/rk/bin/qemu
    printf '#!/bin/sh\nGPUHOOK_FAULT=%s exec /run/rk/bin/qemu "$@"\n' "$RK_HOOK_FAULT" > "$at"
    chmod 0755 "$at"
    say "hook: $at -> GPUHOOK_FAULT=$RK_HOOK_FAULT $GPUHOOK"
  else
    ln -s "$GPUHOOK" "$at"
    say "hook: $at -> $GPUHOOK"
  fi
}
# QEMU processes started by libvirtd for domain NAME (pid), and whether it holds /dev/vfio/G.
qemu_pid() { pgrep -f -- "-name guest=$1," | head -n1; }
holds_vfio_group() { ls -l "/proc/$1/fd" 2>/dev/null | grep -q -- "-> /dev/vfio/$2\$" && echo yes || echo no; }
# The events of VM in gpuhook's log, in order, as "op op op".
log_events() { log_lines "(vm $1)" | grep -o '\] event [a-z]* ' | awk '{print $3}' | tr '\n' ' ' | sed 's/ $//'; }
