# The verbs a newcomer types. `make run` and `make test` set up what they need.
CARGO ?= cargo
SHELL := /bin/bash

.PHONY: run build test backends tools webhook-receiver k8s-validate lint fmt bench bench-quick soak

## Build and start the whole suite on embedded defaults (SQLite, in-process queue and bus).
run: build
	./target/debug/aftersales dev

build:
	$(CARGO) build --bin aftersales

## Every test: unit tests plus integration tests on real PostgreSQL and Redis, and the
## quick benchmark run (so the harness cannot rot; it judges no timings).
test: backends tools k8s-validate bench-quick
	mkdir -p target
	set -o pipefail; $(CARGO) test --workspace --all-targets --no-fail-fast 2>&1 | tee target/test.log
	@awk '/^test result:/ { passed += $$4; failed += $$6 } \
		END { printf "summary: %d passed, %d failed\n", passed, failed }' target/test.log

## Install (Debian packages) and start PostgreSQL and Redis when they are missing or down.
backends:
	bash tests/setup/backends.sh

## Tools the tests use, under target/tools: Python ones (schemathesis, manifest
## validators) in venvs, and the OpenID provider the identity tests talk to
## (oauth2-mock-server, from npm, pinned by tests/setup/oidc/package-lock.json); and the
## webhook receiver the webhooks tests and benchmark deliver to (standardwebhooks, from
## npm, pinned by tests/webhook-receiver/package-lock.json, in its node_modules).
## tests/setup/tools.sh runs every tests/setup/tools-*.sh, tools-webhooks.sh among them.
tools:
	bash tests/setup/tools.sh

## Only the webhook receiver (the benchmark's webhooks section delivers to it).
webhook-receiver:
	bash tests/setup/tools-webhooks.sh

## Renders every kustomize overlay and checks it against the Kubernetes schemas and the
## security policy (waivers are listed, with reasons, in k8s/validate.sh).
k8s-validate: tools
	bash k8s/validate.sh

## Formatting and clippy, warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## The full benchmark run (release build, several minutes): prints the table and writes
## target/bench/full.json.
bench: backends webhook-receiver
	$(CARGO) build --release --bin aftersales --bin bench
	./target/release/bench --binary target/release/aftersales

## The same harness in seconds, on the debug build.
bench-quick: backends webhook-receiver build
	$(CARGO) run -q -p aftersales-bench --bin bench -- --quick --binary target/debug/aftersales

## Ten minutes of CreateTicket at half the measured maximum (not in CI).
soak: backends
	$(CARGO) build --release --bin bench
	./target/release/bench --soak --minutes 10
