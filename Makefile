# Docuseek. The two commands of the README:
#   make run    install into .venv and serve the API + worker on an embedded PostgreSQL
#   make test   install into .venv, lint, type-check, run the tests (and the Docker stack
#               test when an engine is there and we are root, or when DOCUSEEK_STACK_TEST=1
#               asks for it: then it installs and starts the engine itself;
#               DOCUSEEK_STACK_TEST=0 skips it)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint unit-test readme browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[$*]'
	touch $@

run: $(VENV)/.installed-embedded
	$(BIN)/docuseek serve

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src bench

unit-test: $(VENV)/.installed-test browser
	$(BIN)/pytest -q

# The console's browser tests drive Debian's Chromium through its chromedriver
# (tests/test_console_browser.py); installed here when missing, as root.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	  else \
	    echo "chromium and chromium-driver are missing: apt-get install them (as root)" >&2; exit 1; \
	  fi; \
	fi

readme: $(VENV)/.installed-test
	$(BIN)/python scripts/update_readme_settings.py

test: browser lint unit-test
	@$(MAKE) --no-print-directory stack-test-if-enabled

-include infra/stack.mk
-include bench/bench.mk
