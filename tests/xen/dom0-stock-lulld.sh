# lulld on the stock hypervisor (run in dom0 by tests/xen/test-xen.sh after the standard
# checks, with g1 (5 s on / 5 s off) and g2 (8 s on / 4 s off) running). lulld runs with
# --host xen (dom0/xen_host.h), the always-busy PV guest g3 - capped at 10 % - as the
# management-task domain, a 0.1 s sample interval, 0.25 s control periods and 2 s
# leases. Checks, from dom0:
#   lulld-sees-guests   lullctl list shows g1 and g2 (not dom0, not g3) and their CPU
#                       demand follows their busy/idle phases;
#   lulld-lends         a lease appears: a donor's cap drops and g3's cap rises
#                       (xl sched-credit), while the donor is idle;
#   lulld-revokes       the donor's load returns and lulld takes the lease back: its cap
#                       is restored; the latency lulld measured is printed;
#   lulld-kill9         kill -9 of lulld during a lease: lull-guard restores every
#                       guest's xl sched-credit settings within one lease period;
#   lulld-sigterm       SIGTERM during a lease restores them by the time lulld exits.
. /test/dom0-lib.sh
rc=0
LEASE_S=2
SOCK=/run/lulld/lulld.sock
JOURNAL=/run/lull/undo.journal
# "name cpu_demand" per guest lulld lists (lullctl -j prints the JSON reply, keys sorted).
demands() {
  lullctl -s $SOCK -j list 2>/dev/null |
    awk -F': ' '/"cpu_demand"/ { d = $2; sub(/,$/, "", d) } /"name"/ { n = $2; gsub(/[",]/, "", n); print n, d }'
}

if ! command -v lulld >/dev/null || ! command -v lullctl >/dev/null; then
  res FAIL lulld-present "lulld/lullctl not in the payload (XEN_PAYLOAD_BINS)"
  exit 1
fi

# The management-task domain (dom0-lib.sh).
if ! start_g3; then
  res FAIL lulld-create-g3 "$G3_ERR"
  exit 1
fi
ORIG=$(all_sched)
info "original credit settings: $ORIG"

start_lulld() {  # $1: warm-up seconds; log to /tmp/lulld-$2.log; $3: policy (lull)
  lulld --host xen --task-domain g3 --step 0.1 --control-period 0.25 --lease-period $LEASE_S \
    --warmup "$1" --socket $SOCK --metrics '' --undo-journal $JOURNAL --policy ${3:-lull} >/tmp/lulld-$2.log 2>&1 &
  LULLD=$!
  i=0
  while [ ! -S $SOCK ] && [ $i -lt 100 ] && kill -0 $LULLD 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
  [ -S $SOCK ]
}

# A lease is on when xl shows any setting changed; prints "t donor g3cap" when seen.
wait_lease() {  # $1: timeout s; $2: "any" = any changed setting will do
  t0=$(uptime_s)
  while :; do
    now=$(uptime_s)
    awk -v a=$now -v b=$t0 -v m=$1 'BEGIN { exit !(a - b > m) }' && return 1
    cur=$(all_sched)
    # Both halves in one reading: a donor's cap down and g3's up (xl reads the domains
    # one after another, so a lease being installed or ended can show only one half).
    if { [ "$2" = any ] && [ "$cur" != "$ORIG" ]; } ||
       { [ "$(echo "$cur" | cut -d' ' -f1-2)" != "$(echo "$ORIG" | cut -d' ' -f1-2)" ] &&
         [ "$(echo "$cur" | cut -d' ' -f3)" != "$(echo "$ORIG" | cut -d' ' -f3)" ]; }; then
      LEASED_AT=$now; LEASED="$cur"; return 0
    fi
    sleep 0.1
  done
}
wait_restored() {  # $1: timeout s; sets RESTORED_AFTER
  t0=$(uptime_s)
  while :; do
    now=$(uptime_s)
    if [ "$(all_sched)" = "$ORIG" ]; then RESTORED_AFTER=$(awk -v a=$now -v b=$t0 'BEGIN { printf "%.2f", a - b }'); return 0; fi
    awk -v a=$now -v b=$t0 -v m=$1 'BEGIN { exit !(a - b > m) }' && return 1
    sleep 0.1
  done
}

