"""Exit 0 when a gRPC server reports SERVING, 1 otherwise: a probe for container
health checks, where grpc_health_probe is not installed.

    python -m tkv_common.healthcheck 127.0.0.1:50051 [service]
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python -m tkv_common.healthcheck HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    with grpc.insecure_channel(argv[0]) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=argv[1] if len(argv) == 2 else ""), timeout=2
            )
        except grpc.RpcError as error:
            print(f"{argv[0]}: {error.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(f"{argv[0]}: {status}")
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
