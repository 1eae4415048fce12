# Benchmarks. Included from the root Makefile: `make bench`.
# Sets up its own venv in bench/data/venv (bench/data/ is git-ignored) and runs the default set:
# every available backend at 64k documents, concurrency 1, 8, 32 (< 30 min on 2 cores).
#   make bench BENCH_ARGS="--backend postgres --scale 1m"
#   make bench-report       # regenerate bench/RESULTS.md from bench/results/*.json

BENCH_VENV ?= $(CURDIR)/bench/data/venv
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_ARGS ?=

.PHONY: bench bench-setup bench-report bench-smoke

$(BENCH_PY):
	python3 -m venv $(BENCH_VENV)

bench-setup: $(BENCH_PY)
	@command -v wrk >/dev/null 2>&1 && command -v apt-cache >/dev/null 2>&1 || \
	  { apt-get update -o Acquire::Languages=en && apt-get install -y --no-install-recommends wrk; }
	$(BENCH_PY) -m pip install -q --upgrade pip
	$(BENCH_PY) -m pip install -q -e '.[bench,test]' psutil

bench: bench-setup
	cd $(CURDIR) && $(BENCH_PY) -m bench run $(BENCH_ARGS)

bench-report: $(BENCH_PY)
	cd $(CURDIR) && $(BENCH_PY) -m bench report

bench-smoke: bench-setup
	cd $(CURDIR) && $(BENCH_PY) -m pytest tests/bench -q
