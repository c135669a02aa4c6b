# The commands of the README (each works from a plain shell: make calls the venv's tools by path):
#   make demo   set up, then build the graph on the bundled samples and a generated population
#   make ui     the Dagster UI with the sensors on (http://127.0.0.1:3000)
#   make test   set up, then lint and run the tests (what .ci/run calls)
# Data lives in data/ (RWE_DATA_DIR), Dagster's runs in data/dagster_home (DAGSTER_HOME): both set by
# the `rwe` command, so make exports nothing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_PERSONS ?= 2000
UI_PORT ?= 3000

.PHONY: setup demo init test lint ui sql bench clean reset vocab

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "rwe_assets needs Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@# pyspark needs a Java runtime: in CI (CI set, not 0/false/no, as the Spark tests' conftest reads
	@# it) a root user installs Debian's when the machine has none
	@command -v java >/dev/null || case "$$(echo "$$CI" | tr A-Z a-z)" in ""|0|false|no) ;; *) \
		[ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null || true ;; esac
	@command -v java >/dev/null || echo "make setup: no Java runtime: the Spark engine's tests skip here and fail in CI (CI=true); install Java 17, e.g. apt-get install openjdk-17-jre-headless"
	touch $@

demo: setup
	$(BIN)/rwe demo --persons $(DEMO_PERSONS)

# a secret linkage key for your own data, in data/rwe.env (mode 0600); once
init: setup
	$(BIN)/rwe init

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -n 2 --dist worksteal -q

ui: setup
	$(BIN)/rwe ui --port $(UI_PORT)

# the published CDM, read-only, in the DuckDB shell installed with the project
sql: setup
	$(BIN)/rwe sql

bench: setup
	$(BIN)/python bench/raw_ingest.py

# maintainers only: rebuild the bundled vocabulary subset in vocab/ from OHDSI vocabulary shards and the
# sample folders (not in the repository; vocab/README.md says how it was built)
VOCAB_SHARED ?= ../shared/data
vocab: setup
	$(BIN)/python -m tools.vocabulary.vocab_subset --shards $(VOCAB_SHARED)/vocab_sources --out vocab \
		--samples $(VOCAB_SHARED)/synthea27 --samples $(VOCAB_SHARED)/fhir_bulk_synthea13 \
		--samples $(VOCAB_SHARED)/synpuf_sample --license $(VOCAB_SHARED)/vocab_sources/eunomia_synthea27nj/LICENSE

# what the demo landed and everything built; batches you landed stay in data/landing
clean:
	@if [ -x $(BIN)/rwe ]; then $(BIN)/rwe clean; \
	else rm -rf data/lake data/warehouse data/dagster_home data/truth; fi
	rm -rf .dagster_home

# everything under data/ but the bundled sample and your configuration (data/rwe.env, data/sources.yaml)
reset:
	@if [ -x $(BIN)/rwe ]; then $(BIN)/rwe clean --all; \
	else rm -rf data/landing data/lake data/warehouse data/dagster_home data/truth data/.generating; fi
	rm -rf .dagster_home
