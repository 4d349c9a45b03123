# Two commands from a fresh clone: `make demo` and `make test`. Each creates the venv
# and installs what it needs first; stamp files skip installs that are up to date.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The ray extra's own venv: Ray pins Gymnasium (ray 2.60: gymnasium 1.2.2, below ours).
VENV_RAY ?= .venv-ray
# SB3 needs PyTorch; this pin is a CPU build (no multi-GB CUDA download).
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: help install install-dev install-ray demo test test-fast test-ray lint format clean \
	rig-start rig-stop debian-deps

help:
	@echo "make demo       create .venv, install ddsp_gym, solve the Level-1 envs (writes demo_out/)"
	@echo "make test       install the dev extras, start the hardware rig, run the whole suite"
	@echo "make test-fast  the test suite without tests marked slow or hardware"
	@echo "make test-ray   create .venv-ray (the ray extra) and run the Ray tests there"
	@echo "make rig-start  install (Debian, as root) and start the software rig: JACK + amsynth + FluidSynth"
	@echo "make rig-stop   stop the software rig"
	@echo "make debian-deps  install (Debian, as root) chromium, sox and espeak-ng for the tests"
	@echo "make lint       ruff check and format check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev,sb3,hardware,plugin,physiology,web,evalset,explore,embedding,posterior]" "$(TORCH_SPEC)"
	# The embedding models (ddsp_gym.embedding) ship their weights in these wheels, but
	# their metadata pins numpy 1.23 / librosa 0.9: --no-deps keeps our numpy; what they
	# import comes with the embedding extra. webrtcvad-wheels is resemblyzer's VAD, built.
	$(BIN)/pip install -q --no-deps aisfx==0.1.2 resemblyzer==0.1.4 webrtcvad-wheels==2.0.14.post1
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Ray and its Gymnasium pin stay out of .venv: the ray extra gets .venv-ray, with the
# same torch pin, the package (editable) and pytest. `make test` builds it and runs the
# Ray tests there; DDSP_GYM_RAY_TESTS=1 makes a Ray that does not import fail them
# instead of skipping (in .venv they skip, saying where they run).
$(VENV_RAY)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_RAY)
	$(VENV_RAY)/bin/pip install -q "$(TORCH_SPEC)"
	$(VENV_RAY)/bin/pip install -q -e ".[ray]" "pytest>=7" "$(TORCH_SPEC)"
	@touch $@

install-ray: $(VENV_RAY)/.installed

RAY_TESTS ?= tests/test_ray.py tests/test_ray_params.py
test-ray: $(VENV_RAY)/.installed
	DDSP_GYM_RAY_TESTS=1 $(VENV_RAY)/bin/python -m pytest $(RAY_TESTS) $(PYTEST_ARGS)

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

# Debian programs the tests drive: chromium (the prefer page's browser test, driven by
# Playwright's Python package: no browser download), sox and espeak-ng (`bench match`'s
# evaluation set; FluidSynth comes with the rig). Installed as root with apt-get; under
# CI a program that cannot be installed is an error, elsewhere its tests skip.
DEBIAN_TEST_PACKAGES ?= chromium sox espeak-ng
DEBIAN_TEST_PROGRAMS ?= /usr/bin/chromium /usr/bin/sox /usr/bin/espeak-ng
debian-deps:
	@missing=""; for p in $(DEBIAN_TEST_PROGRAMS); do [ -x $$p ] || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "make: installing $(DEBIAN_TEST_PACKAGES) (Debian) for the tests"; \
			{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
				$(DEBIAN_TEST_PACKAGES); } || \
			{ if [ -n "$$CI" ]; then exit 1; fi; \
				echo "make: they did not install; the tests that need them will be skipped"; }; \
		elif [ -n "$$CI" ]; then \
			echo "make: missing$$missing: apt-get install $(DEBIAN_TEST_PACKAGES) (as root)"; exit 1; \
		else echo "make: missing$$missing (apt-get install $(DEBIAN_TEST_PACKAGES), as root);" \
			"the tests that need them will be skipped"; fi; \
	fi

# Three pytest runs: everything but the rig's tests on TEST_WORKERS processes (pytest-xdist;
# JAX compiles are mostly single-threaded, so two workers keep two cores busy), then the
# rig's tests alone (real-time audio takes want the CPU to themselves), then, the rig
# stopped, the Ray tests in .venv-ray (a local Ray of two CPUs). The rig is stopped
# whatever the outcome; the exit status is the first failing run's.
TEST_WORKERS ?= 2
# A test whose xdist worker crashed gets one more run (pytest-rerunfailures); a failed
# assertion is never rerun (--only-rerun matches no assertion). XLA (jaxlib 0.10, CPU) can
# crash a worker natively while it (de)serializes an executable for JAX's persistent
# compilation cache, in any test: a native crash, not the test's logic.
RERUN_CRASHED ?= --reruns 1 --only-rerun "crashed while running"
# The slowest tests are listed at the end of each run, to keep the suite's time in view.
DURATIONS ?= --durations=25
test: $(VENV)/.installed-dev $(VENV_RAY)/.installed debian-deps rig-start
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not hardware" $(RERUN_CRASHED) $(DURATIONS) $(PYTEST_ARGS); first=$$?; \
		$(BIN)/python -m pytest -m hardware $(DURATIONS) $(PYTEST_ARGS); second=$$?; \
		$(MAKE) --no-print-directory rig-stop; \
		$(MAKE) --no-print-directory test-ray; third=$$?; \
		for status in $$first $$second $$third; do \
			if [ $$status -ne 0 ]; then exit $$status; fi; done

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow and not hardware" $(RERUN_CRASHED) $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(VENV_RAY) demo_out .pytest_cache *.egg-info
