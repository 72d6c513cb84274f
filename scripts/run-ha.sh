#!/usr/bin/env bash
# Starts the HA stack in the foreground (called by `make run-ha` after bootstrap + gen):
# 3 etcd members, 3 Tarantool nodes (synchronous replication, quorum 2) each with its
# failover agent, and auth_svc, kv_svc and Envoy following the leader, under supervisord
# (docs/high-availability.md). Ctrl-C stops everything; the data in $TKV_DATA_DIR stays.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV:-.venv}
export TKV_PYTHON=$(cd "$venv/bin" && pwd)/python
export TKV_ENVOY=$(cd "$venv/bin" && pwd)/envoy
# As scripts/run.sh: these settings as given, else their defaults (tkv_common/catalogue.py).
eval "$("$TKV_PYTHON" -m tkv_common.settings shell --stack TKV_DATA_DIR TKV_WORKER_SOCKET_DIR \
    TKV_ENVOY_CONCURRENCY TKV_AUTH_LISTEN TKV_KV_LISTEN TKV_GATEWAY_LISTEN)"
export TKV_DATA_DIR TKV_WORKER_SOCKET_DIR TKV_ENVOY_CONCURRENCY
mkdir -p "$TKV_DATA_DIR"

"$TKV_PYTHON" -m tkv_common.devsecrets
"$TKV_PYTHON" scripts/render_envoy.py "$TKV_DATA_DIR/envoy" >/dev/null
# The services' and the operator's settings (TKV_TARANTOOL_ADDR, TKV_ETCD_ENDPOINTS, ...).
eval "$("$TKV_PYTHON" -m tkv_ha.localstack "$TKV_DATA_DIR/supervisord-ha.conf")"

cat <<BANNER
tkv HA stack (data in $TKV_DATA_DIR; Ctrl-C stops everything)
  Tarantool    $TKV_TARANTOOL_ADDR   (n1, n2, n3; one leader)
  etcd         $TKV_ETCD_ENDPOINTS
  agents       $TKV_HA_PEERS
  auth_svc     $TKV_AUTH_LISTEN   gRPC, reflection on
  kv_svc       $TKV_KV_LISTEN   gRPC, reflection on
  gateway      $TKV_GATEWAY_LISTEN    HTTP/JSON API and gRPC (Envoy)
  status       $venv/bin/tkv-ha status   (switchover NODE, maintenance on|off)
BANNER

exec "$venv/bin/supervisord" -c "$TKV_DATA_DIR/supervisord-ha.conf"
