"""The gateway's timeouts for slow clients and its limit on transcoded answers
(envoy.template.yaml), with small values so the test is quick, and the documented defaults
as rendered."""

import socket
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from tests.e2e.http_client import assert_shape, call
from tests.stack import ROOT, Stack, start_all, stop_all

HEADERS, IDLE, REQUEST = 1, 1, 3
MAX_RESPONSE = 1024 * 1024


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("timeouts"),
        extra_env={
            "TKV_GATEWAY_HEADERS_TIMEOUT_SECONDS": str(HEADERS),
            "TKV_GATEWAY_IDLE_TIMEOUT_SECONDS": str(IDLE),
            "TKV_GATEWAY_REQUEST_TIMEOUT_SECONDS": str(REQUEST),
            "TKV_GATEWAY_MAX_RESPONSE_BYTES": str(MAX_RESPONSE),
        },
    )
    processes = start_all(stack)
    yield f"127.0.0.1:{stack.gateway_port}"
    stop_all(processes)


def slow_client(address: str, parts: list[tuple[float, bytes]], limit: float = 15) -> tuple[float, bytes]:
    """Sends each part after its pause; returns when the gateway answered or closed, and what it said."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=limit) as sock:
        started = time.monotonic()
        for pause, data in parts:
            time.sleep(pause)
            try:
                sock.sendall(data)
            except OSError:
                break  # closed by the gateway already
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return time.monotonic() - started, answer


def test_a_client_that_never_finishes_its_headers_is_cut_off(gateway):
    took, answer = slow_client(gateway, [(0, b"POST /api/login/ HTTP/1.1\r\nHost: x\r\n")])
    assert HEADERS - 0.1 <= took < HEADERS + 3, took
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_a_stalled_body_is_answered_408_after_the_idle_timeout(gateway):
    head = b"POST /api/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    took, answer = slow_client(gateway, [(0, head + b'{"login": ')])
    assert IDLE - 0.1 <= took < IDLE + 3, took
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_a_request_trickled_to_stay_under_the_idle_timeout_ends_at_the_request_timeout(gateway):
    head = b"POST /api/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    trickle = [(0, head)] + [(IDLE / 2, b" ") for _ in range(4 * REQUEST)]
    took, answer = slow_client(gateway, trickle)
    assert REQUEST - 0.1 <= took < REQUEST + 3, took
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_an_answer_over_the_gateways_limit_is_a_json_500_not_a_request_error(gateway):
    # Only a misconfiguration gets here: by default the gateway's limit (64 MiB) is above the
    # service's (16 MiB), which refuses first with RESPONSE_TOO_LARGE.
    login = f"Greedy{uuid.uuid4().hex[:8]}"
    user = {"login": login, "password": "Secr3t!pass", "name": "Anna", "surname": "Smith"}
    assert call(gateway, "POST", "/api/register/", user).status == 201
    token = call(gateway, "POST", "/api/login/", {"login": login, "password": "Secr3t!pass"}).body["token"]
    assert call(gateway, "POST", "/api/write/", {"data": {"big": "x" * (2 * MAX_RESPONSE)}}, token=token).status == 201
    reply = call(gateway, "POST", "/api/read/", {"keys": ["big"]}, token=token)
    assert assert_shape(reply, 500, {"message": str}) == {
        "message": "Response not transcoded because the transcoder's internal buffer size exceeds the configured limit."
    }


def test_the_documented_defaults_are_what_envoy_gets(tmp_path):
    subprocess.run(
        [sys.executable, "scripts/render_envoy.py", str(tmp_path)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "TKV_DATA_DIR": str(tmp_path)},
        check=True,
        capture_output=True,
    )
    config = yaml.safe_load((tmp_path / "envoy.yaml").read_text())
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert (manager["request_headers_timeout"], manager["stream_idle_timeout"], manager["request_timeout"]) == (
        "10s",
        "30s",
        "60s",
    )
    [transcoder] = [f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.grpc_json_transcoder"]
    assert transcoder["typed_config"]["max_response_body_size"] == 64 * 1024 * 1024
