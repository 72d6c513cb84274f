"""Request ids taken from callers only when they are plausible; tracing on only when the
standard OTEL_* variables ask for it."""

from __future__ import annotations

import re

import pytest

from tkv_common import interceptors, tracing


def request_id_of(metadata):
    """The id the call path gives a call with this metadata (interceptors._read_metadata)."""
    return interceptors._read_metadata(metadata)[0]


def test_a_callers_plausible_request_id_is_kept():
    assert request_id_of([("x-request-id", "5d0c3f1e-aaaa-4bbb-8ccc-123456789abc")]) == (
        "5d0c3f1e-aaaa-4bbb-8ccc-123456789abc"
    )


@pytest.mark.parametrize(
    "value",
    ["", "a" * 129, "id with spaces", 'id"\n{"level":"error"}', "ïd", b"bytes-id"],
)
def test_an_implausible_or_missing_request_id_is_replaced_by_a_new_one(value):
    made = set()
    for metadata in ([("x-request-id", value)], [], None):
        request_id = request_id_of(metadata)
        assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]{8,}", request_id), request_id
        made.add(request_id)
    assert len(made) == 3


def test_one_pass_over_the_metadata_finds_the_first_id_and_every_authorization():
    metadata = [
        ("authorization", "Bearer a"),
        ("x-request-id", "first-id"),
        ("user-agent", "x"),
        ("x-request-id", "second-id"),
        ("authorization", "Bearer b"),
    ]
    # Both authorization values reach `authenticated`, which refuses more than one.
    assert interceptors._read_metadata(metadata) == ("first-id", ["Bearer a", "Bearer b"])


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, False),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
    ],
)
def test_tracing_is_on_only_when_the_otel_variables_ask(environ, wanted):
    assert tracing.wanted(environ) is wanted


def test_tracing_off_leaves_no_tracer():
    tracing.configure("kv_svc", {})
    assert tracing.tracer is None
