# dom0/migrate/ make targets, included by the top-level Makefile.
#   make bench-migrate   encoder benchmarks with baselines, then 1 GiB guests migrated
#                        between two network namespaces over a tc-shaped 1 Gbit/s veth
#                        link (loopback with a send cap where namespaces are not
#                        allowed), with the ratios (part of `make bench`)
#   MIGRATE_GUEST_MIB=64 make bench-migrate   for a quick run
MIGRATE_GUEST_MIB ?= 1024
MIGRATE_MBIT ?= 1000
# iproute2 provides ip and tc for the namespaces; the benchmark falls back to loopback
# without it, so it is not in the Makefile's package lists.
PKG_MIGRATE := iproute2

.PHONY: bench-migrate migrate-deps

migrate-deps:
	@dpkg-query -W -f='$${Status}\n' $(PKG_MIGRATE) 2>/dev/null | grep -q '^install ok installed' || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PKG_MIGRATE); } || \
	  echo "bench-migrate: $(PKG_MIGRATE) missing; the benchmark will use loopback"

bench-migrate: build migrate-deps
	$(BUILD)/tests/bench/migrate/lull-bench-migrate --guest-mib $(MIGRATE_GUEST_MIB) \
	  --mbit $(MIGRATE_MBIT)

BENCH_STEPS += bench-migrate

# The Xen-in-QEMU test's dom0 gets the migration and snapshot tools (--xen DOMID;
# tests/xen/dom0-stock-memory.sh).
XEN_PAYLOAD_BINS += dom0/migrate/lull-migrate dom0/snapshot/lull-snapshot
