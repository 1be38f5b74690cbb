# The verbs a newcomer types. `make run` and `make test` set up what they need.
CARGO ?= cargo

.PHONY: run build test backends lint fmt

## Build and start the whole suite on embedded defaults (SQLite, in-process queue and bus).
run: build
	./target/debug/aftersales dev

build:
	$(CARGO) build --bin aftersales

## Every test: unit tests plus integration tests on real PostgreSQL and Redis.
test: backends
	$(CARGO) test --workspace

## Install (Debian packages) and start PostgreSQL and Redis when they are missing or down.
backends:
	bash tests/setup/backends.sh

## Formatting and clippy, warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
