# lulld on the patched hypervisor with the lull ring attached (run in dom0 by
# tests/xen/test-xen.sh after dom0-patched.sh, with g1 (5 s on / 5 s off) and g2 (8 s on
# / 4 s off) running). lulld runs with --host xen --xen-ring (dom0/xen_ring.h): it sets
# up and maps the region, drains the telemetry every 10 ms, writes its leases into the
# shared lease table, and reads back the revocations Xen's scheduler makes. g3, always
# busy and capped at 10 %, is the management-task domain (the borrower). Checks:
#   lulld-ring-attached    lulld mapped the region (its log says so);
#   lulld-ring-lease       a lease of lulld's shows in the table (patched xl
#                          lull-leases: granted, borrower g3) while its lender idles;
#   lulld-ring-revoked     Xen's scheduler revoked one of lulld's leases when the
#                          lender's load returned (grace rule, xen-patches/0003); the
#                          latency lulld measured on Xen's clock (lender's WAKE ->
#                          revoked_ns) is printed;
#   lulld-ring-telemetry   lulld's telemetry counters: records flow, 0 dropped,
#                          0 invalid, 0 protocol errors;
#   lulld-ring-kill9       kill -9 of lulld during a lease: no lease in the table is
#                          active on Xen's clock (they expire by time, lull-xen-probe
#                          leases) within one lease period, and every guest's xl
#                          sched-credit is its own again (lull-guard).
. /test/dom0-lib.sh
rc=0
LEASE_S=2
SOCK=/run/lulld/lulld-ring.sock
JOURNAL=/run/lull/undo-ring.journal
LOG=/tmp/lulld-ring.log
XL=/payload/lull/xl
# Lease table rows in state "granted" with borrower $1: "slot id lender".
granted() { $XL lull-leases 2>/dev/null | awk -v b="$1" '$6 == "granted" && $4 == b { print $1, $2, $3 }'; }

if ! command -v lulld >/dev/null || [ ! -x $XL ]; then
  res FAIL lulld-ring-present "lulld or the patched xl missing from the payload"
  exit 1
fi
# The grace rule's bounds as dom0-patched.sh (always first in this boot) calibrated them.
REVOKE_BOUND_US=180000
[ ! -f /test/grace.env ] || { . /test/grace.env; info "grace rule: $(cat /test/grace.env)"; }
if ! start_g3; then
  res FAIL lulld-ring-create-g3 "$G3_ERR"
  exit 1
fi
d3=$(xl domid g3)
ORIG=$(all_sched)
info "original credit settings: $ORIG"

rm -f $JOURNAL $SOCK
lulld --host xen --xen-ring --task-domain g3 --step 0.1 --control-period 0.25 --lease-period $LEASE_S \
  --warmup 30 --socket $SOCK --metrics '' --undo-journal $JOURNAL --policy lull >$LOG 2>&1 &
LULLD=$!
i=0
while [ ! -S $SOCK ] && [ $i -lt 100 ] && kill -0 $LULLD 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
if grep -q 'xen ring: attached' $LOG; then
  res PASS lulld-ring-attached "$(grep 'xen ring: attached' $LOG | head -1 | sed 's/^lulld info: //')"
else
  res FAIL lulld-ring-attached "$(tail -5 $LOG | tr '\n' '|')"
  kill -9 $LULLD 2>/dev/null; xl destroy g3; exit 1
fi
lullctl -s $SOCK task-add backup --cpu-s 100000 --max-cpus 1 --deadline 3600 --target g3 >/dev/null

mark lulld-started
# A lease in the table (after the 30 s warm-up); the lender's CPU over the next 0.3 s
# shows it idle when lulld lent.
seen=""; t0=$(uptime_s)
while [ -z "$seen" ] && awk -v a=$(uptime_s) -v b=$t0 'BEGIN { exit !(a - b < 100) }'; do
  seen=$(granted $d3 | head -1)
  [ -n "$seen" ] || sleep 0.2
done
if [ -n "$seen" ]; then
  lender=$(echo "$seen" | awk '{ print $3 }')
  lname=$(xl list | awk -v d="$lender" '$2 == d { print $1 }')
  res PASS lulld-ring-lease "lease table: slot/id/lender $seen -> g3 (dom $d3); lender $lname; $(grep "lease $(echo "$seen" | awk '{ print $2 }'):" $LOG | head -1 | sed 's/^lulld info: //')"
else
  res FAIL lulld-ring-lease "no granted lease to g3 in 100 s: $($XL lull-leases -a 2>&1 | head -5 | tr '\n' '|')"; rc=1
fi

mark lease-seen
# Xen revokes when a lender's load returns: wait for lulld to read one back (the lenders'
# busy phases come every 10-12 s).
t0=$(uptime_s)
while ! grep -q "revoked by Xen's scheduler" $LOG && awk -v a=$(uptime_s) -v b=$t0 'BEGIN { exit !(a - b < 60) }'; do
  sleep 0.5
