# Extra dom0 checks for the stock Debian hypervisor (run by tests/xen/test-xen.sh):
# the lull sysctl must not exist there, so the probe says so instead of mapping
# anything. A control for the patched boot, where the same call must succeed.
. /test/dom0-lib.sh
if out=$(lull-xen-probe lull query 2>&1); then
  echo "LULL-RESULT FAIL stock-no-lull stock Xen answered XEN_SYSCTL_lull_op: $out"
  exit 1
fi
echo "LULL-RESULT PASS stock-no-lull XEN_SYSCTL_lull_op refused: $(echo "$out" | tail -1)"
