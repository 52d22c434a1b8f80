# Desktop scenario 10 (issues 13 and 16), --fb efifb --init systemd --smp 2 --dgpu: host tuning and
# the Looking Glass client on a real systemd 252 (PID 1), with systemd-logind, the D-Bus system bus
# and a user's own service manager (user@1500.service, started by a real logind session opened
# through PAM), all from Debian's packages. gpuhook runs by hand (`gpuhook hook win EVENT`) for a
# domain that pins its vCPU and emulator to CPU 1, backs its 64 MiB with huge pages and has a
# Looking Glass <shmem>; the profile passes the "dGPU" 00:06.0 (driverless secondary-vga) in mode
# looking-glass with [tuning] hugepages, isolate_cpus, inhibit_sleep. Proves:
#  a. isolate_cpus through systemd: while the VM runs, `systemctl show -p AllowedCPUs` of
#     system.slice, user.slice and init.scope says 0, and a process of a service in system.slice
#     runs on CPU 0 only (Cpus_allowed_list, its cgroup's cpuset.cpus.effective); release gives back
#     exactly the previous values and the process runs on 0-1 again; the same after a SIGKILL of
#     the hook in the middle of the three units (after-apply:cpus.allowed:2);
#  b. the sleep inhibitor on the real logind: `systemd-inhibit --list` shows gpuhook's while the VM
#     runs and not after release, also after a hook killed right after starting it
#     (after-apply:sleep.inhibit:1); the hook's stdout and stderr, a pipe, reach EOF when the hook
#     exits (no transient unit keeps them open: libvirtd waits on them);
#  c. the client as a transient unit of lguser's manager (systemd-run --user --machine=lguser@.host):
#     unit gpuhook-lg-win.service active there, the client runs as uid 1500 in that unit's cgroup
#     under user@1500.service, with the manager's environment (WAYLAND_DISPLAY set in the manager
#     as a desktop session does, XDG_RUNTIME_DIR, INVOCATION_ID) and nothing of the hook's; release
#     stops the unit (the client gets SIGTERM) and removes /dev/shm/looking-glass; the same after
#     a hook killed right after the client started (after-apply:lg.client:1);
#  d. a manager without its bus socket (no dbus-user-session): the client starts detached, the log
#     says why, release ends it;
#  every --machine call's PAM session is closed again (logind lists only the desktop's);
#  huge pages behave as in realkernel-24 under systemd (2 -> 32 -> 2);
#  the checks can fail: a release that restores nothing (GPUHOOK_FAULT=skip-release) leaves
#  AllowedCPUs, the inhibitor, the client and the file, and the checks say so.
. "$RK_DIR/lib.sh"
. "$DT_DIR/lib-desktop.sh"
D=$DT_DGPU
[ -n "$D" ] || rk_fail "no dGPU: run with --dgpu"
check "systemd is PID 1" systemd "$(cat /proc/1/comm)"
check "guest CPUs" 0-1 "$(cat /sys/devices/system/cpu/online)"

# --- the desktop's services: D-Bus, logind, a user with a logged-in session and its manager ---
getent group kvm >/dev/null || groupadd -r kvm
useradd -m -s /bin/bash -u 1500 -U -G kvm lguser || rk_fail "useradd lguser"
# Starting them pulls in sysinit.target; its systemd-tmpfiles-setup.service walks the whole 9p root
# (47 s under TCG): masked, nothing here needs it.
now_ms; t0=$MS
systemctl mask --runtime --quiet systemd-tmpfiles-setup.service
systemctl start dbus.socket systemd-logind.service || rk_fail "cannot start dbus and systemd-logind"
now_ms; say "dbus and logind started in $((MS - t0)) ms"
check "systemd-logind" active "$(systemctl is-active systemd-logind.service)"
# A login session as a display manager opens one: a PAM session of service "login" (pam_systemd
# registers it with logind, which starts user@1500.service and /run/user/1500).
systemd-run --quiet --unit=lgsession.service -p PAMName=login -p User=lguser -p Environment=XDG_SESSION_TYPE=wayland \
  /bin/sleep infinity || rk_fail "cannot open lguser's session"
wait_for 30 sh -c 'systemctl is-active -q user@1500.service && test -S /run/user/1500/bus' ||
  rk_fail "lguser's manager or its bus did not come up within 30 s: $(systemctl is-active user@1500.service) $(ls /run/user/1500 2>&1 | tr '\n' ' ')"
say "sessions: $(loginctl list-sessions --no-legend 2>&1 | tr '\n' ';')"
check_has "logind has lguser's session" "lguser" "$(loginctl list-sessions --no-legend 2>&1)"
# What a desktop session does at login (dbus-update-activation-environment --systemd):
out=$(systemctl --user -M lguser@ set-environment WAYLAND_DISPLAY=wayland-rk XDG_SESSION_TYPE=wayland 2>&1)
check "systemctl --user -M lguser@ set-environment" "0 " "$? $out"

