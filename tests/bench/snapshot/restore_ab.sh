#!/bin/sh
# Interleaved A/B of restore options on the benchmark's snapshot files: one restore per
# variant in turn, REPS rounds, cold cache before each, so a slow minute of the disk or
# the machine falls on every variant alike (back-to-back runs of lull-bench-snapshot
# cannot tell a 10 % change from this VM's noise). Prints, per file and variant, the
# median and mean time to first useful work, how many runs were slow (over 1.5x the
# variant's fastest run) and every run, sorted.
#
#   restore_ab.sh CLI DIR REPS 'OPTIONS A' 'OPTIONS B' ...
# CLI: lull-snapshot; DIR: files kept by `lull-bench-snapshot --keep` (guest-MIB-FIRST/);
# options go to `lull-snapshot restore` (e.g. '--decoder-nice 0', '--serial'). The variant
# 'baseline' is the benchmark's lazy baseline: `--mode lazy` from the plain snapshot
# (guest-MIB-FIRST-plain/); with it, each variant's median is also given as a ratio,
# baseline median / variant median (the "times faster than lazy paging").
# `make bench-snapshot-ab` runs it on the 256 MiB guest with the variants docs/snapshot.md
# reports. Needs root (drop_caches); says so and stops otherwise.
set -eu
[ $# -ge 4 ] || { echo "usage: $0 CLI DIR REPS 'OPTIONS A' 'OPTIONS B' ..." >&2; exit 2; }
cli=$1 dir=$2 reps=$3
shift 3
[ -x "$cli" ] || { echo "$0: $cli is not an executable lull-snapshot" >&2; exit 2; }
case $reps in '' | *[!0-9]*) echo "$0: REPS must be a count, got '$reps'" >&2; exit 2 ;; esac
[ -w /proc/sys/vm/drop_caches ] || { echo "$0: needs root to drop the page cache" >&2; exit 1; }
ls "$dir"/guest-*/00000001.lsnap >/dev/null 2>&1 ||
  { echo "$0: no guest-*/00000001.lsnap under $dir (lull-bench-snapshot --keep)" >&2; exit 1; }
# Every run goes to a file first, so a failed restore ends the script with its status
# (a loop feeding a pipeline would run in a subshell and its exit would be lost).
runs=$(mktemp "${TMPDIR:-/tmp}/restore_ab.XXXXXX")
trap 'rm -f "$runs"' EXIT
for g in "$dir"/guest-*; do
  case $g in *-plain) continue ;; esac
  [ -f "$g/00000001.lsnap" ] || continue
  first=${g##*-}
  i=0
  while [ "$i" -lt "$reps" ]; do
    i=$((i + 1))
    for opt in "$@"; do
      f=$g/00000001.lsnap args=$opt
      if [ "$opt" = baseline ]; then f=$g-plain/00000001.lsnap args='--mode lazy'; fi
      sync
      echo 3 >/proc/sys/vm/drop_caches
      # shellcheck disable=SC2086 # the options are words
      out=$(nice -n -20 "$cli" restore "$f" --queries 20000 --first "$first" \
            --seed $((900 + i)) $args 2>/dev/null) ||
        { echo "$0: restore $f $opt failed" >&2; exit 1; }
      t=$(printf '%s\n' "$out" | sed -n 's/.*first work \([0-9.]*\) s.*/\1/p')
      printf '%s\t%s\t%s\n' "${g##*/}" "$opt" "$t"
    done
  done
done >"$runs"
sort -t "$(printf '\t')" -k1,1 -k2,2 -k3,3n "$runs" | awk -F '\t' '
  { k = $1 "  " $2; v[k, ++n[k]] = $3; s[k] += $3; g[k] = $1; keys[k] = 1 }
  END {
    for (k in keys) {
      c = n[k]; med[k] = (c % 2) ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
      if (k == g[k] "  baseline") base[g[k]] = med[k]
    }
    for (k in keys) {
      c = n[k]; slow = 0; runs = ""
      # sorted, so v[k, 1] is the variant'"'"'s fastest run
      for (j = 1; j <= c; j++) { if (v[k, j] > 1.5 * v[k, 1]) slow++; runs = runs " " v[k, j] }
      ratio = (g[k] in base && med[k] > 0) ? sprintf("  %5.2fx", base[g[k]] / med[k]) : ""
      printf "%-44s median %.4f s%s  mean %.4f s  slow %d/%d  |%s\n", k, med[k], ratio,
             s[k] / c, slow, c, runs
    }
  }' | sort
