"""``python -m facegate.probe PORT``: the gRPC health check of a Kubernetes exec probe.

Kubernetes' own ``grpc`` probe speaks plaintext only; over (m)TLS the pod checks itself
with the certificate it already has (``FACEGATE_TLS_*``), at ``localhost`` (a name its
certificate must carry). Exit status 0 = SERVING.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facegate.settings import Settings
from gateway.adapters.channel import open_channel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facegate.probe", description=__doc__)
    parser.add_argument("port", type=int, help="the gRPC port of this pod")
    parser.add_argument("--service", default="", help="health service name; empty = server")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    with open_channel(f"localhost:{args.port}", settings.tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=args.service)
        try:
            status = stub.Check(request, timeout=args.timeout).status
        except grpc.RpcError as error:
            print(f"health check failed: {error.code().name}", file=sys.stderr)
            return 1
    if status != health_pb2.HealthCheckResponse.SERVING:
        print(f"not serving: {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
