#!/bin/sh
# /init of the desktop guest (busybox sh, PID 1 until it hands over). The guest is a single-GPU
# desktop booted through UEFI: OVMF's GOP frame buffer is the kernel's efifb on the only GPU
# (00:02.0, a bochs VGA). This script reports the frame buffer state as the firmware left it,
# loads bochs-drm unless the kernel command line says dt.bochs=0 (then efifb stays the GPU's only
# owner, as on a desktop whose NVIDIA driver runs without KMS), mounts this machine's / (9p share
# "hostroot", read-only) under a tmpfs overlay at /r (writable everywhere, nothing reaches the
# host), the per-run output share ("dtout") at /r/run/rk/out, and then either
#   dt.init=tini     runs tests/desktop/guest-main.sh chrooted into /r under tini, then powers off;
#   dt.init=systemd  switch_root to systemd with the unit files of this run (desktop.target).
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
K=$(uname -r)
CMD=$(cat /proc/cmdline)
arg() { for a in $CMD; do case $a in "$1"=*) echo "${a#*=}"; return;; esac; done; echo "$2"; }
ins() { for m in $(cat "/mods.$1"); do insmod "/lib/modules/$K/$m" 2>/dev/null || echo "dt-init: insmod $m failed"; done; }
fail() { echo "dt-init: $*"; echo "RK-RESULT FAIL (guest setup: $*)"; poweroff -f; }
fbstate() {   # one line: /proc/fb, vtconsoles, platform frame buffers and their drivers, 00:02.0's driver
  v=; for c in /sys/class/vtconsole/vtcon*; do v="$v ${c##*/}=$(cat $c/bind):$(cat $c/name)"; done
  p=; for d in /sys/bus/platform/devices/*framebuffer*; do
    [ -e "$d" ] && p="$p ${d##*/}->$(basename "$(readlink $d/driver)" 2>/dev/null || echo none)"; done
  g=$(basename "$(readlink /sys/bus/pci/devices/0000:00:02.0/driver)" 2>/dev/null || echo none)
  echo "dt-init: [$1] fb=[$(tr '\n' ';' < /proc/fb)] vtcon=[$v ] platform-fb=[$p ] 00:02.0=$g"
}
ins base
fbstate firmware
if [ "$(arg dt.bochs 1)" = 1 ]; then
  ins gpu
  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do [ -e /dev/dri/card0 ] && break; sleep 0.1; done
  fbstate "bochs-drm loaded"
fi
. /rk.env || fail "no /rk.env"
mkdir -p /w/lower
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /w/lower || fail "9p mount of hostroot failed"
mkdir -p /w/rw
mount -t tmpfs -o mode=0755 tmpfs /w/rw || fail "tmpfs for the root overlay"
mkdir -p /w/rw/up /w/rw/wk
mount -t overlay overlay -o lowerdir=/w/lower,upperdir=/w/rw/up,workdir=/w/rw/wk /r || fail "root overlay failed"
# This machine may be a docker container: with /.dockerenv on its root, systemd as PID 1 believes
# it runs in docker and ignores the kernel command line. The overlay whites it out.
rm -f /r/.dockerenv
mount -t tmpfs -o mode=0755 tmpfs /r/run || fail "tmpfs /run"
mkdir -p /r/run/rk/out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 dtout /r/run/rk/out || fail "9p mount of dtout failed"
cp /rk.env /r/run/rk/env
mount -t proc proc /r/proc
mount -t sysfs sys /r/sys
mount -t devtmpfs dev /r/dev
if [ "$(arg dt.init tini)" = systemd ]; then
  mkdir -p /r/run/systemd/system /r/run/systemd/system-generators
  cp /units/* /r/run/systemd/system/
  # Only what the test needs: every generator (fstab, getty, sysv...) is masked.
  for g in /r/lib/systemd/system-generators/*; do ln -s /dev/null "/r/run/systemd/system-generators/${g##*/}"; done
  echo "dt-init: switching to systemd"
  exec switch_root /r /lib/systemd/systemd
  fail "switch_root failed"
fi
mkdir -p /r/dev/pts /r/dev/shm
mount -t devpts devpts /r/dev/pts
mount -t tmpfs tmpfs /r/dev/shm
ln -s /proc/self/fd /r/dev/fd
mount -t cgroup2 cgroup2 /r/sys/fs/cgroup 2>/dev/null
echo "dt-init: guest up"
chroot /r /usr/bin/tini -s -- /bin/bash "$DT_DIR/guest-main.sh"
echo "dt-init: guest-main.sh exited $?"
poweroff -f
