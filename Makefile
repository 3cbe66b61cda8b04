# Entry points of Hookline. Every target sets up what it needs first:
# a .venv with the pinned dependencies and the Kafka broker's jars.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: setup kafka-jars run up down test bench lint format clean

setup: $(STAMP) kafka-jars

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# Fetches the broker's jars with Maven once; later runs only check a marker.
kafka-jars: $(STAMP)
	$(BIN)/python -m hookline.broker fetch

## run: the whole pipeline in the foreground until Ctrl-C
run: setup
	$(BIN)/hookline run

## up / down: the same in the background, and a clean stop
up: setup
	$(BIN)/hookline up

down:
	@if [ -x $(BIN)/hookline ]; then $(BIN)/hookline down; else echo "nothing to stop"; fi

## test: the whole suite against a real broker and the embedded ClickHouse engine
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: the benchmark suite, about 10 minutes on 2 cores; results in bench/results/
## (needs wrk and Node.js: apt-get install -y wrk nodejs npm; see docs/benchmarks.md)
bench: setup
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint:
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: down
	rm -rf data
