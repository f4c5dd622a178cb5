"""The one error type of facegate.

Every failure a caller can see is a :class:`FacegateError` of one :class:`ErrorType`
from a closed set. Each type knows its NEC ID wire form (``errorCode``/``errorType``
where the NEC spec defines one), its HTTP status and its gRPC status, so the gRPC
interceptor and the REST handler map errors in exactly one place each.

Over gRPC the error type travels as the trailing metadata key ``facegate-error-type``
next to the status code and message, so a client can rebuild the same error.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import grpc

ERROR_TYPE_METADATA_KEY = "facegate-error-type"


@dataclass(frozen=True)
class _Wire:
    name: str
    error_code: int | None
    http_status: int
    grpc_status: grpc.StatusCode


class ErrorType(enum.Enum):
    """The closed set of errors. ``error_code`` is ``None`` where NEC ID defines none."""

    INVALID_REQUEST = _Wire("InvalidRequest", 1001, 400, grpc.StatusCode.INVALID_ARGUMENT)
    DUPLICATE = _Wire("Duplicate", 1002, 400, grpc.StatusCode.ALREADY_EXISTS)
    TIMEOUT = _Wire("Timeout", 1003, 500, grpc.StatusCode.DEADLINE_EXCEEDED)
    NO_FACE = _Wire("NoFace", 2001, 400, grpc.StatusCode.FAILED_PRECONDITION)
    POOR_QUALITY = _Wire("PoorQuality", 2002, 400, grpc.StatusCode.FAILED_PRECONDITION)
    MULTIPLE_FACES = _Wire("MultipleFaces", 2003, 400, grpc.StatusCode.FAILED_PRECONDITION)
    NOT_FOUND = _Wire("NotFound", None, 404, grpc.StatusCode.NOT_FOUND)
    FORBIDDEN = _Wire("Forbidden", None, 403, grpc.StatusCode.PERMISSION_DENIED)
    PAYLOAD_TOO_LARGE = _Wire("PayloadTooLarge", None, 413, grpc.StatusCode.RESOURCE_EXHAUSTED)
    TOO_MANY_REQUESTS = _Wire("TooManyRequests", None, 429, grpc.StatusCode.RESOURCE_EXHAUSTED)
    UNAVAILABLE = _Wire("Unavailable", None, 503, grpc.StatusCode.UNAVAILABLE)
    INTERNAL = _Wire("Internal", None, 500, grpc.StatusCode.INTERNAL)

    @property
    def type_name(self) -> str:
        return self.value.name

    @property
    def error_code(self) -> int | None:
        return self.value.error_code

    @property
    def http_status(self) -> int:
        return self.value.http_status

    @property
    def grpc_status(self) -> grpc.StatusCode:
        return self.value.grpc_status

    @classmethod
    def from_name(cls, name: str) -> ErrorType:
        for member in cls:
            if member.type_name == name:
                return member
        raise ValueError(f"unknown error type {name!r}")


_GRPC_FALLBACK: dict[grpc.StatusCode, ErrorType] = {
    grpc.StatusCode.INVALID_ARGUMENT: ErrorType.INVALID_REQUEST,
    grpc.StatusCode.OUT_OF_RANGE: ErrorType.INVALID_REQUEST,
    grpc.StatusCode.ALREADY_EXISTS: ErrorType.DUPLICATE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ErrorType.TIMEOUT,
    grpc.StatusCode.NOT_FOUND: ErrorType.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED: ErrorType.FORBIDDEN,
    grpc.StatusCode.UNAUTHENTICATED: ErrorType.FORBIDDEN,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorType.TOO_MANY_REQUESTS,
    grpc.StatusCode.UNAVAILABLE: ErrorType.UNAVAILABLE,
}


class FacegateError(Exception):
    """A failure with a caller-facing message and one :class:`ErrorType`."""

    def __init__(self, error_type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    def nec_body(self) -> dict[str, Any]:
        """The JSON body NEC ID sends for this error."""
        if self.error_type.error_code is None:
            return {"message": self.message}
        return {
            "message": self.message,
            "errorCode": self.error_type.error_code,
            "errorType": self.error_type.type_name,
        }

    def grpc_trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ((ERROR_TYPE_METADATA_KEY, self.error_type.type_name),)

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> FacegateError:
        """Rebuild the error a facegate server raised from what a gRPC client received."""
        call: Any = error
        code: grpc.StatusCode = call.code()
        details: str = call.details() or code.name
        sent = _sent_error_type(error)
        return cls(sent or _GRPC_FALLBACK.get(code, ErrorType.INTERNAL), details)

    def __repr__(self) -> str:
        return f"FacegateError({self.error_type.type_name}, {self.message!r})"


def _sent_error_type(error: grpc.RpcError) -> ErrorType | None:
    """The error type a facegate server put in the call's trailing metadata, if any."""
    call: Any = error
    for key, value in call.trailing_metadata() or ():
        if key == ERROR_TYPE_METADATA_KEY:
            try:
                return ErrorType.from_name(str(value))
            except ValueError:
                return None
    return None


def backend_failure(what: str, error: grpc.RpcError) -> FacegateError:
    """How a failed call to another facegate service reaches the caller, the same for
    every backend: Timeout when its deadline passed; the error the service raised itself
    (NoFace, InvalidRequest, ...) as it is; Unavailable, naming ``what`` (e.g. "the
    extractor", "matcher shard 1 of 2 (Search)"), for everything else."""
    call: Any = error
    code: grpc.StatusCode = call.code()
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return FacegateError(ErrorType.TIMEOUT, f"{what} did not answer in time.")
    sent = _sent_error_type(error)
    if sent is not None and sent not in (ErrorType.UNAVAILABLE, ErrorType.INTERNAL):
        return FacegateError(sent, call.details() or code.name)
    return FacegateError(
        ErrorType.UNAVAILABLE,
        f"{what} is unavailable: {code.name}: {call.details() or 'no details'}",
    )


def invalid_request(message: str) -> FacegateError:
    return FacegateError(ErrorType.INVALID_REQUEST, message)


def image_too_large(size: int, limit: int) -> FacegateError:
    """An image of ``size`` bytes over the limit, in the same words wherever it is caught."""
    return invalid_request(f"image is {size} bytes, more than the limit of {limit} bytes")
