"""Prometheus metrics shared by every facegate server (defined once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

# Buckets from 0.5 ms to 30 s: cheap lookups to large-photo extraction.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

GRPC_HANDLED = Counter(
    "facegate_grpc_server_handled_total",
    "gRPC calls completed, by method and status code.",
    ["service", "method", "code"],
)
GRPC_LATENCY = Histogram(
    "facegate_grpc_server_handling_seconds",
    "Time from receiving a gRPC call to its response.",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "facegate_model_batch_size",
    "Items per model run (micro-batching).",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
FACES_PER_IMAGE = Histogram(
    "facegate_extractor_faces_per_image",
    "Faces found per extracted image.",
    buckets=(0, 1, 2, 3, 5, 10, 20),
)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Expose /metrics on ``port`` (0 = do nothing)."""
    if port:
        start_http_server(port, addr=host)
