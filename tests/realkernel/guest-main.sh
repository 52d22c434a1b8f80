# guest-main.sh: the real-kernel guest's main program (bash, root, chrooted into this machine's /
# shared read-only, under tini). Loads the layout's drivers as udev would at boot, waits until
# they settle, runs the scenario script, then prints and writes the verdict:
#   RK ...              the scenario's story
#   RK-FAIL <check>...  each failed check, with what differed
#   RK-LOG ...          gpuhook's log
#   RK-RESULT PASS|FAIL (<n> checks, <m> failed)
# The host side (rk-vm.sh) reads those lines from the serial console and /run/rk/out/result.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C TERM=dumb
set -a
. /run/rk/env
set +a
. "$RK_DIR/lib.sh"

say "scenario $RK_NAME on layout $RK_LAYOUT (kernel $(uname -r), gpuhook $GPUHOOK)"
rk_load_drivers
rk_settle_drivers || rk_fail "guest setup: the layout's drivers did not all bind: $(rk_drivers_line $(rk_layout_devices))"

bash "$RK_SCENARIO"
rc=$?
[ $rc = 0 ] || rk_fail "the scenario script exited with status $rc before its end"

# gpuhook's log, for the record (and the test output on failure).
if [ -f /var/log/gpuhook/gpuhook.log ]; then
  cp /var/log/gpuhook/gpuhook.log /run/rk/out/gpuhook.log 2>/dev/null
  sed 's/^/RK-LOG /' /var/log/gpuhook/gpuhook.log
fi
[ -f /var/log/libvirt/libvirtd.log ] && cp /var/log/libvirt/libvirtd.log /run/rk/out/ 2>/dev/null
rk_result
