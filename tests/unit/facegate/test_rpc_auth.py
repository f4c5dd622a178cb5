"""A signed gRPC call proves its key pair without the secret, and fails with SigV4's
messages when the secret, the method, the request or the time is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from facegate.contract import ACCESS_KEY_METADATA, SIGNATURE_METADATA, SIGNED_AT_METADATA
from facegate.rpc_auth import RpcSigner, request_bytes, sign_call, verify_call
from facegate.sigv4 import INVALID_TOKEN, SIGNATURE_MISMATCH, SigV4Error
from facegate.v1 import galleries_pb2

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
METHOD = "/facegate.v1.Galleries/Create"
REQUEST = galleries_pb2.GalleriesCreateRequest(name="staff", size=10)
SECRETS = {"AKFGTEST": "the-secret"}


def signed(
    *, secret: str = "the-secret", at: datetime = NOW, request: Any = REQUEST
) -> dict[str, str]:
    return dict(sign_call(METHOD, request, access_key_id="AKFGTEST", secret=secret, now=at))


def check(metadata: dict[str, str], *, method: str = METHOD, request: Any = REQUEST) -> str:
    return verify_call(method, request_bytes(request), metadata, secret_for=SECRETS.get, now=NOW)


def refusal(metadata: dict[str, str], **kwargs: Any) -> str:
    with pytest.raises(SigV4Error) as refused:
        check(metadata, **kwargs)
    return refused.value.message


def test_a_signed_call_names_its_key_and_carries_no_secret() -> None:
    metadata = signed()
    assert check(metadata) == "AKFGTEST"
    assert set(metadata) == {ACCESS_KEY_METADATA, SIGNED_AT_METADATA, SIGNATURE_METADATA}
    assert not any("the-secret" in value for value in metadata.values())


def test_what_the_signature_covers() -> None:
    assert refusal(signed(secret="other")) == SIGNATURE_MISMATCH
    assert refusal(signed(), method="/facegate.v1.Galleries/Delete") == SIGNATURE_MISMATCH
    other = galleries_pb2.GalleriesCreateRequest(name="staff", size=11)
    assert refusal(signed(), request=other) == SIGNATURE_MISMATCH
    tampered = signed() | {SIGNED_AT_METADATA: "20261208T120001Z"}
    assert refusal(tampered) == SIGNATURE_MISMATCH


def test_unknown_keys_and_missing_parts() -> None:
    assert refusal(signed() | {ACCESS_KEY_METADATA: "AKFGOTHER"}) == INVALID_TOKEN
    for part in (ACCESS_KEY_METADATA, SIGNED_AT_METADATA, SIGNATURE_METADATA):
        partial = {k: v for k, v in signed().items() if k != part}
        assert refusal(partial) == INVALID_TOKEN
    assert refusal(signed() | {SIGNED_AT_METADATA: "2026-12-08"}).startswith(
        "Date must be in ISO-8601 'basic format'."
    )


def test_the_skew_rule_is_sigv4s() -> None:
    assert refusal(signed(at=NOW - timedelta(minutes=6))).startswith("Signature expired: ")
    assert refusal(signed(at=NOW + timedelta(minutes=6))).startswith("Signature not yet current: ")
    assert check(signed(at=NOW - timedelta(minutes=4))) == "AKFGTEST"


class _Details:
    method = METHOD
    timeout = 5.0
    metadata = (("x-api-key", "k"), (SIGNATURE_METADATA, "stale"))
    credentials = None
    wait_for_ready = None
    compression = None


def test_the_interceptor_signs_each_call() -> None:
    sent: list[Any] = []
    signer = RpcSigner("AKFGTEST", "the-secret", clock=lambda: NOW)
    signer.intercept_unary_unary(lambda d, r: sent.append((d, r)), _Details(), REQUEST)  # type: ignore[arg-type]
    details, request = sent[0]
    assert request is REQUEST
    assert details.timeout == 5.0
    metadata = dict(details.metadata)
    assert metadata["x-api-key"] == "k"
    assert check(metadata) == "AKFGTEST"
    with pytest.raises(TypeError):
        signer.intercept_unary_unary(lambda d, r: None, _Details(), b"raw")  # type: ignore[arg-type]
