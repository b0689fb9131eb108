#!/bin/bash
# Boots Xen in QEMU (software emulation) with a busybox dom0 and runs tests inside it.
#
#   tests/xen/xen-harness.sh [--xen FILE] [--label NAME] [--payload DIR]
#                            [--dom0-script FILE] [--timeout SECONDS] [--cache DIR]
#                            [--quick-checks]
#
# --xen FILE         the hypervisor: an ELF `xen` or Debian's `xen-*.gz`; default the
#                    stock Debian build from the cached packages.
# --payload DIR      copied to /payload in dom0; every ELF file in it gets its shared
#                    libraries (found with ldd on the host) copied too. /payload/bin and
#                    /payload are on dom0's PATH.
# --dom0-script FILE run in dom0 after the standard checks (tests/xen/dom0-checks.sh),
#                    with the two workload guests still running; it reports with lines
#                    `LULL-RESULT PASS|FAIL name detail` and its exit status is a result.
#                    May be given more than once: the scripts run in the order given,
#                    each as its own result (extra-1, extra-2, ...).
# --quick-checks      the standard checks only start the guests and check the toolstack,
#                    without the CPU pattern and cap measurements (about 60 s).
# Debian packages are fetched with `apt-get download` into $CACHE/debs once and unpacked
# with `dpkg -x`; nothing is installed on the host but the tools in xen-patches/xen.mk.
# The serial log is kept in $CACHE/logs/<label>.log. Exit status 0 only when every
# result passed and dom0 reached the end of its script.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=$repo/.cache/xen
xen_img=""
label=stock
payload=""
extra=()
limit=900
quick=0

die() { echo "xen-harness: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --xen) xen_img=${2:?--xen needs a file}; shift 2 ;;
    --label) label=${2:?--label needs a name}; shift 2 ;;
    --payload) payload=${2:?--payload needs a directory}; shift 2 ;;
    --dom0-script) extra+=("${2:?--dom0-script needs a file}"); shift 2 ;;
    --timeout) limit=${2:?--timeout needs seconds}; shift 2 ;;
    --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
    --quick-checks) quick=1; shift ;;
    *) die "unknown argument '$1' (see the header of $0)" ;;
  esac
done
[ -z "$payload" ] || [ -d "$payload" ] || die "--payload '$payload' is not a directory"
for f in "${extra[@]}"; do [ -f "$f" ] || die "--dom0-script '$f' is not a file"; done
[ -z "$xen_img" ] || [ -f "$xen_img" ] || die "--xen '$xen_img' is not a file"
case "$limit" in ''|*[!0-9]*) die "--timeout '$limit' is not a whole number of seconds" ;; esac
for tool in qemu-system-x86_64 busybox cpio apt-get dpkg ldd xz; do
  command -v $tool >/dev/null || die "'$tool' is missing: run 'make test-xen' (it installs the host packages) or apt-get install it"
done
busybox --list | grep -x insmod >/dev/null || die "the busybox on PATH is not busybox-static with insmod"

mkdir -p "$cache/debs" "$cache/logs" "$cache/img"

# --- Debian packages: download once, unpack once --------------------------------------
kver=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-\(.*-amd64\)$/\1/p' | sed -n 1p)
if [ -z "$kver" ]; then  # offline: use whatever kernel is already cached
  kver=$(ls "$cache/debs" 2>/dev/null | sed -n 's/^linux-image-\(.*-amd64\)_.*\.deb$/\1/p' | sort -V | tail -1)
fi
[ -n "$kver" ] || die "cannot tell which linux-image to use (apt-get update, or a cached .deb)"
pkgs="xen-hypervisor-4.17-amd64 xen-hypervisor-common xen-utils-4.17 xen-utils-common
      xenstore-utils libxenstore4 libxenmisc4.17 libxencall1 libxendevicemodel1
      libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenhypfs1 libxentoolcore1
      libxentoollog1 libyajl2 linux-image-$kver"
