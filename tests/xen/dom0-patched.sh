# Extra dom0 checks for the patched hypervisor (run by tests/xen/test-xen.sh): the lull
# region (xen-patches/0001) and credit's telemetry (0002), read by lull-xen-probe.
. /test/guests.env
res() { echo "LULL-RESULT $*"; }
d1=$(xl domid g1); d2=$(xl domid g2)
rc=0

q=$(lull-xen-probe lull query 2>&1)
case "$q" in
  *active=0*size=*|*size=0*active=0*) res PASS lull-query-before "$q" ;;
  *) res FAIL lull-query-before "want an inactive region before setup: $q"; rc=1 ;;
esac

# 20 s of telemetry covers two busy and two idle phases of each guest.
out=$(lull-xen-probe tel 20 0 $d1 $d2 2>&1)
echo "$out" | sed 's/^/LULL-INFO tel: /'
tel=$(echo "$out" | grep '^TEL ')
get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
records=$(get "$tel" records); dropped=$(get "$tel" dropped); invalid=$(get "$tel" invalid)
errors=$(get "$tel" errors); ooo=$(get "$tel" out_of_order)
if [ -n "$records" ] && [ "$records" -gt 0 ] && [ "$dropped" = 0 ] && [ "$invalid" = 0 ] &&
   [ "$errors" = 0 ] && [ "$ooo" = 0 ]; then
  res PASS telemetry-flows "$records records in $(get "$tel" window_s)s, max $(get "$tel" max_batch) per 100 ms poll, dropped 0, invalid 0, errors 0"
else
  res FAIL telemetry-flows "records=$records dropped=$dropped invalid=$invalid errors=$errors out_of_order=$ooo"; rc=1
fi

# Per guest: it blocked and woke (its idle phases), and the run time the telemetry
# reports matches Xen's own cpu_time for the window (edge effects: one busy stretch
# can straddle the window's start, so the tolerance is 15 % + 1 s).
for g in g1 g2; do
  d=$(xl domid $g)
  line=$(echo "$out" | grep "^TELDOM dom=$d ")
  w=$(get "$line" wake); b=$(get "$line" block); r=$(get "$line" run)
  tr_s=$(get "$line" tel_ran_s); cpu_s=$(get "$line" cpu_time_s)
  if [ -n "$w" ] && [ "$w" -gt 0 ] && [ "$b" -gt 0 ] && [ "$r" -gt 0 ] &&
     awk -v t=$tr_s -v c=$cpu_s 'BEGIN { d = t - c; if (d < 0) d = -d; exit !(c > 1 && d <= 0.15 * c + 1) }'; then
    res PASS telemetry-$g "wake $w, block $b, run $r; telemetry run time ${tr_s}s vs cpu_time ${cpu_s}s"
  else
    res FAIL telemetry-$g "wake=$w block=$b run=$r tel_ran_s=$tr_s cpu_time_s=$cpu_s"; rc=1
  fi
done

q=$(lull-xen-probe lull query 2>&1)
case "$q" in
  *active=1*) res PASS lull-query-active "$q" ;;
  *) res FAIL lull-query-active "$q"; rc=1 ;;
esac
lull-xen-probe lull teardown >/dev/null
p1=$(get "$(lull-xen-probe lull query)" published); sleep 2
q=$(lull-xen-probe lull query)
p2=$(get "$q" published)
if [ "$(get "$q" active)" = 0 ] && [ -n "$p1" ] && [ "$p1" = "$p2" ]; then
  res PASS lull-teardown "inactive, published stays at $p2"
else
  res FAIL lull-teardown "after teardown: $q (published before the 2 s wait: $p1)"; rc=1
fi
exit $rc
