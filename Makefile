# s3ta-tf: `make demo` and `make test` each create .venv from the pinned requirements when missing.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=
# Test workers (pytest-xdist): one per core, at most 4 (each holds a TensorFlow of ~1 GiB);
# `make test JOBS=1` runs in one process. Each test file stays on one worker (--dist loadfile):
# some files share one running service across their tests.
JOBS    ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
XDIST   := $(if $(filter-out 1,$(JOBS)),-n $(JOBS) --dist loadfile,)

.PHONY: venv system-packages demo test test-fast bench freeze clean

$(STAMP): requirements.txt requirements-dev.txt setup.cfg pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found (Reverb needs Python 3.11); set PY=/path/to/python3.11"; exit 2; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

## demo: train the small attention agent on MiniGrid with the embedded default (s3ta train, no flags)
demo: venv
	$(BIN)/s3ta train

## system-packages: what the tests need beyond Python (headless Chromium), installed when missing
## (as root with apt-get; otherwise named in one line)
system-packages:
	@.ci/system-packages

## test: the whole suite (real Reverb, ALE, TFDS builders; about 12 min on 2 cores)
test: venv system-packages
	$(BIN)/python -m pytest -q $(XDIST) $(PYTEST_ARGS)

## test-fast: everything not marked slow (no training runs, populations, Docker or full Atari episodes)
test-fast: venv system-packages
	$(BIN)/python -m pytest -q -m "not slow" $(XDIST) $(PYTEST_ARGS)

## bench: all benchmarks, JSON under bench/results/
bench: venv
	$(BIN)/s3ta bench model
	$(BIN)/s3ta bench analysis
	$(BIN)/s3ta bench classify
	$(BIN)/s3ta bench e2e
	$(BIN)/s3ta bench pbt

## freeze: pin the environment in two sets: requirements.txt (runtime: setup.cfg's install_requires and
## their dependencies; the image installs only these) and requirements-dev.txt (tests, on top)
freeze: venv
	$(BIN)/python docker/split_requirements.py

clean:
	rm -rf $(VENV) build *.egg-info
