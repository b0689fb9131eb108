# In-dom0 check of predictive cloning's Xen back end (dom0/clone/xen_instance.h), stock
# boot, after the standard checks (g1/g2 still running). lull-clone --xen builds a pool
# of two warm PV shadows from a golden xl config (the harness's guest kernel and initrd;
# 128 MiB: the uncompressed kernel alone takes 58 MiB of a PV domain's start memory),
# and this script checks with xl what Xen really holds: both shadows paused; one
# activated (no longer paused: r, b or runnable; activation time printed), resized (vCPUs online, memory
# target in xenstore), returned to the pool (paused again); memory sharing reported;
# the pool destroyed (no shadow domain left). Reports LULL-RESULT lines.
. /test/dom0-lib.sh
rc=0
# xl list's State column (e.g. --p---) and VCPUs column of domain $1.
state_of() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }'; }
vcpus_of() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'; }
domid_of() { xl domid "$1" 2>/dev/null; }

cat >/test/clone-golden.cfg <<CFG
name = "web"
type = "pv"
kernel = "/guest/vmlinux"
ramdisk = "/guest/initrd.gz"
cmdline = "console=hvc0 quiet lull_busy=0 lull_idle=5"
memory = 128
maxmem = 160
vcpus = 1
maxvcpus = 2
CFG

if out=$(lull-clone --xen memshr 2>&1); then
  case "$out" in
    "memshr unavailable"*|"memshr available"*) pass clone-memshr "$out" ;;
    *) fail clone-memshr "unexpected: $out" ;;
  esac
else
  fail clone-memshr "$out"
fi

t0=$(uptime_s)
if out=$(lull-clone --xen clone-pool web --size 2 --golden /test/clone-golden.cfg 2>&1); then
  t1=$(uptime_s)
  pass clone-pool-create "$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "2 warm shadows in %.1fs", b - a }')"
else
  fail clone-pool-create "$(echo "$out" | tail -3 | tr '\n' '|')"
fi
echo "$out" | sed 's/^/LULL-INFO clone: /'

for s in web-shadow-1 web-shadow-2; do
  st=$(state_of $s)
  case "$st" in
    *p*) pass clone-paused-$s "xl list state $st" ;;
    *) fail clone-paused-$s "xl list state '$st', want paused" ;;
  esac
done

if out=$(lull-clone --xen activate web 2>&1); then
  name=$(echo "$out" | awk '/^activated/ { print $2 }')
  st=$(state_of "$name")
  # Not paused, not shut down/crashed/dying: r (running), b (blocked) or ------
  # (runnable, waiting for a CPU that g1/g2 hold) are all a live domain.
  case "$st" in
    *p*|*s*|*c*|*d*|"") fail clone-activate "$out; but xl list state '$st'" ;;
    *) pass clone-activate "$out (xl list state $st)" ;;
  esac
else
  fail clone-activate "$out"
  name=web-shadow-1
fi
other=web-shadow-2; [ "$name" = web-shadow-2 ] && other=web-shadow-1
st=$(state_of $other)
case "$st" in *p*) pass clone-other-idle "$other still paused ($st)" ;;
  *) fail clone-other-idle "$other state '$st'" ;; esac

# Resize the active shadow: 2 vCPUs (its maxvcpus), memory target 144 MiB (maxmem 160).
if out=$(lull-clone --xen resize web "$name" --vcpus 2 --memory 144 2>&1); then
  i=0
  while [ "$(vcpus_of "$name")" != 2 ] && [ $i -lt 40 ]; do sleep 0.25; i=$((i + 1)); done
  target=$(xenstore-read /local/domain/$(domid_of "$name")/memory/target 2>/dev/null)
  if [ "$(vcpus_of "$name")" = 2 ] && [ "$target" = 147456 ]; then
    pass clone-resize "$name: 2 vCPUs online, memory/target $target KiB"
  else
    fail clone-resize "$name: vCPUs $(vcpus_of "$name"), memory/target '$target'"
  fi
else
  fail clone-resize "$out"
fi
if out=$(lull-clone --xen resize web "$name" --vcpus 3 2>&1); then
  fail clone-resize-bad "3 vCPUs over maxvcpus 2 accepted: $out"
else
  case "$out" in
    *"outside 1..2"*) pass clone-resize-bad "refused: $out" ;;
    *) fail clone-resize-bad "refused for another reason: $out" ;;
  esac
fi

if out=$(lull-clone --xen deactivate web 2>&1); then
  st=$(state_of "$name")
  case "$st" in *p*) pass clone-deactivate "$out (xl list state $st)" ;;
    *) fail clone-deactivate "$out; xl list state '$st'" ;; esac
else
  fail clone-deactivate "$out"
fi
lull-clone --xen clones web 2>&1 | sed 's/^/LULL-INFO clone: /'

if out=$(lull-clone --xen clone-pool web --size 0 2>&1); then
  left=$(xl list | awk '$1 ~ /^web-shadow-/ { print $1 }' | tr '\n' ' ')
  if [ -z "$left" ]; then pass clone-destroy "pool destroyed, no web-shadow domain left"
  else fail clone-destroy "left: $left"; fi
else
  fail clone-destroy "$out"
fi
exit $rc
