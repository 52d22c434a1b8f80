#!/bin/sh
# Runs inside tests/package/deb.sh's throw-away root (an overlay copy of /): installs, uses,
# removes and purges the package the way a person would, and checks each step.
# Usage: inside.sh GPUHOOK.deb
set -eu
DEB=$1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
export DEBIAN_FRONTEND=noninteractive
# No man-db auto-update trigger, no service starts: what a fresh container has.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d

# A clean start in the copy: no gpuhook of this machine, no hook.
dpkg -s gpuhook >/dev/null 2>&1 && apt-get purge -y -qq gpuhook >/dev/null
rm -rf /etc/libvirt/hooks /etc/gpuhook /var/log/gpuhook /var/lib/gpuhook /usr/local/bin/gpuhook

install_deb() { apt-get install -y -qq "$DEB" > /tmp/apt.log 2>&1 || { cat /tmp/apt.log; fail "apt-get install $DEB"; exit 1; }; }

# --- 1. A machine without a hook, and a "libvirtd" running: without systemd (as here), postinst
# sends it SIGHUP, which makes libvirtd rescan its hooks (tests/install's reload_libvirtd shows a
# real libvirtd finding the hook that way). The stand-in records the signal.
bash -c 'exec -a libvirtd bash -c "trap \"echo hup >> /tmp/libvirtd-hup\" HUP; while :; do sleep 0.1; done"' &
stand_in=$!
for _ in $(seq 50); do pidof libvirtd >/dev/null && break; sleep 0.1; done
install_deb
for _ in $(seq 50); do [ -s /tmp/libvirtd-hup ] && break; sleep 0.1; done
[ -s /tmp/libvirtd-hup ] && ok "postinst: libvirtd (pid $(pidof libvirtd)) got SIGHUP" || fail "postinst did not signal libvirtd: $(cat /tmp/apt.log)"
[ -x /usr/bin/gpuhook ] && ok "/usr/bin/gpuhook installed" || fail "/usr/bin/gpuhook missing"
v=$(/usr/bin/gpuhook --version) && ok "gpuhook --version: $v" || fail "gpuhook --version failed"
[ "$(readlink /etc/libvirt/hooks/qemu)" = /usr/bin/gpuhook ] && ok "hook: /etc/libvirt/hooks/qemu -> /usr/bin/gpuhook" ||
  fail "hook link: $(ls -l /etc/libvirt/hooks 2>&1)"
[ ! -e /etc/libvirt/hooks/qemu.d ] || fail "qemu.d created without need"
# libvirt's call for a VM without a profile: exit 0, silent.
out=$(echo '<domain/>' | /etc/libvirt/hooks/qemu other prepare begin - 2>&1) && [ -z "$out" ] &&
  ok "the hook for a VM without a profile: exit 0, silent" || fail "hook for an unmanaged VM: '$out'"
# man pages, through man-db's index as a person would.
man -w gpuhook | grep -qx /usr/share/man/man8/gpuhook.8.gz && ok "man -w gpuhook: $(man -w gpuhook)" || fail "man -w gpuhook: $(man -w gpuhook 2>&1)"
LC_ALL=C MANWIDTH=80 man gpuhook 2>/dev/null | grep -q 'log \[VM\] \[--events N\] \[--follow\]' && ok "man gpuhook shows the verbs" ||
  fail "man gpuhook: $(LC_ALL=C MANWIDTH=80 man gpuhook 2>&1 | grep -e 'log \[' -e 'man:' | head -5)"
LC_ALL=C MANWIDTH=80 man 5 gpuhook.toml 2>/dev/null | grep -q 'unload_modules' && ok "man 5 gpuhook.toml shows the keys" || fail "man 5 gpuhook.toml"
# Profiles: the directories exist, root-owned 0755, as gpuhook requires.
[ "$(stat -c '%U %a' /etc/gpuhook/vms)" = "root 755" ] && ok "/etc/gpuhook/vms root 0755" || fail "/etc/gpuhook/vms: $(stat -c '%U %a' /etc/gpuhook/vms 2>&1)"
cp /usr/share/doc/gpuhook/examples/vms/desktop-dual-gpu.toml /etc/gpuhook/vms/win11.toml
chmod 0644 /etc/gpuhook/vms/win11.toml
# bash completion, loaded the way bash-completion loads it (on demand, from its directory).
comp() {
  bash -c '
    . /usr/share/bash-completion/bash_completion
    __load_completion gpuhook || exit 3
    read -ra COMP_WORDS <<<"$1"; case "$1" in *" ") COMP_WORDS+=("") ;; esac
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE=$1; COMP_POINT=${#1}
    $(complete -p gpuhook | sed -n "s/.*-F \([^ ]*\) .*/\1/p") gpuhook "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "${COMPREPLY[*]}"' _ "$1"
}
[ "$(comp 'gpuhook ch')" = check ] && ok "bash: gpuhook ch<Tab> -> check" || fail "bash: gpuhook ch<Tab> -> '$(comp 'gpuhook ch')'"
[ "$(comp 'gpuhook check ')" = win11 ] && ok "bash: gpuhook check <Tab> -> win11" || fail "bash: gpuhook check <Tab> -> '$(comp 'gpuhook check ')'"
# The installed program with its module: a managed VM's release writes the log, `gpuhook log` reads it.
echo '<domain/>' | /etc/libvirt/hooks/qemu win11 release end - >/dev/null 2>&1 || true
gpuhook log win11 | grep -q '== win11 release' && ok "gpuhook log win11 reads the event" || fail "gpuhook log win11: $(gpuhook log win11 2>&1)"
dpkg -L gpuhook > /tmp/files

