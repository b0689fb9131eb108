# dom0/clone/clone.mk - predictive cloning's make targets (included by the top-level Makefile).
#
#   make bench-clone   Google Benchmark: warm-shadow activation against a cold start (the
#                      baseline), ratio printed; then the spike scenario: real HAProxy and
#                      backends on 127.0.0.1, wrk following Azure VM 737498's daily spike
#                      (300x sped up) under the policies none, reactive, predictive (and
#                      predictive without the block cache), interleaved over 3 rounds:
#                      p50/p99/errors per policy, medians, and the ratios to the targets
#                      (about 7 minutes). Results in results/clone/.
TRACES ?= ../shared/traces
CLONE_OUT ?= results/clone

# HAProxy (the load balancer under test) and wrk (the load generator); installed by
# `make deps`, which every build target runs.
PKG_CLONE := haproxy wrk
PACKAGES += $(PKG_CLONE)

.PHONY: bench-clone

bench-clone: build
	mkdir -p $(CLONE_OUT)
	$(BUILD)/tests/bench/clone/lull-clone-bench-activation --benchmark_min_time=0.5
	$(BUILD)/tests/bench/clone/lull-clone-spike --traces $(TRACES) --out $(CLONE_OUT)

BENCH_STEPS += bench-clone

# lull-clone in the Xen-in-QEMU dom0: tests/xen/dom0-stock-clone.sh drives its --xen pool.
XEN_PAYLOAD_BINS += dom0/clone/lull-clone
