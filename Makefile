# One-command set-up: a virtualenv in .venv with everything (`make install`), then `make test`.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip

.PHONY: install test test-fast lint clean

install:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=24"
	# The venv first on PATH: fast-downward-textworld (alfworld) builds from source with `python build.py`.
	PATH=$(abspath $(VENV))/bin:$$PATH $(PIP) install -e ".[all]"

test:
	$(VENV)/bin/pytest

test-fast:
	$(VENV)/bin/pytest -m "not slow"

lint:
	$(VENV)/bin/ruff check rewardlab tests benchmarks scripts

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
