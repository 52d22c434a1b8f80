# guest-main.sh: the desktop guest's main program (bash, root, in this machine's / under a tmpfs
# overlay; chrooted under tini, or as desktop-guest.service under systemd). Runs the scenario
# script, then prints gpuhook's log and the verdict, as tests/realkernel/guest-main.sh does:
#   RK ... the story, RK-FAIL ... each failed check, RK-LOG ... gpuhook's log, RK-RESULT PASS|FAIL
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C TERM=dumb
set -a
. /run/rk/env
set +a
. "$RK_DIR/lib.sh"
. "$DT_DIR/lib-desktop.sh"

say "scenario $RK_NAME: UEFI, fb $DT_FB, init $DT_INIT, display $DT_DISPLAY (kernel $(uname -r), gpuhook $GPUHOOK)"
say "boot state: $(dt_state)"
bash "$RK_SCENARIO"
rc=$?
[ $rc = 0 ] || rk_fail "the scenario script exited with status $rc before its end"
if [ -f /var/log/gpuhook/gpuhook.log ]; then
  cp /var/log/gpuhook/gpuhook.log /run/rk/out/gpuhook.log 2>/dev/null
  sed 's/^/RK-LOG /' /var/log/gpuhook/gpuhook.log
fi
rk_result
