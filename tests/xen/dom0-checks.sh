# Standard checks run inside the test dom0, sourced by /init (tests/xen/dom0-init.sh),
# which defines pass/fail/info. Starts two PV guests with an on/off CPU workload and
# checks from dom0 that
#   - Xen runs the credit scheduler and the guests come up,
#   - each guest's CPU time (`xl list`) follows its busy/idle pattern,
#   - `xl sched-credit -c CAP` takes effect: a capped guest gets less CPU.
# The guests keep running afterwards for the caller's extra script; their names and
# patterns are in /test/guests.env. With /test/quick-checks only the first two.

G1_BUSY=5; G1_IDLE=5
G2_BUSY=8; G2_IDLE=4
cat >/test/guests.env <<EOF
LULL_GUESTS="g1 g2"
G1_BUSY=$G1_BUSY G1_IDLE=$G1_IDLE
G2_BUSY=$G2_BUSY G2_IDLE=$G2_IDLE
EOF
# The shared helpers (guest_cfg, uptime_s; pass/fail/info print as /init's do).
. /test/dom0-lib.sh

# CPU seconds of domain $1 from `xl list` (column Time(s)).
cpu_of() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $6 }'; }

sched=$(xl info | sed -n 's/^xen_scheduler *: //p')
if [ "$sched" = credit ]; then pass scheduler "xen_scheduler=credit"; else fail scheduler "xen_scheduler='$sched', want credit"; fi

# dom0 samples the guests; give it precedence so the sampling intervals stay short.
xl sched-credit -d Domain-0 -w 1024

if xl list | grep -q '^Domain-0 '; then pass xl-list "Domain-0 listed"; else fail xl-list "no Domain-0 in: $(xl list | tr '\n' '|')"; fi

guest_cfg g1 $G1_BUSY $G1_IDLE
guest_cfg g2 $G2_BUSY $G2_IDLE

for g in g1 g2; do
  t0=$(uptime_s)
  if xl create /test/$g.cfg >/tmp/create-$g.log 2>&1; then
    t1=$(uptime_s)
    pass create-$g "$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "xl create took %.1fs", b - a }')"
  else
    fail create-$g "$(tail -3 /tmp/create-$g.log | tr '\n' '|')"
  fi
done

# The guest prints its pattern once its /init runs; xenconsoled logs it.
for g in g1 g2; do
  i=0
  while ! grep -q 'lull-guest: on/off' /var/log/xen/console/guest-$g.log 2>/dev/null && [ $i -lt 120 ]; do
    sleep 0.5; i=$((i + 1))
  done
  if grep -q 'lull-guest: on/off' /var/log/xen/console/guest-$g.log 2>/dev/null; then
    pass workload-$g "$(grep -o 'lull-guest: on/off.*' /var/log/xen/console/guest-$g.log | head -1)"
  else
    fail workload-$g "no workload banner on the guest console after 60s: $(tail -c 300 /var/log/xen/console/guest-$g.log 2>/dev/null | tr '\n' '|')"
  fi
done

# A boot that checks the guests' CPU time itself (the patched one: telemetry against
# cpu_time) skips the 60 s of pattern sampling and cap periods (harness --quick-checks).
if [ -f /test/quick-checks ]; then
  info "quick checks: CPU pattern and cap checks left to the stock boot"
  return 0
fi

# Sample both guests' CPU time for three g1 periods: with lull-xen-probe (payload,
# libxenctrl, 2 samples a second) when present, else with `xl list` (about one a
# second, each call takes a while in emulation).
window=$((3 * (G1_BUSY + G1_IDLE) + 2))
d1=$(xl domid g1); d2=$(xl domid g2)
if command -v lull-xen-probe >/dev/null; then
  info "sampling CPU time of g1 (${G1_BUSY}s on/${G1_IDLE}s off) and g2 (${G2_BUSY}s on/${G2_IDLE}s off) with lull-xen-probe, ${window}s"
  lull-xen-probe cpu $window 500 $d1 $d2 >/tmp/samples
  # xl must agree with libxenctrl: g1's time by xl lies between two probe readings
  # taken just before and just after it (xl rounds to 0.1 s).
  before=$(lull-xen-probe cpu 1 1000 $d1 | awk 'NR == 1 { print $2 }')
  xl_now=$(xl list | awk '$1 == "g1" { print $6 }')
  after=$(lull-xen-probe cpu 1 1000 $d1 | awk 'NR == 1 { print $2 }')
  if awk -v a=$before -v x=$xl_now -v b=$after 'BEGIN { exit !(a - 0.1 <= x && x <= b + 0.1) }'; then
    pass xl-agrees "g1 CPU time: libxenctrl ${before}s, then xl list ${xl_now}s, then libxenctrl ${after}s"
  else
    fail xl-agrees "g1 CPU time: xl list ${xl_now}s is not between libxenctrl's ${before}s and ${after}s"
  fi
