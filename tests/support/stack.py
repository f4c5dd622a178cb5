"""The whole service in-process for integration tests: extractor, matcher, gateway and
REST shim on ephemeral ports over a temporary data directory, and a client that signs
its requests with botocore exactly as NEC ID's SDKs do (SigV4, execute-api)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from facegate.compose import compose
from facegate.settings import Settings, TlsSettings
from gateway.deps import GatewayDeps
from gateway.server import Gateway

REGION = "ap-southeast-2"


@dataclass(frozen=True)
class Stack:
    settings: Settings
    gateway: Gateway
    deps: GatewayDeps
    rest_url: str
    grpc_address: str


@contextmanager
def running_stack(
    data_dir: Path,
    *,
    database_url: str = "",
    jobs: Mapping[str, Any] | None = None,
    tls: TlsSettings | None = None,
    forwarders: tuple[str, ...] = (),
    **rest: Any,
) -> Iterator[Stack]:
    """Every service of ``facegate serve`` started in this process; ``rest`` overrides
    RestSettings fields (rate limits, body size, timeout), ``jobs`` JobsSettings fields;
    ``tls``: every server and channel over TLS (tests/support/tls.py); ``forwarders``:
    GatewaySettings.forwarders."""
    base = Settings.from_env()
    settings = replace(
        base,
        data_dir=data_dir,
        model_dir=base.models,
        host="127.0.0.1",
        extractor_port=0,
        matcher_port=0,
        grpc_port=0,
        rest_port=0,
        gateway=replace(
            base.gateway,
            database_url=database_url,
            # A shared store needs the deployment's key set explicitly (gateway/server.py).
            master_key=base64.b64encode(os.urandom(32)).decode() if database_url else "",
            replay_interval_s=0.2,
            forwarders=forwarders,
        ),
        rest=replace(base.rest, **rest),
        jobs=replace(base.jobs, **(jobs or {})),
        tls=tls or base.tls,
    )
    composed = compose(settings, grace_s=None)
    scheme = "https" if settings.tls.enabled else "http"
    try:
        assert composed.gateway is not None
        yield Stack(
            settings=composed.settings,
            gateway=composed.gateway,
            deps=composed.gateway.deps,
            rest_url=f"{scheme}://127.0.0.1:{composed.ports['rest']}",
            grpc_address=f"127.0.0.1:{composed.ports['gateway']}",
        )
    finally:
        composed.close()


@contextmanager
def extra_rest_server(stack: Stack, **rest: Any) -> Iterator[str]:
    """Another REST shim in front of the same gateway, with other RestSettings (a tiny
    rate limit, body limit or deadline); its base URL."""
    settings = replace(stack.settings, rest_port=0, rest=replace(stack.settings.rest, **rest))
    composed = compose(settings, ("rest",))
    try:
        yield f"http://127.0.0.1:{composed.ports['rest']}"
    finally:
        composed.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class SignedClient:
    """HTTP requests signed by botocore's SigV4 signer (service execute-api)."""

    def __init__(
        self,
        base_url: str,
        access_key_id: str,
        secret_access_key: str,
        *,
        api_key: str | None = None,
        region: str = REGION,
        session_token: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.credentials = Credentials(access_key_id, secret_access_key, session_token)
        self.api_key = api_key
        self.region = region
        self.http = httpx.Client(timeout=60.0)

    def close(self) -> None:
        self.http.close()

    def with_api_key(self, api_key: str | None) -> SignedClient:
        other = SignedClient(
            self.base_url,
            self.credentials.access_key,
            self.credentials.secret_key,
            api_key=api_key,
            region=self.region,
        )
        other.http = self.http
        return other

    def signed(
        self,
        method: str,
        path: str,
        body: object | None = None,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AWSRequest:
        url = self.base_url + quote(path, safe="/%")
        if query:
            url += "?" + urlencode(query)
        # bytes go as they are, for bodies json.dumps cannot write (e.g. a bare JSON null)
        if isinstance(body, bytes):
            data = body
        else:
            data = b"" if body is None else json.dumps(body).encode("utf-8")
        all_headers = {"content-type": "application/json", **(headers or {})}
        if self.api_key is not None:
            all_headers["x-api-key"] = self.api_key
        request = AWSRequest(method=method, url=url, data=data, headers=all_headers)
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(request)
        return request

    def send(self, request: AWSRequest) -> httpx.Response:
        return self.http.request(
            request.method,
            request.url,
            content=request.body or b"",
            headers=dict(request.headers.items()),
        )

    def call(
        self,
        method: str,
        path: str,
        body: object | None = None,
        *,
        query: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.send(self.signed(method, path, body, query=query))
