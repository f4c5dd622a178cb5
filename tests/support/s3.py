"""S3 endpoints for tests, reached over real HTTP on loopback.

:func:`running_moto` serves moto's S3 (server mode, in a thread) on a free port and
yields its endpoint URL; the session fixture ``s3_endpoint`` in tests/conftest.py uses
it. moto keeps one in-memory backend per process, so tests share it and keep apart by
using their own bucket names (:func:`new_bucket`).

:func:`canned_endpoint` answers every request with one fixed reply (an S3 error
document, a huge ``Content-Length``, or nothing until the client gives up): the
failures moto cannot be asked for, such as throttling and access denied.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

ACCESS_KEY_ID = "AKIDTESTTESTTESTTEST"
SECRET_ACCESS_KEY = "test-secret-test-secret-test-secret-0000"
REGION = "us-east-1"
_buckets = itertools.count()


@contextmanager
def running_moto() -> Iterator[str]:
    """moto's S3 on 127.0.0.1 and a free port: yields ``http://127.0.0.1:<port>``."""
    from moto.server import ThreadedMotoServer  # slow import, only for tests using S3

    # werkzeug logs every request at INFO: thousands of lines in a failure's report.
    access_log = logging.getLogger("werkzeug")
    level = access_log.level
    access_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        access_log.setLevel(level)


def client(endpoint_url: str) -> Any:
    """A plain boto3 client of the endpoint with the tests' credentials."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def new_bucket(endpoint_url: str, objects: dict[str, bytes] | None = None) -> str:
    """Creates a bucket no other test uses, holding ``objects``; returns its name."""
    name = f"facegate-test-{next(_buckets)}"
    s3 = client(endpoint_url)
    s3.create_bucket(Bucket=name)
    with ThreadPoolExecutor(max_workers=8) as pool:  # the client is thread-safe
        for done in [
            pool.submit(s3.put_object, Bucket=name, Key=key, Body=data)
            for key, data in (objects or {}).items()
        ]:
            done.result()
    s3.close()
    return name


@dataclass(frozen=True)
class CannedReply:
    """What :func:`canned_endpoint` answers. ``stall_s``: wait this long before
    answering at all (the server gives up early when it stops)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stall_s: float = 0.0


@dataclass(frozen=True)
class CannedEndpoint:
    url: str
    requests: list[str]


def s3_error(status: int, code: str) -> CannedReply:
    """An S3 error document, as S3 sends it for GET requests."""
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{code}</Message><RequestId>0</RequestId></Error>"
    ).encode()
    return CannedReply(status=status, body=body, headers={"Content-Type": "application/xml"})


@contextmanager
def canned_endpoint(reply: CannedReply) -> Iterator[CannedEndpoint]:
    """An HTTP server on 127.0.0.1 that answers every GET with ``reply`` and records
    each request line."""
    stopping = threading.Event()
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            requests.append(self.requestline)
            if stopping.wait(reply.stall_s):
                return
            self.send_response(reply.status)
            headers = {"Content-Length": str(len(reply.body)), **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = _answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests assert on ``requests`` instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        # "localhost", not an address: botocore would address an IP path-style anyway.
        yield CannedEndpoint(url=f"http://localhost:{server.server_address[1]}", requests=requests)
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
