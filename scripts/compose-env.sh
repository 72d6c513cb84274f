#!/usr/bin/env bash
# Writes .env (git-ignored) with random Tarantool passwords for docker-compose.yml,
# unless it exists already.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -e .env ]; then
    echo "compose-env: .env exists, keeping it" >&2
    exit 0
fi
umask 077
{
    echo "TKV_TARANTOOL_AUTH_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    echo "TKV_TARANTOOL_KV_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
} > .env
echo "compose-env: wrote .env" >&2
