# Mimoto — the two set-up commands are `make demo` and `make test`; both install what is
# missing first. Cargo's target dir lives outside the clone so CI reuses it.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/mimoto-target
BIN := $(CARGO_TARGET_DIR)/debug/mimoto
export MIMOTO_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mimoto_test

.PHONY: demo test test-rust test-faults test-e2e test-build build deps e2e-deps contract-deps postgres lint fmt-check clean-demo bench load

## make demo: build and serve on http://127.0.0.1:8080 with demo organizations (SQLite, mail outbox at /dev/mail)
demo: deps models build
	$(BIN) demo-data
	MIMOTO_DEMO=$${MIMOTO_DEMO:-1} $(BIN) serve

## make test: unit, storage contract (SQLite + PostgreSQL), HTTP integration and browser tests
test: deps postgres models test-rust test-e2e

deps:
	@scripts/ensure-system-deps.sh

postgres:
	@scripts/ensure-postgres.sh

## make models: pretrained face models as ONNX into ./models (or $MIMOTO_MODELS_DIR), checked against models.lock
.PHONY: models
models: deps
	@scripts/models/install.sh

build:
	cargo build --locked --bin mimoto

# One build serves the Rust tests and the browser suite: `cargo test` builds the `mimoto`
# binary for the CLI's integration tests with the test build's feature set, and the browser
# suite runs that binary. (A separate `cargo build` would unify features without the
# dev-dependencies and compile the dependency tree a second time.)
test-build:
	cargo test --locked --workspace --no-run

test-rust: postgres models test-build
	cargo test --locked --workspace

## make test-faults: only the fault tests (also part of test-rust): PostgreSQL restarted and cut off
## during registrations, the SMTP sink stopped and back, two nodes with one killed (README "Operations")
test-faults: deps postgres
	cargo test --locked -p mimoto-web --test integration faults::
	cargo test --locked -p mimoto-cli --test cli faults::

e2e-deps:
	cd e2e && npm ci --no-audit --no-fund --loglevel=error

# schemathesis for the API contract test (e2e/tests/contract.test.mjs), pinned in
# e2e/contract/requirements.txt, in a venv outside the clone ($$HOME/.cache/mimoto-venv).
contract-deps:
	@scripts/ensure-schemathesis.sh

test-e2e: test-build e2e-deps contract-deps postgres
	cd e2e && MIMOTO_BIN=$(BIN) npm test

## make bench: roster import of 1,000,000 rows into SQLite and PostgreSQL; a 200,000-row お薬履歴 import; argon2id implementations compared; face engine latency and memory; memory under a login burst; password reset timing with and without an account (optimized build)
bench: deps postgres models
	cargo bench --locked -p mimoto-face --bench face
	cargo bench --locked -p mimoto-app --bench roster_import
	cargo bench --locked -p mimoto-app --bench medication_import
	cargo bench --locked -p mimoto-app --bench argon2
	cargo bench --locked -p mimoto-web --bench login_burst
	cargo bench --locked -p mimoto-web --bench reset_timing

## make load: virtual members through registration, emailed code, verification, login, 本人確認 and reading 健診結果 behind the secret question, on one node and on two sharing PostgreSQL (loopback only, bounded; optimized build); flows/s, p50/p99 per step, ratio to the argon2 limit. Knobs: LOAD_MEMBERS, LOAD_CONCURRENCY, LOAD_SECS, LOAD_NODES
load: deps postgres
	cargo bench --locked -p mimoto-web --bench load

## make ocr-eval: birth-date read rate of the document OCR on synthetic cards (OCR_EVAL_CARDS per cell, default 10)
.PHONY: ocr-eval
ocr-eval: deps
	cargo bench --locked -p mimoto-ocr --bench ocr_eval

lint:
	cargo clippy --locked --workspace --all-targets -- -D warnings

fmt-check:
	cargo fmt --all --check

clean-demo:
	rm -rf ./data
