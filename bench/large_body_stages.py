"""The stages of the large-body REST path, each run alone in this process on the same body
through the function the request path calls (bench/large_body.py reports them).

CPU time of the calling thread, or of the process where the work spans threads (the
hash ahead of a large body, the gRPC hops: client, HTTP/2 and server). Each row also
gives the image-sized copies it makes (from the code) and the peak of new Python-heap
memory while it runs (tracemalloc; protobuf's arena is not Python heap).
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.message import Message

from facegate.grpcserver import bind, new_server
from facegate.settings import ExtractorSettings
from facegate.sigv4 import SignedRequest, verify
from facegate.v1 import extractor_pb2, face_pb2, face_pb2_grpc
from gateway.adapters.channel import MAX_MESSAGE_BYTES, open_channel
from gateway.adapters.extractor import ExtractorClient
from gateway.rest import app, routes
from gateway.rest.body import read_body
from tests.support.stack import REGION, SignedClient, b64

SEARCH = "/v1.1/face/search"
CHUNK = 64 * 1024
"""uvicorn's flow control pauses reading once it holds this much of a body."""
BODY_LIMIT = 64 * 1024 * 1024


def _echo(request: type[Message], reply: Message, field: str) -> grpc.RpcMethodHandler[Any, Any]:
    def handle(message: Any, context: grpc.ServicerContext) -> Message:
        getattr(message, field)  # what the real servicer reads first
        return reply

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request.FromString,
        response_serializer=lambda m: m.SerializeToString(),
    )


@contextmanager
def _stand_ins() -> Iterator[str]:
    """A server built like the gateway's and the extractor's whose Face.Search and
    Extractor.Extract read the image and answer at once."""
    server = new_server(workers=2, max_message_bytes=MAX_MESSAGE_BYTES)
    faces = extractor_pb2.ExtractorExtractResponse(faces=[extractor_pb2.DetectedFace()])
    search = _echo(face_pb2.FaceSearchRequest, face_pb2.FaceSearchResponse(), "probe")
    extract = _echo(extractor_pb2.ExtractorExtractRequest, faces, "image")
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler("facegate.v1.Face", {"Search": search}),
            grpc.method_handlers_generic_handler("facegate.v1.Extractor", {"Extract": extract}),
        )
    )
    port = bind(server, "127.0.0.1", 0)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()


def _median_ms(run: Callable[[], object], rounds: int, clock: Callable[[], float]) -> float:
    run()
    spent = []
    for _ in range(rounds):
        started = clock()
        run()
        spent.append((clock() - started) * 1000)
    return round(statistics.median(spent), 3)


def _peak_mb(run: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        run()
        return round(tracemalloc.get_traced_memory()[1] / 1e6, 2)
    finally:
        tracemalloc.stop()


def measure_stages(image: bytes, rounds: int) -> list[dict[str, Any]]:
    """Each stage of the large probe's path, on the same body, in this process."""
    signer = SignedClient("http://127.0.0.1:1", "AKIDBENCH", "secret", api_key="key")
    signed = signer.signed("POST", SEARCH, {"probe": b64(image)})
    signer.close()
    body = bytes(signed.body)
    headers = [(k.lower(), v) for k, v in signed.headers.items()] + [("host", "127.0.0.1:1")]
    digest = hashlib.sha256(body).hexdigest()
    request = SignedRequest("POST", SEARCH.encode(), b"", headers, body, digest)
    now = datetime.now(UTC)
    found = routes.match("POST", SEARCH)
    assert found is not None
    route, parsed = found[0], app._parse_json(body)
    message = route.build({}, {}, parsed).request
    loop = asyncio.new_event_loop()

    async def read() -> str:
        pieces = iter([body[i : i + CHUNK] for i in range(0, len(body), CHUNK)])

        async def receive() -> dict[str, Any]:
            chunk = next(pieces, b"")
            return {"type": "http.request", "body": chunk, "more_body": bool(chunk)}

        read = await read_body([(b"content-length", b"%d" % len(body))], receive, BODY_LIMIT)
        assert read is not None
        return await read.sha256_hex()

    with _stand_ins() as address:
        channel = loop.run_until_complete(_aio_channel(address))
        search = face_pb2_grpc.FaceStub(channel).Search
        extractor = ExtractorClient(
            open_channel(address), timeout_s=30, max_image_bytes=ExtractorSettings().max_image_bytes
        )
        stages: list[tuple[str, str, Callable[[], object], Callable[[], float]]] = [
            (
                "HTTP body read + SHA-256",
                "1: join",
                lambda: loop.run_until_complete(read()),
                time.process_time,
            ),
            (
                "SigV4 verify",
                "0",
                lambda: verify(request, secret_for=lambda _: "secret", now=now, region=REGION),
                time.thread_time,
            ),
            ("JSON parse", "1: the base64 str", lambda: app._parse_json(body), time.thread_time),
            (
                "REST -> proto",
                "2: decoded, message",
                lambda: route.build({}, {}, parsed),
                time.thread_time,
            ),
            (
                "gRPC shim -> gateway",
                "4: serialise, core, parse, .probe",
                lambda: loop.run_until_complete(search(message, timeout=30)),  # type: ignore[arg-type]
                time.process_time,
            ),
            (
                "gRPC gateway -> extractor (in backend)",
                "4: message, serialise, core, parse",
                lambda: extractor.probe_face(image),
                time.process_time,
            ),
        ]
        rows = [
            {
                "stage": name,
                "copies": copies,
                "cpu_ms": _median_ms(run, rounds, clock),
                "peak_mb": _peak_mb(run),
            }
            for name, copies, run, clock in stages
        ]
        loop.run_until_complete(channel.close())
    loop.close()
    return rows


async def _aio_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ],
    )
