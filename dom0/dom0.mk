# dom0/dom0.mk - lulld's make targets (included by the top-level Makefile).
#
#   make run          build, run lulld's main job on the built-in workload (32 guests,
#                     16 CPUs, one simulated day, four policies), print the table and
#                     plot results/run/lull_run.png
#   make run-traces   the same comparison on the PlanetLab and Bitbrains traces
#   make bench-dom0   one control step for 1,000 guests (lull vs the reactive baseline)
TRACES ?= ../shared/traces

.PHONY: run run-traces bench-dom0

run: build
	$(BUILD)/dom0/lulld --compare --out results/run
	$(PYTHON) dom0/plot_run.py results/run

run-traces: build
	$(BUILD)/dom0/lulld --compare --trace $(TRACES)/planetlab/20110303 --cpus 0 --out results/run-planetlab
	$(BUILD)/dom0/lulld --compare --trace $(TRACES)/bitbrains_rnd/2013-8 --cpus 0 --out results/run-bitbrains

bench-dom0: build
	$(BUILD)/tests/bench/dom0/lull-bench-dom0

BENCH_STEPS += bench-dom0
