"""Render envoy/envoy.template.yaml into a ready-to-run config directory.

    python scripts/render_envoy.py OUT_DIR
    python scripts/render_envoy.py --concurrency    the worker threads Envoy should run

OUT_DIR receives envoy.yaml, http_api.lua (both rendered from their templates) and the
descriptor set tkv.pb (from `make gen`), so Envoy needs nothing else. Placeholders come from
the gateway's settings (README.md, "Configuration": the Gateway table; their defaults are
tkv_common/catalogue.py's), and tracing from OpenTelemetry's own variables, as the services
read them: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT, http://host:port
of an OTLP/gRPC collector, makes Envoy start (or continue) a W3C trace per request, send
`traceparent` to the services and export its span there, as `tkv_gateway`.
"""

from __future__ import annotations

import re
import shutil
import string
import sys
from collections import defaultdict
from pathlib import Path

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tkv_common.server import worker_socket  # noqa: E402
from tkv_common.settings import Address, ConfigError, Env  # noqa: E402

ENVOY_DIR = ROOT / "envoy"


def placeholders(env: Env, config_dir: Path) -> dict[str, str]:
    gateway = env.address("TKV_GATEWAY_LISTEN")
    admin = env.address("TKV_ENVOY_ADMIN_LISTEN")
    auth = env.address("TKV_AUTH_UPSTREAM")
    kv = env.address("TKV_KV_UPSTREAM")
    return {
        "GATEWAY_HOST": gateway.host,
        "GATEWAY_PORT": str(gateway.port),
        "ADMIN_HOST": admin.host,
        "ADMIN_PORT": str(admin.port),
        "AUTH_HOST": auth.host,
        "AUTH_PORT": str(auth.port),
        "KV_HOST": kv.host,
        "KV_PORT": str(kv.port),
        "CONFIG_DIR": str(config_dir),
        "MAX_REQUEST_BYTES": str(env.int("TKV_MAX_REQUEST_BYTES")),
        # The value depth the gateway's own refusal names (http_api.lua): kv_svc's rule.
        "MAX_VALUE_DEPTH": str(env.int("TKV_KV_MAX_VALUE_DEPTH")),
        "MAX_RESPONSE_BYTES": str(env.int("TKV_GATEWAY_MAX_RESPONSE_BYTES")),
        "MAX_CONNECTIONS": str(env.int("TKV_GATEWAY_MAX_CONNECTIONS")),
        "AUTH_RATE": str(env.int("TKV_GATEWAY_AUTH_RATE")),
        "AUTH_BURST": str(env.int("TKV_GATEWAY_AUTH_BURST")),
        "HEADERS_TIMEOUT": str(env.int("TKV_GATEWAY_HEADERS_TIMEOUT_SECONDS")),
        "IDLE_TIMEOUT": str(env.int("TKV_GATEWAY_IDLE_TIMEOUT_SECONDS")),
        "REQUEST_TIMEOUT": str(env.int("TKV_GATEWAY_REQUEST_TIMEOUT_SECONDS")),
        "HEALTH_INTERVAL": str(env.int("TKV_GATEWAY_HEALTH_INTERVAL_SECONDS")),
    }


def _cluster(env: Env, service: str, upstream: Address) -> tuple[str, str]:
    """The cluster's type and endpoints (YAML list items, 8 spaces in).

    With TKV_WORKER_SOCKET_DIR set (`make run`, the tests and the benchmark), the services'
    worker processes each listen on their own Unix socket, and Envoy balances calls over
    them: the shared SO_REUSEPORT port spreads connections, not calls, and Envoy keeps only
    a few long-lived HTTP/2 connections, which could all land on one worker."""
    socket_dir = env.str("TKV_WORKER_SOCKET_DIR")
    if not socket_dir:
        endpoint = f"{{address: {{socket_address: {{address: {upstream.host}, port_value: {upstream.port}}}}}}}"
        return "STRICT_DNS", f"        - endpoint: {endpoint}"
    workers = env.int("TKV_WORKERS")
    paths = [worker_socket(Path(socket_dir).resolve(), service, index) for index in range(workers)]
    return "STATIC", "\n".join(f"        - endpoint: {{address: {{pipe: {{path: {path}}}}}}}" for path in paths)


def concurrency(env: Env) -> int:
    """Envoy's worker threads. Envoy defaults to one per core, but here it shares the
    cores with the Python workers, which need them far more: one thread proxies several
    thousand calls per second, and on the 2-core benchmark machine a second thread cost
    ~25 % of the calls per second through the gateway (docs/benchmarks/README.md)."""
    return env.int("TKV_ENVOY_CONCURRENCY")


