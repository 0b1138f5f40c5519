# voxmesh: `make run` starts the local stack, `make test` runs the whole suite.
# Both set up .venv first (idempotent: the stamp file is rebuilt only when pyproject.toml changes).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.voxmesh-installed
# the 54 Kokoro v1.0 voices (npm kokoro-js@1.2.1), checked and converted once (engines/kokoro_voices.py)
VOICES := $(VENV)/share/voxmesh/kokoro-v1.0/voices.npz
# llama.cpp builds from source; the default flags crash on this CPU family (DESIGN.md).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
PORT ?= 8080

.PHONY: setup system-deps run test test-fast lint bench clean

setup: $(STAMP) $(VOICES)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $@

$(VOICES): $(STAMP) src/voxmesh/engines/data/kokoro_v1_voices.sha256
	$(PY) -m voxmesh.engines.kokoro_voices

run: setup
	$(VENV)/bin/voxmesh up --port $(PORT)

# Debian packages the tests use (packages.apt): installed once, only those missing.
system-deps:
	@pkgs=$$(grep -v '^\s*#' packages.apt | sed "s/#.*//" | xargs -r -n1 | while read p; do dpkg -s "$$p" >/dev/null 2>&1 || echo "$$p"; done); \
	if [ -n "$$pkgs" ]; then echo "apt-get install $$pkgs"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs) >/dev/null; fi

test: setup system-deps
	$(VENV)/bin/pytest -q -p no:cacheprovider

test-fast: setup
	$(VENV)/bin/pytest -q -m "not slow" tests/unit

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .voxmesh build *.egg-info
