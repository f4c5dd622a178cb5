"""The whole stack over mTLS: REST over HTTPS with SigV4-signed requests, gRPC with a
client certificate; clients without one, with one from another CA, or in plaintext
refused (and the REST refusals logged with peer and reason); renewed certificate files
served to new connections without a restart; their expiry exported as a metric."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from bench.dataset import faces_dir
from facegate import probe
from facegate.compose import compose
from facegate.contract import FORWARDED_REQUEST_METADATA
from facegate.errors import FacegateError
from facegate.rpc_auth import RpcSigner
from facegate.settings import TlsSettings
from facegate.v1 import galleries_pb2, galleries_pb2_grpc
from gateway.adapters.channel import open_channel
from gateway.identity import FORWARDER_REFUSED
from gateway.tenancy import create_tenant
from tests.support.stack import SignedClient, Stack, b64, running_stack
from tests.support.tls import Authority, Issued, mtls_settings, replace_files

OBAMA = faces_dir() / "test" / "face_recognition" / "obama"


class Pki:
    def __init__(self, folder: Path) -> None:
        self.authority = Authority(folder / "ca")
        self.server = self.authority.issue("server")
        self.client = self.authority.issue("client")
        self.stranger = Authority(folder / "other", "another CA").issue("stranger")
        self.settings = mtls_settings(self.authority, self.server)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("tls-stack"), tls=pki.settings) as running:
        yield running


def grpc_addresses(stack: Stack) -> dict[str, str]:
    settings = stack.settings
    return {
        "gateway": stack.grpc_address,
        "extractor": f"127.0.0.1:{settings.extractor_port}",
        "matcher": f"127.0.0.1:{settings.matcher_port}",
    }


def health(channel: grpc.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status  # type: ignore[no-any-return]


def client_tls(pki: Pki, issued: Issued | None) -> TlsSettings:
    if issued is None:
        return TlsSettings()
    return TlsSettings(
        cert_file=issued.cert_file, key_file=issued.key_file, ca_file=pki.authority.ca_file
    )


def test_rest_over_https_registers_and_searches(stack: Stack, pki: Pki) -> None:
    assert stack.rest_url.startswith("https://")
    created = create_tenant(stack.deps.database, stack.deps.secrets, "tls")
    rest = SignedClient(stack.rest_url, created.tenant.access_key_id, created.secret_access_key)
    rest.http = httpx.Client(verify=ssl.create_default_context(cafile=pki.authority.ca_file))
    try:
        gallery = rest.call("POST", "/api/galleries", {"name": "g", "size": 10}).json()
        keyed = rest.with_api_key(gallery["apiKey"])
        photo = (OBAMA / "obama.jpg").read_bytes()
        registered = keyed.call("POST", "/v1.1/subjects", {"face": b64(photo)})
        assert registered.status_code == 201, registered.text
        probe = b64((OBAMA / "obama2.jpg").read_bytes())
        found = keyed.call("POST", "/v1.1/face/search", {"probe": probe})
        assert found.status_code == 200, found.text
        assert found.json()["candidates"], found.text
    finally:
        rest.http.close()


def test_grpc_with_a_client_certificate_is_served(stack: Stack, pki: Pki) -> None:
    for name, address in grpc_addresses(stack).items():
        with open_channel(address, client_tls(pki, pki.client)) as channel:
            assert health(channel) == health_pb2.HealthCheckResponse.SERVING, name
    created = create_tenant(stack.deps.database, stack.deps.secrets, "tls-grpc")
    signer = RpcSigner(created.tenant.access_key_id, created.secret_access_key)
    with open_channel(stack.grpc_address, client_tls(pki, pki.client)) as channel:
        galleries = galleries_pb2_grpc.GalleriesStub(grpc.intercept_channel(channel, signer))
        made = galleries.Create(galleries_pb2.GalleriesCreateRequest(name="h", size=5))
    assert made.api_key


@pytest.mark.parametrize("client", ["plaintext", "no certificate", "another CA"])
def test_grpc_clients_without_a_trusted_certificate_are_refused(
    stack: Stack, pki: Pki, client: str
) -> None:
    ca = pki.authority.ca_file.read_bytes()
    stranger = pki.stranger
    for name, address in grpc_addresses(stack).items():
        if client == "plaintext":
            channel = grpc.insecure_channel(address)
        elif client == "no certificate":
            channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(ca))
        else:
            credentials = grpc.ssl_channel_credentials(
                ca, stranger.key_file.read_bytes(), stranger.cert_file.read_bytes()
            )
            channel = grpc.secure_channel(address, credentials)
        with channel, pytest.raises(grpc.RpcError) as refused:
            health(channel)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, name


def test_rest_refusals_are_logged_with_peer_and_reason(
    stack: Stack, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    plaintext_url = stack.rest_url.replace("https://", "http://")
    with caplog.at_level(logging.WARNING, logger="facegate.tls"):
        with pytest.raises(httpx.HTTPError):
            httpx.get(plaintext_url + "/openapi.json", timeout=5)
        refusal = _wait_for_refusal(caplog)
    assert refusal.peer.startswith("127.0.0.1:")  # type: ignore[attr-defined]
    assert refusal.reason == "HTTP_REQUEST"  # type: ignore[attr-defined]
    key_text = pki.server.key_file.read_text()
    assert all(key_text not in record.getMessage() for record in caplog.records)


def test_rest_can_require_client_certificates(
    stack: Stack, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    tls = replace(pki.settings, rest_require_client_cert=True)
    composed = compose(replace(stack.settings, rest_port=0, tls=tls), ("rest",))
    url = f"https://127.0.0.1:{composed.ports['rest']}/openapi.json"
    try:
        trusted = ssl.create_default_context(cafile=pki.authority.ca_file)
        with caplog.at_level(logging.WARNING, logger="facegate.tls"):
            with pytest.raises(httpx.HTTPError):
                httpx.get(url, verify=trusted, timeout=5)
            refusal = _wait_for_refusal(caplog)
        assert "CERTIFICATE" in refusal.reason  # type: ignore[attr-defined]
        trusted.load_cert_chain(pki.client.cert_file, pki.client.key_file)
        assert httpx.get(url, verify=trusted, timeout=5).status_code == 200
    finally:
        composed.close()


def test_renewed_files_are_served_to_new_connections_and_exported(stack: Stack, pki: Pki) -> None:
    ports = {name: int(a.rsplit(":", 1)[1]) for name, a in grpc_addresses(stack).items()}
    ports["rest"] = int(stack.rest_url.rsplit(":", 1)[1])
    before = pki.server.certificate
    assert _expiry_metric() == before.not_valid_after_utc.timestamp()
    assert {_served_serial(pki, port) for port in ports.values()} == {before.serial_number}

    renewed = pki.authority.issue("renewed", days=20)
    replace_files(renewed, pki.server)

    for name, port in ports.items():
        assert _served_serial(pki, port) == renewed.certificate.serial_number, name
    assert _expiry_metric() == renewed.certificate.not_valid_after_utc.timestamp()
    with open_channel(stack.grpc_address, client_tls(pki, pki.client)) as channel:
        assert health(channel) == health_pb2.HealthCheckResponse.SERVING

    # The REST shim's and the gateway's channels present the renewed certificate to their
    # backends once they next look at the files (every few seconds), without a restart.
    created = create_tenant(stack.deps.database, stack.deps.secrets, "tls-renewal")
    rest = SignedClient(stack.rest_url, created.tenant.access_key_id, created.secret_access_key)
    rest.http = httpx.Client(verify=ssl.create_default_context(cafile=pki.authority.ca_file))
    try:
        gallery = rest.call("POST", "/api/galleries", {"name": "renewal", "size": 5}).json()
        keyed = rest.with_api_key(gallery["apiKey"])
        probe = b64((OBAMA / "obama2.jpg").read_bytes())
        deadline = time.monotonic() + 15.0
        expected = renewed.certificate.not_valid_after_utc.timestamp()
        while _expiry_metric("client") != expected and time.monotonic() < deadline:
            assert keyed.call("POST", "/v1.1/face/search", {"probe": probe}).status_code == 404
            time.sleep(0.5)
        assert _expiry_metric("client") == expected
        assert keyed.call("POST", "/v1.1/face/search", {"probe": probe}).status_code == 404
    finally:
        rest.http.close()


def _served_serial(pki: Pki, port: int) -> int:
    """The serial of the certificate a new TLS connection to ``port`` is shown."""
    context = ssl.create_default_context(cafile=pki.authority.ca_file)
    context.load_cert_chain(pki.client.cert_file, pki.client.key_file)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _expiry_metric(role: str = "server") -> float | None:
    return REGISTRY.get_sample_value(
        "facegate_tls_certificate_expiry_timestamp_seconds", {"role": role}
    )


def _wait_for_refusal(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """The refusal's log line (written on the server's thread just after the client saw
    the connection fail)."""
    for _ in range(200):
        for record in caplog.records:
            if record.getMessage() == "refused TLS handshake":
                return record
        time.sleep(0.01)
    raise AssertionError("no refused handshake was logged")


def test_the_exec_probe_checks_health_over_mtls(
    stack: Stack, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = [address.rsplit(":", 1)[1] for address in grpc_addresses(stack).values()]
    for name in list(os.environ):
        if name.startswith("FACEGATE_TLS_"):
            monkeypatch.delenv(name)
    assert [probe.main([port, "--timeout", "2"]) for port in ports] == [1, 1, 1]
    monkeypatch.setenv("FACEGATE_TLS_CERT_FILE", str(pki.client.cert_file))
    monkeypatch.setenv("FACEGATE_TLS_KEY_FILE", str(pki.client.key_file))
    monkeypatch.setenv("FACEGATE_TLS_CA_FILE", str(pki.authority.ca_file))
    assert [probe.main([port]) for port in ports] == [0, 0, 0]


def test_only_the_rest_shim_may_forward_signatures(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> None:
    """Under mTLS the gateway takes a forwarded REST signature only from a certificate
    that names one of its forwarders (the shim's names localhost here)."""
    folder = tmp_path_factory.mktemp("forwarders")
    with running_stack(folder, tls=pki.settings, forwarders=("localhost",)) as stack:
        created = create_tenant(stack.deps.database, stack.deps.secrets, "forwarders")
        rest = SignedClient(stack.rest_url, created.tenant.access_key_id, created.secret_access_key)
        rest.http = httpx.Client(verify=ssl.create_default_context(cafile=pki.authority.ca_file))
        try:
            assert rest.call("GET", "/api/galleries").status_code == 200
        finally:
            rest.http.close()
        elsewhere = pki.authority.issue("elsewhere", dns_names=("elsewhere.example",))
        with open_channel(stack.grpc_address, client_tls(pki, elsewhere)) as channel:
            forged = ((FORWARDED_REQUEST_METADATA, b"\x0a\x03GET"),)
            with pytest.raises(grpc.RpcError) as refused:
                galleries_pb2_grpc.GalleriesStub(channel).List(
                    galleries_pb2.GalleriesListRequest(), metadata=forged, timeout=10
                )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert FacegateError.from_rpc_error(refused.value).message == FORWARDER_REFUSED
