#!/usr/bin/env bash
# Installs the OpenID provider the identity tests start on loopback (oauth2-mock-server,
# pinned with its whole tree in tests/setup/oidc/package-lock.json) into
# target/tools/oidc/node_modules; the tests run tests/setup/oidc/provider.mjs against it.
# Needs Node >= 20.19 and npm (installed from Debian packages when missing). Idempotent:
# when the stamp matches the lock file it returns at once; npm's cache makes a reinstall
# quick.
set -euo pipefail
cd "$(dirname "$0")/../.."

TOOLS=target/tools/oidc
SOURCE=tests/setup/oidc

say() { printf 'tools-oidc: %s\n' "$*"; }

# shellcheck source=tests/setup/common.sh
source tests/setup/common.sh

ensure_node
# oauth2-mock-server 8 supports Node ^20.19 || ^22.12 || ^24.
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  say "Node $(node --version) is too old: oauth2-mock-server 8 needs Node >= 20.19"
  exit 1
fi

stamp_text="$(sha256sum "$SOURCE/package-lock.json" | cut -d' ' -f1) node-$(node --version)"
stamp="$TOOLS/.installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ] \
  && [ -f "$TOOLS/node_modules/oauth2-mock-server/package.json" ]; then
  say "up to date in $TOOLS"
  exit 0
fi

mkdir -p "$TOOLS"
cp "$SOURCE/package.json" "$SOURCE/package-lock.json" "$TOOLS/"
say "installing oauth2-mock-server from $SOURCE/package-lock.json"
(cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
version="$(cd "$TOOLS" && node -p 'require("./node_modules/oauth2-mock-server/package.json").version')"
say "ready: oauth2-mock-server $version in $TOOLS"
printf '%s' "$stamp_text" >"$stamp"
