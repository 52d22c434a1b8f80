# Scenario 23 (issue 16), layout laptop, `gpuhook hook` by hand (busybox guest, no systemd, no
# user manager). Proves, with a stand-in client (tests/realkernel/lg-standin-client) that
# records its argv, uid, stdio and environment and then waits:
#   prepare creates /dev/shm/looking-glass with the domain's <shmem> size (32 MiB), owned by the
#   profile's user and QEMU's group (kvm), mode 0660;
#   started runs the client as that user (uid, gid, groups), detached (its own session, stdio on
#   /dev/null, no other descriptor), with the session environment taken from the user's desktop
#   process (WAYLAND_DISPLAY, XDG_RUNTIME_DIR) and not root's;
#   release ends it (SIGTERM) and removes the file, the journal and the pid file;
#   a hook killed right after the client started (GPUHOOK_FAULT=after-apply:lg.client:1),
#   then release: the same.
. "$RK_DIR/lib.sh"
getent group kvm >/dev/null || groupadd -r kvm
useradd -M -d /nonexistent -s /bin/bash -u 1500 -U -G kvm lguser || rk_fail "useradd lguser"
mkdir -p /run/rk-lg && chmod 1777 /run/rk-lg
mkdir -p /run/user/1500 && chown lguser:lguser /run/user/1500 && chmod 0700 /run/user/1500
# lguser's "desktop": a process of theirs whose environment is the session's.
setpriv --reuid=lguser --regid=lguser --init-groups env -i WAYLAND_DISPLAY=wayland-rk XDG_RUNTIME_DIR=/run/user/1500 \
  XDG_SESSION_TYPE=wayland sleep 600 &
DESKTOP=$!
CLIENT="$RK_DIR/lg-standin-client"
write_profile win <<EOT
[gpu]
address = "$DGPU"
[display]
mode = "looking-glass"
[display.looking_glass]
client = ["$CLIENT", "-F", "two words"]
user = "lguser"
EOT
XML="<domain type='kvm'><name>win</name><memory unit='KiB'>65536</memory><devices>
<shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>32</size></shmem></devices></domain>"
snapshot > "$RK_STATE/before"

run_to_started() {
  rm -f /run/rk-lg/record /run/rk-lg/signal
  gh win prepare begin <<< "$XML"
  check "prepare exit status" 0 "$GH_RC"
  check "shared memory: size owner group mode" "33554432 lguser kvm 660 regular file" \
    "$(stat -c '%s %U %G %a %F' /dev/shm/looking-glass 2>&1)"
  gh win start begin < /dev/null
  check "start exit status" 0 "$GH_RC"
}
rec() { sed -n "s/^$1 //p" /run/rk-lg/record; }

run_to_started
gh win started begin < /dev/null
check "started exit status" 0 "$GH_RC"
wait_for 10 test -s /run/rk-lg/record || rk_fail "the stand-in client wrote no record within 10 s"
read -r CPID CSTART < /run/gpuhook/win.lg-client
check "client pid in the pid file is the recording process" "$CPID" "$(rec pid)"
check "client uid" 1500 "$(rec uid)"
check "client gid" 1500 "$(rec gid)"
check_has "client groups include kvm" "$(getent group kvm | cut -d: -f3)" "$(rec groups)"
check "client argv" "-F|two words" "$(rec arg | paste -sd'|')"
check "client WAYLAND_DISPLAY (from the desktop process)" wayland-rk "$(rec env | sed -n 's/^WAYLAND_DISPLAY=//p')"
check "client XDG_RUNTIME_DIR" /run/user/1500 "$(rec env | sed -n 's/^XDG_RUNTIME_DIR=//p')"
check "client USER" lguser "$(rec env | sed -n 's/^USER=//p')"
check_lacks "client environment: nothing of the hook's" "GPUHOOK" "$(rec env)"
check "client leads its own session (setsid, detached)" "$(rec pid)" "$(rec sid)"
check "client leads its own process group" "$(rec pid)" "$(rec pgid)"
check "client has no descriptor but stdio (and bash's own 255)" "0 1 2 255" "$(rec fds | tr -s ' ' | sed 's/ $//')"
check "client stdin" /dev/null "$(rec fd0)"
check "client stdout" /dev/null "$(rec fd1)"
check "client stderr" /dev/null "$(rec fd2)"
check "client's parent is not a gpuhook (reparented)" yes "$(p=$(ps -o ppid= -p "$CPID" | tr -d ' '); [ "$(cat /proc/$p/comm)" != gpuhook ] && echo yes)"
gh win release end < /dev/null
check "release exit status" 0 "$GH_RC"
check "client ended by release" gone "$(kill -0 "$CPID" 2>/dev/null && echo alive || echo gone)"
check "client got SIGTERM" "got SIGTERM" "$(cat /run/rk-lg/signal 2>&1)"
check "shared memory after release" absent "$([ -e /dev/shm/looking-glass ] && echo present || echo absent)"
check "pid file after release" absent "$([ -e /run/gpuhook/win.lg-client ] && echo present || echo absent)"
check "journal after release" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"

say "-- the hook is killed right after the client started"
run_to_started
GPUHOOK_FAULT=after-apply:lg.client:1 gh win started begin < /dev/null
check "started was killed by SIGKILL" 137 "$GH_RC"
wait_for 10 test -s /run/rk-lg/record || rk_fail "the stand-in client wrote no record within 10 s"
CPID=$(rec pid)
check "client runs after the kill" alive "$(kill -0 "$CPID" 2>/dev/null && echo alive || echo gone)"
gh win release end < /dev/null
check "release exit status" 0 "$GH_RC"
check "client ended by release after the kill" gone "$(kill -0 "$CPID" 2>/dev/null && echo alive || echo gone)"
check "shared memory after release" absent "$([ -e /dev/shm/looking-glass ] && echo present || echo absent)"
check "journal after release" absent "$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
snapshot > "$RK_STATE/after"
check_same "sysfs state before == after both runs" "$RK_STATE/before" "$RK_STATE/after"
kill "$DESKTOP" 2>/dev/null