done
line=$(grep "revoked by Xen's scheduler" $LOG | head -1)
if [ -n "$line" ]; then
  us=$(echo "$line" | sed -n "s/.*, \([-0-9.]*\) us after the lender's WAKE.*/\1/p")
  n=$(grep -c "revoked by Xen's scheduler" $LOG)
  if awk -v u="$us" -v b=$REVOKE_BOUND_US 'BEGIN { exit !(u >= 0 && u <= b) }'; then
    res PASS lulld-ring-revoked "$n revocation(s) by Xen's scheduler read back by lulld (bound ${REVOKE_BOUND_US} us); first: $(echo "$line" | sed 's/^lulld info: xen ring: //')"
  else
    res FAIL lulld-ring-revoked "latency not measured or over ${REVOKE_BOUND_US} us: $line"; rc=1
  fi
else
  res FAIL lulld-ring-revoked "no revocation by Xen in 60 s: $(grep -E 'lease' $LOG | tail -4 | tr '\n' '|')"; rc=1
fi
grep -E "revoked by Xen|lease [0-9]+ (revoked|ended)" $LOG | tail -6 | sed 's/^/LULL-INFO lulld: /'

# Telemetry counters (the poller logs them every 5 s).
st=$(grep 'xen ring: .* polls' $LOG | tail -1)
get() { echo "$st" | sed -n "s/.*[ ,]$1 \([0-9]*\).*/\1/p"; }
recs=$(echo "$st" | sed -n 's/.* \([0-9]*\) records.*/\1/p')
if [ -n "$recs" ] && [ "$recs" -gt 0 ] && [ "$(get dropped)" = 0 ] && [ "$(get invalid)" = 0 ] &&
   [ "$(get errors)" = 0 ] && [ "$(get skipped)" = 0 ]; then
  res PASS lulld-ring-telemetry "$(echo "$st" | sed 's/^lulld info: xen ring: //')"
else
  res FAIL lulld-ring-telemetry "${st:-no counters logged}"; rc=1
fi

mark revoked
# kill -9 during a lease: Xen ends every lease by time within one lease period.
seen=""; t0=$(uptime_s)
while [ -z "$seen" ] && awk -v a=$(uptime_s) -v b=$t0 'BEGIN { exit !(a - b < 60) }'; do
  seen=$(granted $d3 | head -1)
  [ -n "$seen" ] || sleep 0.1
done
if [ -n "$seen" ]; then
  kill -9 $LULLD
  t0=$(uptime_s)
  # Right after the kill, on Xen's clock: how long each active lease has left. Nothing
  # can renew them any more, so no lease may outlive the kill by more than one lease
  # period. This is Xen's own bound, whatever the speed of the emulated dom0 polling it.
  # 100 ms of slack: lulld converts its expiry to Xen's clock with an offset it learns
  # from telemetry timestamps (dom0/xen_ring.h), good to a poll interval (10 ms).
  first=$(lull-xen-probe leases 2>/dev/null)
  left_ms=$(echo "$first" | awk '/^LEASE .*state=active/ { sub(/.*expires_in_ms=/, ""); if ($1 + 0 > m) m = $1 + 0 } END { printf "%.1f", m + 0 }')
  # Then Xen's view until no lease is active (each probe run takes a few tenths of a
  # second in the emulated dom0, so the wall-clock bound here is generous).
  while :; do
    tab=$(lull-xen-probe leases 2>/dev/null | grep '^LEASES ')
    active=$(echo "$tab" | sed -n 's/.* active=\([0-9]*\).*/\1/p')
    [ "$active" = 0 ] && break
    awk -v a=$(uptime_s) -v b=$t0 -v m=$LEASE_S 'BEGIN { exit !(a - b < m + 10) }' || break
    sleep 0.1
  done
  after=$(awk -v a=$(uptime_s) -v b=$t0 'BEGIN { printf "%.2f", a - b }')
  sleep 0.3
  now=$(all_sched)
  if [ "$active" = 0 ] && awk -v l=$left_ms -v m=$LEASE_S 'BEGIN { exit !(l <= m * 1000 + 100) }' && [ "$now" = "$ORIG" ]; then
    res PASS lulld-ring-kill9 "kill -9 during lease $seen: longest lease left ${left_ms} ms on Xen's clock at the kill (lease period ${LEASE_S}s); none active ${after}s later ($(echo "$tab" | sed 's/^LEASES //')); guests back to $now"
  else
    res FAIL lulld-ring-kill9 "after kill -9: longest lease left ${left_ms} ms (want <= ${LEASE_S}000), active=$active after ${after}s, table: $tab; settings $now (want $ORIG)"; rc=1
  fi
else
  res FAIL lulld-ring-kill9 "no lease to kill lulld during"; rc=1
  kill -9 $LULLD
fi
wait $LULLD 2>/dev/null
grep -E 'xen ring|error' $LOG | tail -4 | sed 's/^/LULL-INFO lulld: /'
xl destroy g3
exit $rc
