# Xen guest memory (dom0/xen_memory.*) from inside the stock dom0, g1 and g2 running
# (run by tests/xen/test-xen.sh after the standard checks; see docs/migrate.md and
# docs/snapshot.md). Needs lull-migrate and lull-snapshot in the payload.
#   mem-logdirty-mode  Xen's log-dirty mode for PV g1: used if the hypervisor has it;
#                  Debian's stock build has no shadow paging, so it must be refused there
#                  with that reason (the engine then compares pages instead)
#   mem-dirty      the engine's dirty tracking of running g1 (log-dirty or comparison)
#                  reports written pages, more per second while g1 is busy than while it
#                  idles, none while it is paused
#   mem-snapshot   paused g2's memory captured into the snapshot store and restored into
#                  the same paused domain through a writable foreign mapping, every page's
#                  checksum verified; a corrupted snapshot is refused with the chunk named
#                  and nothing written; g2 runs on afterwards
#   mem-migrate    g1's memory migrated by the engine (pre-copy over log-dirty, stop-and-
#                  copy, end-to-end checksum) over loopback TCP to a memory-only target in
#                  dom0 (`lull-migrate serve --memory-only`: a process can hold a PV
#                  guest's memory but not run it); the memory hashes of both sides agree
. /test/guests.env
pass() { echo "LULL-RESULT PASS $*"; }
fail() { echo "LULL-RESULT FAIL $*"; rc=1; }
info() { echo "LULL-INFO $*"; }
rc=0
for t in lull-migrate lull-snapshot; do
  command -v $t >/dev/null || { fail mem-tools "$t is not in the payload (XEN_PAYLOAD_BINS)"; exit 1; }
done
d1=$(xl domid g1) && d2=$(xl domid g2) || { fail mem-tools "g1/g2 not running: $(xl list | tr '\n' '|')"; exit 1; }
uptime_s() { read up _ </proc/uptime; echo "$up"; }

# --- dirty tracking: Xen's log-dirty if this hypervisor has it, else page comparison ---
# Debian's Xen 4.17 is built without shadow paging, which a PV guest's log-dirty mode
# needs: there the refusal must be clear, and the engine falls back to comparing pages.
if out=$(lull-migrate dirty --xen $d1 --dirty logdirty --count 1 --interval 200 2>&1); then
  mode=logdirty
  pass mem-logdirty-mode "Xen accepts log-dirty mode for PV g1: $(echo "$out" | head -1)"
elif echo "$out" | grep -q 'CONFIG_SHADOW_PAGING'; then
  mode=scan
  pass mem-logdirty-mode "log-dirty refused with the reason: $(echo "$out" | tail -1 | cut -c1-170)"
else
  mode=scan
  fail mem-logdirty-mode "log-dirty refused without a clear reason: $(echo "$out" | tr '\n' '|')"
fi
# Intervals of 0.5 s plus the tracking's own time (a scan of 128 MiB takes seconds in
# emulation) over about two of g1's periods, classified by g1's CPU share in each.
if lull-migrate dirty --xen $d1 --dirty $mode --interval 500 --count 14 >/tmp/dirty.txt 2>/tmp/dirty.err; then
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

# --- snapshot of paused g2, restored into the same paused domain -------------------------
rm -rf /tmp/snap-g2 /tmp/snap-bad && mkdir -p /tmp/snap-g2
xl pause g2
cpu0=$(xl list g2 | awk 'NR == 2 { print $6 }')
t0=$(uptime_s)
if lull-snapshot snapshot --xen $d2 --dir /tmp/snap-g2 >/tmp/snap.out 2>&1; then
  t1=$(uptime_s)
  info "$(cat /tmp/snap.out)"
  f=$(ls /tmp/snap-g2/*.lsnap | head -1)
  # A corrupted copy first: must be refused, naming the chunk, with nothing written.
  mkdir -p /tmp/snap-bad && cp "$f" /tmp/snap-bad/
  bad=/tmp/snap-bad/$(basename "$f")
  size=$(wc -c <"$bad")
  printf '\377\377\377\377\377\377\377\377' | dd of="$bad" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
  if lull-snapshot restore "$bad" --xen $d2 >/tmp/restore-bad.out 2>&1; then
    fail mem-snapshot-bad "a corrupted snapshot was restored: $(cat /tmp/restore-bad.out)"
  elif grep -q chunk /tmp/restore-bad.out; then
    pass mem-snapshot-bad "refused: $(tail -1 /tmp/restore-bad.out | cut -c1-160)"
  else
    fail mem-snapshot-bad "refused without naming the chunk: $(tail -2 /tmp/restore-bad.out | tr '\n' '|')"
  fi
  if lull-snapshot restore "$f" --xen $d2 >/tmp/restore.out 2>&1; then
    t2=$(uptime_s)
    pass mem-snapshot "$(awk -v a=$t0 -v b=$t1 -v c=$t2 'BEGIN { printf "capture %.1fs, restore %.1fs: ", b - a, c - b }')$(cut -c1-200 /tmp/restore.out)"
  else
    fail mem-snapshot "restore failed: $(tail -3 /tmp/restore.out | tr '\n' '|')"
  fi
else
  fail mem-snapshot "capture failed: $(tail -3 /tmp/snap.out | tr '\n' '|')"
fi
xl unpause g2
sleep 3
cpu1=$(xl list g2 | awk 'NR == 2 { print $6 }')
if awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { exit !(b > a) }' && xl list g2 >/dev/null 2>&1; then
  pass mem-snapshot-runs "g2 runs on after the restore (CPU ${cpu0}s -> ${cpu1}s)"
else
  fail mem-snapshot-runs "g2 after the restore: CPU ${cpu0}s -> ${cpu1}s; $(xl list | tr '\n' '|')"
fi
rm -rf /tmp/snap-g2 /tmp/snap-bad

# --- migration of g1's memory over loopback TCP ------------------------------------------
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
# Generous timeouts: a full scan of 128 MiB takes tens of seconds in a loaded emulator.
lull-migrate serve --memory-only --port 7411 --io-timeout 300 >/tmp/serve.out 2>&1 &
spid=$!
i=0
while ! grep -q serving /tmp/serve.out && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
t0=$(uptime_s)
if lull-migrate migrate --xen $d1 127.0.0.1:7411 --verify-memory --xen-release unpause --dirty $mode \
     --io-timeout 300 --max-seconds 400 >/tmp/migrate.out 2>&1; then
  t1=$(uptime_s)
  sleep 1
  src=$(sed -n 's/^source memory xxh3 //p' /tmp/migrate.out)
  dst=$(sed -n 's/.*memory xxh3 \([0-9a-f]*\)$/\1/p' /tmp/serve.out | tail -1)
  stats=$(grep -v '^precopy\|^stop-copy\|^connect\|^verify\|^committed' /tmp/migrate.out | grep -i 'downtime\|total' | head -1)
  info "migration: $(head -1 /tmp/migrate.out); $(grep -c '^precopy' /tmp/migrate.out) pre-copy progress lines; $stats"
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