# --- the host process, the profile, the domain ---
systemd-run --quiet --unit=rkhost.service /bin/sleep infinity
HOSTPROC=$(systemctl show -p MainPID --value rkhost.service)
check "rkhost.service runs in system.slice" "0::/system.slice/rkhost.service" "$(cat /proc/$HOSTPROC/cgroup)"
# Its affinity (the kernel's cpuset applied to the task), and the effective cpuset of system.slice:
# systemd enables the cpuset controller for system.slice only while AllowedCPUs= is set.
cpus_of_host() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$HOSTPROC/status; }
slice_cpuset() { cat /sys/fs/cgroup/system.slice/cpuset.cpus.effective 2>/dev/null || echo "no cpuset"; }
allowed() { local u; for u in system.slice user.slice init.scope; do printf '%s|' "$(systemctl show -p AllowedCPUs --value $u)"; done; }
inhibitors() { systemd-inhibit --list --no-legend --no-pager 2>&1 | grep -c gpuhook; }
BEFORE_ALLOWED=$(allowed)
check "AllowedCPUs before (none set)" "|||" "$BEFORE_ALLOWED"
check "the host process's CPUs before" 0-1 "$(cpus_of_host)"
check "system.slice has no cpuset before" "no cpuset" "$(slice_cpuset)"
check "no inhibitor of gpuhook before" 0 "$(inhibitors)"
HP=/sys/kernel/mm/hugepages/hugepages-2048kB
echo 2 > $HP/nr_hugepages
mkdir -p /run/rk-lg && chmod 1777 /run/rk-lg
write_profile win <<EOT
[gpu]
address = "$D"
[display]
mode = "looking-glass"
[display.looking_glass]
client = ["$RK_DIR/lg-standin-client", "-F", "two words"]
user = "lguser"
[host]
stop_services = []
[tuning]
hugepages = true
isolate_cpus = true
inhibit_sleep = true
# TCG with another guest beside it: one CI run saw the first `modprobe vfio-pci` over the 9p
# root take 13.6 s (the default command deadline is 10 s; on hardware it takes ~0.1 s).
[timeouts]
command = 60
event = 180
EOT
XML="<domain type='kvm'><name>win</name><memory unit='KiB'>65536</memory><memoryBacking><hugepages/></memoryBacking>
<cputune><vcpupin vcpu='0' cpuset='1'/><emulatorpin cpuset='1'/></cputune><devices>
<shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>32</size></shmem></devices></domain>"
out=$("$GPUHOOK" plan win <<< "$XML" 2>&1); say "gpuhook plan win -> exit $?"
printf '%s\n' "$out" | sed 's/^/RK         plan| /'
snapshot > "$RK_STATE/before"

