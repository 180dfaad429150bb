# The two commands: `make run` (set up, then run the pipeline on data/) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run quick test test-fast lint format clean

setup:
	@./bootstrap.sh

run: setup
	$(PY) pipeline/local_runner.py

quick: setup
	$(PY) pipeline/local_runner.py --quick

# `make test` runs every test, the end-to-end proofs included (the CI command); `make test-fast`
# leaves out the end-to-end pipeline runs (-m "not e2e"), for the inner loop. Three pytest workers
# (pytest-xdist) on two cores, each taking whole files, so a file's module fixtures are built once:
# much of a test's time is one Python thread (Beam, a server, a subprocess) or a wait, and with two
# workers the cores sat idle part of the time (docs/PERFORMANCE.md, The test suite).
# Files go out in collection order, which puts the end-to-end modules first (tests/conftest.py;
# xdist's own order, most tests first, left the longest runs to the end). TEST_WORKERS=0 runs in
# this process.
test: MARKERS :=
test-fast: MARKERS := -m "not e2e"
TEST_WORKERS ?= 3
test test-fast:
	@./bootstrap.sh --browser
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest tests $(MARKERS) -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=30

# The formatter and the linter (ruff.toml); `make format` rewrites the tree in ruff's style.
lint:
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Deletes what runs and benchmarks wrote; keeps .venv/, data/ and the labels in data/feedback/.
clean:
	rm -rf outputs serving_model benchmarks/results
