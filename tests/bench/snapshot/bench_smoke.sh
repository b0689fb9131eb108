#!/bin/sh
# The restore benchmark end to end on a 16 MiB guest (a smoke test: no timing is
# checked), in a --dir that already holds a file of someone else's: the run must succeed,
# delete the snapshots it wrote, and leave that file alone.
# Usage: bench_smoke.sh LULL_BENCH_SNAPSHOT
set -eu
bench=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/lull-bench-smoke.XXXXXX")
trap 'rm -rf "$dir"' EXIT
echo keep >"$dir/not-the-bench.txt"
out=$("$bench" --dir "$dir" --sizes 16 --reps 1 --records 1 --first 200 2>&1) ||
  { printf '%s\n' "$out"; echo "$0: the benchmark failed" >&2; exit 1; }
printf '%s\n' "$out" | grep -q 'restore/16MiB/first200/prefetch' ||
  { printf '%s\n' "$out"; echo "$0: no prefetch restore in the output" >&2; exit 1; }
[ "$(cat "$dir/not-the-bench.txt" 2>/dev/null)" = keep ] ||
  { echo "$0: the benchmark deleted a file it did not write" >&2; exit 1; }
if ls -d "$dir"/guest-* >/dev/null 2>&1; then
  echo "$0: the benchmark left its snapshots: $(ls "$dir")" >&2; exit 1
fi
echo "ok: ran, removed its snapshots, kept the foreign file"
