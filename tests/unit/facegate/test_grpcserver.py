"""The shared gRPC plumbing: error mapping, metrics, health checking, reflection, binding."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from prometheus_client import REGISTRY

from facegate.errors import ERROR_TYPE_METADATA_KEY, ErrorType, FacegateError
from facegate.grpcserver import add_health_and_reflection, bind, new_server
from facegate.v1 import extractor_pb2

if TYPE_CHECKING:
    from tests.conftest import GrpcProbe

SERVICE = "facegate.test.Probe"
SECRET = "/srv/secret/db-password=hunter2"


def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request[::-1]


def crash(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise ValueError(f"cannot open {SECRET}")


def no_face(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise FacegateError(ErrorType.NO_FACE, "No face was found in the image.")


def explicit_abort(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.NOT_FOUND, "no such subject")


def metadata_of(error: grpc.RpcError) -> dict[str, str]:
    return {item.key: str(item.value) for item in error.trailing_metadata() or ()}


def handled(method: str, code: str) -> float:
    value = REGISTRY.get_sample_value(
        "facegate_grpc_server_handled_total", {"service": SERVICE, "method": method, "code": code}
    )
    return value or 0.0


def latency_count(method: str) -> float:
    value = REGISTRY.get_sample_value(
        "facegate_grpc_server_handling_seconds_count", {"service": SERVICE, "method": method}
    )
    return value or 0.0


def test_success_passes_through_and_is_counted(grpc_probe: GrpcProbe) -> None:
    channel = grpc_probe.serve({"Echo": echo})
    before, timed = handled("Echo", "OK"), latency_count("Echo")
    assert grpc_probe.call(channel, "Echo", b"abc") == b"cba"
    assert grpc_probe.call(channel, "Echo", b"") == b""
    assert handled("Echo", "OK") == before + 2
    assert latency_count("Echo") == timed + 2


def test_facegate_error_becomes_its_status_and_metadata(grpc_probe: GrpcProbe) -> None:
    channel = grpc_probe.serve({"NoFace": no_face})
    before = handled("NoFace", "FAILED_PRECONDITION")
    error = grpc_probe.failure(channel, "NoFace")
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == "No face was found in the image."
    assert metadata_of(error)[ERROR_TYPE_METADATA_KEY] == "NoFace"
    assert handled("NoFace", "FAILED_PRECONDITION") == before + 1


def test_unexpected_exception_is_internal_and_leaks_nothing(
    grpc_probe: GrpcProbe, caplog: pytest.LogCaptureFixture
) -> None:
    channel = grpc_probe.serve({"Crash": crash})
    before = handled("Crash", "INTERNAL")
    with caplog.at_level(logging.ERROR, logger="facegate.grpcserver"):
        error = grpc_probe.failure(channel, "Crash")
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "Internal server error."
    metadata = metadata_of(error)
    assert metadata[ERROR_TYPE_METADATA_KEY] == "Internal"
    assert not any("hunter2" in value for value in metadata.values())
    assert handled("Crash", "INTERNAL") == before + 1
    # The details stay in the server's log, where operators can see them.
    assert any(SECRET in (record.exc_text or "") for record in caplog.records)
    rebuilt = FacegateError.from_rpc_error(error)
    assert rebuilt.error_type is ErrorType.INTERNAL


def test_servicer_abort_keeps_its_status(grpc_probe: GrpcProbe) -> None:
    """``context.abort`` is gRPC's own way to fail a call: the interceptor must not turn it
    into INTERNAL (grpc raises a bare ``Exception`` from abort to unwind the handler)."""
    channel = grpc_probe.serve({"Abort": explicit_abort})
    error = grpc_probe.failure(channel, "Abort")
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "no such subject")


def test_health_check_serves_every_named_service(grpc_probe: GrpcProbe) -> None:
    channel = grpc_probe.serve(
        {"Echo": echo}, setup=lambda server: add_health_and_reflection(server, [SERVICE])
    )
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_the_services(grpc_probe: GrpcProbe) -> None:
    extractor_name = extractor_pb2.DESCRIPTOR.services_by_name["Extractor"].full_name

    channel = grpc_probe.serve(
        {}, setup=lambda server: add_health_and_reflection(server, [extractor_name])
    )
    database = ProtoReflectionDescriptorDatabase(channel)
    assert set(database.get_services()) == {
        extractor_name,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    described = database.FindFileContainingSymbol(extractor_name)
    assert described.package == "facegate.v1"
    assert "Extractor" in [service.name for service in described.service]


def test_bind_returns_the_ephemeral_port() -> None:
    server = new_server(workers=1, max_message_bytes=1024)
    try:
        port = bind(server, "127.0.0.1", 0)
        assert 0 < port < 65536
    finally:
        server.stop(grace=None)


def test_bind_refuses_a_port_another_server_holds() -> None:
    """A second server on a busy port must fail loudly, not share it (SO_REUSEPORT)."""
    first = new_server(workers=1, max_message_bytes=1024)
    second = new_server(workers=1, max_message_bytes=1024)
    try:
        port = bind(first, "127.0.0.1", 0)
        first.start()
        with pytest.raises(OSError, match=str(port)):
            bind(second, "127.0.0.1", port)
    finally:
        first.stop(grace=None)
        second.stop(grace=None)


def test_bind_reports_an_unbindable_address_as_oserror() -> None:
    """192.0.2.1 (TEST-NET-1, no lookup needed) is on no local interface."""
    server = new_server(workers=1, max_message_bytes=1024)
    try:
        with pytest.raises(OSError, match=r"192\.0\.2\.1"):
            bind(server, "192.0.2.1", 0)
    finally:
        server.stop(grace=None)


def test_message_size_limit_is_applied(grpc_probe: GrpcProbe) -> None:
    channel = grpc_probe.serve({"Echo": echo})
    with pytest.raises(grpc.RpcError) as info:
        grpc_probe.call(channel, "Echo", b"x" * (2 << 20))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
