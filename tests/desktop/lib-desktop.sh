# lib-desktop.sh: helpers for desktop scenarios (bash, in the guest), next to tests/realkernel/lib.sh.
#   GPU                     the only GPU, 0000:00:02.0 (boot VGA; the firmware frame buffer is on it)
#   fb_vtcons               the frame buffer vtconsoles, found by name, as "vtcon1=1" (name=bind)
#   efifb_state             efi-framebuffer.0: bound (to efi-framebuffer) | unbound | gone
#   dt_state                one line: the GPU's driver, /proc/fb, vtconsoles, efi-framebuffer.0, /dev/vfio
#   shot NAME [settle]      a screenshot of the VGA output into the run's shots/ directory (host side);
#                           SHOT is the host's answer: "ok", "ok flat" (one colour), "error ...",
#                           with " (not settled)" when "settle" waited 30 s in vain
GPU=0000:00:02.0
fb_vtcons() {
  local v n b s=
  for v in /sys/class/vtconsole/vtcon*; do
    [ -e "$v/name" ] || continue
    read -r n < "$v/name"; read -r b < "$v/bind"
    case $n in *"frame buffer"*) s="$s${s:+ }${v##*/}=$b" ;; esac
  done
  echo "${s:-none}"
}
efifb_state() {
  local d=/sys/bus/platform/devices/efi-framebuffer.0
  if [ ! -e $d ]; then echo gone; elif [ -e $d/driver ]; then echo bound; else echo unbound; fi
}
dt_state() {
  local fb l
  fb=$(tr '\n' ';' < /proc/fb)
  l=; for d in /dev/vfio/*; do [ -e "$d" ] && l="$l${l:+,}${d##*/}"; done
  echo "$GPU=$(drv $GPU) fb=[${fb%;}] fbcon=[$(fb_vtcons)] efi-framebuffer.0=$(efifb_state) vfio=[$l]"
}
_shot_port=
shot() {
  local a p
  if [ -z "$_shot_port" ]; then
    # udev's /dev/virtio-ports link may not exist (no udev under tini): look the port up in sysfs.
    for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name" 2>/dev/null)" = dt.shot ] && _shot_port=/dev/${p##*/}; done
    [ -n "$_shot_port" ] || { SHOT="error: no dt.shot port"; say "shot $1: no dt.shot port"; return 1; }
  fi
  exec 7<>"$_shot_port"
  echo "$*" >&7
  read -r a <&7
  exec 7>&-
  SHOT=$a
  say "screenshot $1: $a"
}
# --- the desktop (systemd + weston, --display weston) ---------------------------------------
#   weston_master           "PID master=y" when a weston process holds /dev/dri/card0 as DRM master
#                           ("none" without weston, "PID no-card0", "PID master=n"); needs debugfs
#   dm_stamp                display-manager.service's MainPID and ActiveEnterTimestampMonotonic:
#                           unchanged means the unit was never stopped or restarted in between
#   check_desktop_back WHEN OLDPID   the desktop came back as after d03's destroy: bochs-drm on the
#                           GPU, fbcon bound, display-manager.service active, a weston other than
#                           OLDPID DRM master of card0 (waited for, 15 s at most)
mountpoint -q /sys/kernel/debug 2>/dev/null || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
weston_master() {
  local pid m
  pid=$(pidof weston) || { echo none; return; }
  ls -l /proc/$pid/fd 2>/dev/null | grep -q -- '-> /dev/dri/card0$' || { echo "$pid no-card0"; return; }
  m=$(awk -v p="$pid" '$2 == p { print $4 }' /sys/kernel/debug/dri/0/clients 2>/dev/null | head -n1)
  echo "$pid master=${m:-?}"
}
dm_stamp() {
  systemctl show -p MainPID -p ActiveEnterTimestampMonotonic display-manager.service | sort | tr '\n' ' ' | sed 's/ $//'
}
check_desktop_back() {
  local w
  check "driver of $GPU $1" bochs-drm "$(drv $GPU)"
  check "the frame buffer console is bound $1" "vtcon1=1" "$(fb_vtcons)"
  wait_for 30 sh -c 'systemctl is-active -q display-manager.service'
  check "display-manager.service $1" active "$(systemctl is-active display-manager.service)"
  wait_for 15 sh -c "awk '\$1 == \"weston\" && \$4 == \"y\"' /sys/kernel/debug/dri/0/clients | grep -q ." ||
    rk_fail "no weston became DRM master within 15 s ($1)"
  w=$(weston_master)
  check "a weston holds /dev/dri/card0 as DRM master $1" "master=y" "${w#* }"
  check "it is a new weston process $1" yes "$([ "${w%% *}" != "$2" ] && echo yes || echo no)"
}
