#!/bin/sh
# /init of the test dom0 (busybox initramfs built by tests/xen/xen-harness.sh).
#
# Brings up the minimum Xen toolstack (xenstored, xen-init-dom0, xenconsoled), runs the
# standard checks (/test/dom0-checks.sh) and then the caller's dom0 script, if any
# (/test/extra-1.sh, extra-2.sh, ... with the payload under /payload), and powers off so QEMU exits.
# Every result is one line on the console, parsed on the host:
#   LULL-RESULT PASS|FAIL <name> <detail>      LULL-INFO <text>      LULL-DONE
export PATH=/payload/bin:/payload:/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mkdir -p /tmp /run /var/run/xen /var/run/xenstored /var/lib/xen /var/lib/xenstored \
         /var/log/xen/console /var/lock /root

pass() { echo "LULL-RESULT PASS $*"; }
fail() { echo "LULL-RESULT FAIL $*"; }
info() { echo "LULL-INFO $*"; }
finish() { echo "LULL-DONE"; sync; reboot -f; sleep 5; echo o >/proc/sysrq-trigger; }

for m in xen-evtchn xen-privcmd xenfs xen-gntdev xen-gntalloc; do
  insmod /lib/modules/$m.ko || { fail boot "insmod $m failed"; finish; }
done
mount -t xenfs xenfs /proc/xen || { fail boot "mount xenfs failed"; finish; }

xenstored --pid-file /var/run/xenstored.pid
i=0
while [ ! -S /var/run/xenstored/socket ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S /var/run/xenstored/socket ] || { fail boot "xenstored did not create its socket"; finish; }
xen-init-dom0 || { fail boot "xen-init-dom0 failed"; finish; }
xenconsoled --pid-file=/var/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console

read up _ </proc/uptime
info "toolstack up at dom0 uptime ${up}s; hypervisor $(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor)$(cat /sys/hypervisor/version/extra)"
info "xen cmdline: $(xl info | sed -n 's/^xen_commandline *: //p')"

# Where the boot's time goes: "LULL-INFO phase NAME SECONDS" per phase (test-xen.sh
# sums them up).
t_phase=$up
phase() { read up _ </proc/uptime; info "phase $1 $(awk -v a=$up -v b=$t_phase 'BEGIN { printf "%.1f", a - b }')"; t_phase=$up; }
info "phase boot $up"
. /test/dom0-checks.sh
phase checks

i=1
while [ -f /test/extra-$i.sh ]; do
  name=$(sed -n "s/^$i //p" /test/extra.names 2>/dev/null)
  info "running extra dom0 script $i ${name:-}"
  if sh /test/extra-$i.sh; then pass extra-$i "exit 0"; else fail extra-$i "exit $?"; fi
  phase "${name:-extra-$i}"
  i=$((i + 1))
done
finish
