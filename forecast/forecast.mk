# forecast/ make targets, included by the top-level Makefile.
#   make eval            rolling-origin evaluation on $(TRACES) -> results/forecast/
#                        (CSV, PNG, a table on stdout; statsmodels ARIMA as reference)
#   make bench-forecast  Google Benchmark of the models and the ensemble, with the
#                        ratios to the targets and to statsmodels' ARIMA (part of `make bench`)
TRACES ?= ../shared/traces
EVAL_OUT ?= results/forecast
EVAL_SERIES ?= 6
EVAL_MAX_STEPS ?= 2304

.PHONY: eval bench-forecast

eval: build
	$(BUILD)/forecast/lull-forecast-eval --traces $(TRACES) --out $(EVAL_OUT) \
	  --series $(EVAL_SERIES) --max-steps $(EVAL_MAX_STEPS) --python $(PYTHON)

bench-forecast: build
	$(BUILD)/tests/bench/forecast/lull-bench-forecast --traces $(TRACES) --python $(PYTHON) \
	  --out $(EVAL_OUT)

BENCH_STEPS += bench-forecast
