# rpdeploy: two commands matter, `make demo` and `make test`. Both create the
# virtual environment and bring up the local stack (Docker engine, registry,
# base image, package index) themselves, so they work on a fresh Debian 12 machine.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# Test processes for `make test` (pytest-xdist). Whole files go to one process (--dist loadfile),
# so a module's Docker fixtures (images, emulators) are built once. TEST_WORKERS=0: serial.
TEST_WORKERS ?= 3

.PHONY: demo test lint unit fuzz mutation venv stack-up stack-down stack-status bench bench-coldstart clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,emulator]'
	touch $@

venv: $(STAMP)

stack-up: venv
	scripts/stack.sh up

stack-down:
	scripts/stack.sh down

stack-status:
	scripts/stack.sh status

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check deploy tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/actionlint -shellcheck $(BIN)/shellcheck
	$(BIN)/zizmor --offline --no-progress --quiet .github
	$(BIN)/shellcheck scripts/*.sh

## demo: the main job, a full release of the reference worker against the local stack.
demo: stack-up
	scripts/demo.sh

## test: every test (lint, type check, import layers, unit, integration against real docker/registry/emulator).
test: stack-up lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)

## unit: the fast tests only (no Docker).
unit: venv
	$(BIN)/pytest -m 'not docker' $(PYTEST_ARGS)

## fuzz: the generated-input tests at length: schemathesis against the emulator (RunPod's REST v2
## spec) and config documents from the config's JSON schema. `make test` runs them bounded
## (15 examples, a new seed each run); here 300 examples; the seed is printed for replay:
## `make fuzz RPDEPLOY_FUZZ_SEED=<seed>`.
FUZZ_EXAMPLES ?= 300
fuzz: venv
	seed=$${RPDEPLOY_FUZZ_SEED:-$$(( RANDOM * 32768 + RANDOM ))}; echo "fuzz seed: $$seed"; \
	RPDEPLOY_FUZZ_SEED=$$seed RPDEPLOY_FUZZ_EXAMPLES=$${RPDEPLOY_FUZZ_EXAMPLES:-$(FUZZ_EXAMPLES)} $(BIN)/pytest -p no:cacheprovider \
	  tests/emulator/test_emulator_schemathesis.py tests/test_config_generated.py $(PYTEST_ARGS)

## mutation: mutation testing (mutmut) per package, fast tests only; too slow for `make test`.
## Scores and the equivalent mutants: docs/quality.md. MUTATION_PACKAGES=config render ... narrows it.
MUTATION_PACKAGES ?=
mutation: venv
	$(BIN)/python scripts/mutation.py $(MUTATION_PACKAGES)

bench: stack-up
	$(BIN)/python bench/build.py
	$(BIN)/python bench/emulator.py
	$(BIN)/python bench/validate.py

## bench-coldstart: cold starts, slim against baked, on warm and cold hosts (bench/coldstart.py ->
## bench/coldstart.json; about 30 min on a 2-core machine: it installs the worker's dependencies
## several times). COLDSTART_ARGS="--runs 5", "--skip-heavy" or "--only 1,2,3,cold" adjusts it.
COLDSTART_ARGS ?=
bench-coldstart: stack-up
	$(BIN)/python bench/coldstart.py $(COLDSTART_ARGS)

clean:
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache
