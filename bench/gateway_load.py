"""The gateway benchmark's load generator: concurrent clients of the REST API (each request
signed fresh with botocore's SigV4, as NEC ID's SDKs do) or of the gateway's gRPC Face
service, with latencies and throughput summarised.

:func:`run_load` is meant to run in another process than the server's (bench/gateway_bench.py
runs it in its own process, the service in bench/gateway_side.py's), so the clients'
Python work does not hold the server's GIL.
One thread per client, each with its own HTTP connection or gRPC channel; the requests
are handed out from one shared sequence, request ``i`` being ``calls[i % len(calls)]``.
A request is signed (or its message built) before its timer starts, so latencies are
the server's answer time as the client sees it; the wall time of a level covers
signing too, as a real client's throughput would.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from facegate.logs import BACKEND_MS_METADATA
from facegate.v1 import face_pb2, face_pb2_grpc
from tests.support.stack import SignedClient

REST = "rest"
GRPC = "grpc"
_BARRIER_TIMEOUT_S = 600.0
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """Where and as whom the load generator calls."""

    rest_url: str
    grpc_address: str
    access_key_id: str
    secret_access_key: str
    api_key: str


@dataclass(frozen=True)
class Call:
    """One REST request: method, path and JSON body (None: no body)."""

    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class LoadSpec:
    target: Target
    protocol: str
    """:data:`REST` or :data:`GRPC` (the same calls as Face.Search / Face.VerifySubject)."""
    calls: tuple[Call, ...]
    clients: int
    requests: int
    """Measured requests, over all clients."""
    warmup: int
    """Requests sent first by the same clients, not measured."""


@dataclass(frozen=True)
class Answer:
    """One request's outcome: its failure (None: success) and the times it reported."""

    failure: str | None
    backend_ms: float | None = None
    total_ms: float | None = None


@dataclass(frozen=True)
class LoadRun:
    latencies_ms: tuple[float, ...]
    """Measured requests' latencies, in completion order."""
    own_ms: tuple[float, ...]
    """For each successful measured request that reported it: its latency minus the time
    the gateway spent waiting on the extractor and the matchers (REST: the
    ``Server-Timing: backend`` header; gRPC: the ``facegate-backend-ms`` trailing
    metadata), i.e. what the shim, the gateway, the transport and the client added to
    that very request."""
    wall_s: float
    """From the first measured request's start to the last one's end."""
    failures: dict[str, int]
    """Answers other than success, by HTTP status or gRPC code."""
    server_own_ms: tuple[float, ...] = ()
    """REST only: ``Server-Timing`` total - backend, the service's own share measured
    by the service (no client, no kernel, no loopback)."""


@dataclass(frozen=True)
class Level:
    """The summary of one load level."""

    clients: int
    requests: int
    p50_ms: float
    p99_ms: float
    rps: float
    failures: int
    own_p50_ms: float | None = None
    """Median of :attr:`LoadRun.own_ms` (None: no request reported its backend time)."""
    server_own_p50_ms: float | None = None
    """Median of :attr:`LoadRun.server_own_ms`."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "requests": self.requests,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "rps": self.rps,
            "failures": self.failures,
            "own_p50_ms": self.own_p50_ms,
            "server_own_p50_ms": self.server_own_p50_ms,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100, linear interpolation); ValueError when empty."""
    if not values:
        raise ValueError("no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0..100")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summarise(run: LoadRun, clients: int) -> Level:
    """Median and 99th percentile latency, and requests per second over the wall time."""
    if run.wall_s <= 0:
        raise ValueError(f"wall time must be positive, not {run.wall_s}")
    return Level(
        clients=clients,
        requests=len(run.latencies_ms),
        p50_ms=percentile(run.latencies_ms, 50),
        p99_ms=percentile(run.latencies_ms, 99),
        rps=len(run.latencies_ms) / run.wall_s,
        failures=sum(run.failures.values()),
        own_p50_ms=percentile(run.own_ms, 50) if run.own_ms else None,
        server_own_p50_ms=percentile(run.server_own_ms, 50) if run.server_own_ms else None,
    )


def server_timing(header: str) -> dict[str, float]:
    """The durations of a Server-Timing header by name (``total``, ``gateway``,
    ``backend``)."""
    found: dict[str, float] = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        try:
            found[name] = float(duration)
        except ValueError:
            continue
    return found


def grpc_request(call: Call) -> tuple[str, Any]:
    """The Face rpc and message that a REST search or subject verify stands for."""
    body = call.body or {}
    probe = base64.b64decode(body.get("probe", ""))
    if (call.method, call.path) == ("POST", "/v1.1/face/search"):
        return "Search", face_pb2.FaceSearchRequest(probe=probe)
    if (call.method, call.path) == ("POST", "/v1.1/face/verify") and "id" in body:
        return "VerifySubject", face_pb2.FaceVerifySubjectRequest(id=body["id"], probe=probe)
    raise ValueError(f"{call.method} {call.path} has no gRPC counterpart here")


