# Set-up is part of every target: a fresh Debian/Ubuntu clone needs only `make demo` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := engines,gpu,serve,load,quality,speaker,store,dev
# torch's CPU wheel (on the local disk here); a bare torch requirement would pull a CUDA build
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: setup demo test unit lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-system.sh
	PYTHON=$(PYTHON) bash scripts/setup-system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c 'import torch' 2>/dev/null || $(BIN)/python -m pip install --quiet --disable-pip-version-check '$(TORCH)'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

demo: $(STAMP)
	$(BIN)/voxbench run

test: $(STAMP)
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/loadgen.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