# ghp EVENT [env...]: the hook with its stdout and stderr on one pipe, as libvirtd runs it; PIPE_EOF
# is "eof" when the pipe reached end of file within 5 s of the hook's exit (nothing kept it open).
ghp() {
  local ev=$1 sub=begin l t0; shift
  [ "$ev" = release ] && sub=end
  local n0; n0=$(cat "$LOG" 2>/dev/null | wc -l)
  now_ms; t0=$MS
  PIPE_OUT='' PIPE_EOF=open GH_RC=none
  exec 8< <(env "$@" "$GPUHOOK" hook win "$ev" "$sub" - <<< "$XML" 2>&1; echo "EXIT $?")
  # Up to 90 s for the hook's exit (its status comes last on the pipe), then 5 s for the EOF.
  local tmo=90
  while :; do
    if IFS= read -r -t $tmo l <&8; then
      case $l in "EXIT "*) GH_RC=${l#EXIT }; tmo=5 ;; *) PIPE_OUT="$PIPE_OUT$l"$'\n' ;; esac
    else
      [ $? -gt 128 ] || PIPE_EOF=eof
      break
    fi
  done
  exec 8<&-
  now_ms; GH_MS=$((MS - t0))
  say "gpuhook hook win $ev $sub $* -> exit $GH_RC, pipe $PIPE_EOF after ${GH_MS} ms"
  [ -z "$PIPE_OUT" ] || printf '%s' "$PIPE_OUT" | sed 's/^/RK         out| /'
  tail -n +$((n0 + 1)) "$LOG" 2>/dev/null | cut -c1-300 | sed 's/^/RK         log| /'
}
rec() { sed -n "s/^$1 //p" /run/rk-lg/record; }
lg_unit() { systemctl --user -M lguser@ is-active gpuhook-lg-win.service 2>&1; }
# The same without the bridge's PAM session (2-3 s each under TCG): the unit's cgroup (--collect).
lg_cgroup() {
  local c
  for c in /sys/fs/cgroup/user.slice/user-1500.slice/user@1500.service/gpuhook-lg-win.service \
           /sys/fs/cgroup/user.slice/user-1500.slice/user@1500.service/*/gpuhook-lg-win.service; do
    [ -d "$c" ] && { echo present; return; }
  done
  echo absent
}
state_after() {   # one line of everything a release must give back
  echo "allowed=[$(allowed)] host=$(cpus_of_host) slice=[$(slice_cpuset)] inhibitors=$(inhibitors) inhibit-unit=$(systemctl is-active gpuhook-inhibit-win.service)" \
       "lg-unit=$(lg_cgroup) shm=$([ -e /dev/shm/looking-glass ] && echo present || echo absent)" \
       "hugepages=$(cat $HP/nr_hugepages) $D=$(drv $D) journal=$([ -e /run/gpuhook/win.journal ] && echo present || echo absent)"
}
RESTORED="allowed=[$BEFORE_ALLOWED] host=0-1 slice=[no cpuset] inhibitors=0 inhibit-unit=inactive lg-unit=absent shm=absent hugepages=2 $D=none journal=absent"
check "the whole state before" "$RESTORED" "$(state_after)"

say "-- a: prepare, start, started; the VM runs"
rm -f /run/rk-lg/record /run/rk-lg/signal
ghp prepare
check "prepare exit status" 0 "$GH_RC"
check "prepare: its stdout and stderr reach EOF when it exits (the inhibitor unit does not hold them)" eof "$PIPE_EOF"
check "AllowedCPUs of system.slice, user.slice, init.scope while the VM runs" "0|0|0|" "$(allowed)"
check "the host process runs on CPU 0 only" 0 "$(cpus_of_host)"
check "system.slice's effective cpuset while the VM runs" 0 "$(slice_cpuset)"
check "huge pages while the VM runs" 32 "$(cat $HP/nr_hugepages)"
check "$D while the VM runs" vfio-pci "$(drv $D)"
check "shared memory: size owner group mode" "33554432 lguser kvm 660" "$(stat -c '%s %U %G %a' /dev/shm/looking-glass 2>&1)"
il=$(systemd-inhibit --list --no-legend --no-pager 2>&1)
say "inhibitors: $(printf '%s' "$il" | tr -s ' ' | tr '\n' ';')"
check "logind holds gpuhook's inhibitor" 1 "$(inhibitors)"
check_has "the inhibitor: what, why, mode" "sleep:idle VM win runs with the GPU block" "$(printf '%s' "$il" | tr -s ' ')"
ghp start
check "start exit status" 0 "$GH_RC"
ghp started
check "started exit status" 0 "$GH_RC"
check "started: its stdout and stderr reach EOF (the client's unit does not hold them)" eof "$PIPE_EOF"
wait_for 10 test -s /run/rk-lg/record || rk_fail "the stand-in client wrote no record within 10 s"
CPID=$(rec pid)
check "the client's unit in lguser's manager" active "$(lg_unit)"
check "the unit's main process is the client" "$CPID" "$(systemctl --user -M lguser@ show -p MainPID --value gpuhook-lg-win.service 2>&1)"
check_has "the client runs in that unit under lguser's manager" "/user.slice/user-1500.slice/user@1500.service/" "$(cat /proc/$CPID/cgroup 2>&1)"
check_has "... in the unit named after the VM" "/gpuhook-lg-win.service" "$(cat /proc/$CPID/cgroup 2>&1)"
check "client uid gid" "1500 1500" "$(rec uid) $(rec gid)"
check "client argv" "-F|two words" "$(rec arg | paste -sd'|')"
check "client WAYLAND_DISPLAY (from the manager's environment)" wayland-rk "$(rec env | sed -n 's/^WAYLAND_DISPLAY=//p')"
check "client XDG_RUNTIME_DIR" /run/user/1500 "$(rec env | sed -n 's/^XDG_RUNTIME_DIR=//p')"
check "client is a unit (INVOCATION_ID set)" yes "$(rec env | grep -q '^INVOCATION_ID=' && echo yes || echo no)"
check_lacks "client environment: nothing of the hook's" "GPUHOOK" "$(rec env)"
check "the host process still on CPU 0 only" 0 "$(cpus_of_host)"

say "-- detector: a release that restores nothing (GPUHOOK_FAULT=skip-release)"
ghp release GPUHOOK_FAULT=skip-release
broken=$(state_after)
say "after the broken release: $broken"
check "the checks see the broken release" differs "$([ "$broken" = "$RESTORED" ] && echo same || echo differs)"
check_has "... AllowedCPUs still set" "allowed=[0|0|0|]" "$broken"
check_has "... the inhibitor still held" "inhibitors=1" "$broken"
check_has "... the client still runs" "lg-unit=present" "$broken"

say "-- release"
ghp release
check "release exit status" 0 "$GH_RC"
check "release: pipe EOF" eof "$PIPE_EOF"
check "the whole state after release" "$RESTORED" "$(state_after)"
check "the client got SIGTERM" "got SIGTERM" "$(cat /run/rk-lg/signal 2>&1)"
check "the client is gone" gone "$(kill -0 "$CPID" 2>/dev/null && echo alive || echo gone)"

say "-- a: the hook killed between the units (after-apply:cpus.allowed:2)"
ghp prepare GPUHOOK_FAULT=after-apply:cpus.allowed:2
check "prepare killed" 137 "$GH_RC"
check "AllowedCPUs after the kill: two of three set" "0|0||" "$(allowed)"
ghp release
check "release exit status" 0 "$GH_RC"
check "the whole state after release of the killed prepare" "$RESTORED" "$(state_after)"

say "-- b: the hook killed right after it started the inhibitor (after-apply:sleep.inhibit:1)"
ghp prepare GPUHOOK_FAULT=after-apply:sleep.inhibit:1
check "prepare killed" 137 "$GH_RC"
check "killed prepare: pipe EOF (the inhibitor unit holds no copy)" eof "$PIPE_EOF"
check "logind holds gpuhook's inhibitor after the kill" 1 "$(inhibitors)"
ghp release
check "release exit status" 0 "$GH_RC"
check "the whole state after release of the killed prepare" "$RESTORED" "$(state_after)"

say "-- c: the hook killed right after the client started (after-apply:lg.client:1)"
rm -f /run/rk-lg/record /run/rk-lg/signal
ghp prepare
check "prepare exit status" 0 "$GH_RC"
ghp start
ghp started GPUHOOK_FAULT=after-apply:lg.client:1
check "started killed" 137 "$GH_RC"
wait_for 10 test -s /run/rk-lg/record || rk_fail "the stand-in client wrote no record within 10 s"
CPID=$(rec pid)
check "the client's unit after the kill" active "$(lg_unit)"
ghp release
check "release exit status" 0 "$GH_RC"
check "the whole state after release" "$RESTORED" "$(state_after)"
check "the client got SIGTERM" "got SIGTERM" "$(cat /run/rk-lg/signal 2>&1)"
check "the client is gone" gone "$(kill -0 "$CPID" 2>/dev/null && echo alive || echo gone)"
say "-- d: lguser's manager without its D-Bus socket (as without dbus-user-session): the client starts detached"
setpriv --reuid=1500 --regid=1500 --init-groups env XDG_RUNTIME_DIR=/run/user/1500 systemctl --user stop dbus.socket dbus.service
rm -f /run/user/1500/bus
check "lguser's manager runs on, without its bus" "active no-bus" "$(systemctl is-active user@1500.service) $([ -e /run/user/1500/bus ] && echo bus || echo no-bus)"
rm -f /run/rk-lg/record /run/rk-lg/signal
ghp prepare
check "prepare exit status" 0 "$GH_RC"
ghp start
ghp started
check "started exit status" 0 "$GH_RC"
check_has "log: why the client starts detached" "/run/user/1500/bus (their D-Bus session bus: dbus-user-session) is missing" "$(log_lines "[win started")"
wait_for 10 test -s /run/rk-lg/record || rk_fail "the stand-in client wrote no record within 10 s"
CPID=$(rec pid)
check "the detached client's pid file names it" "$CPID" "$(cut -d' ' -f1 /run/gpuhook/win.lg-client 2>&1)"
check "detached client uid, its own session" "1500 $CPID" "$(rec uid) $(rec sid)"
ghp release
check "release exit status" 0 "$GH_RC"
check "the whole state after release" "$RESTORED" "$(state_after)"
check "the detached client got SIGTERM" "got SIGTERM" "$(cat /run/rk-lg/signal 2>&1)"
check "pid file after release" absent "$([ -e /run/gpuhook/win.lg-client ] && echo present || echo absent)"

# Every --machine=lguser@.host call opens a PAM "login" session for the bus bridge: none is left.
say "sessions at the end: $(loginctl list-sessions --no-legend 2>&1 | tr '\n' ';')"
check "lguser's logind sessions at the end (only the desktop's)" 1 "$(loginctl list-sessions --no-legend 2>&1 | grep -c lguser)"
lines=$(log_lines "[win ")
check_lacks "log: no failed undo" "FAILED" "$lines"
snapshot > "$RK_STATE/after"
check_same "sysfs state before == after" "$RK_STATE/before" "$RK_STATE/after"
systemctl stop rkhost.service lgsession.service
