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