rm -f $JOURNAL
if ! start_lulld 30 1; then
  res FAIL lulld-start "$(tail -5 /tmp/lulld-1.log | tr '\n' '|')"
  exit 1
fi
lullctl -s $SOCK task-add backup --cpu-s 100000 --max-cpus 1 --deadline 3600 --target g3 >/dev/null

# 1. lulld sees the guests and their CPU time: 13 s of lullctl list (by the clock: each
# round of lullctl and awk takes a second or more in the emulated dom0) covers a busy
# and an idle phase of each guest.
hi1=0; lo1=9; hi2=0; lo2=9; names=""
i=0; t_list=$(uptime_s)
while within $t_list 13; do
  out=$(demands)
  [ $i = 0 ] && names=$(echo "$out" | awk '{ print $1 }' | sort | tr '\n' ' ')
  for g in g1 g2; do
    d=$(echo "$out" | awk -v g=$g '$1 == g { print $2 }')
    [ -n "$d" ] || continue
    if [ $g = g1 ]; then
      hi1=$(awk -v a=$hi1 -v b=$d 'BEGIN { print (b > a) ? b : a }'); lo1=$(awk -v a=$lo1 -v b=$d 'BEGIN { print (b < a) ? b : a }')
    else
      hi2=$(awk -v a=$hi2 -v b=$d 'BEGIN { print (b > a) ? b : a }'); lo2=$(awk -v a=$lo2 -v b=$d 'BEGIN { print (b < a) ? b : a }')
    fi
  done
  sleep 0.5; i=$((i + 1))
done
if [ "$names" = "g1 g2 " ] && awk -v a=$hi1 -v b=$lo1 -v c=$hi2 -v d=$lo2 'BEGIN { exit !(a > 0.5 && b < 0.2 && c > 0.5 && d < 0.2) }'; then
  res PASS lulld-sees-guests "lullctl list: guests '$names'; CPU demand g1 $lo1..$hi1, g2 $lo2..$hi2 CPUs"
else
  res FAIL lulld-sees-guests "guests '$names' (want g1 g2); CPU demand g1 $lo1..$hi1, g2 $lo2..$hi2 (want > 0.5 busy, < 0.2 idle)"; rc=1
  lullctl -s $SOCK list 2>&1 | sed 's/^/LULL-INFO lullctl list: /'
fi

mark lends
# 2. A lease, after the warm-up (30 s of history from lulld's start). xl shows it; lulld's
# log says which guest lent and how busy it was when it did.
if wait_lease 90; then
  # The donor is the guest whose setting changed; its latest lease line says how busy it was.
  dname=$(for g in g1 g2; do echo "$LEASED" | tr ' ' '\n' | grep "^$g=" | grep -vxF "$(echo "$ORIG" | tr ' ' '\n' | grep "^$g=")"; done | head -1 | cut -d= -f1)
  l=$(grep ": $dname (dom.*) lends " /tmp/lulld-1.log | tail -1)
  dcpu=$(echo "$l" | sed -n 's/.*using \([0-9.]*\) CPU.*/\1/p')
  g3cap=$(echo "$LEASED" | sed -n 's/.*g3=[0-9]*\/\([0-9]*\).*/\1/p')
  if [ -n "$dname" ] && [ "${g3cap:-10}" -gt 10 ] && awk -v c="$dcpu" 'BEGIN { exit !(c != "" && c < 0.3) }'; then
    res PASS lulld-lends "at ${LEASED_AT}s xl sched-credit shows $LEASED (was $ORIG); lulld: $(echo "$l" | sed 's/^lulld info: //')"
  else
    res FAIL lulld-lends "xl shows $LEASED, lulld: '$l' (want a donor using < 0.3 CPU, g3 cap > 10)"; rc=1
  fi
else
  res FAIL lulld-lends "no setting changed in 90 s: $(lullctl -s $SOCK predict g1 2>&1 | tr '\n' '|')"; rc=1
