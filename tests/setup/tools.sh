#!/usr/bin/env bash
# Installs the Python tools the tests use, each set in its own venv under target/tools
# (one script per set: tests/setup/tools-*.sh).
# tools-oidc.sh adds the OpenID provider (npm, under target/tools/oidc) the identity
# tests start on loopback; tools-webhooks.sh the webhook receiver (npm, in
# tests/webhook-receiver) that verifies deliveries with the Standard Webhooks library.
set -euo pipefail
cd "$(dirname "$0")/../.."
for script in tests/setup/tools-*.sh; do
    [ -e "$script" ] || continue
    bash "$script"
done
