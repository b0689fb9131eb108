# lull - top-level entry points. `make help` lists them.
#
# Every target that builds first runs `deps`, which installs the Debian packages that are
# missing (as root) and does nothing when all are present, so on a fresh Debian 12
# machine `make run` and `make test` are the only commands a user needs.

SAN   ?=
BUILD ?= build$(if $(SAN),-$(SAN))
JOBS  ?= $(shell nproc)
# ctest label filters: `make test L=concurrent`, `make test LE=long`.
L     ?=
LE    ?= $(if $(SAN),long,)
# Parts to build (all by default); e.g. PARTS=shm while another part is mid-change.
PARTS ?= shm;forecast;dom0;snapshot;migrate;clone

# Debian packages, by purpose. Keep this the only list.
PKG_BUILD   := build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
PKG_LIBS    := libxen-dev libeigen3-dev liburing-dev libgtest-dev libgmock-dev \
               libbenchmark-dev libboost-dev liblz4-dev libxxhash-dev \
               nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libcpp-httplib-dev
PKG_TOOLS   := python3 python3-statsmodels python3-matplotlib python3-pandas prometheus \
               iproute2 fio
PACKAGES    := $(PKG_BUILD) $(PKG_LIBS) $(PKG_TOOLS)

# Debian's python, not a pyenv or venv one: statsmodels and matplotlib come from apt.
PYTHON := /usr/bin/python3

.PHONY: all help deps configure build test run bench bench-ring fuzz clean

all: build

# Each part adds its own targets in a fragment beside its code (forecast/forecast.mk,
# dom0/dom0.mk, xen-patches/xen.mk, dom0/<module>/<module>.mk) and appends to BENCH_STEPS the steps `make bench`
# runs after the ring benchmark.
BENCH_STEPS :=
-include forecast/forecast.mk dom0/dom0.mk xen-patches/xen.mk $(wildcard dom0/*/*.mk)

help:
	@echo "make run          build and run lulld on the simulated host (the main job)"
	@echo "make test         build and run every test (SAN=thread|address for sanitizers,"
	@echo "                  L=label / LE=label to select by ctest label)"
	@echo "make bench        Google Benchmark suites and the harness, with ratios"
	@echo "make eval         forecast evaluation on ../shared/traces"
	@echo "make fuzz         libFuzzer over the shared-memory region (FUZZ_SECONDS=60)"
	@echo "make deps         install missing Debian packages (root)"

deps:
	@missing=""; \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make deps: missing Debian packages:$$missing" >&2; \
	    echo "make deps: run 'make deps' as root, or: sudo apt-get install$$missing" >&2; \
	    exit 1; \
	  fi; \
	  echo "make deps: installing$$missing"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DLULL_SAN=$(SAN) -DLULL_PARTS='$(PARTS)' \
	  $(if $(SAN),-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS=-O1) >/dev/null

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(if $(L),-L '$(L)') $(if $(LE),-LE '$(LE)')

bench: bench-ring $(BENCH_STEPS)

# Round trips are a few hundred ns: as root the benchmark runs at real-time priority
# (chrt, util-linux) so that a shared machine's other work does not land inside them
# (docs/shm.md shows the difference).
bench-ring: build
	$(if $(filter 0,$(shell id -u)),chrt -f 1) $(BUILD)/tests/bench/ring/lull-bench-ring --benchmark_min_time=0.5

fuzz: deps
	@cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DLULL_FUZZ=ON -DLULL_PARTS=shm >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target lull-fuzz-shm
	mkdir -p build-fuzz/corpus
	build-fuzz/tests/fuzz/lull-fuzz-shm -max_total_time=$(or $(FUZZ_SECONDS),60) \
	  -print_final_stats=1 build-fuzz/corpus

clean:
	rm -rf build build-* results
