#!/usr/bin/env bash
# Makes sure the integration tests have a Redis Cluster on loopback: three masters and
# three replicas on ports 7001-7006 (REDIS_CLUSTER_BASE_PORT), nothing on disk but each
# node's cluster config, under /tmp/aftersales-redis-cluster. backends.sh runs it (so
# `make test` does). Safe to run again and again: a healthy cluster is left alone; a node
# that is down is started again; a set of nodes that never formed a cluster (or lost
# it) is reset and created afresh. Tests reach it through TEST_REDIS_CLUSTER_NODES.
set -euo pipefail

BASE_PORT="${REDIS_CLUSTER_BASE_PORT:-7001}"
DIR="${REDIS_CLUSTER_DIR:-/tmp/aftersales-redis-cluster}"
PORTS=()
for i in 0 1 2 3 4 5; do PORTS+=("$((BASE_PORT + i))"); done

say() { printf 'redis-cluster: %s\n' "$*"; }
cli() { local port="$1"; shift; redis-cli -h 127.0.0.1 -p "$port" "$@"; }
node_up() { [ "$(cli "$1" ping 2>/dev/null)" = "PONG" ]; }
cluster_ok() {
  local port
  for port in "${PORTS[@]}"; do
    cli "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
  # Every node must know all six (a node restarted from a stale config may not).
  [ "$(cli "${PORTS[0]}" cluster nodes 2>/dev/null | grep -cv fail)" -ge 6 ]
}
wait_for() {
  local what="$1" tries="$2"; shift 2
  for _ in $(seq "$tries"); do
    if "$@"; then return 0; fi
    sleep 0.5
  done
  say "$what did not come up"; exit 1
}

if cluster_ok; then
  say "three masters and three replicas on 127.0.0.1:${PORTS[0]}-${PORTS[5]} are ready"
  exit 0
fi

for port in "${PORTS[@]}"; do
  if ! node_up "$port"; then
    mkdir -p "$DIR/$port"
    say "starting node $port"
    # The cluster config (nodes.conf) is the only file: a restarted node rejoins with its
    # slots, empty, as a production node without persistence would.
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$DIR/$port/nodes.conf" --cluster-node-timeout 2000 \
      --save "" --appendonly no --dir "$DIR/$port" --daemonize yes \
      --logfile "$DIR/$port/redis.log"
    wait_for "node $port" 20 node_up "$port"
  fi
done

# Nodes that rejoined from their configs may need a moment to agree (a killed master
# that comes back learns its replica took its slots and turns replica itself).
for _ in $(seq 60); do
  if cluster_ok; then
    say "three masters and three replicas on 127.0.0.1:${PORTS[0]}-${PORTS[5]} are ready"
    exit 0
  fi
  # Only wait when the nodes already form a cluster; fresh ones will not get there alone.
  [ "$(cli "${PORTS[0]}" cluster info | grep '^cluster_known_nodes:' | tr -dc 0-9)" -ge 6 ] || break
  sleep 0.5
done

say "creating the cluster"
for port in "${PORTS[@]}"; do
  cli "$port" flushall >/dev/null
  cli "$port" cluster reset hard >/dev/null
done
addrs=()
for port in "${PORTS[@]}"; do addrs+=("127.0.0.1:$port"); done
redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
wait_for "cluster_state:ok on every node" 60 cluster_ok
say "three masters and three replicas on 127.0.0.1:${PORTS[0]}-${PORTS[5]} are ready"
