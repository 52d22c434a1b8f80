#!/bin/sh
# /init of the real-kernel guest (busybox sh, PID 1). Mounts this machine's / (the 9p share
# "hostroot") read-only at /r with writable layers where libvirt and gpuhook write, mounts the
# per-run output share ("rkout") at /run/rk/out, then runs guest-main.sh chrooted into /r under
# tini (a subreaper: daemons that double-fork are reaped at once). Powers off when it returns.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
K=$(uname -r)
for m in $(cat /modlist); do insmod "/lib/modules/$K/$m" 2>/dev/null || echo "rk-init: insmod $m failed"; done
fail() { echo "rk-init: $*"; echo "RK-RESULT FAIL (guest setup: $*)"; poweroff -f; }
. /rk.env || fail "no /rk.env"
O="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$O,ro,cache=loose" hostroot /r || fail "9p mount of hostroot failed"
mount -t tmpfs tmpfs /r/run || fail "tmpfs /run"
mkdir -p /r/run/rk/out /r/run/rk/caps
mount -t 9p -o "$O" rkout /r/run/rk/out || fail "9p mount of rkout failed"
# libvirt's capabilities cache from an earlier guest, read before /var/tmp is covered.
[ -d "/r$RK_CACHE_DIR/libvirt-caps" ] && cp "/r$RK_CACHE_DIR/libvirt-caps/"*.xml /r/run/rk/caps/ 2>/dev/null
cp /rk.env /r/run/rk/env
# /etc and /var/lib writable: tmpfs overlays on the shared (read-only) ones.
mount -t tmpfs tmpfs /w
for d in etc var/lib; do
  n=$(echo "$d" | sed 's,/,_,g')
  mkdir -p "/w/$n/up" "/w/$n/wk"
  mount -t overlay overlay -o "lowerdir=/r/$d,upperdir=/w/$n/up,workdir=/w/$n/wk" "/r/$d" || fail "overlay on /$d failed"
done
# Fresh, empty state where the host's own may lie under the shared root. The project's own
# paths (the checkout, the gpuhook under test) may lie there too, e.g. a CI clone in /tmp: those
# are set aside first and bound back on top of the fresh tmpfs.
mkdir -p /keep
n=0
for p in "$SRC" "$RK_DIR" "${GPUHOOK%/*}"; do
  [ -n "$p" ] && [ -d "/r$p" ] || continue
  for d in var/lib/libvirt var/log var/cache/libvirt var/tmp tmp root; do
    case "$p/" in "/$d/"*)
      n=$((n + 1)); mkdir -p "/keep/$n"
      mount -o bind "/r$p" "/keep/$n" || fail "cannot set $p aside"
      echo "$n $p" >> /keep/list ;;
    esac
  done
done
for d in var/lib/libvirt var/log var/cache/libvirt var/tmp tmp root; do
  mount -t tmpfs tmpfs "/r/$d" || fail "tmpfs /$d"
done
if [ -f /keep/list ]; then
  while read -r k p; do
    mkdir -p "/r$p" && mount -o bind "/keep/$k" "/r$p" || fail "cannot bind $p back"
  done < /keep/list
fi
mount -t proc proc /r/proc
mount -t sysfs sys /r/sys
mount -t devtmpfs dev /r/dev
mkdir -p /r/dev/pts /r/dev/shm
mount -t devpts devpts /r/dev/pts
mount -t tmpfs tmpfs /r/dev/shm
# What udev would add to devtmpfs (bash's process substitution needs /dev/fd).
ln -s /proc/self/fd /r/dev/fd
ln -s /proc/self/fd/0 /r/dev/stdin
ln -s /proc/self/fd/1 /r/dev/stdout
ln -s /proc/self/fd/2 /r/dev/stderr
mount -t cgroup2 cgroup2 /r/sys/fs/cgroup 2>/dev/null
echo "rk-init: guest up"
chroot /r /usr/bin/tini -s -- /bin/bash "$RK_DIR/guest-main.sh"
echo "rk-init: guest-main.sh exited $?"
poweroff -f
