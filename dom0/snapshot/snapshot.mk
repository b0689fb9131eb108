# dom0/snapshot make targets (included by the top-level Makefile).
#   make bench-snapshot   restore benchmark: 256 MiB and 2 GiB guests, lazy vs eager vs
#                         lull's prefetch, side by side with fio's sequential read of the
#                         same file (part of `make bench`). Files go under $(BUILD) and are
#                         deleted afterwards. SNAP_BENCH_SIZES=256 for the small guest only.
#   make bench-snapshot-ab  interleaved A/B of restore options on the 256 MiB guest's files
#                         (tests/bench/snapshot/restore_ab.sh): the lazy baseline, decoders
#                         at nice +19 and +0, the guest started after the whole prefetch, and
#                         the 1 MiB stream block of before; SNAP_AB_REPS rounds; each
#                         variant's median also as lazy / variant.
# fio (Debian package) is the bandwidth reference; snapshot-deps installs it.
PKG_SNAPSHOT := fio
SNAP_BENCH_SIZES ?= 256,2048
SNAP_AB_REPS ?= 20

.PHONY: bench-snapshot bench-snapshot-ab snapshot-deps

snapshot-deps:
	@for p in $(PKG_SNAPSHOT); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || { \
	    if [ "$$(id -u)" != 0 ]; then echo "bench-snapshot: needs Debian package $$p (sudo apt-get install $$p)" >&2; exit 1; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$p; }; \
	done

bench-snapshot: build snapshot-deps
	$(BUILD)/tests/bench/snapshot/lull-bench-snapshot --dir $(BUILD)/snapshot-bench \
	  --sizes $(SNAP_BENCH_SIZES)

bench-snapshot-ab: build
	rm -rf $(BUILD)/snapshot-ab
	$(BUILD)/tests/bench/snapshot/lull-bench-snapshot --dir $(BUILD)/snapshot-ab --sizes 256 \
	  --keep --benchmark_filter=none >/dev/null
	tests/bench/snapshot/restore_ab.sh $(BUILD)/dom0/snapshot/lull-snapshot \
	  $(BUILD)/snapshot-ab $(SNAP_AB_REPS) baseline '--decoder-nice 19' '--decoder-nice 0' \
	  '--decoder-nice 19 --serial' '--block-kib 1024'; rc=$$?; rm -rf $(BUILD)/snapshot-ab; \
	  exit $$rc

BENCH_STEPS += bench-snapshot
