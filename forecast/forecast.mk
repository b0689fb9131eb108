# forecast/ make targets, included by the top-level Makefile.
#   make eval            rolling-origin evaluation on $(TRACES) -> results/forecast/
TRACES ?= ../shared/traces
EVAL_OUT ?= results/forecast
EVAL_SERIES ?= 8

.PHONY: eval

eval: build
	$(BUILD)/forecast/lull-forecast-eval --traces $(TRACES) --out $(EVAL_OUT) \
	  --series $(EVAL_SERIES) --python $(PYTHON)

