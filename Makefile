# Quick start: `make run` (demo) and `make test` (test suite). Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e ".[dev]"
	touch $@

run: $(VENV)/.installed
	$(BIN)/econsim demo

test: $(VENV)/.installed-dev
	$(BIN)/ruff check econsim learners mechanisms tests benchmarks
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check econsim learners mechanisms tests benchmarks

bench: $(VENV)/.installed
	$(BIN)/econsim bench

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
