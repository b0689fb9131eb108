# Xen guest memory (dom0/xen_memory.*) from inside the stock dom0, g1 and g2 running
# (run by tests/xen/test-xen.sh after the standard checks; see docs/snapshot.md). Log-dirty
# pre-copy over real Xen runs in the patched boot (dom0-patched-memory.sh), whose build
# has shadow paging. Needs lull-migrate and lull-snapshot in the payload.
#   mem-logdirty-mode  Debian's stock build has no shadow paging, which a PV guest's
#                  log-dirty mode needs: it must be refused with that reason (the engine
#                  then compares pages instead)
#   mem-snapshot   paused g2's memory captured into the snapshot store and restored into
#                  the same paused domain through a writable foreign mapping, every page's
#                  checksum verified; a corrupted snapshot is refused with the chunk named
#                  and nothing written; g2 runs on afterwards
. /test/dom0-lib.sh
rc=0
for t in lull-migrate lull-snapshot; do
  command -v $t >/dev/null || { fail mem-tools "$t is not in the payload (XEN_PAYLOAD_BINS)"; exit 1; }
done
d1=$(xl domid g1) && d2=$(xl domid g2) || { fail mem-tools "g1/g2 not running: $(xl list | tr '\n' '|')"; exit 1; }

# Debian's Xen 4.17: the refusal must name the reason.
if out=$(lull-migrate dirty --xen $d1 --dirty logdirty --count 1 --interval 200 2>&1); then
  fail mem-logdirty-mode "stock Xen accepted log-dirty mode for PV g1 (no shadow paging expected): $(echo "$out" | head -1)"
elif echo "$out" | grep -q 'CONFIG_SHADOW_PAGING'; then
  pass mem-logdirty-mode "log-dirty refused with the reason: $(echo "$out" | tail -1 | cut -c1-170)"
else
  fail mem-logdirty-mode "log-dirty refused without a clear reason: $(echo "$out" | tr '\n' '|')"
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
  # A corrupted copy first: must be refused, naming the chunk, with nothing written. The
  # damage is an eighth into the file: the restore checks chunks in order before writing,
  # so it stops there (half-way in cost 40 s of reading in emulation).
  mkdir -p /tmp/snap-bad && cp "$f" /tmp/snap-bad/
  bad=/tmp/snap-bad/$(basename "$f")
  size=$(wc -c <"$bad")
  printf '\377\377\377\377\377\377\377\377' | dd of="$bad" bs=1 seek=$((size / 8)) conv=notrunc 2>/dev/null
  if lull-snapshot restore "$bad" --xen $d2 >/tmp/restore-bad.out 2>&1; then
    fail mem-snapshot-bad "a corrupted snapshot was restored: $(cat /tmp/restore-bad.out)"
  elif grep -q chunk /tmp/restore-bad.out; then
    pass mem-snapshot-bad "refused: $(tail -1 /tmp/restore-bad.out | cut -c1-160)"
  else
    fail mem-snapshot-bad "refused without naming the chunk: $(tail -2 /tmp/restore-bad.out | tr '\n' '|')"
  fi
  tr0=$(uptime_s)
  if lull-snapshot restore "$f" --xen $d2 >/tmp/restore.out 2>&1; then
    t2=$(uptime_s)
    pass mem-snapshot "$(awk -v a=$t0 -v b=$t1 -v r=$tr0 -v c=$t2 'BEGIN { printf "capture %.1fs, restore %.1fs: ", b - a, c - r }')$(cut -c1-200 /tmp/restore.out)"
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

exit $rc
