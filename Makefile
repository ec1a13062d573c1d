# tracescan — every target bootstraps what it needs (Debian packages, venv, Python deps).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SRC := agent drivers hardware_sim

.PHONY: demo test lint format bench system-deps venv clean

demo: system-deps $(STAMP)
	$(PY) -m hardware_sim demo

test: system-deps $(STAMP) lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check $(SRC) tests $(wildcard bench)
	$(VENV)/bin/ruff format --check $(SRC) tests $(wildcard bench)
	$(VENV)/bin/mypy --strict $(SRC)

format: $(STAMP)
	$(VENV)/bin/ruff format $(SRC) tests $(wildcard bench)
	$(VENV)/bin/ruff check --fix $(SRC) tests $(wildcard bench)

bench: system-deps $(STAMP)
	$(PY) -m bench

system-deps:
	@scripts/ensure-system-deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