class _Sequence:
    """Hands out request numbers 0..count-1 to the client threads."""

    def __init__(self, count: int) -> None:
        self._next = 0
        self._count = count
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            if self._next >= self._count:
                return None
            self._next += 1
            return self._next - 1


class _RestClient:
    def __init__(self, target: Target) -> None:
        self._client = SignedClient(
            target.rest_url, target.access_key_id, target.secret_access_key, api_key=target.api_key
        )

    def prepare(self, call: Call) -> Callable[[], Answer]:
        """Sign the request now; the function sends it and returns its failure, if any,
        and the times the answer reported."""
        request = self._client.signed(call.method, call.path, call.body)

        def send() -> Answer:
            response = self._client.send(request)
            if response.status_code != 200:
                return Answer(f"http {response.status_code}")
            timing = server_timing(response.headers.get("server-timing", ""))
            return Answer(None, timing.get("backend"), timing.get("total"))

        return send

    def close(self) -> None:
        self._client.close()


class _GrpcClient:
    def __init__(self, target: Target) -> None:
        self._channel = grpc.insecure_channel(
            target.grpc_address,
            options=[
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ],
        )
        self._stub = face_pb2_grpc.FaceStub(self._channel)
        self._metadata = (("x-api-key", target.api_key),)

    def prepare(self, call: Call) -> Callable[[], Answer]:
        rpc, message = grpc_request(call)
        method = getattr(self._stub, rpc)

        def send() -> Answer:
            try:
                _, answered = method.with_call(message, metadata=self._metadata, timeout=60.0)
            except grpc.RpcError as error:
                return Answer(f"grpc {error.code().name}")
            trailing = dict(answered.trailing_metadata() or ())
            try:
                return Answer(None, float(trailing.get(BACKEND_MS_METADATA, "")))
            except ValueError:
                return Answer(None)

        return send

    def close(self) -> None:
        self._channel.close()


def run_load(
    spec: LoadSpec,
    *,
    measuring: Callable[[], None] | None = None,
    measured: Callable[[], None] | None = None,
) -> LoadRun:
    """Send ``spec.warmup`` then ``spec.requests`` requests from ``spec.clients`` threads.

    ``measuring`` is called once every client has finished its warm-up, before any
    measured request is sent; ``measured`` once the last measured request has been
    answered (e.g. to read the server's CPU time around the measured requests alone)."""
    if spec.clients < 1 or spec.requests < 1 or not spec.calls:
        raise ValueError("a load needs clients, requests and calls")
    if spec.protocol not in (REST, GRPC):
        raise ValueError(f"unknown protocol {spec.protocol!r}")
    warmup, numbers = _Sequence(spec.warmup), _Sequence(spec.requests)
    latencies: list[float] = []
    own: list[float] = []
    server_own: list[float] = []
    failures: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def warmed_up() -> None:
        if measuring is not None:
            try:
                measuring()
            except BaseException as error:
                errors.append(error)
                raise

    barrier = threading.Barrier(spec.clients + 1, action=warmed_up, timeout=_BARRIER_TIMEOUT_S)

    def client() -> None:
        try:
            session = (
                _RestClient(spec.target) if spec.protocol == REST else _GrpcClient(spec.target)
            )
        except BaseException as error:
            errors.append(error)
            barrier.abort()
            return
        try:
            while (number := warmup.take()) is not None:
                session.prepare(spec.calls[number % len(spec.calls)])()
            barrier.wait()
            while (number := numbers.take()) is not None:
                send = session.prepare(spec.calls[number % len(spec.calls)])
                start = time.perf_counter()
                answer = send()
                elapsed_ms = (time.perf_counter() - start) * 1e3
                with lock:
                    latencies.append(elapsed_ms)
                    if answer.failure is not None:
                        failures[answer.failure] += 1
                    elif answer.backend_ms is not None:
                        own.append(elapsed_ms - answer.backend_ms)
                        if answer.total_ms is not None:
                            server_own.append(answer.total_ms - answer.backend_ms)
        except threading.BrokenBarrierError:
            pass
        except BaseException as error:
            errors.append(error)
            barrier.abort()
        finally:
            session.close()

    threads = [
        threading.Thread(target=client, name=f"load-client-{i}") for i in range(spec.clients)
    ]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - start
    if errors:
        raise errors[0]
    if measured is not None:
        measured()
    return LoadRun(tuple(latencies), tuple(own), wall_s, dict(failures), tuple(server_own))
