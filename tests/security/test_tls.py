"""Optional TLS: HTTPS and gRPC over TLS at the gateway, mutual TLS from Envoy to the services."""

import http.client
import json
import ssl
import urllib.request
import uuid

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.http_client import call
from tests.security.certs import ThrowawayCA
from tests.stack import (
    Stack,
    auth_svc,
    envoy,
    envoy_upstreams_healthy,
    kv_svc,
    start_all,
    stop_all,
    tarantool,
    wait_until,
)
from tkv.auth.v1 import auth_pb2, auth_pb2_grpc


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    ca = ThrowawayCA(directory)
    server, gateway, envoy_client = ca.issue("service"), ca.issue("gateway"), ca.issue("envoy-client", client=True)
    stack = Stack(
        directory / "stack",
        extra_env={
            # Services: TLS, and only clients with a certificate from our CA (Envoy).
            "TKV_TLS_CERT_FILE": str(server.cert),
            "TKV_TLS_KEY_FILE": str(server.key),
            "TKV_TLS_CLIENT_CA_FILE": str(ca.pair.cert),
            # Gateway: TLS for clients; TLS with a client certificate to the services.
            "TKV_GATEWAY_TLS_CERT_FILE": str(gateway.cert),
            "TKV_GATEWAY_TLS_KEY_FILE": str(gateway.key),
            "TKV_UPSTREAM_TLS_CA_FILE": str(ca.pair.cert),
            "TKV_UPSTREAM_TLS_CERT_FILE": str(envoy_client.cert),
            "TKV_UPSTREAM_TLS_KEY_FILE": str(envoy_client.key),
        },
    )
    processes = start_all(stack)
    stack.ca = ca
    stack.envoy_client = envoy_client
    yield stack
    stop_all(processes)


def https(stack, method, path, body=None):
    context = ssl.create_default_context(cafile=str(stack.ca.pair.cert))
    connection = http.client.HTTPSConnection("127.0.0.1", stack.gateway_port, context=context, timeout=20)
    try:
        connection.request(
            method, path, body=json.dumps(body) if body else None, headers={"content-type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_https_through_the_gateway_reaches_the_services_over_mutual_tls(tls_stack):
    login = f"Tls{uuid.uuid4().hex[:8]}"
    status, body = https(
        tls_stack,
        "POST",
        "/api/register/",
        {"login": login, "password": "Secr3t!pass", "name": "Anna", "surname": "Smith"},
    )
    assert (status, body) == (201, {"message": "You have been successfully registered!"})
    status, body = https(tls_stack, "POST", "/api/login/", {"login": login, "password": "Secr3t!pass"})
    assert status == 201 and set(body) == {"token", "message"}


def test_grpc_over_tls_through_the_gateway(tls_stack):
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_stack.ca.pair.cert.read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{tls_stack.gateway_port}", credentials) as channel:
        jwks = auth_pb2_grpc.AuthServiceStub(channel).GetJwks(auth_pb2.GetJwksRequest(), timeout=10)
    assert len(jwks.keys) == 1


def test_plain_http_to_the_tls_gateway_fails(tls_stack):
    connection = http.client.HTTPConnection("127.0.0.1", tls_stack.gateway_port, timeout=5)
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        connection.request("GET", "/.well-known/jwks.json")
        connection.getresponse().read()
    connection.close()


def check_health(port: int, credentials) -> grpc.StatusCode:
    channel = (
        grpc.secure_channel(f"127.0.0.1:{port}", credentials)
        if credentials
        else grpc.insecure_channel(f"127.0.0.1:{port}")
    )
    with channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            return grpc.StatusCode.OK
        except grpc.RpcError as error:
            return error.code()


@pytest.mark.parametrize("service", ["auth_svc", "kv_svc"])
def test_services_refuse_plaintext_and_clients_without_a_certificate(tls_stack, service):
    port = tls_stack.auth_port if service == "auth_svc" else tls_stack.kv_port
    ca = tls_stack.ca.pair.cert.read_bytes()
    assert check_health(port, None) == grpc.StatusCode.UNAVAILABLE
    assert check_health(port, grpc.ssl_channel_credentials(root_certificates=ca)) == grpc.StatusCode.UNAVAILABLE
    with_cert = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=tls_stack.envoy_client.key.read_bytes(),
        certificate_chain=tls_stack.envoy_client.cert.read_bytes(),
    )
    assert check_health(port, with_cert) == grpc.StatusCode.OK


@pytest.mark.log_errors_expected(r"\[error\]|TLS|SSL|ssl|handshake")
def test_envoy_refuses_a_service_whose_certificate_names_another_host(tmp_path):
    # Issued by the trusted CA, but for another name: Envoy must not talk to it.
    ca = ThrowawayCA(tmp_path)
    elsewhere = ca.issue("service", names=[x509.DNSName("elsewhere.example")])
    envoy_client = ca.issue("envoy-client", client=True)
    stack = Stack(
        tmp_path / "stack",
        extra_env={
            "TKV_TLS_CERT_FILE": str(elsewhere.cert),
            "TKV_TLS_KEY_FILE": str(elsewhere.key),
            "TKV_TLS_CLIENT_CA_FILE": str(ca.pair.cert),
            "TKV_UPSTREAM_TLS_CA_FILE": str(ca.pair.cert),
            "TKV_UPSTREAM_TLS_CERT_FILE": str(envoy_client.cert),
            "TKV_UPSTREAM_TLS_KEY_FILE": str(envoy_client.key),
        },
    )
    processes = {"tarantool": tarantool(stack), "auth_svc": auth_svc(stack), "kv_svc": kv_svc(stack)}
    for process in processes.values():
        process.start()
    processes["envoy"] = envoy(stack, upstreams_up=False).start()
    try:
        # Until Envoy has tried the services, "not healthy" would prove nothing: wait for a
        # health check of each that ended, and look at how it ended.
        def checked() -> bool:
            stats = envoy_stats(stack.admin_port)
            return all(stats.get(f"cluster.{c}.health_check.attempt", 0) >= 2 for c in ("auth_svc", "kv_svc"))

        wait_until(checked, "Envoy's health checks of both services")
        stats = envoy_stats(stack.admin_port)
        for cluster in ("auth_svc", "kv_svc"):
            # Refused for the certificate's name: the handshake failed its SAN check...
            assert stats[f"cluster.{cluster}.ssl.fail_verify_san"] >= 1, cluster
            assert stats.get(f"cluster.{cluster}.ssl.handshake", 0) == 0, cluster
            # ...so the check failed, and the service was never healthy.
            assert stats[f"cluster.{cluster}.health_check.success"] == 0, cluster
        assert not envoy_upstreams_healthy(stack.admin_port)
        reply = call(f"127.0.0.1:{stack.gateway_port}", "GET", "/.well-known/jwks.json")
        assert reply.status == 503, reply.raw
    finally:
        stop_all(processes)


def envoy_stats(admin_port: int) -> dict[str, int]:
    """Envoy's counters and gauges (admin /stats), by name."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats", timeout=5).read().decode()
    stats = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if value.isdigit():
            stats[name] = int(value)
    return stats
