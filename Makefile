# The two commands: `make run` (set up, then run the pipeline on data/) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run quick test test-fast

setup:
	@./bootstrap.sh

run: setup
	$(PY) pipeline/local_runner.py

quick: setup
	$(PY) pipeline/local_runner.py --quick

test:
	@./bootstrap.sh --browser
	$(PY) -m pytest tests

test-fast:
	@./bootstrap.sh --browser
	$(PY) -m pytest tests -m "not e2e"
