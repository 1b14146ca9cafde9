# The two commands of the README, and the contributor's fast loop.
#   make run    install edgebench with its Hugging Face extra into .venv (and torch for this machine
#               where none is installed), then `edgebench run`
#   make test   install with the test extras into .venv (a CPU torch where none is installed), then run
#               the test suite
#               then `make test-oldest`
#   make test-oldest  the cheap subset (decode correctness, preset builds) on the oldest transformers
#               that pyproject allows, in .venv-oldest
#   make dev    editable install reusing build/ (fast rebuild of the native probe after a C++ change)
#   make lint   install ruff into .venv and check src tests bench tools ([tool.ruff] in pyproject.toml);
#               `make test` runs it first
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# edgebench names no torch: pip never replaces the one that is here. A torch that $(PY) already imports
# (NVIDIA's JetPack build, a CUDA build) is kept: the venv then sees the system's packages.
VENV_FLAGS ?= $(shell $(PY) -c 'import torch' >/dev/null 2>&1 && echo --system-site-packages)
HAS_TORCH = $(BIN)/python -c 'import torch' >/dev/null 2>&1
# The tests' torch where none is installed: the CPU build from PyTorch's CPU index (no multi-GB CUDA
# download); where that index cannot be reached, from the configured index (here a local CPU wheel).
TORCH ?= torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TEST_TORCH = $(HAS_TORCH) || \
	if $(BIN)/python -c "import urllib.request as u; u.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=10)" >/dev/null 2>&1; \
	then $(BIN)/python -m pip install -q --index-url $(TORCH_CPU_INDEX) $(TORCH); \
	else echo "$(TORCH_CPU_INDEX) unreachable: $(TORCH) from the configured index"; $(BIN)/python -m pip install -q $(TORCH); fi

$(BIN)/python:
	$(PY) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The linter, pinned: a newer ruff may add rules to the selected groups.
RUFF ?= ruff==0.17.6

.PHONY: run test test-oldest dev chromium lint
run: $(BIN)/python
	$(BIN)/python -m pip install -q '.[hf,nvml,report]'
	@# torch where none is installed: the build `stack --install-torch` picks for this machine; where its
	@# index cannot be reached (a machine that reaches only PyPI), $(TORCH) from the configured index.
	$(HAS_TORCH) || $(BIN)/python -m edgebench.telemetry.stack --install-torch || \
	  { echo "falling back to $(TORCH) from the configured index"; $(BIN)/python -m pip install -q $(TORCH); }
	$(BIN)/edgebench run

lint: $(BIN)/python
	$(BIN)/python -m pip install -q '$(RUFF)'
	$(BIN)/python -m ruff check src tests bench tools

test: $(BIN)/python chromium lint
	$(TEST_TORCH)
	$(BIN)/python -m pip install -q '.[hf,nvml,report,test]'
	$(BIN)/python -m pytest
	$(MAKE) test-oldest

dev: $(BIN)/python
	$(TEST_TORCH)
	$(BIN)/python -m pip install -q scikit-build-core pybind11 ninja '.[hf,nvml,report,test]'
	$(BIN)/python -m pip install -q --no-build-isolation -e .

# The HTML report test renders the page in headless Chromium; without it that one test skips.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: the HTML rendering test will be skipped"; }

# The supported transformers range is the tested one: the floor comes from pyproject's hf extra.
OLDEST ?= .venv-oldest
TF_FLOOR := $(shell sed -n 's/^hf = .*"transformers>=\([0-9.]*\)".*/\1/p' pyproject.toml)
OLDEST_TESTS := tests/test_decode_correctness.py tests/test_catalog.py
$(OLDEST)/bin/python:
	$(PY) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q --upgrade pip

test-oldest: $(OLDEST)/bin/python
	@test -n "$(TF_FLOOR)" || { echo "no transformers floor found in pyproject.toml's hf extra"; exit 2; }
	$(OLDEST)/bin/python -m pip install -q $(TORCH) 'transformers==$(TF_FLOOR)' '.[hf,test]'
	$(OLDEST)/bin/python -m pytest -q $(OLDEST_TESTS)