stamp="$cache/debs/.complete"
want=$(echo $pkgs)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "xen-harness: downloading Debian packages into $cache/debs"
  rm -f "$cache/debs"/*.deb
  (cd "$cache/debs" && apt-get download $pkgs) >"$cache/logs/download.log" 2>&1 ||
    { tail -5 "$cache/logs/download.log"; die "apt-get download failed (log: $cache/logs/download.log)"; }
  echo "$want" >"$stamp"
  rm -rf "$cache/root"
fi
root=$cache/root
if [ ! -f "$root/.complete" ]; then
  echo "xen-harness: unpacking the packages into $root"
  rm -rf "$root" && mkdir -p "$root"
  for d in "$cache"/debs/*.deb; do dpkg -x "$d" "$root"; done
  touch "$root/.complete"
fi
libdirs=$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu
vmlinuz=$root/boot/vmlinuz-$kver
moddir=$root/lib/modules/$kver/kernel/drivers/xen
[ -f "$vmlinuz" ] || die "no kernel $vmlinuz in the unpacked packages"

if [ -z "$xen_img" ]; then xen_img=$root/boot/xen-4.17-amd64.gz; fi
xen_elf=$cache/img/xen-$label
case "$xen_img" in
  *.gz) zcat "$xen_img" >"$xen_elf" ;;
  *) cp "$xen_img" "$xen_elf" ;;
esac

# --- the guest: uncompressed vmlinux (a PV guest boots faster from it) + busybox -------
vmlinux=$cache/img/vmlinux-$kver
if [ ! -s "$vmlinux" ]; then
  # The bzImage carries the kernel as one xz stream; find it and unpack it.
  off=$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$vmlinuz" | sed -n 1p | cut -d: -f1)
  [ -n "$off" ] || die "no xz stream in $vmlinuz"
  tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$vmlinux.tmp" 2>/dev/null || true
  head -c 4 "$vmlinux.tmp" | grep -q ELF || die "unpacking $vmlinuz did not give an ELF vmlinux"
  mv "$vmlinux.tmp" "$vmlinux"
fi
work=$(mktemp -d)
# XEN_HARNESS_KEEP=1 keeps the images for inspection.
[ -n "${XEN_HARNESS_KEEP:-}" ] && echo "xen-harness: images in $work" || trap 'rm -rf "$work"' EXIT
g=$work/guest
mkdir -p $g/bin $g/proc $g/dev $g/sys
cp "$(command -v busybox)" $g/bin/busybox
cp "$here/domU-init.sh" $g/init && chmod 755 $g/init
(cd $g && find . | cpio -o -H newc --quiet | gzip -1) >$work/domU-initrd.gz

# --- dom0 initramfs ---------------------------------------------------------------------
d=$work/dom0
mkdir -p $d/bin $d/sbin $d/usr/bin $d/usr/sbin $d/lib/modules $d/lib64 $d/test $d/guest \
         $d/usr/lib/xen-4.17/bin $d/etc/xen $d/proc $d/sys $d/dev
cp "$(command -v busybox)" $d/bin/busybox
for a in $(busybox --list); do [ -e $d/bin/$a ] || ln -s busybox $d/bin/$a; done

# copy_with_libs FILE...: copies each file's shared libraries (as the unpacked Xen
# packages provide them, else the host's) to the same path in the initramfs.
copy_libs() {
  LD_LIBRARY_PATH=$libdirs ldd "$@" 2>/dev/null | awk '/=> \// { print $1, $3 } /^\t\/lib/ { print $1, $1 }' |
    sort -u | while read -r name path; do
      case "$path" in
        "$root"/*) dest=/usr/lib/x86_64-linux-gnu/$name ;;
        /*) dest=$(dirname "$path")/$(basename "$name") ;;
      esac
      [ -e "$d$dest" ] || { mkdir -p "$d$(dirname "$dest")"; cp -L "$path" "$d$dest"; }
    done
}
xbin=$root/usr/lib/xen-4.17/bin
for b in xl xenstored xen-init-dom0 xenconsoled xenstore-read xenstore-write xenstore-ls xentrace; do
  [ -f "$xbin/$b" ] && cp "$xbin/$b" $d/usr/lib/xen-4.17/bin/
done
for b in xenstore xenstore-read xenstore-write xenstore-ls xenstore-list; do
  [ -e "$root/usr/bin/$b" ] && cp -L "$root/usr/bin/$b" $d/usr/bin/
done
# xenhypfs reads Xen's runtime parameters back (/params/..., set by xl set-parameters).
cp "$root/usr/sbin/xenhypfs" $d/usr/sbin/
copy_libs $d/usr/lib/xen-4.17/bin/* $d/usr/bin/xenstore $d/usr/sbin/xenhypfs
# xl's threads need libgcc_s at exit (pthread_cancel dlopens it); ldd does not list it.
cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 $d/lib/x86_64-linux-gnu/
cp -r "$root/etc/xen/." $d/etc/xen/ 2>/dev/null || true
for m in xen-evtchn xen-privcmd xenfs/xenfs xen-gntdev xen-gntalloc; do
  cp "$moddir/$m.ko" $d/lib/modules/
done
cp "$vmlinux" $d/guest/vmlinux
cp $work/domU-initrd.gz $d/guest/initrd.gz
cp "$here/dom0-init.sh" $d/init && chmod 755 $d/init
cp "$here/dom0-checks.sh" "$here/dom0-lib.sh" $d/test/
if [ -n "$payload" ]; then
  mkdir -p $d/payload && cp -a "$payload/." $d/payload/
  elves=$(find $d/payload -type f -exec sh -c 'head -c 4 "$1" | grep -q ELF && echo "$1"' _ {} \;)
  [ -z "$elves" ] || copy_libs $elves
fi
i=0
[ $quick = 0 ] || : >$d/test/quick-checks
for f in "${extra[@]}"; do
  i=$((i + 1)); cp "$f" $d/test/extra-$i.sh; echo "$i $(basename "$f" .sh)" >>$d/test/extra.names
done
(cd $d && find . | cpio -o -H newc --quiet) >$work/dom0.img
echo "xen-harness[$label]: dom0 image $(du -m $work/dom0.img | cut -f1) MiB, hypervisor $xen_img"

# --- boot ---------------------------------------------------------------------------------
log=$cache/logs/$label.log
start=$(date +%s)
set +e
[ -z "${XEN_HARNESS_NOBOOT:-}" ] || exit 0
timeout --foreground -k 10 "$limit" qemu-system-x86_64 -accel tcg -cpu qemu64 -m 2048 -smp 2 \
  -nographic -no-reboot -serial mon:stdio -monitor none -display none \
  -kernel "$xen_elf" \
  -append "dom0_mem=1024M,max:1024M console=com1 com1=115200,8n1 sched=credit loglvl=all" \
  -initrd "$vmlinuz console=hvc0 earlyprintk=xen quiet,$work/dom0.img" \
  </dev/null 2>&1 | tr -d '\r' >"$log"
qemu_rc=${PIPESTATUS[0]}
set -e
secs=$(($(date +%s) - start))

npass=$(grep -c '^LULL-RESULT PASS' "$log" || true)
nfail=$(grep -c '^LULL-RESULT FAIL' "$log" || true)
grep -E '^LULL-(RESULT|INFO)' "$log" | sed "s/^LULL-RESULT /[$label] /; s/^LULL-INFO /[$label] info: /"
ok=1
if ! grep -q '^LULL-DONE' "$log"; then
  ok=0
  if [ "$qemu_rc" = 124 ]; then why="timed out after ${limit}s"; else why="QEMU exited $qemu_rc"; fi
  echo "[$label] FAIL boot dom0 did not finish its script ($why)"
  nfail=$((nfail + 1))
fi
[ "$nfail" = 0 ] || ok=0
[ "$npass" -gt 0 ] || ok=0
echo "xen-harness[$label]: $npass passed, $nfail failed in ${secs}s; serial log $log"
if [ $ok = 0 ]; then
  echo "---- last 40 lines of $log ----"
  tail -40 "$log"
  exit 1
fi
