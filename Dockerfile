# Image of both Python services (auth_svc and kv_svc); the command picks one. It also
# renders the gateway's Envoy config (scripts/render_envoy.py) for docker-compose, and runs
# the failover agents of its `ha` profile (`python -m tkv_ha agent`).
# Swagger UI for the gateway's /docs (gateway-config renders it into the config volume):
# the npm package pinned in package.json, fetched at build time, never from a CDN.
FROM node:20-slim AS swagger-ui
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TKV_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY protos/ protos/
COPY scripts/gen_protos.py scripts/render_envoy.py scripts/
COPY envoy/envoy.template.yaml envoy/http_api.template.lua envoy/
COPY envoy/docs/ envoy/docs/
COPY --from=swagger-ui /app/node_modules/swagger-ui-dist/ node_modules/swagger-ui-dist/
COPY docs/openapi.json docs/openapi.json
COPY tkv/__init__.py tkv/__init__.py
COPY tkv_common/ tkv_common/
COPY auth_svc/ auth_svc/
COPY kv_svc/ kv_svc/
COPY tkv_client/ tkv_client/
COPY tkv_ha/ tkv_ha/

# Generate the stubs first (the generator needs grpcio-tools and the googleapis protos),
# then install the project, generated package included.
RUN pip install --no-cache-dir "grpcio-tools>=1.66,<2" "googleapis-common-protos>=1.63,<2" \
    && python scripts/gen_protos.py --no-openapi \
    && pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /nonexistent tkv \
    && mkdir -p /data/keys/signing /data/keys/public /envoy-config \
    && chown -R tkv /data /envoy-config

USER tkv
EXPOSE 50051 50052
CMD ["python", "-m", "auth_svc"]
