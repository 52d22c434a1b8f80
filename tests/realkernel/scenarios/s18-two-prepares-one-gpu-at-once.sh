# Scenario 18 (issue 10), layout laptop, `gpuhook hook` run by hand.
# Proves: two VMs whose profiles name the same GPU (01:00.0), prepared at the same instant: exactly
# one wins; the other is refused naming the winner ("0000:01:00.0 is in use by VM <winner>"),
# does not report an incomplete rollback, and changes nothing: the host ends exactly as one prepare alone leaves it (snapshot equal to that of
# a reference prepare of w1 done first), claims and journal are the winner's only. The loser's
# release (libvirt runs it after a refused prepare) changes nothing either; the winner's release
# restores the host to the snapshot before. Three rounds (the second VM 0, 0.1 and 0.3 s later).
. "$RK_DIR/lib.sh"
for v in w1 w2; do
  write_profile $v <<EOT
[gpu]
address = "$DGPU"
EOT
done
jstate() { [ -e "/run/gpuhook/$1.journal" ] && echo present || echo absent; }
snapshot > "$RK_STATE/before"
# The reference: what one prepare alone leaves.
gh w1 prepare begin < /dev/null
check "reference prepare of w1 exit status" 0 "$GH_RC"
snapshot > "$RK_STATE/prepared"
gh w1 release end < /dev/null
snapshot > "$RK_STATE/after"
check_same "reference: before == after w1's release" "$RK_STATE/before" "$RK_STATE/after"

for off in 0 0.1 0.3; do
  say "--- round: w2's prepare ${off}s after w1's"
  "$GPUHOOK" hook w1 prepare begin - < /dev/null 2> "$RK_STATE/w1.err" & p1=$!
  [ "$off" = 0 ] || sleep "$off"
  "$GPUHOOK" hook w2 prepare begin - < /dev/null 2> "$RK_STATE/w2.err" & p2=$!
  wait $p1; r1=$?
  wait $p2; r2=$?
  say "[$off] w1 prepare -> $r1, w2 prepare -> $r2: $(rk_drivers_line $DGPU $DGPU_AUDIO)"
  if [ "$r1" = 0 ] && [ "$r2" != 0 ]; then win=w1 lose=w2
  elif [ "$r2" = 0 ] && [ "$r1" != 0 ]; then win=w2 lose=w1
  else
    rk_fail "[$off] exactly one prepare must succeed: w1 exit $r1, w2 exit $r2 (stderr w1: $(tr '\n' '|' < "$RK_STATE/w1.err") w2: $(tr '\n' '|' < "$RK_STATE/w2.err"))"
    for v in w1 w2; do "$GPUHOOK" restore $v >/dev/null 2>&1; done
    continue
  fi
  check "[$off] one prepare won, the other was refused with exit 1" 1 "$([ $win = w1 ] && echo $r2 || echo $r1)"
  sed 's/^/RK         loser stderr| /' "$RK_STATE/$lose.err"
  check_has "[$off] $lose's refusal names the winner" "$DGPU is in use by VM $win" "$(cat "$RK_STATE/$lose.err")"
  # (The wording is "every change was rolled back": its claim step was journaled, then refused.
  # What it changed is checked below, on the host.)
  check_lacks "[$off] $lose's refusal does not report an incomplete rollback" "INCOMPLETE" "$(cat "$RK_STATE/$lose.err")"
  check "[$off] $win's journal" present "$(jstate $win)"
  check "[$off] $lose's journal" absent "$(jstate $lose)"
  check "[$off] claims of $DGPU and $DGPU_AUDIO" "$win $win" "$(cat /run/gpuhook/claims/$DGPU /run/gpuhook/claims/$DGPU_AUDIO 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
  snapshot > "$RK_STATE/now"
  check_same "[$off] host == as one prepare leaves it" "$RK_STATE/prepared" "$RK_STATE/now"
  gh $lose release end < /dev/null
  check "[$off] $win's journal after $lose's release" present "$(jstate $win)"
  snapshot > "$RK_STATE/now"
  check_same "[$off] $lose's release changed nothing" "$RK_STATE/prepared" "$RK_STATE/now"
  gh $win release end < /dev/null
  check "[$off] $win's journal after its release" absent "$(jstate $win)"
  snapshot > "$RK_STATE/after"
  check_same "[$off] before == after $win's release" "$RK_STATE/before" "$RK_STATE/after"
done
