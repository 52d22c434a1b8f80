# journald's fields, end to end (scenario for tests/libvirt/libvirtd-sandbox.sh --no-libvirtd):
# a real systemd-journald runs in the sandbox's private namespaces (its /run and /var/log are the
# sandbox's tmpfs), the real gpuhook binary runs events for two VMs as libvirtd would, and
# journalctl, filtering by gpuhook's fields, must give back exactly one VM's lines, with the
# event, the step number, the pid and the priority of each.
# Args: GPUHOOK_BINARY
GH=$1
JD=/lib/systemd/systemd-journald
[ -x "$JD" ] || fail "no $JD (package systemd)"
mkdir -p /run/systemd/journal /var/log/journal
"$JD" >/tmp/journald.out 2>&1 &
wait_for "journald's socket" 20 test -S /run/systemd/journal/socket
mkdir -p /etc/gpuhook/vms && chown root:root /etc/gpuhook /etc/gpuhook/vms && chmod 0755 /etc/gpuhook /etc/gpuhook/vms
# A start phase with one command step (no GPU needed after prepare), for two VMs.
for vm in win11 linux; do
  write_profile "$vm" 0644 <<'TOML'
[gpu]
address = "0000:7f:1f.7"
[[commands]]
when = "start"
run = ["/bin/true"]
TOML
done
for vm in win11 linux; do
  echo '<domain/>' | "$GH" hook "$vm" prepare begin - >/dev/null 2>&1 && fail "prepare of $vm with a missing GPU was not refused"
  echo '<domain/>' | "$GH" hook "$vm" start begin - >/dev/null 2>&1 || fail "start of $vm failed: $(tail -5 /var/log/gpuhook/gpuhook.log)"
  echo '<domain/>' | "$GH" hook "$vm" release end - >/dev/null 2>&1
done
# journald writes asynchronously: wait until the last line is there.
wait_for "gpuhook's lines in the journal" 20 sh -c 'journalctl --no-pager -q -t gpuhook GPUHOOK_VM=linux GPUHOOK_EVENT=release | grep -q "event release"'
js=$(journalctl --no-pager -q -t gpuhook GPUHOOK_VM=win11 -o json)
n=$(grep -c . <<<"$js")
[ "$n" -ge 8 ] || fail "journalctl -t gpuhook GPUHOOK_VM=win11 gave $n lines:
$js"
expect_not_contains "$js" '"GPUHOOK_VM":"linux"' "journalctl GPUHOOK_VM=win11 (another VM's lines)"
file_lines=$(grep -c '\[win11 ' /var/log/gpuhook/gpuhook.log)
expect_eq "$n" "$file_lines" "win11's lines in the journal and in the file log"
ok "journalctl -t gpuhook GPUHOOK_VM=win11: its $n lines, none of linux's, as many as in the file"
python3 - "$js" <<'PY' || fail "the fields of win11's lines are wrong (above)"
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
bad = []
for l in lines:
    for k in ("GPUHOOK_VM", "GPUHOOK_EVENT", "GPUHOOK_PID", "PRIORITY", "SYSLOG_IDENTIFIER", "MESSAGE"):
        if k not in l: bad.append("no %s in %s" % (k, l.get("MESSAGE")))
    if l.get("GPUHOOK_PID") != l.get("_PID"): bad.append("GPUHOOK_PID %s is not the sender %s" % (l.get("GPUHOOK_PID"), l.get("_PID")))
    if l.get("_TRANSPORT") != "journal": bad.append("transport %s, not the native protocol" % l.get("_TRANSPORT"))
    ev = l.get("GPUHOOK_EVENT")
    if "[win11 %s " % ev not in l.get("MESSAGE", ""): bad.append("GPUHOOK_EVENT %s does not match %s" % (ev, l.get("MESSAGE")))
    msg = l["MESSAGE"].split("] ", 1)[1]
    is_step = msg.startswith("step ") or msg.startswith("undo ")
    if is_step != ("GPUHOOK_STEP" in l): bad.append("GPUHOOK_STEP %s on '%s'" % (l.get("GPUHOOK_STEP"), msg))
    if is_step and msg.split()[1] != l.get("GPUHOOK_STEP"): bad.append("GPUHOOK_STEP %s on '%s'" % (l.get("GPUHOOK_STEP"), msg))
events = {l["GPUHOOK_EVENT"] for l in lines}
if events != {"prepare", "start", "release"}: bad.append("events %s" % sorted(events))
if not any(l["PRIORITY"] == "3" and "refused" in l["MESSAGE"] for l in lines): bad.append("no PRIORITY=3 refusal")
if not any("GPUHOOK_STEP" in l for l in lines): bad.append("no step line")
for b in bad: print("  " + b)
sys.exit(1 if bad else 0)
PY
ok "each line has GPUHOOK_VM, GPUHOOK_EVENT, GPUHOOK_PID (= the sender), PRIORITY; GPUHOOK_STEP exactly on step and undo lines"
steps=$(journalctl --no-pager -q -t gpuhook GPUHOOK_VM=win11 GPUHOOK_STEP=1 -o cat)
expect_contains "$steps" "[win11 start " "journalctl GPUHOOK_STEP=1"
expect_contains "$steps" "step 1 ok" "journalctl GPUHOOK_STEP=1"
errs=$(journalctl --no-pager -q -t gpuhook GPUHOOK_VM=win11 -p err -o cat)
expect_contains "$errs" "[win11 prepare " "journalctl -p err"
expect_not_contains "$errs" "step 1 ok" "journalctl -p err"
ok "filters: GPUHOOK_STEP=1 and -p err"