def _listener_tls(env: Env) -> str:
    cert, key = env.str("TKV_GATEWAY_TLS_CERT_FILE"), env.str("TKV_GATEWAY_TLS_KEY_FILE")
    if not cert and not key:
        return ""
    if not (cert and key):
        raise ConfigError("set both TKV_GATEWAY_TLS_CERT_FILE and TKV_GATEWAY_TLS_KEY_FILE, or neither")
    # A key of the listener's filter chain (6 spaces in).
    return f"""      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {{filename: {cert}}}
              private_key: {{filename: {key}}}
"""


def _upstream_tls(env: Env, host: str) -> str:
    ca = env.str("TKV_UPSTREAM_TLS_CA_FILE")
    if not ca:
        return ""
    is_ip = host.replace(".", "").isdigit() or ":" in host
    client = ""
    cert, key = env.str("TKV_UPSTREAM_TLS_CERT_FILE"), env.str("TKV_UPSTREAM_TLS_KEY_FILE")
    if cert or key:
        if not (cert and key):
            raise ConfigError("set both TKV_UPSTREAM_TLS_CERT_FILE and TKV_UPSTREAM_TLS_KEY_FILE, or neither")
        client = f"""          tls_certificates:
          - certificate_chain: {{filename: {cert}}}
            private_key: {{filename: {key}}}
"""
    # A key of the cluster (4 spaces in). The service's certificate must name `host`.
    return f"""    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        {"" if is_ip else f"sni: {host}"}
        common_tls_context:
          alpn_protocols: [h2]
          validation_context:
            trusted_ca: {{filename: {ca}}}
            match_typed_subject_alt_names:
            - san_type: {"IP_ADDRESS" if is_ip else "DNS"}
              matcher: {{exact: "{host}"}}
{client}"""


