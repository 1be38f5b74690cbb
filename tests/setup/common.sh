# Shared by the set-up scripts (sourced, not run): each defines its own `say` first.

# Runs a command as root: directly, through sudo, or not at all (saying why).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; exit 1
  fi
}

# Node.js and npm from Debian's packages when either is missing.
ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    say "installing nodejs and npm"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
}
