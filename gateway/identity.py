"""Who a call of the public gRPC API comes from: the gateway is the one place that
authenticates, and no secret reaches it from outside (docs/api-grpc.md
"Authentication").

A call proves a tenant's key pair in one of two ways (proto/facegate/v1/auth.proto):
the REST shim forwards the HTTP request's SigV4 signature with what it covers, verified
here as Amazon API Gateway would; a gRPC caller signs the call itself
(facegate/rpc_auth.py). ``x-api-key`` names the application (and so the gallery) of
gallery-scoped calls; a proven tenant binds them to that tenant's applications.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from facegate.contract import ACCESS_KEY_METADATA, API_KEY_METADATA, FORWARDED_REQUEST_METADATA
from facegate.errors import ErrorType, FacegateError
from facegate.grpcserver import Behaviour, around_unary
from facegate.rpc_auth import request_bytes, verify_call
from facegate.sigv4 import SignedRequest, SigV4Error, verify
from facegate.v1 import auth_pb2
from gateway.store.records import Application, Tenant
from gateway.tenancy import INVALID_TOKEN_MESSAGE, Tenancy


@dataclass
class _Call:
    method: str
    request: Message
    proven: list[Tenant | None] = field(default_factory=list)
    """The caller's tenant once authenticated (a call may ask more than once)."""


FORWARDER_REFUSED = "Forwarded signatures are accepted only from the REST shim."

_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("facegate_call", default=None)


class CallRecorder(grpc.ServerInterceptor):
    """Makes each unary call's full method name and request known to :class:`Callers`,
    which a signed call's signature covers and a servicer context does not expose."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method

        def record(behavior: Behaviour) -> Behaviour:
            def recorded(request: Any, context: grpc.ServicerContext) -> Any:
                token = _CALL.set(_Call(method, request))
                try:
                    return behavior(request, context)
                finally:
                    _CALL.reset(token)

            return recorded

        return around_unary(continuation(handler_call_details), record)


class Callers:
    """Who a call comes from, from its metadata, verified against the tenants' secrets
    (read through :class:`Tenancy`'s cache). ``region``: the one SigV4 signatures of
    REST requests must be scoped to."""

    def __init__(
        self,
        tenancy: Tenancy,
        *,
        region: str,
        forwarders: Collection[str] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tenancy = tenancy
        self._region = region
        self._forwarders = frozenset(forwarders)
        self._clock = clock

    def tenant(self, context: grpc.ServicerContext) -> Tenant:
        found = self.optional_tenant(context)
        if found is None:
            raise FacegateError(ErrorType.FORBIDDEN, INVALID_TOKEN_MESSAGE)
        return found

    def optional_tenant(self, context: grpc.ServicerContext) -> Tenant | None:
        """The tenant the call proves, None when it offers no proof; Forbidden, with API
        Gateway's message, when the proof fails."""
        call = _CALL.get()
        if call is not None and call.proven:
            return call.proven[0]
        tenant = self._authenticate(context, call)
        if call is not None:
            call.proven.append(tenant)
        return tenant

    def application(self, context: grpc.ServicerContext) -> Application:
        tenant = self.optional_tenant(context)
        return self._tenancy.application_for_key(
            _text_metadata(context.invocation_metadata() or ()).get(API_KEY_METADATA, ""),
            tenant,
        )

    def _authenticate(self, context: grpc.ServicerContext, call: _Call | None) -> Tenant | None:
        metadata = context.invocation_metadata() or ()
        forwarded = dict(metadata).get(FORWARDED_REQUEST_METADATA)
        text = _text_metadata(metadata)
        if forwarded is None and ACCESS_KEY_METADATA not in text:
            return None
        proven: list[Tenant] = []

        def secret_for(access_key_id: str) -> str | None:
            found = self._tenancy.secret_for(access_key_id)
            if found is None:
                return None
            proven.append(found[0])
            return found[1]

        try:
            if isinstance(forwarded, bytes):
                self._check_forwarder(context)
                verify(
                    _signed_request(forwarded),
                    secret_for=secret_for,
                    now=self._clock(),
                    region=self._region,
                )
            elif call is not None:
                verify_call(
                    call.method,
                    request_bytes(call.request),
                    text,
                    secret_for=secret_for,
                    now=self._clock(),
                )
            else:
                raise SigV4Error(INVALID_TOKEN_MESSAGE)
        except SigV4Error as error:
            raise FacegateError(ErrorType.FORBIDDEN, error.message) from None
        tenant = proven[-1]
        # Found by the key the call signed with, so this is the key to record.
        self._tenancy.record_key_use(tenant.access_key_id)
        return tenant

    def _check_forwarder(self, context: grpc.ServicerContext) -> None:
        """A forwarded signature binds the body's hash, not the message built from the
        body, so only the REST shim may forward one: its certificate must name one of
        ``forwarders`` (when any are configured)."""
        if not self._forwarders:
            return
        # grpc's stubs type the values as bytes; they are lists of bytes.
        names: Any = context.auth_context().get("x509_subject_alternative_name") or ()
        if not self._forwarders & {bytes(name).decode("utf-8", "replace") for name in names}:
            raise SigV4Error(FORWARDER_REFUSED)


def _text_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> dict[str, str]:
    """The text entries of a call's metadata (binary ``-bin`` entries left out)."""
    return {k: v for k, v in metadata if isinstance(v, str)}


def _signed_request(forwarded: bytes) -> SignedRequest:
    try:
        message = auth_pb2.ForwardedHttpRequest.FromString(forwarded)
    except DecodeError:
        raise SigV4Error(INVALID_TOKEN_MESSAGE) from None
    return SignedRequest(
        method=message.method,
        raw_path=message.raw_path,
        raw_query=message.raw_query,
        headers=[(header.name, header.value) for header in message.headers],
        body=b"",
        payload_sha256=message.payload_sha256 or None,
    )
