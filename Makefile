# Set-up: `make install` (the default experiment's needs, about a minute on a warm pip cache), then
# `make install-all` for every family, the tests and the docs (builds llama-cpp-python and
# fast-downward from source on a cold cache).
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip

.PHONY: install install-all test test-fast lint docs clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=24"

install: $(VENV)/bin/python
	$(PIP) install -e ".[quickstart]"

install-all: $(VENV)/bin/python
	# The venv first on PATH: fast-downward-textworld (alfworld) builds from source with `python build.py`.
	PATH=$(abspath $(VENV))/bin:$$PATH $(PIP) install -e ".[all]"

test:
	$(VENV)/bin/pytest

test-fast:
	$(VENV)/bin/pytest -m "not slow"

lint:
	$(VENV)/bin/ruff check rewardlab tests benchmarks scripts

docs:
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) site *.egg-info .pytest_cache .ruff_cache
