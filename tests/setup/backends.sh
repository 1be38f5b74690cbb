#!/usr/bin/env bash
# Makes sure the integration tests have a real PostgreSQL and Redis on 127.0.0.1:
# installs them from Debian packages when missing, starts them when down, lets the local
# `postgres` user in without a password on loopback, and drops test databases left by
# earlier runs; then a local Redis Cluster (redis-cluster.sh). Safe to run again and
# again; `make test` runs it first.
set -euo pipefail

PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"

say() { printf 'backends: %s\n' "$*"; }

# shellcheck source=tests/setup/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

apt_updated=""
install_packages() {
  command -v apt-get >/dev/null || { say "apt-get not found: install $* by hand"; exit 1; }
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  say "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {
  local what="$1" tries="$2"; shift 2
  for _ in $(seq "$tries"); do
    if "$@"; then return 0; fi
    sleep 0.5
  done
  say "$what did not come up"; exit 1
}

# --- PostgreSQL -------------------------------------------------------------
pg_ready() { pg_isready -h 127.0.0.1 -p "$PG_PORT" -q 2>/dev/null; }
pg_sql() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAc "$1"; }

if ! command -v pg_isready >/dev/null || ! command -v psql >/dev/null; then
  install_packages postgresql
fi
if ! pg_ready; then
  if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    install_packages postgresql
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL 60 pg_ready
fi
if ! pg_sql 'select 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks for passwords on TCP: trust loopback, as the tests expect.
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  say "trusting loopback connections in $hba"
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  wait_for "PostgreSQL login" 20 pg_sql 'select 1'
fi
leftovers="$(pg_sql "select datname from pg_database where datname like 'aftersales_test_%'")"
for db in $leftovers; do
  # A database still in use (a test running now) is left for the next run.
  pg_sql "drop database if exists $db" >/dev/null 2>&1 || true
done

# --- Redis ------------------------------------------------------------------
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  install_packages redis-server
fi
if ! redis_ready; then
  say "starting Redis"
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir /tmp --logfile /tmp/aftersales-test-redis.log
  wait_for Redis 20 redis_ready
fi

# --- Redis Cluster ------------------------------------------------------------
# The same tests run against a three-master cluster too (REDIS_CLUSTER_NODES).
bash "$(dirname "$0")/redis-cluster.sh"

say "PostgreSQL on 127.0.0.1:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT are ready"
