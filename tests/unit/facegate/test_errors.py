"""FacegateError: NEC bodies, HTTP/gRPC statuses and the round trip over a real gRPC call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest

from facegate.errors import (
    ERROR_TYPE_METADATA_KEY,
    ErrorType,
    FacegateError,
    backend_failure,
    invalid_request,
)

if TYPE_CHECKING:
    from tests.conftest import GrpcProbe

# The NEC ID v1.1 table "Error Codes and Types": the only types with a code.
NEC_CODES = {
    "InvalidRequest": 1001,
    "Duplicate": 1002,
    "Timeout": 1003,
    "NoFace": 2001,
    "PoorQuality": 2002,
    "MultipleFaces": 2003,
}
HTTP_STATUS = {
    "InvalidRequest": 400,
    "Duplicate": 400,
    "Timeout": 500,
    "NoFace": 400,
    "PoorQuality": 400,
    "MultipleFaces": 400,
    "NotFound": 404,
    "Forbidden": 403,
    "PayloadTooLarge": 413,
    "TooManyRequests": 429,
    "Unavailable": 503,
    "Internal": 500,
}
MESSAGE = "Gallery 'g-1' has no subject 's-42' (détail ünïcode)."


def test_the_closed_set_is_exactly_the_documented_one() -> None:
    assert {t.type_name for t in ErrorType} == set(HTTP_STATUS)


@pytest.mark.parametrize("error_type", list(ErrorType), ids=lambda t: t.type_name)
def test_nec_body(error_type: ErrorType) -> None:
    body = FacegateError(error_type, MESSAGE).nec_body()
    name = error_type.type_name
    if name in NEC_CODES:
        assert body == {"message": MESSAGE, "errorCode": NEC_CODES[name], "errorType": name}
        assert error_type.error_code == NEC_CODES[name]
    else:
        assert body == {"message": MESSAGE}
        assert error_type.error_code is None
    assert error_type.http_status == HTTP_STATUS[name]


@pytest.mark.parametrize("error_type", list(ErrorType), ids=lambda t: t.type_name)
def test_from_name_and_metadata(error_type: ErrorType) -> None:
    assert ErrorType.from_name(error_type.type_name) is error_type
    error = FacegateError(error_type, MESSAGE)
    assert error.grpc_trailing_metadata() == ((ERROR_TYPE_METADATA_KEY, error_type.type_name),)
    assert str(error) == MESSAGE
    assert error_type.type_name in repr(error)


def test_from_name_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="Bogus"):
        ErrorType.from_name("Bogus")


def test_grpc_statuses_are_client_or_server_as_in_http() -> None:
    server_side = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE}
    for error_type in ErrorType:
        if error_type.http_status >= 500 and error_type is not ErrorType.TIMEOUT:
            assert error_type.grpc_status in server_side
        assert error_type.grpc_status is not grpc.StatusCode.OK


def test_invalid_request_helper() -> None:
    error = invalid_request("bad")
    assert error.error_type is ErrorType.INVALID_REQUEST
    assert error.message == "bad"


def _raiser(error_type: ErrorType) -> Any:
    def behaviour(request: bytes, context: grpc.ServicerContext) -> bytes:
        raise FacegateError(error_type, f"{error_type.type_name}: {MESSAGE}")

    return behaviour


def test_round_trip_over_grpc_for_every_type(grpc_probe: GrpcProbe) -> None:
    channel = grpc_probe.serve({t.type_name: _raiser(t) for t in ErrorType})
    for error_type in ErrorType:
        received = grpc_probe.failure(channel, error_type.type_name)
        assert received.code() == error_type.grpc_status
        rebuilt = FacegateError.from_rpc_error(received)
        assert rebuilt.error_type is error_type
        assert rebuilt.message == f"{error_type.type_name}: {MESSAGE}"
        assert rebuilt.nec_body() == FacegateError(error_type, rebuilt.message).nec_body()


# Status -> type when a server sent no facegate-error-type (a non-facegate server).
FALLBACK = [
    (grpc.StatusCode.INVALID_ARGUMENT, ErrorType.INVALID_REQUEST),
    (grpc.StatusCode.OUT_OF_RANGE, ErrorType.INVALID_REQUEST),
    (grpc.StatusCode.ALREADY_EXISTS, ErrorType.DUPLICATE),
    (grpc.StatusCode.DEADLINE_EXCEEDED, ErrorType.TIMEOUT),
    (grpc.StatusCode.NOT_FOUND, ErrorType.NOT_FOUND),
    (grpc.StatusCode.PERMISSION_DENIED, ErrorType.FORBIDDEN),
    (grpc.StatusCode.UNAUTHENTICATED, ErrorType.FORBIDDEN),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, ErrorType.TOO_MANY_REQUESTS),
    (grpc.StatusCode.UNAVAILABLE, ErrorType.UNAVAILABLE),
    (grpc.StatusCode.FAILED_PRECONDITION, ErrorType.INTERNAL),
    (grpc.StatusCode.UNKNOWN, ErrorType.INTERNAL),
    (grpc.StatusCode.DATA_LOSS, ErrorType.INTERNAL),
    (grpc.StatusCode.INTERNAL, ErrorType.INTERNAL),
]


def _aborter(code: grpc.StatusCode, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    def behaviour(request: bytes, context: grpc.ServicerContext) -> bytes:
        if metadata:
            context.set_trailing_metadata(metadata)
        context.abort(code, f"raw {code.name}")

    return behaviour


def test_fallback_without_metadata(grpc_probe: GrpcProbe) -> None:
    channel = grpc_probe.serve(
        {code.name: _aborter(code) for code, _ in FALLBACK}, intercepted=False
    )
    for code, expected in FALLBACK:
        received = grpc_probe.failure(channel, code.name)
        assert received.code() == code
        rebuilt = FacegateError.from_rpc_error(received)
        assert rebuilt.error_type is expected, code
        assert rebuilt.message == f"raw {code.name}"


def test_unknown_metadata_value_falls_back_to_the_status(grpc_probe: GrpcProbe) -> None:
    metadata = ((ERROR_TYPE_METADATA_KEY, "FromTheFuture"), ("other", "x"))
    channel = grpc_probe.serve(
        {"Odd": _aborter(grpc.StatusCode.NOT_FOUND, metadata)}, intercepted=False
    )
    rebuilt = FacegateError.from_rpc_error(grpc_probe.failure(channel, "Odd"))
    assert rebuilt.error_type is ErrorType.NOT_FOUND


def test_metadata_wins_over_the_status(grpc_probe: GrpcProbe) -> None:
    # PoorQuality and NoFace share FAILED_PRECONDITION: only the metadata tells them apart.
    metadata = ((ERROR_TYPE_METADATA_KEY, "PoorQuality"),)
    channel = grpc_probe.serve(
        {"Q": _aborter(grpc.StatusCode.FAILED_PRECONDITION, metadata)}, intercepted=False
    )
    rebuilt = FacegateError.from_rpc_error(grpc_probe.failure(channel, "Q"))
    assert rebuilt.error_type is ErrorType.POOR_QUALITY


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str | None, metadata: Any) -> None:
        self._code, self._details, self._metadata = code, details, metadata

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._metadata


def test_missing_details_and_metadata_use_the_status_name() -> None:
    rebuilt = FacegateError.from_rpc_error(_FakeRpcError(grpc.StatusCode.UNAVAILABLE, None, None))
    assert rebuilt.error_type is ErrorType.UNAVAILABLE
    assert rebuilt.message == "UNAVAILABLE"


def test_a_backend_failure_is_worded_alike_for_every_backend(grpc_probe: GrpcProbe) -> None:
    channel = grpc_probe.serve(
        {
            "Own": _raiser(ErrorType.NO_FACE),
            "Down": _raiser(ErrorType.UNAVAILABLE),
            "Broken": _raiser(ErrorType.INTERNAL),
            "Raw": _aborter(grpc.StatusCode.RESOURCE_EXHAUSTED),
            "Late": _aborter(grpc.StatusCode.DEADLINE_EXCEEDED),
        }
    )
    own = backend_failure("The extractor", grpc_probe.failure(channel, "Own"))
    assert own.error_type is ErrorType.NO_FACE
    assert own.message == f"NoFace: {MESSAGE}"
    for name in ("Down", "Broken", "Raw"):
        failed = backend_failure("Matcher shard 1 of 2 (Search)", grpc_probe.failure(channel, name))
        assert failed.error_type is ErrorType.UNAVAILABLE, name
        assert failed.message.startswith("Matcher shard 1 of 2 (Search) is unavailable: "), name
    late = backend_failure("The extractor", grpc_probe.failure(channel, "Late"))
    assert late.error_type is ErrorType.TIMEOUT
    assert late.message == "The extractor did not answer in time."
