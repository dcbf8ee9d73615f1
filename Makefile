# Quick start: `make run` (demo) and `make test` (test suite). Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt

.PHONY: run app test test-fast screenshots lint bench clean

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

# The workbench (Streamlit) on http://127.0.0.1:8501, reachable from this machine only;
# ECONSIM_RUNS=folder picks the runs folder. To serve it on another address on purpose:
# make app APP_ADDRESS=0.0.0.0 (see README: Workbench).
APP_ADDRESS ?= 127.0.0.1
APP_PORT ?= 8501
app: $(VENV)/.installed
	$(BIN)/streamlit run app.py --server.address $(APP_ADDRESS) --server.port $(APP_PORT)

# Debian's Chromium for the browser test (tests/test_browser.py); if it cannot be installed
# (no root, no apt), that one test is skipped with the reason.
$(VENV)/.browser: | $(BIN)/python
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "note: chromium could not be installed; the browser test will be skipped"
	@if command -v chromium >/dev/null 2>&1; then touch $@; fi

# Every test; `make test-fast` leaves out those marked slow (process pools, kill -9 and
# resume, the browser, a fresh venv with the built wheel). Tests never change tracked files.
# pytest-xdist spreads the test files over the cores (at most 4 workers; one file stays on
# one worker, so its module fixtures are built once); the 20 slowest test phases
# (setup, call, teardown) are listed.
PYTEST := $(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadfile --durations 20
test: $(VENV)/.installed-dev $(VENV)/.browser
	$(BIN)/ruff check econsim learners mechanisms tests benchmarks app.py
	$(PYTEST)

test-fast: $(VENV)/.installed-dev
	$(BIN)/ruff check econsim learners mechanisms tests benchmarks app.py
	$(PYTEST) -m "not slow"

# Refresh the app screenshots in docs/ on purpose (the browser test writes them to a
# temporary folder otherwise).
screenshots: $(VENV)/.installed-dev $(VENV)/.browser
	ECONSIM_SCREENSHOTS=docs $(BIN)/python -m pytest -rs tests/test_browser.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check econsim learners mechanisms tests benchmarks app.py

bench: $(VENV)/.installed
	$(BIN)/econsim bench

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
