"""No secret crosses a process boundary: every gRPC call that reaches the extractor, the
matcher or the gateway, from the REST shim, from the gateway itself or from a signed
gRPC client, carries no tenant secret and no master key in its metadata."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import grpc
import pytest

import extractor.server
import gateway.server
import matcher.server
from bench.dataset import faces_dir
from facegate import grpcserver
from facegate.rpc_auth import RpcSigner
from facegate.v1 import galleries_pb2, galleries_pb2_grpc, tags_pb2, tags_pb2_grpc
from gateway.credentials import load_master_key
from gateway.tenancy import create_tenant
from tests.support.stack import SignedClient, running_stack

OBAMA = faces_dir() / "test" / "face_recognition" / "obama"

Seen = list[tuple[str, str, str | bytes]]


class _MetadataRecorder(grpc.ServerInterceptor):
    def __init__(self, server: str, seen: Seen) -> None:
        self._server = server
        self._seen = seen

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        for key, value in handler_call_details.invocation_metadata or ():
            self._seen.append((self._server, f"{handler_call_details.method} {key}", value))
        return continuation(handler_call_details)


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Every metadata entry any of the stack's gRPC servers receives."""
    recorded: Seen = []
    for name, module in (
        ("extractor", extractor.server),
        ("matcher", matcher.server),
        ("gateway", gateway.server),
    ):

        def recording(
            *, server: str = name, interceptors: tuple[Any, ...] = (), **kwargs: Any
        ) -> grpc.Server:
            return grpcserver.new_server(
                interceptors=[*interceptors, _MetadataRecorder(server, recorded)], **kwargs
            )

        monkeypatch.setattr(module, "new_server", recording)
    return recorded


def _leaks(value: str | bytes, secret: str) -> bool:
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    forms = (secret.encode(), base64.b64encode(secret.encode()), secret.encode().hex().encode())
    return any(form in raw for form in forms)


def test_no_hop_carries_a_secret(tmp_path_factory: pytest.TempPathFactory, seen: Seen) -> None:
    with running_stack(tmp_path_factory.mktemp("no-secret")) as stack:
        created = create_tenant(stack.deps.database, stack.deps.secrets, "no-secret")
        secret = created.secret_access_key
        master_key = load_master_key(
            stack.settings.gateway.master_key, stack.settings.gateway_dir / "master.key"
        )
        rest = SignedClient(stack.rest_url, created.tenant.access_key_id, secret)
        try:
            gallery = rest.call("POST", "/api/galleries", {"name": "g", "size": 10}).json()
            keyed = rest.with_api_key(gallery["apiKey"])
            assert keyed.call("POST", "/v1.1/tags/t").status_code == 200
            photo = (OBAMA / "obama.jpg").read_bytes()
            register = keyed.call("POST", "/v1.1/subjects", {"face": _b64(photo), "tags": ["t"]})
            assert register.status_code == 201, register.text
            probe = _b64((OBAMA / "obama2.jpg").read_bytes())
            assert keyed.call("POST", "/v1.1/face/search", {"probe": probe}).status_code == 200
            assert keyed.call("GET", "/v1.1/subjects").status_code == 200
        finally:
            rest.close()
        with grpc.insecure_channel(stack.grpc_address) as plain:
            channel = grpc.intercept_channel(plain, RpcSigner(created.tenant.access_key_id, secret))
            galleries = galleries_pb2_grpc.GalleriesStub(channel)
            made = galleries.Create(galleries_pb2.GalleriesCreateRequest(name="h", size=5))
            tags = tags_pb2_grpc.TagsStub(plain)
            tags.List(tags_pb2.TagsListRequest(), metadata=(("x-api-key", made.api_key),))
    servers = {server for server, _, _ in seen}
    assert servers == {"extractor", "matcher", "gateway"}, servers
    assert any(key.endswith("facegate-forwarded-request-bin") for _, key, _ in seen)
    assert any(key.endswith("facegate-signature") for _, key, _ in seen)
    leaks = [(server, key) for server, key, value in seen if _leaks(value, secret)]
    assert leaks == []
    assert not [key for _, key, value in seen if master_key in _bytes(value)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")
