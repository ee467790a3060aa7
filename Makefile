# connctl — the two set-up commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: test test-deps test-gcs demo lint build release bench soak man schema fmt

## test: formatting, lints, and the whole test suite (what CI runs)
test: lint test-deps
	INSTA_UPDATE=no $(CARGO) test --workspace --all-targets --locked

## test-deps: the storage servers the remote-state tests start (moto for S3, Azurite for Azure
## Blob), pinned, installed under target/test-tools/; quick when already there
test-deps:
	./scripts/test-deps.sh

## test-gcs: opt-in, not part of `make test` (it needs the network): the remote-state cycle
## against a real bucket; needs CONNCTL_TEST_GCS_URL=gs://bucket/folder/ and Google credentials
test-gcs:
	./scripts/test-gcs.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

build:
	$(CARGO) build --workspace --locked

## release: the shipped binary (release profile: stripped, LTO), its size, and a check it is ≤ 25 MB
release:
	$(CARGO) build --release --locked -p connctl
	@bytes=$$(wc -c < target/release/connctl); \
	  echo "target/release/connctl: $$bytes bytes ($$((bytes / 1048576)) MiB)"; \
	  ./target/release/connctl --version; \
	  test $$bytes -le 26214400 || { echo "error: over the 25 MiB budget" >&2; exit 1; }

## demo: start the bundled emulator and walk through validate → plan → apply → plan → drift
demo: build
	./scripts/demo.sh

## schema: regenerate docs/connctl.schema.json from the types
schema: build
	$(CARGO) run -q -p connctl -- schema > docs/connctl.schema.json

## man: generate the man pages into target/man
man: build
	$(CARGO) run -q -p connctl -- man --out target/man

fmt:
	$(CARGO) fmt --all

## bench: release build against the emulator; prints the table of docs/performance.md (B3s
## starts moto from target/test-tools/)
bench: test-deps
	$(CARGO) build --release --locked -p connctl -p connctl-emulator
	python3 scripts/bench.py

## soak: the reliability suites at full size (faults, crashes, fuzz for 10 minutes)
soak:
	./scripts/soak.sh
