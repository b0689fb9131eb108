#!/bin/bash
# `make test-xen`: boots stock Debian Xen, then lull's patched build, in QEMU, each with
# the standard dom0 checks (dom0-checks.sh) plus per-build scripts, and prints one table
# of results. The stock boot runs dom0-stock.sh then every dom0-stock-*.sh; the patched
# boot dom0-patched.sh then every dom0-patched-*.sh (a part adds its in-dom0 checks as
# one more file, in name order).
#
#   tests/xen/test-xen.sh [--payload DIR] [--stock-only | --patched-only]
#                         [--dom0-script FILE]...
# --dom0-script (repeatable) runs only the given dom0 scripts (after the standard checks)
# in the boots selected, instead of each boot's own set.
#
# The patched boot runs when `xen-patches/build-xen.sh` builds (or has cached) the
# series; when what it needs cannot be had here it is skipped with the reason, when the
# series fails to apply or build that is a failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
payload=""
stock_only=0
patched_only=0
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --payload) payload=${2:?--payload needs a directory}; shift 2 ;;
    --stock-only) stock_only=1; shift ;;
    --patched-only) patched_only=1; shift ;;
    --dom0-script) only+=(--dom0-script "${2:?--dom0-script needs a file}"); shift 2 ;;
    *) echo "test-xen: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
args=()
[ -z "$payload" ] || args+=(--payload "$payload")
out=$(mktemp)
pl=""
trap 'rm -rf "$out" $pl' EXIT
failed=0
start=$(date +%s)

# The dom0 scripts of one boot, as --dom0-script arguments.
scripts() {
  local f
  for f in "$here/dom0-$1.sh" "$here"/dom0-"$1"-*.sh; do
    [ -f "$f" ] && printf -- '--dom0-script\n%s\n' "$f"
  done
}
mapfile -t stock_scripts < <(scripts stock)
mapfile -t patched_scripts < <(scripts patched)
if [ ${#only[@]} -gt 0 ]; then stock_scripts=("${only[@]}"); patched_scripts=("${only[@]}"); fi

if [ $patched_only = 0 ]; then
  bash "$here/xen-harness.sh" --label stock "${stock_scripts[@]}" "${args[@]}" | tee -a "$out"
  [ "${PIPESTATUS[0]}" = 0 ] || failed=1
fi

if [ $stock_only = 0 ]; then
  blog=$(mktemp)
  bash "$repo/xen-patches/build-xen.sh" --jobs 2 >"$blog" 2>&1
  rc=$?
  tee -a "$out" <"$blog"
  built=$(tail -1 "$blog")
  rm -f "$blog"
  if [ "$rc" = 0 ] && [ -f "$built" ]; then
    pargs=("${args[@]}")
    if [ -f "$(dirname "$built")/xl" ]; then
      # The patched xl (lull-status, lull-leases) goes in as /payload/lull/xl; dom0
      # keeps Debian's xl for everything else.
      pl=$(mktemp -d)
      [ -z "$payload" ] || cp -a "$payload/." "$pl/"
      mkdir -p "$pl/lull" && cp "$(dirname "$built")/xl" "$pl/lull/xl"
      pargs=(--payload "$pl")
    fi
    bash "$here/xen-harness.sh" --label patched --xen "$built" --quick-checks "${patched_scripts[@]}" \
      "${pargs[@]}" | tee -a "$out"
    [ "${PIPESTATUS[0]}" = 0 ] || failed=1
  elif [ "$rc" = 3 ]; then
    echo "[patched] SKIP boot: the patched hypervisor cannot be built here ($built)" | tee -a "$out"
  else
    echo "[patched] FAIL build: xen-patches/build-xen.sh exited $rc ($built)" | tee -a "$out"
    failed=1
  fi
fi

echo
echo "==== test-xen results ($(($(date +%s) - start))s) ===="
printf '%-8s %-5s %-22s %s\n' BOOT RESULT CHECK DETAIL
sed -n 's/^\[\([a-z]*\)\] \(PASS\|FAIL\|SKIP\) \([^ ]*\) \(.*\)$/\1 \2 \3 \4/p' "$out" |
  while read -r boot result check detail; do
    printf '%-8s %-5s %-22s %s\n' "$boot" "$result" "$check" "${detail:0:110}"
  done
# Where the time went: each boot's phases (dom0-init.sh) and QEMU's whole run.
echo
echo "==== time per phase (s): boot = QEMU start to dom0's toolstack, then each script ===="
for b in stock patched; do
  ph=$(sed -n "s/^\[$b\] info: phase \([^ ]*\) \([0-9.]*\)$/\1=\2/p" "$out" | tr '\n' ' ')
  whole=$(sed -n "s/^xen-harness\[$b\]: .* in \([0-9]*\)s; serial log.*/\1/p" "$out")
  [ -z "$ph" ] || echo "$b: ${ph}whole boot ${whole:-?}s"
done
sed -n 's/^build-xen: \(built in .*\|series .* already built\|series .* copied .*\)$/patched build: \1/p' "$out"
np=$(grep -cE '^\[[a-z]+\] PASS ' "$out")
nf=$(grep -cE '^\[[a-z]+\] FAIL ' "$out")
ns=$(grep -cE '^\[[a-z]+\] SKIP ' "$out")
echo "test-xen: $np passed, $nf failed, $ns skipped"
[ $failed = 0 ] && [ "$nf" = 0 ]
