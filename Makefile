# facegate — every developer and CI entry point. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Data directory for models and service state; override per run.
export FACEGATE_DATA_DIR ?= $(CURDIR)/.data
INSTALL_STAMP := $(VENV)/.installed

.PHONY: help install models proto proto-check lint test run bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(INSTALL_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cpu,dev]'
	touch $@

install: models ## Create the venv, install facegate and fetch the pinned models

# Idempotent and cheap once done (hash checks only); it also refreshes the manifest
# when the shipped calibration changed.
models: $(INSTALL_STAMP) ## Fetch and verify the pinned model files
	$(VENV)/bin/facegate models fetch

proto: $(INSTALL_STAMP) ## Regenerate the gRPC/protobuf stub package facegate/v1 from proto/
	$(PY) tools/genproto.py

proto-check: $(INSTALL_STAMP) ## Fail if the committed stubs differ from a fresh generation
	$(PY) tools/genproto.py --check

lint: $(INSTALL_STAMP) ## ruff (lint + format check) and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: models proto-check lint ## Set up if needed, then run lint, stub drift check and all tests
	$(VENV)/bin/pytest

run: models ## Set up if needed, then start the all-in-one service
	$(VENV)/bin/facegate serve

bench: models ## Run the benchmarks; writes bench/results/*.json and docs/benchmarks.md
	$(PY) -m pip install -q -e '.[cpu,dev,bench]'
	$(PY) -m pip install -q --no-deps face_recognition==1.3.0
	$(VENV)/bin/facegate models fetch --with-reference
	$(PY) -m bench

clean: ## Remove the venv and the local data directory
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
