"""Shared test fixtures: tiny in-process gRPC servers on ephemeral ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from typing import Any

import grpc
import pytest

from facegate.grpcserver import bind, new_server
from tests.support.postgres import postgres_url_fixture
from tests.support.s3 import running_moto

Behavior = Callable[[bytes, grpc.ServicerContext], bytes]


class GrpcProbe:
    """Serves bytes-in/bytes-out methods under one test service; stops them at teardown."""

    SERVICE = "facegate.test.Probe"

    def __init__(self) -> None:
        self._servers: list[grpc.Server] = []
        self._channels: list[grpc.Channel] = []

    def serve(
        self,
        methods: Mapping[str, Behavior],
        *,
        intercepted: bool = True,
        setup: Callable[[grpc.Server], None] | None = None,
    ) -> grpc.Channel:
        """A channel to a started server. ``intercepted`` uses facegate's ``new_server``
        (error/metrics interceptor); otherwise a bare ``grpc.server`` shows raw statuses.
        ``setup`` may add more services before the server starts."""
        server = (
            new_server(workers=4, max_message_bytes=1 << 20)
            if intercepted
            else grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        )
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in methods.items()
        }
        if handlers:
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(self.SERVICE, handlers),)
            )
        if setup is not None:
            setup(server)
        port = bind(server, "127.0.0.1", 0)
        server.start()
        self._servers.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self._channels.append(channel)
        return channel

    def call(self, channel: grpc.Channel, method: str, payload: bytes = b"") -> bytes:
        stub: Any = channel.unary_unary(f"/{self.SERVICE}/{method}")
        result: bytes = stub(payload, timeout=10)
        return result

    def failure(self, channel: grpc.Channel, method: str) -> grpc.RpcError:
        """The error a client receives (fails the test if the call succeeded)."""
        with pytest.raises(grpc.RpcError) as info:
            self.call(channel, method)
        return info.value

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
        for server in self._servers:
            server.stop(grace=None)


@pytest.fixture
def grpc_probe() -> Iterator[GrpcProbe]:
    probe = GrpcProbe()
    try:
        yield probe
    finally:
        probe.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL server for the session: the URL of its empty test database."""
    yield from postgres_url_fixture()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on a loopback port for the session: its endpoint URL."""
    with running_moto() as url:
        yield url
