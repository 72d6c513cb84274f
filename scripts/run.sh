#!/usr/bin/env bash
# Starts the local stack in the foreground (called by `make run` after bootstrap + gen):
# development secrets on first start, Envoy's config rendered from envoy/, then Tarantool,
# auth_svc, kv_svc and Envoy under supervisord. Ctrl-C stops everything; the data in
# $TKV_DATA_DIR stays.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV:-.venv}
# Absolute, but not resolved: resolving the venv's python symlink would leave the venv.
export TKV_PYTHON=$(cd "$venv/bin" && pwd)/python
export TKV_ENVOY=$(cd "$venv/bin" && pwd)/envoy
# The settings this script uses, as given or else their defaults (tkv_common/catalogue.py):
# TKV_DATA_DIR made absolute, and each service worker also listening on its own Unix
# socket under TKV_WORKER_SOCKET_DIR, for Envoy to balance over them.
eval "$("$TKV_PYTHON" -m tkv_common.settings shell --stack TKV_DATA_DIR TKV_WORKER_SOCKET_DIR \
    TKV_ENVOY_CONCURRENCY TKV_TARANTOOL_LISTEN TKV_AUTH_LISTEN TKV_KV_LISTEN TKV_GATEWAY_LISTEN TKV_ENVOY_ADMIN_LISTEN)"
export TKV_DATA_DIR TKV_WORKER_SOCKET_DIR TKV_ENVOY_CONCURRENCY
mkdir -p "$TKV_DATA_DIR"

"$TKV_PYTHON" -m tkv_common.devsecrets
"$TKV_PYTHON" scripts/render_envoy.py "$TKV_DATA_DIR/envoy" >/dev/null

cat <<BANNER
tkv local stack (data in $TKV_DATA_DIR; Ctrl-C stops everything)
  Tarantool    $TKV_TARANTOOL_LISTEN
  auth_svc     $TKV_AUTH_LISTEN   gRPC, reflection on
  kv_svc       $TKV_KV_LISTEN   gRPC, reflection on
  gateway      $TKV_GATEWAY_LISTEN    HTTP/JSON API and gRPC (Envoy)
  envoy admin  $TKV_ENVOY_ADMIN_LISTEN
BANNER

exec "$venv/bin/supervisord" -c scripts/supervisord.conf
