#!/usr/bin/env bash
# Installs the webhook receiver the outbound-webhooks tests and benchmark start on
# loopback (tests/webhook-receiver/receiver.mjs, which verifies every delivery with the
# official Standard Webhooks library, `standardwebhooks`, pinned with its whole tree in
# tests/webhook-receiver/package-lock.json) into tests/webhook-receiver/node_modules.
# Needs Node >= 20 and npm (installed from Debian packages when missing). Idempotent: when
# node_modules is newer than the lock file it returns at once.
set -euo pipefail
cd "$(dirname "$0")/../.."

RECEIVER=tests/webhook-receiver

say() { printf 'tools-webhooks: %s\n' "$*"; }

# shellcheck source=tests/setup/common.sh
source tests/setup/common.sh

ensure_node
# receiver.mjs relies on node:util parseArgs and http.Server#closeAllConnections.
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  say "Node $(node --version) is too old: the webhook receiver needs Node >= 20"
  exit 1
fi

# npm writes node_modules/.package-lock.json on every install: it is the install's stamp.
installed="$RECEIVER/node_modules/.package-lock.json"
if [ -f "$installed" ] && [ -f "$RECEIVER/node_modules/standardwebhooks/package.json" ] \
  && [ ! "$RECEIVER/package-lock.json" -nt "$installed" ]; then
  say "up to date in $RECEIVER/node_modules"
  exit 0
fi

say "installing standardwebhooks from $RECEIVER/package-lock.json"
(cd "$RECEIVER" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
version="$(cd "$RECEIVER" && node -p 'require("./node_modules/standardwebhooks/package.json").version')"
say "ready: standardwebhooks $version in $RECEIVER/node_modules"
