"""A gRPC caller's proof that it holds a tenant's key pair, without sending the secret:
a SigV4-style signature over the RPC, the time and the request's bytes.

Metadata of a signed call::

    facegate-access-key-id  the tenant's access key id
    facegate-signed-at      when it was signed, ISO 8601 basic UTC (20261208T013000Z)
    facegate-signature      hex HMAC-SHA256(signing key, string to sign)

    string to sign = "FACEGATE-HMAC-SHA256" \\n signed-at \\n scope \\n full method name
                     \\n hex SHA-256 of the request message's deterministic serialisation
    scope          = <yyyymmdd>/facegate/grpc/aws4_request
    signing key    = SigV4's key for (secret, yyyymmdd, "facegate", "grpc")

The gateway re-serialises the message it parsed, deterministically, and checks the
signature with the same skew rule (five minutes either way) and the same messages as a
SigV4 request. Like SigV4, a signature may be replayed within the skew window; the
transport's encryption is what keeps it from an eavesdropper.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import grpc
from google.protobuf.message import Message

from facegate.contract import ACCESS_KEY_METADATA, SIGNATURE_METADATA, SIGNED_AT_METADATA
from facegate.sigv4 import (
    INVALID_TOKEN,
    ISO_BASIC,
    SIGNATURE_MISMATCH,
    TERMINATOR,
    SigV4Error,
    check_signing_time,
    parse_amz_date,
    sha256_hex,
    signing_key,
)

ALGORITHM = "FACEGATE-HMAC-SHA256"
SCOPE_REGION = "facegate"
SCOPE_SERVICE = "grpc"
MAX_SKEW = timedelta(minutes=5)

SecretLookup = Callable[[str], str | None]
_Request = TypeVar("_Request")


def request_bytes(request: Message) -> bytes:
    """The bytes a signature covers: the message's deterministic serialisation."""
    return request.SerializeToString(deterministic=True)


def _signature(secret: str, signed_at: datetime, method: str, payload: bytes) -> str:
    day = signed_at.strftime("%Y%m%d")
    scope = f"{day}/{SCOPE_REGION}/{SCOPE_SERVICE}/{TERMINATOR}"
    string_to_sign = "\n".join(
        (ALGORITHM, signed_at.strftime(ISO_BASIC), scope, method, sha256_hex(payload))
    )
    key = signing_key(secret, day, SCOPE_REGION, SCOPE_SERVICE)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_call(
    method: str, request: Message, *, access_key_id: str, secret: str, now: datetime
) -> tuple[tuple[str, str], ...]:
    """The metadata that proves ``access_key_id``'s key pair on a call of ``method``
    (full name, "/facegate.v1.Galleries/List") with ``request``."""
    signed_at = now.astimezone(UTC).replace(microsecond=0)
    signature = _signature(secret, signed_at, method, request_bytes(request))
    return (
        (ACCESS_KEY_METADATA, access_key_id),
        (SIGNED_AT_METADATA, signed_at.strftime(ISO_BASIC)),
        (SIGNATURE_METADATA, signature),
    )


def verify_call(
    method: str,
    payload: bytes,
    metadata: Mapping[str, str],
    *,
    secret_for: SecretLookup,
    now: datetime,
) -> str:
    """The access key id whose key pair signed this call; else :class:`SigV4Error` with
    the message API Gateway gives the same fault in a SigV4 request."""
    access_key_id = metadata.get(ACCESS_KEY_METADATA, "")
    signature = metadata.get(SIGNATURE_METADATA, "")
    stamp = metadata.get(SIGNED_AT_METADATA, "")
    if not (access_key_id and signature and stamp):
        raise SigV4Error(INVALID_TOKEN)
    signed_at = parse_amz_date(stamp)
    check_signing_time(signed_at, now.astimezone(UTC), MAX_SKEW)
    secret = secret_for(access_key_id)
    if secret is None:
        raise SigV4Error(INVALID_TOKEN)
    expected = _signature(secret, signed_at, method, payload)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise SigV4Error(SIGNATURE_MISMATCH)
    return access_key_id


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


class RpcSigner(grpc.UnaryUnaryClientInterceptor):
    """Signs every unary call on a channel with a tenant's key pair:
    ``grpc.intercept_channel(channel, RpcSigner(access_key_id, secret))``."""

    def __init__(
        self,
        access_key_id: str,
        secret: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._access_key_id = access_key_id
        self._secret = secret
        self._clock = clock

    def intercept_unary_unary(
        self,
        continuation: Callable[[Any, _Request], Any],
        details: grpc.ClientCallDetails,
        request: _Request,
    ) -> Any:
        if not isinstance(request, Message):
            raise TypeError(f"cannot sign a call whose request is a {type(request).__name__}")
        signed = sign_call(
            details.method,
            request,
            access_key_id=self._access_key_id,
            secret=self._secret,
            now=self._clock(),
        )
        metadata = [
            (k, v)
            for k, v in (details.metadata or ())
            if k not in (ACCESS_KEY_METADATA, SIGNED_AT_METADATA, SIGNATURE_METADATA)
        ]
        return continuation(
            _CallDetails(
                details.method,
                details.timeout,
                [*metadata, *signed],
                details.credentials,
                details.wait_for_ready,
                details.compression,
            ),
            request,
        )
