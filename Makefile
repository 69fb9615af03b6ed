# The two commands that matter: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LISTEN ?= 127.0.0.1:8080
STATE ?= state

.PHONY: demo test lint format typecheck system-deps system-test bench clean

$(STAMP): pyproject.toml scripts/bootstrap-venv
	@PYTHON=$(PYTHON) VENV=$(VENV) sh scripts/bootstrap-venv
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m appliance serve --target demo --listen $(LISTEN) --state-dir $(STATE)

test: $(STAMP) system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

system-deps:
	@sh scripts/system-deps

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/hid.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
