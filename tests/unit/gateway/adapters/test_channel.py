"""A TLS channel presents its renewed client certificate without being reopened, to a
real gRPC server that requires client certificates and names the one it saw."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from facegate.grpcserver import bind
from facegate.tls import ClientCertificate
from gateway.adapters.channel import RenewingChannel
from tests.support.tls import Authority, mtls_settings, replace_files

METHOD = "/test.Peer/Name"


def _peer_name(request: bytes, context: grpc.ServicerContext) -> bytes:
    # grpc's stubs say bytes; the values are lists of bytes.
    names: Any = context.auth_context().get("x509_common_name")
    return bytes(names[0]) if names else b"-"


@pytest.fixture
def pki(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


@pytest.fixture
def server_port(pki: Authority) -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.method_handlers_generic_handler(
        "test.Peer", {"Name": grpc.unary_unary_rpc_method_handler(_peer_name)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = bind(server, "127.0.0.1", 0, mtls_settings(pki, pki.issue("server")))
    server.start()
    yield port
    server.stop(grace=None).wait()


def _call(channel: Any) -> bytes:
    name: bytes = channel.unary_unary(METHOD)(b"", timeout=10)
    return name


def test_new_calls_present_the_renewed_certificate(pki: Authority, server_port: int) -> None:
    first = pki.issue("client-one")
    certificate = ClientCertificate(mtls_settings(pki, first), check_every_s=0.0)
    with RenewingChannel(f"127.0.0.1:{server_port}", certificate) as channel:
        stub_call = channel.unary_unary(METHOD)  # held across the renewal, as a stub holds it
        assert stub_call(b"", timeout=10) == b"client-one"
        replace_files(pki.issue("client-two"), first)
        assert stub_call(b"", timeout=10) == b"client-two"
        assert _call(channel) == b"client-two"
        assert stub_call.future(b"", timeout=10).result() == b"client-two"


def test_files_are_checked_only_so_often(pki: Authority, server_port: int) -> None:
    first = pki.issue("client-one")
    certificate = ClientCertificate(mtls_settings(pki, first), check_every_s=3600.0)
    with RenewingChannel(f"127.0.0.1:{server_port}", certificate) as channel:
        assert _call(channel) == b"client-one"
        replace_files(pki.issue("client-two"), first)
        assert _call(channel) == b"client-one"
