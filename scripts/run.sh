#!/usr/bin/env bash
# Starts the local stack in the foreground (called by `make run` after bootstrap + gen):
# development secrets on first start, Envoy's config rendered from envoy/, then Tarantool,
# auth_svc, kv_svc and Envoy under supervisord. Ctrl-C stops everything; the data in
# $TKV_DATA_DIR stays.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV:-.venv}
export TKV_DATA_DIR=$(realpath -m "${TKV_DATA_DIR:-var}")
# Absolute, but not resolved: resolving the venv's python symlink would leave the venv.
export TKV_PYTHON=$(cd "$venv/bin" && pwd)/python
export TKV_ENVOY=$(cd "$venv/bin" && pwd)/envoy
# Each service worker also listens on its own Unix socket here; Envoy balances over them.
export TKV_WORKER_SOCKET_DIR=${TKV_WORKER_SOCKET_DIR:-$TKV_DATA_DIR/run}
mkdir -p "$TKV_DATA_DIR"

"$TKV_PYTHON" -m tkv_common.devsecrets
"$TKV_PYTHON" scripts/render_envoy.py "$TKV_DATA_DIR/envoy" >/dev/null
export TKV_ENVOY_CONCURRENCY=$("$TKV_PYTHON" scripts/render_envoy.py --concurrency)

cat <<BANNER
tkv local stack (data in $TKV_DATA_DIR; Ctrl-C stops everything)
  Tarantool    ${TKV_TARANTOOL_LISTEN:-127.0.0.1:3301}
  auth_svc     ${TKV_AUTH_LISTEN:-127.0.0.1:50051}   gRPC, reflection on
  kv_svc       ${TKV_KV_LISTEN:-127.0.0.1:50052}   gRPC, reflection on
  gateway      ${TKV_GATEWAY_LISTEN:-127.0.0.1:8080}    HTTP/JSON API and gRPC (Envoy)
  envoy admin  ${TKV_ENVOY_ADMIN_LISTEN:-127.0.0.1:9901}
BANNER

exec "$venv/bin/supervisord" -c scripts/supervisord.conf
