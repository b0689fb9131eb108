# Helpers shared by the in-dom0 test scripts (tests/xen/dom0-*.sh). xen-harness.sh copies
# this file to /test/dom0-lib.sh; a script starts with `. /test/dom0-lib.sh`, which also
# reads /test/guests.env (the guests' on/off pattern, written by dom0-checks.sh, which sources
# this file right after writing it).
. /test/guests.env

res() { echo "LULL-RESULT $*"; }
info() { echo "LULL-INFO $*"; }
# dom0 uptime in seconds (CLOCK_BOOTTIME, no fork).
uptime_s() { read up _ </proc/uptime; echo "$up"; }
# A timestamped step, to see where a script's time goes.
mark() { info "at $(uptime_s)s: $*"; }
# True while less than $2 seconds have passed since uptime $1.
within() { awk -v a="$(uptime_s)" -v b="$1" -v m="$2" 'BEGIN { exit !(a - b < m) }'; }
# The value of key $2 in a "key=value ..." line $1 (lull-xen-probe's output).
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# "weight cap" of a domain, from xl; all three guests' as "g1=w/c g2=w/c g3=w/c".
sched_of() { xl sched-credit -d "$1" 2>/dev/null | awk 'NR == 2 { print $3, $4 }'; }
all_sched() { echo "g1=$(sched_of g1 | tr ' ' /) g2=$(sched_of g2 | tr ' ' /) g3=$(sched_of g3 | tr ' ' /)"; }

# /test/NAME.cfg: a PV guest of the test's kernel and busybox initrd whose on/off
# workload (domU-init.sh) runs BUSY seconds, then idles IDLE seconds.
guest_cfg() {  # name busy idle
  cat >/test/$1.cfg <<EOC
name = "$1"
type = "pv"
kernel = "/guest/vmlinux"
ramdisk = "/guest/initrd.gz"
cmdline = "console=hvc0 quiet lull_busy=$2 lull_idle=$3"
memory = 128
vcpus = 1
on_crash = "destroy"
EOC
}

# g3, the management-task domain (the borrower): always busy, capped at 10 % so that
# what it borrows shows. Created afresh (a previous script may have left one) and capped
# once its workload runs (its banner on the console): capped from the start, its kernel
# took 100 s to boot in emulation. 0 when it runs, else 1 with the reason in G3_ERR.
start_g3() {
  guest_cfg g3 100000 1
  xl destroy g3 2>/dev/null
  if ! xl create /test/g3.cfg >/tmp/create-g3.log 2>&1; then
    G3_ERR=$(tail -3 /tmp/create-g3.log | tr '\n' '|')
    return 1
  fi
  t_g3=$(uptime_s)
  while ! grep -q 'lull-guest: on/off' /var/log/xen/console/guest-g3.log 2>/dev/null && within $t_g3 60; do
    sleep 0.5
  done
  xl sched-credit -d g3 -c 10
}

# For scripts that count failures in rc.
pass() { res PASS "$@"; }
fail() { res FAIL "$@"; rc=1; }
