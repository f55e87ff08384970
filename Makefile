# meshbridge: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(STAMP)

## demo: the article's scenario end to end on this machine (real Envoy, ALB emulator, Lambda runtime)
demo: setup
	$(BIN)/meshbridge demo

## test: lint, type-check, then every test tier that runs here (cluster tests are opt-in: -m cluster)
test: setup lint typecheck
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit

bench: setup
	$(BIN)/python benchmarks/bridge.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
