# The two commands that matter: `make demo` and `make test`. Both create or update the
# virtual environment in .venv first, so a fresh machine with Python 3.11 needs nothing else.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# What `make demo` and `make serve` keep (databases, checkpoints) goes under out/, which
# `make clean` removes; run by hand, wattroute keeps it in ~/.local/state/wattroute.
STATE := $(CURDIR)/out/state
# `make test` runs the suite on this many processes (pytest-xdist). Two: the reference
# machine has two cores, and every process starts its own PostgreSQL server and, if it draws
# a Ray test, its own emulated Ray cluster (on loopback, each stopping only what it started);
# the system tests start servers and workers of their own. Work stealing balances the two
# (6 min 21 s of tests on one process took 4 min 19-34 s on two; keeping the Ray tests on one
# process, which saves a cluster's start, took 4 min 51 s: the load was uneven).
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist worksteal

.PHONY: demo serve test test-core test-slow lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	WATTROUTE_STATE_DIR=$(STATE) $(BIN)/wattroute demo

serve: $(STAMP)
	WATTROUTE_STATE_DIR=$(STATE) $(BIN)/wattroute serve

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	scripts/ensure-postgres
	scripts/ensure-chromium
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL)

test: lint typecheck unit

# The core alone, in about two minutes: no servers, subprocesses, PostgreSQL or Ray (marked system).
test-core: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL) -m "not system and not slow"

# System tests of ten seconds or more (the narrated demo end to end, kill -9 under load, the
# example scripts, the integer-aware bound); CI runs them too.
test-slow: $(STAMP)
	scripts/ensure-postgres
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m benchmarks.sim_speed --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.scale --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.replan_speed --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.policies --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.deadlines --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.stress_weeks --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.fleet_service --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.sweep --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.api_load --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.live_tick --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.grid_event --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.reliability --write docs/benchmarks.md

# Everything the targets above make: the environment, results and state under out/, caches,
# the package metadata of the editable install.
clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis \
		src/wattroute.egg-info build dist
	find src tests benchmarks examples -name __pycache__ -type d -prune -exec rm -rf {} +
