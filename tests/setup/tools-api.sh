#!/usr/bin/env bash
# Installs the HTTP API checkers the gateway's tests run (openapi-spec-validator,
# schemathesis) into the venv target/tools/api. Idempotent: a venv that already has the
# pinned versions is left alone, so `make tools` costs nothing the second time.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/tools/api
SCHEMATHESIS=4.32.5
SPEC_VALIDATOR=0.9.0

wanted() {
    "$VENV/bin/python" - "$SCHEMATHESIS" "$SPEC_VALIDATOR" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("schemathesis"), version("openapi-spec-validator")) == tuple(sys.argv[1:3]) else 1)
PY
}

if [ -x "$VENV/bin/python" ] && wanted; then
    echo "tools-api: schemathesis $SCHEMATHESIS and openapi-spec-validator $SPEC_VALIDATOR ready in $VENV"
    exit 0
fi

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    # Debian splits venv support off the interpreter.
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS" "openapi-spec-validator==$SPEC_VALIDATOR"
wanted
echo "tools-api: installed schemathesis $SCHEMATHESIS and openapi-spec-validator $SPEC_VALIDATOR in $VENV"
