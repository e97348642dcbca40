# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv with the system python3 if it is missing and are safe to re-run:
# the install step re-runs only when pyproject.toml changed (stamp files).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PACKAGES := billsync connectors mappings sync config sandbox

.PHONY: demo test lint typecheck pytest install install-dev clean bench bench-quick chaos chaos-ci

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

# Editable for development, so tests see the working tree.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev,postgres]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/billsync demo

lint: install-dev
	$(BIN)/ruff check $(PACKAGES) tests bench examples
	$(BIN)/ruff format --check $(PACKAGES) tests bench examples
	$(BIN)/lint-imports --no-cache

typecheck: install-dev
	$(BIN)/mypy billsync

# tests/reliability runs through `make chaos` (full) and its reduced CI step, not here.
pytest: install-dev
	$(BIN)/pytest --ignore=tests/reliability $(PYTEST_ARGS)

test: lint typecheck pytest

# Benchmarks against the sandbox (bench/README.md). `bench` records its figures in
# bench/RESULTS.md (~45 min); `bench-quick` is CI's smoke test: small sizes, nothing
# recorded, fails only on a crash or a wrong result (< 3 min). BENCH_ARGS adds options,
# e.g. `make bench BENCH_ARGS="--only 1"`.
bench: install-dev
	$(BIN)/python -m bench --record $(BENCH_ARGS)

bench-quick: install-dev
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

# The reliability suites at full size (tests/reliability: 50 SIGKILLs per ledger during a
# 500-deal sync, every vendor fault plan, hostile webhooks, the bad-data corpus, secret
# scans, fuzzing); prints the summary table at the end. PostgreSQL cases need
# BILLSYNC_TEST_POSTGRES_URL; BILLSYNC_CHAOS_SEED=N replays a run. Without
# BILLSYNC_CHAOS=full the same tests run at reduced sizes (a few minutes, for CI).
chaos: install-dev
	BILLSYNC_CHAOS=full $(BIN)/pytest tests/reliability -m reliability -p no:randomly -p no:cacheprovider -q $(PYTEST_ARGS)

# The same suites at reduced, seeded sizes: CI's step after `make test` (~5 min).
chaos-ci: install-dev
	$(BIN)/pytest tests/reliability -m reliability -p no:randomly -p no:cacheprovider -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
