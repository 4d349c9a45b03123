# Two commands from a fresh clone: `make demo` and `make test`. Each creates the venv
# and installs what it needs first; stamp files skip installs that are up to date.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# SB3 needs PyTorch; this pin is a CPU build (no multi-GB CUDA download).
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: help install install-dev demo test test-fast lint format clean

help:
	@echo "make demo       create .venv, install ddsp_gym, solve the Level-1 envs (writes demo_out/)"
	@echo "make test       install the dev extras and run the whole test suite"
	@echo "make test-fast  the test suite without tests marked slow"
	@echo "make lint       ruff check and format check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev,sb3]" "$(TORCH_SPEC)"
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/ddsp-gym demo

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) demo_out .pytest_cache *.egg-info
