# Docuseek. The two commands of the README:
#   make run    install into .venv and serve the API + worker on an embedded PostgreSQL
#   make test   install into .venv, lint, type-check, run the tests (and the Docker stack
#               test when an engine is there and we are root, or when DOCUSEEK_STACK_TEST=1
#               asks for it: then it installs and starts the engine itself)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint unit-test readme

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

unit-test: $(VENV)/.installed-test
	$(BIN)/pytest -q

readme: $(VENV)/.installed-test
	$(BIN)/python scripts/update_readme_settings.py

test: lint unit-test
	@if [ "$${DOCUSEEK_STACK_TEST:-}" = 1 ] || { [ "$$(id -u)" = 0 ] && docker info >/dev/null 2>&1; }; then \
	  $(MAKE) stack-test; \
	else \
	  echo "no Docker engine: stack test not run (DOCUSEEK_STACK_TEST=1 installs one and runs it)"; \
	fi

-include infra/stack.mk
-include bench/bench.mk
