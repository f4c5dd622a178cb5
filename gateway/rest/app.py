"""The NEC ID v1.1 REST shim: an ASGI app that authenticates like Amazon API Gateway and
translates each request into one call of the gateway's public gRPC API.

Order of checks, as API Gateway answers: CORS preflight (no authentication, so browsers
can ask), body size (413), an unknown route (API Gateway's 403 "Missing Authentication
Token"), the SigV4 signature as far as no secret is needed (403 with API Gateway's
messages), the per-key rate (429), then the request's own validation and the gateway
call, which checks the signature against the tenant's secret and the API key. This
process holds no secret: it never opens the store (docs/architecture.md). Every answer is JSON with
``Content-Type: application/json``; an unexpected failure is logged and answered 500 in
the NEC error format, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

import grpc
import msgspec
import orjson

from facegate.contract import API_KEY_METADATA, FORWARDED_REQUEST_METADATA
from facegate.errors import ErrorType, FacegateError
from facegate.logs import BACKEND_MS_METADATA, REQUEST_ID, request_id_from, request_metadata
from facegate.metrics import AUTH_FAILURES, HTTP_LATENCY, HTTP_REQUESTS, RATE_LIMITED
from facegate.settings import RestSettings, TlsSettings
from facegate.sigv4 import Claimed, SignedRequest, SigV4Error, check_claim
from facegate.tls import ClientCertificate
from facegate.v1 import auth_pb2
from gateway.adapters.channel import MAX_MESSAGE_BYTES
from gateway.rest import routes
from gateway.rest.body import read_body
from gateway.rest.endpoints import STUBS
from gateway.rest.guard import RateLimiter
from gateway.rest.openapi import openapi_document

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MISSING_TOKEN = "Missing Authentication Token"
OPENAPI_PATH = "/openapi.json"
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"content-type, x-request-id, server-timing"),
]
PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    (
        b"access-control-allow-headers",
        b"authorization, content-type, x-amz-date, x-amz-security-token, x-api-key, "
        b"x-amz-content-sha256, x-request-id",
    ),
    (b"access-control-max-age", b"600"),
]


@dataclass(frozen=True)
class Reply:
    status: int
    body: object | None
    headers: Sequence[tuple[bytes, bytes]] = ()


class _RouteLabel:
    """The route template a request matched, for metrics ("unmatched" until known)."""

    def __init__(self) -> None:
        self.name = "unmatched"


_AUTH_REASONS = (
    (MISSING_TOKEN, "missing_token"),
    ("Signature expired", "expired"),
    ("Signature not yet current", "not_yet_current"),
    ("The request signature we calculated", "signature_mismatch"),
    ("The security token included", "invalid_token"),
)


def auth_failure_reason(message: str, other: str = "malformed") -> str:
    """A refusal's message -> a short metric label; ``other`` for none of SigV4's."""
    for prefix, reason in _AUTH_REASONS:
        if message.startswith(prefix):
            return reason
    return other


def error_reply(error: FacegateError) -> Reply:
    return Reply(error.error_type.http_status, error.nec_body())


def forbidden(message: str) -> Reply:
    return Reply(403, {"message": message})


def forwarded_request(request: SignedRequest, claimed: Claimed) -> bytes:
    """What the gateway needs to check ``request``'s signature: method, path and query as
    sent, the headers the check reads, the body's hash (never the body)."""
    wanted = claimed.forwarded_headers()
    return auth_pb2.ForwardedHttpRequest(
        method=request.method,
        raw_path=request.raw_path,
        raw_query=request.raw_query,
        headers=[
            auth_pb2.HttpHeader(name=name, value=value)
            for name, value in request.headers
            if name.lower() in wanted
        ],
        payload_sha256=request.payload_sha256 or "",
    ).SerializeToString()


