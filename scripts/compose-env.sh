#!/usr/bin/env bash
# Writes .env (git-ignored) with random Tarantool passwords for docker-compose.yml. An
# existing .env is kept as it is, except that a password it lacks is added: one introduced
# after it was written, such as the replication user's of the `ha` profile.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
existed=$([ -e .env ] && echo yes || echo no)
touch .env
# A last line without its newline would run into the first one added.
if [ -s .env ] && [ -n "$(tail -c 1 .env)" ]; then
    echo >> .env
fi
added=()
for name in TKV_TARANTOOL_AUTH_PASSWORD TKV_TARANTOOL_KV_PASSWORD TKV_TARANTOOL_REPLICATOR_PASSWORD; do
    if ! grep -q "^${name}=" .env; then
        echo "${name}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" >> .env
        added+=("$name")
    fi
done
if [ "$existed" = no ]; then
    echo "compose-env: wrote .env" >&2
elif [ ${#added[@]} -eq 0 ]; then
    echo "compose-env: .env exists, keeping it" >&2
else
    echo "compose-env: .env exists, keeping it; added ${added[*]}" >&2
fi
