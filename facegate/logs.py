"""Structured logs: one JSON object per line, with the id of the request being served;
and the request context that travels with it between services (its id, the time spent
waiting on other services).

The REST shim gives every request an id (the caller's ``x-request-id`` if it is a
plausible id, else a new one), answers with it, and sends it on as gRPC metadata; every
gRPC server takes it from there (facegate/grpcserver.py) and the gateway passes it on to
the extractor and the matchers, so one id ties a request's lines together across
processes. Log calls pass identifiers and measurements only: never request bodies,
images, templates, keys or secrets (tests/integration/test_logs.py checks).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID_METADATA = "x-request-id"
REQUEST_ID: ContextVar[str] = ContextVar("facegate_request_id", default="")
BACKEND_MS_METADATA = "facegate-backend-ms"
BACKEND_SECONDS: ContextVar[list[float] | None] = ContextVar(
    "facegate_backend_seconds", default=None
)
"""Time the call being served spent waiting on other services (the gateway's calls to
the extractor and the matchers), reported as trailing metadata and, by the REST shim,
in a Server-Timing header: what the rest of a request's time is, is the service's own."""
_PLAUSIBLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Attributes every LogRecord has; anything else was passed with extra= and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def request_id_from(candidate: str | None) -> str:
    """The caller's id if it looks like one (bounded, no spaces or quotes), else new."""
    if candidate and _PLAUSIBLE_ID.fullmatch(candidate):
        return candidate
    return uuid.uuid4().hex


@contextmanager
def backend_call() -> Iterator[None]:
    """Count the block's time as time spent waiting on another service."""
    started = time.perf_counter()
    try:
        yield
    finally:
        spent = BACKEND_SECONDS.get()
        if spent is not None:
            spent.append(time.perf_counter() - started)


def request_metadata() -> tuple[tuple[str, str], ...]:
    """The current request id as gRPC metadata for a downstream call (none outside a
    request)."""
    current = REQUEST_ID.get()
    return ((REQUEST_ID_METADATA, current),) if current else ()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Root logging for a facegate process: ``json`` (one object per line) or ``text``."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    elif log_format == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        raise ValueError(f"FACEGATE_LOG_FORMAT must be json or text, not {log_format!r}")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
