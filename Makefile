# Payment reconciliation index — developer entry points. `make help` lists them.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/recon-target
RECON := $(CARGO_TARGET_DIR)/release/recon
DEMO_DIR ?= data/demo
DEMO_DATE ?= 2026-11-20
DEMO_TXNS ?= 100000
NEXTEST_PROFILE ?= default

.PHONY: help demo test lint fmt fmt-check clippy nextest build-cli generate-1m

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

build-cli: ## build the release `recon` binary
	cargo build --release -p recon-cli

demo: build-cli ## generate a business day under data/demo and show what it holds
	$(RECON) generate --out $(DEMO_DIR) --date $(DEMO_DATE) --transactions $(DEMO_TXNS) --force

test: fmt-check clippy nextest ## everything CI runs: format, lints, the whole test suite

fmt: ## format the code
	cargo fmt --all

fmt-check: ## check formatting
	cargo fmt --all --check

clippy: ## lints, warnings are errors
	cargo clippy --workspace --all-targets -- -D warnings

lint: fmt-check clippy ## format check and lints

nextest: ## run every test of the workspace
	cargo nextest run --workspace --profile $(NEXTEST_PROFILE)

generate-1m: build-cli ## time the generation of a 1,000,000-transaction day
	rm -rf /tmp/recon-1m && time $(RECON) generate --out /tmp/recon-1m --date $(DEMO_DATE) --transactions 1000000
