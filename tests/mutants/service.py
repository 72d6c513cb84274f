"""What every service does: health, shutdown, metrics, errors, tracing (tkv_common/)."""

from tests.mutants.mutant import Mutant

MUTANTS = [
    Mutant(
        "health never reports NOT_SERVING",
        "tkv_common/server.py",
        "status = health_pb2.HealthCheckResponse.SERVING if now else health_pb2.HealthCheckResponse.NOT_SERVING",
        "status = health_pb2.HealthCheckResponse.SERVING",
        ("tests/service/test_interceptor_chain.py::test_health_follows_the_storage_connection",),
    ),
    Mutant(
        "health never returns to SERVING",
        "tkv_common/server.py",
        "status = health_pb2.HealthCheckResponse.SERVING if now else health_pb2.HealthCheckResponse.NOT_SERVING",
        "status = health_pb2.HealthCheckResponse.SERVING if now and serving is None"
        " else health_pb2.HealthCheckResponse.NOT_SERVING",
        ("tests/service/test_interceptor_chain.py::test_health_follows_the_storage_connection",),
    ),
    Mutant(
        "no NOT_SERVING before a shutdown",
        "tkv_common/server.py",
        "        await self.health.enter_graceful_shutdown()\n",
        "",
        ("tests/reliability/test_shutdown.py::test_sigterm_reports_not_serving_before_the_process_stops",),
    ),
    Mutant(
        "metrics forget the workers that exited",
        "tkv_common/metrics.py",
        "            _add(merged, exited, live=False)\n            return merged",
        "            return merged",
        (
            "tests/unit/test_metrics.py",
            "tests/e2e/test_observability.py::"
            "test_metrics_are_the_sum_over_workers_and_a_restarted_worker_neither_loses_nor_double_counts",
        ),
    ),
    Mutant(
        "errors do not carry the request id",
        "tkv_common/errors.py",
        '    metadata = {**metadata, "request_id": request_id} if request_id else metadata',
        "",
        ("tests/e2e/test_observability.py::test_a_request_id_leads_from_the_response_to_the_log_lines_and_the_error",),
    ),
    Mutant(
        "the service span ignores the gateway's traceparent",
        "tkv_common/interceptors.py",
        "            context=tracing.propagator.extract(carrier),",
        "            context=None,",
        ("tests/e2e/test_tracing.py::test_one_http_request_is_one_trace_from_the_gateway_to_tarantool",),
    ),
    Mutant(
        "a v2 call needs no token",
        "kv_svc/server.py",
        "        public_methods=frozenset(),",
        '        public_methods=frozenset({"/tkv.kv.v2.KeyValueService/Watch"}),',
        ("tests/service/test_interceptor_chain.py::test_every_non_public_method_requires_a_token",),
    ),
    Mutant(
        "the access log records each request",
        "tkv_common/interceptors.py",
        "                    peer=context.peer(),\n                )",
        "                    peer=context.peer(),\n                    request=str(request),\n                )",
        ("tests/security/test_secret_hygiene.py::test_no_secret_or_value_in_any_log_line",),
    ),
    Mutant(
        "a metric the operations guide names is renamed",
        "tkv_common/storage_stats.py",
        '"oldest_revision": ("tkv_storage_oldest_revision",',
        '"oldest_revision": ("tkv_storage_first_revision",',
        ("tests/e2e/test_observability.py::test_every_metric_the_operations_guide_names_is_exposed",),
    ),
]
