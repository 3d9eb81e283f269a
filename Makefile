# cardrag: `make serve` sets everything up and serves; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# The CPU build of torch lies in pip's find-links folder on these machines. uv does not read
# pip's configuration, so the folder is handed over explicitly; without it uv would resolve
# torch from PyPI and pull a CUDA build of several GB.
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
FIND_LINKS_ARGS := $(foreach dir,$(FIND_LINKS),--find-links $(dir))
# uv installs no bytecode by default, and where PYTHONDONTWRITEBYTECODE is set (these
# machines set it) Python then compiles llama-index, chromadb and the rest at every start:
# 12.5 s to import the app and test fixtures, 6.2 s with bytecode. --compile-bytecode
# writes the .pyc files once.
# llama-cpp-python ships as source. A native build targets the build machine's newest
# instructions (AMX here) and segfaults elsewhere, so it is built portable.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
MODEL ?= qwen2.5-coder-1.5b-instruct
TEST_MODEL := qwen2.5-coder-0.5b-instruct

.PHONY: install models test-models browser ingest serve test test-slow eval lint bench bench-install clean

install: $(VENV)/.installed models

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/uv pip install --python $(BIN)/python \
		--compile-bytecode $(FIND_LINKS_ARGS) -e '.[dev]'
	touch $@

models: $(VENV)/.installed
	$(BIN)/cardrag models fetch $(MODEL)
	$(BIN)/cardrag models encoder

test-models: $(VENV)/.installed
	$(BIN)/cardrag models fetch $(TEST_MODEL)
	$(BIN)/cardrag models encoder

ingest: install
	$(BIN)/cardrag ingest

# The bundled 1.5B model on 2 cores needs more than the 30 s default for a long answer
# (README, degraded mode); an explicit setting still wins.
serve: ingest
	CARDRAG_LLM__TIMEOUT=$${CARDRAG_LLM__TIMEOUT:-60} $(BIN)/cardrag serve

# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
# Installing it needs root, as on CI; elsewhere sudo is used when there is one.
APT := $(if $(filter 0,$(shell id -u)),,sudo )env DEBIAN_FRONTEND=noninteractive apt-get
browser:
	command -v chromium >/dev/null || ($(APT) update && $(APT) install -y chromium)

# The default tier on TEST_WORKERS pytest-xdist workers (one per core here). The slow tier
# stays on one: each of its tests keeps both cores busy with the real LLM.
TEST_WORKERS ?= 2
test: install test-models browser
	$(BIN)/pytest -n $(TEST_WORKERS)

test-slow: install test-models
	$(BIN)/pytest -m slow

eval: ingest
	$(BIN)/cardrag eval --calibrate

# Ingestion and search at 1k / 10k cards (real encoder at 1k, hashing-fake card vectors to
# index 10k quickly; queries always use the encoder), vs the naive LlamaIndex pipeline;
# answers vs raw llama.cpp (it ingests the shipped corpus into /tmp/cardrag-bench, which the
# scale-out run copies, so it comes first); the scale-out deployment; docs/BENCHMARKS.md.
# About an hour.
bench: install
	$(BIN)/python -m bench.scale --sizes 1000 --vectors encoder --skip-search
	$(BIN)/python -m bench.scale --sizes 1000 10000 --vectors hashing
	$(BIN)/python -m bench.answer_latency
	$(BIN)/python -m bench.serving_memory
	$(BIN)/python -m bench.scale_out
	$(BIN)/python -m bench.search_latency
	$(BIN)/python -m bench.probe_cost

# make install from nothing in a fresh clone (15 min or more).
bench-install: install
	$(BIN)/python -m bench.install_time

lint: $(VENV)/.installed
	$(BIN)/ruff check rag api ingest evals tests bench

clean:
	rm -rf $(VENV) data
