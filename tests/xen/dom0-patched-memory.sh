# Xen guest memory with real log-dirty (dom0/xen_memory.*, dom0/migrate/xen_guest.*), from
# inside the patched dom0, g1 and g2 running (run by tests/xen/test-xen.sh; see
# docs/migrate.md). The patched hypervisor is built with shadow paging
# (xen-patches/xen.config), which a PV guest's log-dirty mode needs. Needs lull-migrate.
#   mem-logdirty-mode  Xen accepts log-dirty mode for PV g1 (XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY)
#   mem-dirty      Xen's dirty bitmap of running g1 (peek-and-clean per interval): more
#                  pages per second while g1 is busy than while it idles, none while paused
#   mem-migrate    g1's memory migrated by the engine (iterative pre-copy over log-dirty,
#                  stop-and-copy, end-to-end checksum) over loopback TCP to a memory-only
#                  target in dom0 (`lull-migrate serve --memory-only`); the memory hashes
#                  of both sides agree; rounds and downtime printed
#   mem-migrate-source  g1 runs on afterwards (--xen-release unpause)
. /test/dom0-lib.sh
rc=0
command -v lull-migrate >/dev/null || { fail mem-tools "lull-migrate is not in the payload (XEN_PAYLOAD_BINS)"; exit 1; }
d1=$(xl domid g1) || { fail mem-tools "g1 not running: $(xl list | tr '\n' '|')"; exit 1; }

# --- dirty tracking: Xen's log-dirty, peeked and cleaned every interval ------------------
mode=logdirty
if out=$(lull-migrate dirty --xen $d1 --dirty logdirty --count 1 --interval 200 2>&1); then
  pass mem-logdirty-mode "Xen accepts log-dirty mode for PV g1: $(echo "$out" | head -1)"
else
  fail mem-logdirty-mode "log-dirty refused by the patched (shadow paging) build: $(echo "$out" | tr '\n' '|')"
fi
# 24 intervals of 0.5 s (plus a peek-and-clean of the bitmap each): at least one whole
# g1 period (10 s), classified by g1's CPU share in each.
if lull-migrate dirty --xen $d1 --dirty $mode --interval 500 --count 24 >/tmp/dirty.txt 2>/tmp/dirty.err; then
  # busy: > 0.6 of a CPU over the interval; idle: < 0.2. Rates in pages per second.
  res=$(awk '/^interval/ { d = $4; c = $7; w = $10; if (w <= 0) next; r = d * 1000 / w;
      if (c > 0.6 * w) { nb++; sb += r } else if (c < 0.2 * w) { ni++; si += r } }
    END { printf "%d %d %.1f %.1f", nb, ni, nb ? sb / nb : 0, ni ? si / ni : 0 }' /tmp/dirty.txt)
  set -- $res
  nb=$1 ni=$2 mb=$3 mi=$4
  info "g1 per interval ($mode), dirty pages/CPU ms/wall ms: $(awk '/^interval/ { printf "%s/%s/%s ", $4, $7, $10 }' /tmp/dirty.txt)"
  xl pause g1
  lull-migrate dirty --xen $d1 --dirty $mode --interval 500 --count 2 >/tmp/dirty-paused.txt 2>&1
  xl unpause g1
  paused=$(awk '/^interval/ { s += $4 } END { print s + 0 }' /tmp/dirty-paused.txt)
  if [ "$nb" -ge 2 ] && [ "$ni" -ge 1 ] && awk -v b=$mb -v i=$mi 'BEGIN { exit !(b > i && b > 0) }' &&
     [ "$paused" = 0 ]; then
    pass mem-dirty "$mode: g1 busy $mb pages/s dirty (mean of $nb intervals), idle $mi pages/s ($ni), paused $paused"
  else
    fail mem-dirty "$mode: g1 busy $mb pages/s ($nb s) vs idle $mi ($ni s), paused $paused: $(tr '\n' '|' </tmp/dirty-paused.txt)"
  fi
else
  fail mem-dirty "lull-migrate dirty failed: $(tail -3 /tmp/dirty.err | tr '\n' '|')"
fi

# --- migration of g1's memory over loopback TCP ------------------------------------------
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
# Generous timeouts: a full scan of 128 MiB takes tens of seconds in a loaded emulator.
lull-migrate serve --memory-only --port 7411 --io-timeout 300 >/tmp/serve.out 2>&1 &
spid=$!
i=0
while ! grep -q serving /tmp/serve.out && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
t0=$(uptime_s)
if lull-migrate migrate --xen $d1 127.0.0.1:7411 --verify-memory --xen-release unpause --dirty logdirty \
     --io-timeout 300 --max-seconds 400 >/tmp/migrate.out 2>&1; then
  t1=$(uptime_s)
  sleep 1
  src=$(sed -n 's/^source memory xxh3 //p' /tmp/migrate.out)
  dst=$(sed -n 's/.*memory xxh3 \([0-9a-f]*\)$/\1/p' /tmp/serve.out | tail -1)
  stats=$(grep -v '^precopy\|^stop-copy\|^connect\|^verify\|^committed' /tmp/migrate.out | grep -i 'downtime\|total' | head -1)
  info "migration: $(head -1 /tmp/migrate.out); pre-copy rounds (pages dirty): $(sed -n 's/^precopy //p' /tmp/migrate.out | tr '\n' ' ' | cut -c1-300); $stats"
  # Pre-copy over log-dirty: the stop-and-copy sends only what Xen reported dirty since
  # the last round, a small part of g1's 32768 pages.
  sc=$(sed -n 's/.*stop-copy \([0-9]*\) pages.*/\1/p' /tmp/migrate.out | tail -1)
  if [ -z "$sc" ] || [ "$sc" -ge 8192 ]; then
    fail mem-migrate-logdirty "stop-and-copy sent '${sc}' pages, want under a quarter of 32768: $stats"
  else
    pass mem-migrate-logdirty "stop-and-copy sent $sc of 32768 pages (those Xen's log-dirty bitmap reported since the last pre-copy round)"
  fi
  if [ -n "$src" ] && [ "$src" = "$dst" ]; then
    pass mem-migrate "$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.1fs", b - a }'), checksum OK, memory xxh3 $src on both sides; $(echo "$stats" | cut -c1-150)"
  else
    fail mem-migrate "memory hash source '$src' target '$dst': $(tail -3 /tmp/serve.out | tr '\n' '|')"
  fi
else
  fail mem-migrate "lull-migrate migrate failed: $(tail -4 /tmp/migrate.out | tr '\n' '|') server: $(tail -2 /tmp/serve.out | tr '\n' '|')"
fi
kill $spid 2>/dev/null
if xl list g1 | awk 'NR == 2 { exit !($5 !~ /p/) }'; then
  pass mem-migrate-source "g1 unpaused after the migration (--xen-release unpause)"
else
  fail mem-migrate-source "g1 state after the migration: $(xl list g1 | tail -1)"
fi
exit $rc
