# Two commands from a fresh clone: `make demo` and `make test`. Each creates the venv
# and installs what it needs first; stamp files skip installs that are up to date.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# SB3 needs PyTorch; this pin is a CPU build (no multi-GB CUDA download).
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: help install install-dev demo test test-fast lint format clean rig-start rig-stop

help:
	@echo "make demo       create .venv, install ddsp_gym, solve the Level-1 envs (writes demo_out/)"
	@echo "make test       install the dev extras, start the hardware rig, run the whole suite"
	@echo "make test-fast  the test suite without tests marked slow or hardware"
	@echo "make rig-start  install (Debian, as root) and start the software rig: JACK + amsynth + FluidSynth"
	@echo "make rig-stop   stop the software rig"
	@echo "make lint       ruff check and format check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev,sb3,hardware,plugin]" "$(TORCH_SPEC)"
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/ddsp-gym demo

# The hardware tests run on the software rig (ddsp_gym/backends/rig.py). Under CI a rig
# that does not start is an error; elsewhere its tests skip and say why.
rig-start: $(VENV)/.installed-dev
	@$(BIN)/python -m ddsp_gym.backends.rig start || { \
		if [ -n "$$CI" ]; then exit 1; fi; \
		echo "make: the software rig did not start; tests marked hardware will be skipped"; }

rig-stop: $(VENV)/.installed-dev
	$(BIN)/python -m ddsp_gym.backends.rig stop

# Two pytest runs: everything but the rig's tests on TEST_WORKERS processes (pytest-xdist;
# JAX compiles are mostly single-threaded, so two workers keep two cores busy), then the
# rig's tests alone (real-time audio takes want the CPU to themselves). The rig is
# stopped whatever the outcome; the exit status is the first failing run's.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-dev rig-start
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not hardware" $(PYTEST_ARGS); first=$$?; \
		$(BIN)/python -m pytest -m hardware $(PYTEST_ARGS); second=$$?; \
		$(MAKE) --no-print-directory rig-stop; \
		if [ $$first -ne 0 ]; then exit $$first; else exit $$second; fi

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow and not hardware" $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) demo_out .pytest_cache *.egg-info