class RestApp:
    """The ASGI application. ``gateway_address`` is the gateway's gRPC address; the
    channel (over TLS when ``tls`` is enabled) is opened on the server's event loop at
    first use."""

    def __init__(
        self,
        settings: RestSettings,
        gateway_address: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tls: TlsSettings | None = None,
    ) -> None:
        self._settings = settings
        self._gateway_address = gateway_address
        tls = tls or TlsSettings()
        # The certificate this shim presents to the gateway, followed as it is renewed.
        self._certificate = ClientCertificate(tls) if tls.enabled else None
        self._clock = clock
        self._limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
        self._channel: grpc.aio.Channel | None = None
        self._stubs: dict[str, Any] = {}
        self._openapi = orjson.dumps(openapi_document())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        route = _RouteLabel()
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = request_id_from(given.decode("latin-1"))
        REQUEST_ID.set(request_id)  # this request's task has its own context
        try:
            reply = await self._handle(scope, receive, route)
        except Exception:
            log.exception("unexpected failure answering %s %s", scope["method"], route.name)
            reply = error_reply(FacegateError(ErrorType.INTERNAL, "Internal server error."))
        try:
            await _send(send, reply, request_id, started)
        finally:
            method = scope["method"]
            elapsed = time.perf_counter() - started
            HTTP_LATENCY.labels(method, route.name).observe(elapsed)
            HTTP_REQUESTS.labels(method, route.name, str(reply.status)).inc()
            log.info(
                "http request",
                extra={
                    "method": method,
                    "route": route.name,
                    "status": reply.status,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._channel is not None:
                    await self._channel.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: Scope, receive: Receive, route_label: _RouteLabel) -> Reply:
        method: str = scope["method"]
        if method == "OPTIONS":
            route_label.name = "preflight"
            return Reply(204, None, PREFLIGHT_HEADERS)
        read = await read_body(scope["headers"], receive, self._settings.max_body_bytes)
        if read is None:
            return error_reply(
                FacegateError(
                    ErrorType.PAYLOAD_TOO_LARGE,
                    f"Request body exceeds {self._settings.max_body_bytes} bytes.",
                )
            )
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        if method == "GET" and scope["path"] == OPENAPI_PATH:
            route_label.name = OPENAPI_PATH
            return Reply(200, orjson.Fragment(self._openapi))
        path = raw_path.decode("latin-1")
        # SigV4 signs the normalised path, so "/a/x/../b" carries "/a/b"'s signature; a
        # path that normalisation would change is refused rather than routed elsewhere.
        found = None if _needs_normalising(path) else routes.match(method, path)
        if found is None:
            AUTH_FAILURES.labels("unknown_route").inc()
            return forbidden(MISSING_TOKEN)
        route, raw_params = found
        route_label.name = route.path
        try:
            # Routes match the path as sent, so an encoded "/" stays inside its segment.
            path_params = {k: unquote(v, errors="strict") for k, v in raw_params.items()}
        except UnicodeDecodeError:
            return error_reply(
                FacegateError(ErrorType.INVALID_REQUEST, "The path is not valid UTF-8.")
            )
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        metadata: list[tuple[str, str | bytes]] = list(request_metadata())
        rate_key = ""
        if route.auth != "none":
            signed = SignedRequest(
                method=method,
                raw_path=raw_path,
                raw_query=scope.get("query_string", b""),
                headers=headers,
                body=read.data,
                payload_sha256=await read.sha256_hex(),
            )
            # What needs no secret is refused here, so that an unauthenticated body goes
            # no further; the gateway checks the signature itself.
            try:
                claimed = check_claim(signed, now=self._clock(), region=self._settings.region)
            except SigV4Error as error:
                AUTH_FAILURES.labels(auth_failure_reason(error.message)).inc()
                return forbidden(error.message)
            metadata.append((FORWARDED_REQUEST_METADATA, forwarded_request(signed, claimed)))
            rate_key = claimed.access_key_id
        if route.auth == "sigv4+apikey":
            api_key = next((v for k, v in headers if k.lower() == "x-api-key"), "")
            if api_key:
                metadata.append((API_KEY_METADATA, api_key))
                rate_key = "key:" + api_key
        if rate_key and not self._limiter.allow(rate_key):
            RATE_LIMITED.inc()
            return Reply(429, {"message": "Too Many Requests"})
        try:
            parsed = _parse_json(read.data) if read.data else None
            query = parse_qs(
                scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True
            )
            call = route.build(path_params, query, parsed)
        except FacegateError as error:
            return error_reply(error)
        reply = await self._call(call, metadata)
        if rate_key and reply.status == 403:
            # The key was only claimed: a forger must not spend its owner's requests.
            self._limiter.refund(rate_key)
        return reply

    async def _call(self, call: routes.RestCall, metadata: list[tuple[str, str | bytes]]) -> Reply:
        stub = self._stub(call.service)
        started = time.monotonic()
        try:
            pending = getattr(stub, call.method)(
                call.request, metadata=metadata, timeout=self._settings.request_timeout_s
            )
            response = await pending
            trailing = await pending.trailing_metadata()
        except grpc.RpcError as error:
            rebuilt = FacegateError.from_rpc_error(error)
            if rebuilt.error_type is ErrorType.FORBIDDEN:
                AUTH_FAILURES.labels(auth_failure_reason(rebuilt.message, "forbidden")).inc()
            code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
            if code is grpc.StatusCode.DEADLINE_EXCEEDED:
                rebuilt = FacegateError(
                    ErrorType.TIMEOUT,
                    f"The request did not complete within {self._settings.request_timeout_s:g} "
                    "seconds.",
                )
            elif (
                code is grpc.StatusCode.UNAVAILABLE and rebuilt.error_type is ErrorType.UNAVAILABLE
            ):
                log.warning("gateway unavailable after %.3f s", time.monotonic() - started)
            return error_reply(rebuilt)
        gateway_ms = (time.monotonic() - started) * 1000
        # Server-Timing: the gateway call, and within it the extractor and matcher calls.
        timing = f"gateway;dur={gateway_ms:.3f}"
        backend = dict(trailing or ()).get(BACKEND_MS_METADATA)
        with contextlib.suppress(TypeError, ValueError):
            timing += f", backend;dur={float(backend):.3f}"  # type: ignore[arg-type]
        status, body = call.render(response)
        return Reply(status, body, ((b"server-timing", timing.encode("ascii")),))

    def _stub(self, service: str) -> Any:
        if self._channel is None:
            self._channel = self._open_channel(
                None if self._certificate is None else self._certificate.credentials
            )
        elif self._certificate is not None:
            renewed = self._certificate.renewed()
            if renewed is not None:
                # New calls present the renewed certificate; calls under way finish on
                # the old channel, closed once they have all had their deadline.
                retired, self._channel = self._channel, self._open_channel(renewed)
                self._stubs.clear()
                asyncio.get_running_loop().call_later(
                    self._settings.request_timeout_s + 1.0,
                    lambda: asyncio.ensure_future(retired.close()),
                )
        if service not in self._stubs:
            self._stubs[service] = STUBS[service](self._channel)
        return self._stubs[service]

    def _open_channel(self, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.lb_policy_name", "round_robin"),
        ]
        if credentials is None:
            return grpc.aio.insecure_channel(self._gateway_address, options)
        return grpc.aio.secure_channel(self._gateway_address, credentials, options)


def _needs_normalising(path: str) -> bool:
    segments = path.split("/")[1:]
    return any(segment in (".", "..") for segment in segments) or "" in segments[:-1]


_JSON = msgspec.json.Decoder()


def _parse_json(body: bytes) -> object:
    # msgspec rather than orjson for reading: it turns a multi-megabyte base64 string into
    # a str faster. RecursionError: nesting deeper than it allows.
    try:
        parsed = _JSON.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise FacegateError(
            ErrorType.INVALID_REQUEST, "The request body is not valid JSON."
        ) from None
    if parsed is None:
        # A body of JSON null is a body, not its absence: POST /v1.1/tags/{name} creates
        # without a body and renames with one, so null must not pass for none.
        raise FacegateError(
            ErrorType.INVALID_REQUEST,
            "The request body is JSON null; send a JSON object, or no body.",
        )
    return parsed


async def _send(send: Send, reply: Reply, request_id: str, started: float) -> None:
    """The answer, with ``Server-Timing: total`` = the time since the request arrived
    (body read, checks, the gateway call, rendering: all this service's share)."""
    headers = [*CORS_HEADERS, (b"x-request-id", request_id.encode("ascii"))]
    payload = b""
    if reply.body is not None:
        payload = orjson.dumps(reply.body)
        headers.append((b"content-type", b"application/json"))
    timing = f"total;dur={(time.perf_counter() - started) * 1000:.3f}".encode("ascii")
    for name, value in reply.headers:
        if name == b"server-timing":
            timing = value + b", " + timing
        else:
            headers.append((name, value))
    headers.append((b"server-timing", timing))
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
