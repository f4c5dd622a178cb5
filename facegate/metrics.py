"""Every Prometheus metric facegate records, defined once per process (the catalog is
docs/operations.md). Servers record request metrics in one place each: the gRPC
interceptor (facegate/grpcserver.py) and the REST app (gateway/rest/app.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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
HTTP_REQUESTS = Counter(
    "facegate_http_requests_total",
    "REST requests answered, by method, route template and HTTP status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "facegate_http_request_seconds",
    "Time from a REST request's arrival to its answer.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
AUTH_FAILURES = Counter(
    "facegate_auth_failures_total",
    "REST requests refused before reaching the API, by reason.",
    ["reason"],
)
RATE_LIMITED = Counter(
    "facegate_rate_limited_total", "REST requests refused by the per-key rate limit (429)."
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
EXTRACTOR_STAGE = Histogram(
    "facegate_extractor_stage_seconds",
    "Time per extraction stage: decode (header and the detector's scale), detect (model "
    "run and decoding), decode_faces (finer scales for faces too small at the "
    "detector's), describe (alignment, pose, embedding and quality of the kept faces).",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
MATCHER_SEARCH = Histogram(
    "facegate_matcher_search_seconds",
    "Time of one gallery search on a shard, by the path the planner chose.",
    ["plan"],
    buckets=LATENCY_BUCKETS,
)
JOB_RECORDS = Counter(
    "facegate_job_records_total",
    "Bulk job records handled by this process's workers, by outcome (success, failed, retried).",
    ["outcome"],
)
JOBS_SUBMITTED = Counter("facegate_jobs_submitted_total", "Bulk jobs submitted.")
TLS_CERTIFICATE_EXPIRY = Gauge(
    "facegate_tls_certificate_expiry_timestamp_seconds",
    "When the TLS certificate in use expires (Unix time): role server for what this "
    "process's listeners serve (follows renewals), client for what its channels present "
    "(read when they were opened).",
    ["role"],
)


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    """Observe the time the block takes, also when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(*labels).observe(time.perf_counter() - started)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Expose /metrics on ``port`` (0 = do nothing)."""
    if port:
        start_http_server(port, addr=host)