fi
mark revokes
# 3. Revocation: a donor's busy phase returns while it lends (at most 8 s away); lulld
# revokes on its next sample and logs the latency; xl shows the donor's cap back.
# Only a revocation after the lease seen above counts (earlier ones are in the log too).
n0=$(grep -c 'revoked: dom' /tmp/lulld-1.log)
i=0
while [ "$(grep -c 'revoked: dom' /tmp/lulld-1.log)" -le "$n0" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
r=$(grep 'revoked: dom' /tmp/lulld-1.log | sed -n "$((n0 + 1))p")
if [ -n "$r" ]; then
  rd=$(echo "$r" | sed -n "s/.*revoked: dom \([0-9]*\)'s.*/\1/p")
  rn=$(xl list | awk -v d="$rd" '$2 == d { print $1 }')
  lat=$(echo "$r" | sed -n 's/.*restored \([0-9.]*\) ms after.*/\1/p')
  want=$(echo "$ORIG" | tr ' ' '\n' | sed -n "s/^$rn=//p")
  now=$(sched_of "$rn" | tr ' ' /)
  if [ "$now" = "$want" ]; then
    res PASS lulld-revokes "$rn's load returned: lease revoked, its cap restored $lat ms after the estimated return (sample interval 100 ms); xl: $rn=$now"
  else
    res FAIL lulld-revokes "$rn's lease revoked (lulld: $r) but xl shows $rn=$now, want $want"; rc=1
  fi
else
  res FAIL lulld-revokes "no lease revoked on returning load in 20 s: $(grep lease /tmp/lulld-1.log | tail -3 | tr '\n' '|')"; rc=1
fi
grep -E 'lease|revocation' /tmp/lulld-1.log | tail -8 | sed 's/^/LULL-INFO lulld: /'

# 4. kill -9 during a lease: lull-guard restores within one lease period. The engine's
# own next lease, or (if it has learnt to hold back) an operator's: lullctl lend.
got=0
if wait_lease 30 any; then got=1
else
  for g in g1 g2; do
    out=$(lullctl -s $SOCK lend $g 1 --cpus 0.5 2>&1); info "lullctl lend $g 1 --cpus 0.5: $out"
    wait_lease 3 any && { got=1; break; }
  done
fi
if [ $got = 1 ]; then
  kill -9 $LULLD
  if wait_restored $LEASE_S; then
    res PASS lulld-kill9 "kill -9 during a lease ($LEASED): every guest back to $ORIG after ${RESTORED_AFTER}s (lease period ${LEASE_S}s); journal $( [ -e $JOURNAL ] && echo left || echo removed)"
  else
    res FAIL lulld-kill9 "after kill -9: $(all_sched), want $ORIG within ${LEASE_S}s; journal: $(cat $JOURNAL 2>/dev/null | tr '\n' '|')"; rc=1
  fi
  wait $LULLD 2>/dev/null
else
  res FAIL lulld-kill9 "no lease to kill lulld during"; rc=1
  kill -9 $LULLD; wait $LULLD 2>/dev/null
fi
rm -f $SOCK

# 5. SIGTERM during a lease: restored by the time lulld exits. (The reactive policy
# without warm-up: any lease will do, and it comes at the first idle period.)
if start_lulld 0 2 reactive; then
  lullctl -s $SOCK task-add backup --cpu-s 100000 --max-cpus 1 --deadline 3600 --target g3 >/dev/null
  if wait_lease 60 any; then
    kill -TERM $LULLD
    wait $LULLD
    now=$(all_sched)
    if [ "$now" = "$ORIG" ]; then
      res PASS lulld-sigterm "SIGTERM during a lease ($LEASED): $now as lulld exits; $(grep 'stopping' /tmp/lulld-2.log | sed 's/^lulld info: //')"
    else
      res FAIL lulld-sigterm "after SIGTERM: $now, want $ORIG"; rc=1
    fi
  else
    res FAIL lulld-sigterm "no lease in the second run"; rc=1
    kill -TERM $LULLD; wait $LULLD
  fi
else
  res FAIL lulld-sigterm "lulld did not restart: $(tail -3 /tmp/lulld-2.log | tr '\n' '|')"; rc=1
fi
grep -E 'revocation latency|replayed|error' /tmp/lulld-*.log | sed 's/^/LULL-INFO lulld: /'
xl destroy g3
exit $rc
