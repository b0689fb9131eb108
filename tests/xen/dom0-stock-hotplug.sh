# Guests that come and go while lulld runs, on the stock hypervisor (run in dom0 by
# tests/xen/test-xen.sh after the standard checks, g1 and g2 running their on/off
# workloads). lulld starts with g1, g2 and the management-task domain g3; then g4 is
# created (xl create, 3 s busy / 6 s idle) and later destroyed. Checks, from dom0:
#   hotplug-listed     lullctl list shows g4 soon after xl create (the @introduceDomain
#                      watch; no restart);
#   hotplug-profiled   lulld samples g4's CPU time: its demand follows its busy and idle
#                      phases;
#   hotplug-lends      lulld lends from g4 in an idle phase (lullctl leases names g4's
#                      domid; xl shows g4's cap lowered);
#   hotplug-drops      xl destroy g4 during a lease (g4 paused and lent from by
#                      lullctl lend, as lull's own leases are shorter here than an
#                      emulated xl command): lulld drops g4 (the
#                      @releaseDomain watch) and its lease (leases_dropped), and every
#                      other guest is back to its own settings (or, if lulld re-lent the
#                      requeued task from another guest at once, to that lease's);
#   hotplug-host       the host-wide values lulld derives (pCPU idle time, free memory)
#                      are printed.
. /test/dom0-lib.sh
rc=0
SOCK=/run/lulld/lulld-hp.sock
JOURNAL=/run/lull/undo-hp.journal
LOG=/tmp/lulld-hotplug.log
# "name domid cpu_demand" per guest lulld lists (lullctl -j: keys sorted).
guests() {
  lullctl -s $SOCK -j list 2>/dev/null |
    awk -F': ' '/"cpu_demand"/ { d = $2; sub(/,$/, "", d) } /"domid"/ { id = $2; sub(/,$/, "", id) }
                /"name"/ { n = $2; gsub(/[",]/, "", n); print n, id, d }'
}
# Donor domids of lulld's leases, one a line.
lease_donors() { lullctl -s $SOCK -j leases 2>/dev/null | awk -F': ' '/"donor"/ { d = $2; sub(/,$/, "", d); print d }'; }

if ! command -v lulld >/dev/null || ! command -v lullctl >/dev/null; then
  fail hotplug-present "lulld/lullctl not in the payload (XEN_PAYLOAD_BINS)"
  exit 1
fi
if ! start_g3; then
  fail hotplug-create-g3 "$G3_ERR"
  exit 1
fi
xl destroy g4 2>/dev/null
ORIG=$(all_sched)
info "original credit settings: $ORIG"
rm -f $JOURNAL
lulld --host xen --task-domain g3 --step 0.1 --control-period 0.25 --lease-period 2 --warmup 5 \
  --socket $SOCK --metrics '' --undo-journal $JOURNAL --policy lull >$LOG 2>&1 &
LULLD=$!
i=0
while [ ! -S $SOCK ] && [ $i -lt 100 ] && kill -0 $LULLD 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
if [ ! -S $SOCK ]; then
  fail hotplug-start "$(tail -5 $LOG | tr '\n' '|')"
  exit 1
fi
before=$(guests | awk '{ print $1 }' | sort | tr '\n' ' ')

mark hotplug-create
guest_cfg g4 3 6
if ! xl create /test/g4.cfg >/tmp/create-g4.log 2>&1; then
  fail hotplug-create-g4 "$(tail -3 /tmp/create-g4.log | tr '\n' '|')"
  kill $LULLD; wait $LULLD 2>/dev/null
  exit 1
fi
created=$(uptime_s)
D4=$(xl domid g4 2>/dev/null)

# 1. Listed without a restart.
seen=""
while within $created 30; do
  seen=$(guests | awk '$1 == "g4"')
  [ -n "$seen" ] && break
  sleep 0.3
done
if [ -n "$seen" ] && [ "$before" = "g1 g2 " ] && kill -0 $LULLD 2>/dev/null; then
  pass hotplug-listed "lulld listed g1 g2 at start, then g4 (dom $D4) $(awk -v a=$(uptime_s) -v b=$created 'BEGIN { printf "%.1f", a - b }') s after xl create; log: $(grep 'domain .* (g4) appeared' $LOG | head -1 | sed 's/^lulld info: //')"
else
  fail hotplug-listed "g4 (dom $D4) not listed in 30 s (at start: '$before'); $(tail -3 $LOG | tr '\n' '|')"
fi

# 2. Profiled: its demand, as lulld samples it, through its boot (busy: an emulated
# kernel boot takes tens of seconds under load) and then a busy and an idle phase.
hi=0; lo=9
t0=$(uptime_s)
while within $t0 90; do
  d=$(guests | awk '$1 == "g4" { print $3 }')
  if [ -n "$d" ]; then
    hi=$(awk -v a=$hi -v b=$d 'BEGIN { print (b > a) ? b : a }'); lo=$(awk -v a=$lo -v b=$d 'BEGIN { print (b < a) ? b : a }')
  fi
  awk -v a=$hi -v b=$lo 'BEGIN { exit !(a > 0.5 && b < 0.2) }' && break
  sleep 0.4
done
if awk -v a=$hi -v b=$lo 'BEGIN { exit !(a > 0.5 && b < 0.2) }'; then
  pass hotplug-profiled "g4's CPU demand as lulld samples it: $lo..$hi CPUs over its busy and idle phases"
else
  fail hotplug-profiled "g4's CPU demand $lo..$hi (want > 0.5 busy, < 0.2 idle)"
fi

# 3. Lent from in an idle phase. One task: one lease at a time, so when g4 lends, the
# borrower's settings come from g4's lease alone.
lullctl -s $SOCK task-add backup --cpu-s 100000 --max-cpus 1 --deadline 3600 --target g3 >/dev/null
mark hotplug-lend
lent=""
t0=$(uptime_s)
while within $t0 120; do
  if lease_donors | grep -qx "$D4"; then lent=1; break; fi
  sleep 0.2
done
if [ -n "$lent" ]; then
  during=$(lease_donors | grep -cx "$D4")
  cur="$(all_sched) g4=$(sched_of g4 | tr ' ' /)"
  l=$(grep ": g4 (dom $D4, using" $LOG | tail -1)
  dcpu=$(echo "$l" | sed -n 's/.*using \([0-9.]*\) CPU.*/\1/p')
  if awk -v c="$dcpu" 'BEGIN { exit !(c != "" && c < 0.3) }'; then
    pass hotplug-lends "lulld lends from g4: xl $cur (was $ORIG); $(echo "$l" | sed 's/^lulld info: //')"
  else
    fail hotplug-lends "a lease from g4 but '$l' (want g4 using < 0.3 CPU when it lent)"
  fi
  # 4. xl destroy during a lease. lull's own leases from g4 last a few 0.25 s control
  # periods here (the emulated host is saturated: host pressure returns them), less
  # than an emulated xl command takes; so g4 is paused (it wants nothing, lulld sees it
  # idle) and an operator's lease (lullctl lend: renewed whatever the forecast says)
  # is on when xl destroy lands.
  # g1 and g2 are paused too: with their load the 2 emulated pCPUs have no headroom,
  # and lulld returns the largest leases before any guest waits (Engine::
  # ShedBeforeContention), operators' leases included - on a quiet CI run both of g4's
  # leases ended that way 1 s before the destroy, leaving none to drop.
  xl pause g4 2>/dev/null; xl pause g1; xl pause g2
  during2=0
  for try in 1 2 3; do
    out=$(lullctl -s $SOCK lend g4 1 --cpus 0.5 2>&1)
    during2=$(lease_donors | grep -cx "$D4")
    [ "$during2" -ge 1 ] && break
    sleep 0.5
  done
  info "lullctl lend g4 1 --cpus 0.5: $out; leases of dom $D4 before the destroy: $during2"
  mark hotplug-destroy
  xl destroy g4
  gone=$(uptime_s)
  # Every other guest is back: the original settings, unless lulld has since lent the
  # requeued task from another guest (one task: one lease; then that lease's settings).
  ok=""; how=""
  while within $gone 10; do
    if ! guests | awk '{ print $1 }' | grep -qx g4 && ! lease_donors | grep -qx "$D4"; then
      donors=$(lease_donors | tr '\n' ' ')
      if [ "$(all_sched)" = "$ORIG" ]; then ok=1; how="every guest back to $ORIG"; break; fi
      if [ -n "$donors" ]; then ok=1; how="task re-lent from dom $donors(xl $(all_sched))"; break; fi
    fi
    sleep 0.2
  done
  after=$(awk -v a=$(uptime_s) -v b=$gone 'BEGIN { printf "%.2f", a - b }')
  xl unpause g1; xl unpause g2
  jn=$(grep -c "" $JOURNAL 2>/dev/null)
  dropped=$(lullctl -s $SOCK -j list 2>/dev/null | awk -F': ' '/"leases_dropped"/ { d = $2; sub(/,$/, "", d); print d }')
  if [ -n "$ok" ] && [ "$during2" -ge 1 ] && [ "${dropped:-0}" -ge 1 ] && kill -0 $LULLD 2>/dev/null && grep -q "domain $D4 (g4) left" $LOG; then
    pass hotplug-drops "g4 destroyed during its lease: lulld dropped it and $dropped lease(s), no lease of dom $D4, $how within ${after}s; log: $(grep -E "domain $D4 \(g4\) left|ended \(a domain left\)" $LOG | tr '\n' '|' | sed 's/lulld info: //g')"
  else
    fail hotplug-drops "after xl destroy g4 (${after}s): leases of g4 when lent/at destroy: $during/$during2, leases dropped: $dropped; lulld alive $(kill -0 $LULLD 2>/dev/null && echo yes || echo no); list '$(guests | tr '\n' ' ')'; lease donors '$(lease_donors | tr '\n' ' ')'; xl $(all_sched) (want $ORIG); log: $(grep -E 'g4|lease' $LOG | tail -4 | tr '\n' '|')"
  fi
else
  fail hotplug-lends "no lease from g4 (dom $D4) in 120 s; leases: $(lease_donors | tr '\n' ' '); $(grep -E 'lease|g4' $LOG | tail -4 | tr '\n' '|')"
  xl destroy g4
fi

# 5. The host-wide values lulld derives each sample.
h=$(grep '^lulld info: host: ' $LOG | tail -1)
if [ -n "$h" ]; then
  pass hotplug-host "$(echo "$h" | sed 's/^lulld info: //'); host pressure events: $(grep -c 'host pressure:' $LOG)"
else
  fail hotplug-host "no 'host:' line in lulld's log: $(tail -3 $LOG | tr '\n' '|')"
fi

kill $LULLD; wait $LULLD 2>/dev/null
grep -E 'appeared|left|host pressure|error' $LOG | tail -6 | sed 's/^/LULL-INFO lulld: /'
exit $rc