else
  info "sampling CPU time of g1 (${G1_BUSY}s on/${G1_IDLE}s off) and g2 (${G2_BUSY}s on/${G2_IDLE}s off) with xl list, ${window}s"
  : >/tmp/samples
  end=$(awk -v u=$(uptime_s) -v p=$window 'BEGIN { print u + p }')
  while awk -v u=$(uptime_s) -v e=$end 'BEGIN { exit !(u < e) }'; do
    t=$(uptime_s)
    xl list | awk -v t=$t '$1 == "g1" { a = $6 } $1 == "g2" { b = $6 } END { print t, a, b }' >>/tmp/samples
    sleep 1
  done
fi
info "samples (t, g1 cpu s, g2 cpu s): $(awk 'NR % 2 == 1' /tmp/samples | tr '\n' '|')"
xl vcpu-list | sed 's/^/LULL-INFO vcpu-list: /'

# Classify each interval as busy (rate >= 0.5 CPU) or idle (<= 0.15), merge runs and
# compare the length of the complete runs (not the first or last) with the pattern.
check_pattern() {  # name column busy idle
  # (busybox awk has no math library: no ^, no fabs)
  awk -v col=$2 -v busy=$3 -v idle=$4 -v name=$1 '
    function abs(x) { return x < 0 ? -x : x }
    { t[NR] = $1; c[NR] = $col }
    END {
      nrun = 0; prev = ""
      for (i = 2; i <= NR; i++) {
        dt = t[i] - t[i-1]; r = (c[i] - c[i-1]) / dt
        total += c[i] - c[i-1]; span += dt
        s = r >= 0.5 ? "B" : (r <= 0.15 ? "I" : "M")
        if (s == "B") { bsum += r * dt; btime += dt }
        # A transitional interval counts half to the run before and half to the next.
        if (s == "M") { mid += dt; continue }
        if (s != prev) {
          if (nrun) len[nrun] += mid / 2
          nrun++; st[nrun] = s; len[nrun] = mid / 2; prev = s
        } else len[nrun] += mid
        len[nrun] += dt; mid = 0
      }
      nb = ni = 0
      for (k = 2; k < nrun; k++) {
        if (st[k] == "B") { nb++; lb += len[k] } else { ni++; li += len[k] }
        runs = runs sprintf("%s%.1f ", st[k], len[k])
      }
      if (nb == 0 || ni == 0) {
        printf "FAIL cpu-pattern-%s only %d complete busy and %d complete idle runs (runs: %s)\n", name, nb, ni, runs
        exit
      }
      mb = lb / nb; mi = li / ni; brate = bsum / btime
      duty = total / span / brate; want = busy / (busy + idle)
      ok = abs(mb - busy) <= 1.5 && abs(mi - idle) <= 1.5 && abs(duty - want) <= 0.2
      printf "%s cpu-pattern-%s busy runs %.1fs (want %ds), idle runs %.1fs (want %ds), duty %.2f (want %.2f), busy rate %.2f CPU, runs: %s\n", ok ? "PASS" : "FAIL", name, mb, busy, mi, idle, duty, want, brate, runs
    }' /tmp/samples | sed 's/^/LULL-RESULT /'
}
check_pattern g1 2 $G1_BUSY $G1_IDLE
check_pattern g2 3 $G2_BUSY $G2_IDLE

# Cap: CPU rate of g2 over one whole period uncapped, then capped at 10 %.
period=$((G2_BUSY + G2_IDLE))
rate_over_period() {
  a=$(uptime_s); ca=$(cpu_of g2); sleep $period; b=$(uptime_s); cb=$(cpu_of g2)
  awk -v a=$a -v b=$b -v ca=$ca -v cb=$cb 'BEGIN { printf "%.3f", (cb - ca) / (b - a) }'
}
free_rate=$(rate_over_period)
xl sched-credit -d g2 -c 10
cap=$(xl sched-credit -d g2 | awk 'NR == 2 { print $4 }')
capped_rate=$(rate_over_period)
xl sched-credit -d g2 -c 0
cap_after=$(xl sched-credit -d g2 | awk 'NR == 2 { print $4 }')
detail="cap read back $cap, g2 CPU rate over a ${period}s period: uncapped $free_rate, capped $capped_rate; cap reset to $cap_after"
if [ "$cap" = 10 ] && [ "$cap_after" = 0 ] &&
   awk -v f=$free_rate -v c=$capped_rate 'BEGIN { exit !(c <= 0.17 && c < 0.5 * f) }'; then
  pass sched-credit-cap "$detail"
else
  fail sched-credit-cap "$detail (want capped <= 0.17 and < half of uncapped)"
fi
