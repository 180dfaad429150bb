# The two commands: `make run` (set up, then run the pipeline on data/) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run quick test test-all test-fast lint format

setup:
	@./bootstrap.sh

run: setup
	$(PY) pipeline/local_runner.py

quick: setup
	$(PY) pipeline/local_runner.py --quick

# The same steps, each target its own tests: `make test` all but the slow end-to-end proofs;
# `make test-all` everything, the slow ones too (the production loop slice, the whole compiled KFP
# DAG, the portable Beam runner, four more bad spans: about 8-9 minutes more here); `make test-fast`
# no end-to-end pipeline runs at all.
test: MARKERS := -m "not slow"
test-fast: MARKERS := -m "not e2e"
test test-all test-fast:
	@./bootstrap.sh --browser
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest tests $(MARKERS)

# The formatter and the linter (ruff.toml); `make format` rewrites the tree in ruff's style.
lint:
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
