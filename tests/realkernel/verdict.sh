# verdict.sh (sourced by rk-vm.sh and tests/desktop/desktop-vm.sh): the harness's exit status.
# The caller sets NAME, WALL, CONSOLE, verdict (pass|fail|anything else: no result), result, and
# EXPECT_FAIL ("" or the text a failed check must mention), and defines failed_checks (prints the
# guest's RK-FAIL lines). A detector test (EXPECT_FAIL set) passes only when the scenario ran to its
# end and failed on the expected check.
rk_exit() {
  if [ -n "$EXPECT_FAIL" ]; then
    if [ "$verdict" = fail ] && failed_checks | grep -aqF -- "$EXPECT_FAIL"; then
      say "$NAME: the checks caught the broken gpuhook as expected (a failed check mentions '$EXPECT_FAIL')"
      say "$NAME: PASS (expected failure detected) in ${WALL}s; console: $CONSOLE"
      exit 0
    fi
    say "$NAME: FAIL: expected the scenario to fail on a check mentioning '$EXPECT_FAIL' (verdict: $verdict)"
    say "$NAME: wall ${WALL}s; console: $CONSOLE"
    exit 1
  fi
  case $verdict in
    pass) say "$NAME: PASS in ${WALL}s ($result); console: $CONSOLE"; exit 0 ;;
    fail) say "$NAME: FAIL in ${WALL}s ($result); failed checks above (RK-FAIL); console: $CONSOLE"; exit 1 ;;
    *) say "$NAME: FAIL (no result) in ${WALL}s; console: $CONSOLE"; exit 1 ;;
  esac
}
