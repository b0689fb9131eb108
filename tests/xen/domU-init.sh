#!/bin/busybox sh
# /init of the PV test guests: a real on/off CPU workload.
#
# The guest is busy (a shell loop that never sleeps) for lull_busy seconds, then idle
# (sleep) for lull_idle seconds, forever. Both come from the kernel command line that
# dom0's `xl create` passes, so dom0 knows the pattern it should see in the guest's
# CPU time. The loop reads /proc/uptime with the shell's own `read`, not `date`, so a
# busy phase is pure guest CPU, not fork/exec in a slow emulated MMU.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev 2>/dev/null

busy=4
idle=4
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    lull_busy=*) busy=${arg#lull_busy=} ;;
    lull_idle=*) idle=${arg#lull_idle=} ;;
  esac
done
echo "lull-guest: on/off workload busy=${busy}s idle=${idle}s"

now_cs() {  # uptime in centiseconds, no fork
  read up _ </proc/uptime
  now=${up%.*}${up#*.}
  while [ "${#now}" -gt 1 ] && [ "${now#0}" != "$now" ]; do now=${now#0}; done
}

while :; do
  now_cs
  end=$((now + busy * 100))
  while [ "$now" -lt "$end" ]; do now_cs; done
  sleep "$idle"
done
