# Docuseek. The two commands of the README:
#   make run    install into .venv and serve the API + worker on an embedded PostgreSQL
#   make test   install into .venv, lint, type-check, run the tests (and the Docker stack
#               test when an engine is there and we are root, or when DOCUSEEK_STACK_TEST=1
#               asks for it: then it installs and starts the engine itself;
#               DOCUSEEK_STACK_TEST=0 skips it)

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
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src

unit-test: $(VENV)/.installed-test
	$(BIN)/pytest -q

readme: $(VENV)/.installed-test
	$(BIN)/python scripts/update_readme_settings.py

test: lint unit-test
	@$(MAKE) --no-print-directory stack-test-if-enabled

-include infra/stack.mk
-include bench/bench.mk