# --- 2. remove: the link goes (and libvirtd is told), profiles and logs stay.
: > /tmp/libvirtd-hup
apt-get remove -y -qq gpuhook >/dev/null 2>&1 || fail "apt-get remove"
for _ in $(seq 50); do [ -s /tmp/libvirtd-hup ] && break; sleep 0.1; done
[ -s /tmp/libvirtd-hup ] && ok "remove: libvirtd got SIGHUP" || fail "remove did not signal libvirtd"
kill "$stand_in" 2>/dev/null || true
[ ! -e /etc/libvirt/hooks/qemu ] && [ ! -L /etc/libvirt/hooks/qemu ] && ok "remove: the hook link is gone" || fail "remove left $(ls -l /etc/libvirt/hooks/qemu)"
[ -f /etc/gpuhook/vms/win11.toml ] && ok "remove: the profile is kept" || fail "remove deleted the profile"
[ -f /var/log/gpuhook/gpuhook.log ] && ok "remove: the log is kept" || fail "remove deleted the log"
[ ! -e /usr/bin/gpuhook ] || fail "remove left /usr/bin/gpuhook"

# --- 3. purge: logs and state go; the profile (the user's) stays; nothing of the package is left.
apt-get purge -y -qq gpuhook >/dev/null 2>&1 || fail "apt-get purge"
[ ! -e /var/log/gpuhook ] && ok "purge: /var/log/gpuhook removed" || fail "purge left /var/log/gpuhook"
[ ! -e /var/lib/gpuhook ] && ok "purge: /var/lib/gpuhook removed" || fail "purge left /var/lib/gpuhook"
[ -f /etc/gpuhook/vms/win11.toml ] && ok "purge: the user's profile is kept" || fail "purge deleted the profile"
left=$(grep -v -x -e /. -e /usr -e /usr/bin -e /usr/lib -e /usr/share -e /usr/share/man -e '/usr/share/man/man[58]' \
  -e /usr/share/doc -e /usr/share/bash-completion -e /usr/share/bash-completion/completions -e /usr/share/zsh \
  -e /usr/share/zsh/vendor-completions -e /usr/share/fish -e /usr/share/fish/vendor_completions.d /tmp/files |
  while read -r f; do if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi; done)
[ -z "$left" ] && ok "purge: none of the package's $(wc -l < /tmp/files) paths is left" || fail "purge left: $left"
[ -z "$(ls -A /etc/libvirt/hooks 2>/dev/null)" ] && ok "purge: no hook link" || fail "purge left hooks: $(ls -l /etc/libvirt/hooks)"
rm -rf /etc/libvirt/hooks

# --- 4. Next to a foreign hook: qemu.d/gpuhook, the foreign hook untouched, and remove takes only ours.
mkdir -p /etc/libvirt/hooks
printf '#!/bin/sh\nexit 0\n' > /etc/libvirt/hooks/qemu && chmod 0750 /etc/libvirt/hooks/qemu
before=$(stat -c '%s %a %U %Y' /etc/libvirt/hooks/qemu; md5sum < /etc/libvirt/hooks/qemu)
install_deb
[ "$(readlink /etc/libvirt/hooks/qemu.d/gpuhook)" = /usr/bin/gpuhook ] && ok "foreign hook: gpuhook in qemu.d/gpuhook" || fail "foreign hook: $(ls -lR /etc/libvirt/hooks)"
install_deb  # reinstall: still exactly one gpuhook hook
apt-get install -y -qq --reinstall "$DEB" >/dev/null 2>&1 || fail "reinstall"
[ "$(find /etc/libvirt/hooks -lname /usr/bin/gpuhook | wc -l)" = 1 ] && ok "reinstall: exactly one gpuhook hook" || fail "reinstall: $(ls -lR /etc/libvirt/hooks)"
apt-get purge -y -qq gpuhook >/dev/null 2>&1 || fail "apt-get purge (foreign hook)"
after=$(stat -c '%s %a %U %Y' /etc/libvirt/hooks/qemu; md5sum < /etc/libvirt/hooks/qemu)
[ "$before" = "$after" ] && ok "foreign hook unchanged (content, mode, owner, mtime)" || fail "foreign hook changed: $before / $after"
[ ! -e /etc/libvirt/hooks/qemu.d ] && ok "purge: qemu.d, which postinst created, is gone" || fail "purge left $(ls -la /etc/libvirt/hooks/qemu.d)"
rm -rf /etc/libvirt/hooks

# --- 5. An install.sh gpuhook is already the hook: the package adds no second one (libvirtd would
# run every event twice), says so, and purge leaves that link alone.
mkdir -p /etc/libvirt/hooks
ln -s /usr/local/bin/gpuhook /etc/libvirt/hooks/qemu
install_deb
[ "$(readlink /etc/libvirt/hooks/qemu)" = /usr/local/bin/gpuhook ] && [ ! -e /etc/libvirt/hooks/qemu.d ] &&
  ok "next to install.sh's gpuhook: no second hook" || fail "next to install.sh's gpuhook: $(ls -lR /etc/libvirt/hooks)"
grep -q "another gpuhook is already libvirt's hook" /tmp/apt.log && ok "postinst says why" || fail "postinst said: $(cat /tmp/apt.log)"
apt-get purge -y -qq gpuhook >/dev/null 2>&1 || fail "apt-get purge (install.sh hook)"
[ "$(readlink /etc/libvirt/hooks/qemu)" = /usr/local/bin/gpuhook ] && ok "purge left install.sh's link alone" || fail "purge touched install.sh's link"
rm -rf /etc/libvirt/hooks

rm -f /usr/sbin/policy-rc.d
[ "$fails" = 0 ] || { echo "inside: $fails failure(s)"; exit 1; }
