# The two commands of the README:
#   make demo   set up, then build the graph on the bundled sample
#   make test   set up, then lint and run the tests (what .ci/run calls)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup demo test lint ui bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "rwe_assets needs Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/rwe demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -n 2 -q

ui: setup
	$(BIN)/rwe ui

bench: setup
	$(BIN)/python bench/raw_ingest.py

clean:
	rm -rf data/landing data/lake data/warehouse .dagster_home