def _tracing(env: Env) -> tuple[str, str]:
    """The connection manager's `tracing` (10 spaces in) and the collector's cluster."""
    if env.foreign("OTEL_SDK_DISABLED").lower() == "true" or env.foreign("OTEL_TRACES_EXPORTER") == "none":
        return "", ""
    endpoint = env.foreign("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.foreign("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return "", ""
    scheme, _, rest = endpoint.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise ConfigError(f"the OTLP endpoint must be http(s)://host:port, got {endpoint!r}")
    collector = Address.parse(rest.rstrip("/"), "OTEL_EXPORTER_OTLP_ENDPOINT")
    tracing = """          tracing:
            provider:
              name: envoy.tracers.opentelemetry
              typed_config:
                "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
                grpc_service: {envoy_grpc: {cluster_name: otlp_collector}, timeout: 1s}
                service_name: tkv_gateway
"""
    tls = (
        """    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
"""
        if scheme == "https"
        else ""
    )
    cluster = f"""  - name: otlp_collector
    type: STRICT_DNS
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: otlp_collector
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {collector.host}, port_value: {collector.port}}}}}}}
{tls}"""
    return tracing, cluster


def http_routes(descriptor: Path, prefix: str) -> dict[str, list[str]]:
    """Lua pattern of each path template under `prefix` -> the HTTP methods the protos
    declare for it (every binding), from the descriptor set Envoy transcodes with."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes()).file
    methods_by_pattern: dict[str, set[str]] = defaultdict(set)
    for file in files:
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    verb = binding.WhichOneof("pattern")
                    if verb in (None, "custom") or not getattr(binding, verb).startswith(prefix):
                        continue
                    # {field} is one path segment; Lua's magic characters are escaped.
                    template = re.sub(r"([%.\-+*?^$()\[\]])", r"%\1", getattr(binding, verb))
                    methods_by_pattern["^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"].add(verb.upper())
    return {pattern: sorted(methods) for pattern, methods in sorted(methods_by_pattern.items())}


def _lua_routes(routes: dict[str, list[str]]) -> str:
    lines = [f'  {{"{pattern}", {{{", ".join(f"{m!r}" for m in methods)}}}}},' for pattern, methods in routes.items()]
    return "\n".join(lines).replace("'", '"')


# /docs: the page and its assets, served as they are by the gateway; from npm's
# swagger-ui-dist (package.json) and envoy/docs/.
SWAGGER_UI = ROOT / "node_modules" / "swagger-ui-dist"
DOCS_FILES = {
    "/docs/": (ENVOY_DIR / "docs" / "index.html", "text/html; charset=utf-8"),
    "/docs/init.js": (ENVOY_DIR / "docs" / "init.js", "text/javascript; charset=utf-8"),
    "/docs/swagger-ui-bundle.js": (SWAGGER_UI / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "/docs/swagger-ui.css": (SWAGGER_UI / "swagger-ui.css", "text/css; charset=utf-8"),
}
# Scripts from this origin only (no inline script, no eval); Swagger UI sets style
# attributes, which 'unsafe-inline' for styles allows (styles cannot run code). Framing,
# plugins, forms and base URLs are refused.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


# /ui: the web console (docs/ui.md), plain ES modules from ui/ with no build step.
UI_DIR = ROOT / "ui"
UI_FILES = {
    "/ui/": (UI_DIR / "index.html", "text/html; charset=utf-8"),
    "/ui/app.js": (UI_DIR / "app.js", "text/javascript; charset=utf-8"),
    "/ui/api.js": (UI_DIR / "api.js", "text/javascript; charset=utf-8"),
    "/ui/dom.js": (UI_DIR / "dom.js", "text/javascript; charset=utf-8"),
    "/ui/style.css": (UI_DIR / "style.css", "text/css; charset=utf-8"),
}
# Stricter than /docs: the console sets no style attributes, so styles come from this
# origin only too, and it loads no images.
UI_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'none'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    )
)


def _docs_routes(config_dir: Path, files: dict[str, tuple[Path, str]] = DOCS_FILES, csp: str = DOCS_CSP) -> str:
    routes = []
    for path, (source, content_type) in files.items():
        if not source.exists():
            raise ConfigError(f"{source} is missing: run `make run` or `make install` (npm ci)")
        target = config_dir / path.split("/")[1] / source.name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(source, target)
        headers = {
            "content-type": content_type,
            "content-security-policy": csp,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cache-control": "no-cache",
        }
        added = "".join(
            f'                - header: {{key: {name}, value: "{value}"}}\n'
            "                  append_action: OVERWRITE_IF_EXISTS_OR_ADD\n"
            for name, value in headers.items()
        )
        routes.append(
            f'              - match: {{path: "{path}"}}\n'
            f"                direct_response: {{status: 200, body: {{filename: {target}}}}}\n"
            "                typed_per_filter_config:\n"
            "                  envoy.filters.http.grpc_json_transcoder:\n"
            '                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig\n'
            "                    disabled: true\n"
            f"                response_headers_to_add:\n{added}"
        )
    return "".join(routes).rstrip("\n")


def render(out_dir: Path, env: Env | None = None) -> Path:
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    descriptor = ENVOY_DIR / "tkv.pb"
    if not descriptor.exists():
        raise ConfigError(f"{descriptor} is missing: run `make gen` first")
    env = env or Env()
    values = placeholders(env, out_dir)
    values["LISTENER_TLS"] = _listener_tls(env)
    values["AUTH_TLS"] = _upstream_tls(env, values["AUTH_HOST"])
    values["KV_TLS"] = _upstream_tls(env, values["KV_HOST"])
    values["TRACING"], values["TRACING_CLUSTER"] = _tracing(env)
    values["V2_ROUTES"] = _lua_routes(http_routes(descriptor, "/v2/"))
    values["DOCS_ROUTES"] = _docs_routes(out_dir)
    values["UI_ROUTES"] = _docs_routes(out_dir, UI_FILES, UI_CSP)
    for service, prefix in (("auth_svc", "AUTH"), ("kv_svc", "KV")):
        upstream = Address(values[f"{prefix}_HOST"], int(values[f"{prefix}_PORT"]))
        values[f"{prefix}_CLUSTER_TYPE"], values[f"{prefix}_ENDPOINTS"] = _cluster(env, service, upstream)
    for template, target in (("envoy.template.yaml", "envoy.yaml"), ("http_api.template.lua", "http_api.lua")):
        text = string.Template((ENVOY_DIR / template).read_text()).substitute(values)
        (out_dir / target).write_text(text)
    shutil.copy(descriptor, out_dir / "tkv.pb")
    # Served at GET /openapi.json (a direct response of the gateway).
    shutil.copy(ROOT / "docs" / "openapi.json", out_dir / "openapi.json")
    return out_dir / "envoy.yaml"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/render_envoy.py OUT_DIR | --concurrency")
    try:
        print(concurrency(Env()) if sys.argv[1] == "--concurrency" else render(Path(sys.argv[1])))
    except ConfigError as exc:
        sys.exit(f"render_envoy: {exc}")


if __name__ == "__main__":
    main()
