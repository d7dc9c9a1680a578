# Payment reconciliation index — developer entry points. `make help` lists them.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/recon-target
RECON := $(CARGO_TARGET_DIR)/release/recon
DEMO_DIR ?= data/demo
DEMO_DATE ?= 2026-11-16
# Four weeks: the anomaly flags and the forecast judge a day against two weeks of history.
DEMO_DAYS ?= 28
DEMO_TXNS ?= 25000
DEMO_LAST = $$(date -u -d "$(DEMO_DATE) + $$(($(DEMO_DAYS) - 1)) days" +%F)
NEXTEST_PROFILE ?= default
# Infrastructure tooling (cfn-lint, cargo-lambda, zig): one venv outside the clone.
RECON_VENV ?= $(HOME)/.cache/recon-venv
CARGO_LAMBDA_VERSION := 1.9.2
ZIGLANG_VERSION := 0.14.1
FUNCTIONS := $(notdir $(wildcard functions/*))
# The template deploys arm64 (Graviton). `make build LAMBDA_ARCH=--x86-64` checks the build on a
# machine without the aarch64 standard library (this one); template.yaml must then say x86_64.
LAMBDA_ARCH ?= --arm64

.PHONY: help demo test test-aws lint fmt fmt-check clippy nextest build-cli generate-1m bench lint-infra build deploy

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

build-cli: ## build the release `recon` binary (with the Kafka client: recon publish / recon stream)
	cargo build --release -p recon-cli --features kafka

demo: build-cli ## generate four weeks of one world (with a few injected anomalies), run the pipeline, close the days in order, score every close and flag, print the last report's path
	$(RECON) generate --out $(DEMO_DIR) --date $(DEMO_DATE) --days $(DEMO_DAYS) --transactions $(DEMO_TXNS) --mix anomalies=0.05 --force
	@# Exit 3 is "finished, something needs attention": the world has a bank that misses a delivery.
	$(RECON) run --data $(DEMO_DIR) --date $(DEMO_DATE) --through $(DEMO_LAST) || [ $$? -eq 3 ]
	$(RECON) accuracy --data $(DEMO_DIR)
	@echo "report of the last close (open it in a browser): $$(realpath $(DEMO_DIR))/reports/business_date=$(DEMO_LAST)/report.html"

test: fmt-check clippy lint-infra nextest api-contract ## everything CI runs: format, lints, the whole test suite, the API contract

fmt: ## format the code
	cargo fmt --all

fmt-check: ## check formatting
	cargo fmt --all --check

clippy: ## lints, warnings are errors (every feature: the AWS adapters and `recon ops` too)
	cargo clippy --workspace --all-targets --all-features -- -D warnings

lint: fmt-check clippy ## format check and lints

nextest: ## run every test of the workspace: the AWS adapter tests against a moto server, the Spark job's in a local Spark, the report's in headless Chromium, Kafka's against tansu brokers
	bash scripts/with-kafka.sh bash scripts/with-chromium.sh bash scripts/with-spark.sh bash scripts/with-moto.sh cargo nextest run --workspace --all-features --profile $(NEXTEST_PROFILE)

api-contract: ## the query API (recon serve) against docs/openapi.yaml with schemathesis (pinned, installed on first use)
	cargo build --workspace --all-features --bin recon
	RECON_BIN=$(CARGO_TARGET_DIR)/debug/recon bash scripts/api-contract.sh

test-aws: ## only the AWS adapter tests (moto on 127.0.0.1; scripts/with-moto.sh)
	bash scripts/with-moto.sh cargo nextest run --workspace --all-features --profile $(NEXTEST_PROFILE) \
	  -E 'binary(contract) | binary(aws_retry) | binary(aws) | test(/dynamodb|s3_|glue|aws|moto/)'

BENCH_DIR ?= /tmp/recon-bench
BENCH_VENV ?= $(HOME)/.cache/recon-bench-venv
# The 10 000 000-line partition (with its carried items) peaks at 9.0 GB (measured here; 19.7 GB before the columnar engine).
BENCH_LINES ?= 1000000 10000000

bench: build-cli ## throughput: normalizer per format, the stream through a Kafka broker, reconciliation 1M/10M lines vs DuckDB, the Spark job on them, break actions over HTTP, the report in Chromium
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -c 'import duckdb' 2>/dev/null || $(BENCH_VENV)/bin/pip install -q 'duckdb==2.0.1'
	test -f $(BENCH_DIR)/day/truth/summary.json || $(RECON) generate --out $(BENCH_DIR)/day --date $(DEMO_DATE) --transactions 1000000 --force
	$(RECON) bench normalize --data $(BENCH_DIR)/day --date $(DEMO_DATE)
	@# A 100 000-payment day through a Kafka-protocol broker (a fresh tansu on 127.0.0.1):
	@# publish, consume and index, beside the in-process indexer; the index equals the replay's.
	test -f $(BENCH_DIR)/kafka100k/truth/summary.json || $(RECON) generate --out $(BENCH_DIR)/kafka100k --date $(DEMO_DATE) --transactions 100000 --force >/dev/null
	bash scripts/with-kafka.sh bash -c '$(RECON) bench kafka --data $(BENCH_DIR)/kafka100k --brokers "$$RECON_TEST_KAFKA_BROKERS" --broker-pid "$$RECON_TEST_KAFKA_PID"'
	$(RECON) bench reconcile $(foreach n,$(BENCH_LINES),--lines $(n)) --dir $(BENCH_DIR) --python $(BENCH_VENV)/bin/python
	@# The Spark job (local[2]) on the same partitions, against reconcile-partition of the same data.
	bash scripts/with-spark.sh bash -c '$(RECON) bench spark $(foreach n,$(BENCH_LINES),--lines $(n)) --dir $(BENCH_DIR) --spark-submit "$$RECON_SPARK_SUBMIT"'
	@# Break actions through recon serve on 127.0.0.1 (a fresh closed world each time).
	rm -rf $(BENCH_DIR)/breaks && $(RECON) generate --out $(BENCH_DIR)/breaks --date 2026-11-16 --days 3 --transactions 20000 --seed 7 >/dev/null
	$(RECON) run --data $(BENCH_DIR)/breaks --date 2026-11-16 --through 2026-11-18 >/dev/null || test $$? -eq 3
	$(RECON) bench breaks --data $(BENCH_DIR)/breaks --date 2026-11-18
	@# The report in headless Chromium: a 1M-payment day, then 60 days with injected anomalies
	@# (whose flags and forecast are scored against the generator's truth).
	test -f $(BENCH_DIR)/report1m/reports/business_date=$(DEMO_DATE)/report.html || { \
	  $(RECON) generate --out $(BENCH_DIR)/report1m --date $(DEMO_DATE) --transactions 1000000 --force >/dev/null && \
	  { $(RECON) run --data $(BENCH_DIR)/report1m --date $(DEMO_DATE) >/dev/null || test $$? -eq 3; }; }
	bash scripts/with-chromium.sh $(RECON) bench report --data $(BENCH_DIR)/report1m --date $(DEMO_DATE)
	rm -rf $(BENCH_DIR)/history && $(RECON) generate --out $(BENCH_DIR)/history --date 2026-09-01 --days 60 --transactions 5000 --seed 11 --mix anomalies=0.06 >/dev/null
	$(RECON) run --data $(BENCH_DIR)/history --date 2026-09-01 --through 2026-10-30 >/dev/null || test $$? -eq 3
	bash scripts/with-chromium.sh $(RECON) bench report --data $(BENCH_DIR)/history --date 2026-10-30
	$(RECON) accuracy --data $(BENCH_DIR)/history | sed -n '/^anomaly flags/,$$p'

generate-1m: build-cli ## time the generation of a 1,000,000-transaction day
	rm -rf /tmp/recon-1m && time $(RECON) generate --out /tmp/recon-1m --date $(DEMO_DATE) --transactions 1000000

lint-infra: ## cfn-lint template.yaml, asl-validator the state machines, template/code consistency
	bash scripts/lint-infra.sh

build: ## cross-compile every Lambda and the EMR kernel with cargo-lambda (arm64; LAMBDA_ARCH=--x86-64), stage dist/emr/, print sizes
	@if ! "$(RECON_VENV)/bin/cargo-lambda" lambda --version >/dev/null 2>&1 \
	    || ! "$(RECON_VENV)/bin/python" -c "import ziglang" 2>/dev/null; then \
	  python3 -m venv "$(RECON_VENV)" && \
	  "$(RECON_VENV)/bin/python" -m pip install --quiet --disable-pip-version-check \
	    "cargo-lambda==$(CARGO_LAMBDA_VERSION)" "ziglang==$(ZIGLANG_VERSION)"; \
	fi
	PATH="$(RECON_VENV)/bin:$$PATH" cargo lambda build --release $(LAMBDA_ARCH) $(addprefix -p ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do ls -l "$(CARGO_TARGET_DIR)/lambda/$$f/bootstrap" | awk -v f=$$f '{printf "  %-20s %6.1f MB\n", f, $$5/1048576}'; done
	@# The Spark job's artifacts for EMR (docs/spark.md): the job, its bootstrap action and
	@# requirements, and the recon kernel (the AWS-enabled CLI) for the same architecture.
	PATH="$(RECON_VENV)/bin:$$PATH" cargo lambda build --release $(LAMBDA_ARCH) -p recon-cli --features aws --bin recon
	mkdir -p dist/emr
	cp infra/emr/reconcile_partition.py infra/emr/bootstrap.sh infra/emr/requirements.txt dist/emr/
	cp "$(CARGO_TARGET_DIR)/lambda/recon/bootstrap" dist/emr/recon
	@ls -l dist/emr | awk 'NR > 1 {printf "  dist/emr/%-24s %8.1f MB\n", $$9, $$5/1048576}'

deploy: ## how to deploy with AWS SAM (prints the steps; deploys nothing)
	@echo "Deploy (docs/deploy.md has the details):"
	@echo "  1. once per account: create the PII key secret, e.g."
	@echo "       aws secretsmanager create-secret --name recon/<env>/pii-hmac-key \\"
	@echo "         --secret-string \"\$$(openssl rand -hex 32)\""
	@echo "  2. PATH=\"$(RECON_VENV)/bin:\$$PATH\" sam build --beta-features   # cargo-lambda, arm64"
	@echo "  3. set the CHANGE-ME values of samconfig.toml (MSK cluster, EMR cluster, KMS key admin),"
	@echo "     then: sam deploy --config-env dev   # or prod: stack recon-<env> with its stage's parameters"
	@echo "     (a stage's first deploy may set TableDeletionProtection=false: docs/deploy.md, Stages)"
