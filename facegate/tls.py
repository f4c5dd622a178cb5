"""TLS for every gRPC server and channel and the REST listener (docs/operations.md, "TLS").

Servers read their certificate files again when the files change (cert-manager renews
them in place), checked at each new handshake, so a renewal needs no restart; a half
written pair (a new certificate beside the old key) is not used until both agree.
Channels check the files every few seconds and move new calls to a connection that
presents the renewed certificate (gateway/adapters/channel.py, gateway/rest/app.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from facegate.metrics import TLS_CERTIFICATE_EXPIRY
from facegate.settings import TlsSettings

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 10.0
"""A REST client that has not finished its handshake by then is dropped."""

FileStamp = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class TlsMaterial:
    """One consistent reading of the files: a chain, its key, the CA bundle."""

    certificate_chain: bytes
    private_key: bytes
    ca_bundle: bytes | None
    not_after: float
    """The leaf certificate's expiry, Unix time."""


def certificate_and_key(settings: TlsSettings) -> tuple[Path, Path]:
    if settings.cert_file is None or settings.key_file is None:
        raise ValueError("TLS is not configured (FACEGATE_TLS_CERT_FILE, _KEY_FILE)")
    return settings.cert_file, settings.key_file


def read_material(settings: TlsSettings) -> TlsMaterial:
    """The files ``settings`` name, checked: PEM, and the key belongs to the certificate.
    Raises ValueError (never quoting the key) otherwise."""
    # Imported here: a plaintext REST shim loads no cryptography at all
    # (tests/unit/gateway/rest/test_imports.py).
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_file, key_file = certificate_and_key(settings)
    chain = cert_file.read_bytes()
    key_pem = key_file.read_bytes()
    ca = settings.ca_file.read_bytes() if settings.ca_file is not None else None
    try:
        leaf = x509.load_pem_x509_certificates(chain)[0]
        key = serialization.load_pem_private_key(key_pem, password=None)
        if ca is not None:
            x509.load_pem_x509_certificates(ca)
    except ValueError as exc:
        raise ValueError(f"unreadable TLS files ({settings.cert_file}): {exc}") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if leaf.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise ValueError(f"{settings.key_file} is not the key of {settings.cert_file}")
    return TlsMaterial(chain, key_pem, ca, leaf.not_valid_after_utc.timestamp())


def _stamp(paths: list[Path]) -> FileStamp:
    stats = [os.stat(path) for path in paths]
    return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)


class CertificateFiles:
    """A process's certificate files, read again when they change; ``role`` ("server" or
    "client") labels the expiry metric."""

    def __init__(self, settings: TlsSettings, role: str = "server") -> None:
        self.settings = settings
        self._role = role
        self._paths = list(certificate_and_key(settings))
        if settings.ca_file is not None:
            self._paths.append(settings.ca_file)
        self._stamp = _stamp(self._paths)
        self.current = read_material(settings)
        TLS_CERTIFICATE_EXPIRY.labels(role).set(self.current.not_after)

    def renewed(self) -> TlsMaterial | None:
        """The files' new contents when they changed since the last reading and agree;
        None when unchanged, or still being replaced (tried again next time)."""
        try:
            stamp = _stamp(self._paths)
        except OSError:
            return None
        if stamp == self._stamp:
            return None
        try:
            material = read_material(self.settings)
        except (OSError, ValueError) as exc:
            log.warning("TLS files changed but are not usable yet: %s", exc)
            self._stamp = stamp  # warned once for this state of the files
            return None
        self._stamp = stamp
        self.current = material
        TLS_CERTIFICATE_EXPIRY.labels(self._role).set(material.not_after)
        log.info(
            "TLS certificate reloaded", extra={"role": self._role, "not_after": material.not_after}
        )
        return material


def grpc_server_credentials(settings: TlsSettings) -> grpc.ServerCredentials:
    """Credentials whose certificate follows the files: gRPC asks for a newer
    configuration at each handshake."""
    files = CertificateFiles(settings)

    def configuration(material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(material.private_key, material.certificate_chain)],
            root_certificates=material.ca_bundle,
        )

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        renewed = files.renewed()
        return None if renewed is None else configuration(renewed)

    return grpc.dynamic_ssl_server_credentials(
        configuration(files.current),
        fetch,  # type: ignore[arg-type]  # grpc documents None as "unchanged"; its stubs omit it
        require_client_authentication=settings.require_client_cert,
    )


def channel_credentials(material: TlsMaterial) -> grpc.ChannelCredentials:
    """What a channel verifies servers against and presents as its own certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=material.ca_bundle,
        private_key=material.private_key,
        certificate_chain=material.certificate_chain,
    )


class ClientCertificate:
    """The certificate a process's channels present, followed as its files change:
    :meth:`renewed` answers the new credentials at most once per ``check_every_s``."""

    def __init__(self, settings: TlsSettings, *, check_every_s: float = 5.0) -> None:
        self._files = CertificateFiles(settings, "client")
        self._check_every_s = check_every_s
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.credentials = channel_credentials(self._files.current)

    def renewed(self) -> grpc.ChannelCredentials | None:
        now = time.monotonic()
        if now - self._checked < self._check_every_s:
            return None
        with self._lock:
            if now - self._checked < self._check_every_s:
                return None
            self._checked = now
            material = self._files.renewed()
            if material is None:
                return None
            self.credentials = channel_credentials(material)
            return self.credentials


class RestContexts:
    """The REST listener's SSLContext, rebuilt when the files change."""

    def __init__(self, settings: TlsSettings) -> None:
        self._files = CertificateFiles(settings)
        self._context = self._build(self._files.current)

    def current(self) -> ssl.SSLContext:
        renewed = self._files.renewed()
        if renewed is not None:
            try:
                self._context = self._build(renewed)
            except ssl.SSLError as exc:
                log.warning("TLS files changed but are not usable yet: %s", exc.reason)
        return self._context

    def _build(self, material: TlsMaterial) -> ssl.SSLContext:
        settings = self._files.settings
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(*certificate_and_key(settings))
        if material.ca_bundle is not None:
            context.load_verify_locations(cadata=material.ca_bundle.decode("ascii"))
        if settings.rest_require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
        return context


def handshake_first(
    inner_class: type[asyncio.Protocol], contexts: RestContexts
) -> type[asyncio.Protocol]:
    """A uvicorn protocol class that completes the TLS handshake (with the current
    context) before handing the connection to ``inner_class``. asyncio's own TLS server
    drops a failed handshake silently; this logs it with the peer and the reason."""

    class HandshakeFirst(asyncio.Protocol):
        """Stands in front of uvicorn's protocol for the connection's whole life: asyncio
        delivers the first decrypted bytes before ``start_tls`` returns the transport
        uvicorn's protocol must be given first, so those are held until then."""

        def __init__(self, **uvicorn_arguments: Any) -> None:
            self._inner = inner_class(**uvicorn_arguments)
            self._handshake: asyncio.Task[None] | None = None
            self._connected = False
            self._early: list[bytes] = []
            self._early_eof = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self._handshake = asyncio.get_running_loop().create_task(self._wrap(transport))

        def data_received(self, data: bytes) -> None:
            if self._connected:
                self._inner.data_received(data)
            else:
                self._early.append(data)

        def eof_received(self) -> bool | None:
            if self._connected:
                return self._inner.eof_received()
            self._early_eof = True
            return True  # keep the transport open until uvicorn's protocol has it

        def pause_writing(self) -> None:
            if self._connected:
                self._inner.pause_writing()

        def resume_writing(self) -> None:
            if self._connected:
                self._inner.resume_writing()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._connected:
                self._inner.connection_lost(exc)
            elif self._handshake is not None:
                self._handshake.cancel()

        async def _wrap(self, transport: asyncio.Transport) -> None:
            peer = transport.get_extra_info("peername")
            try:
                wrapped = await asyncio.get_running_loop().start_tls(
                    transport,
                    self,
                    contexts.current(),
                    server_side=True,
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S,
                )
            except (OSError, TimeoutError) as exc:
                transport.close()
                log_refused_handshake(peer, exc)
                return
            assert wrapped is not None
            self._inner.connection_made(wrapped)
            self._connected = True
            for data in self._early:
                self._inner.data_received(data)
            self._early.clear()
            if self._early_eof and not self._inner.eof_received():
                wrapped.close()

    return HandshakeFirst


def log_refused_handshake(peer: object, exc: BaseException) -> None:
    """One warning with who and why; the reason is OpenSSL's, never key material."""
    log.warning(
        "refused TLS handshake",
        extra={"peer": _peer_text(peer), "reason": handshake_failure_reason(exc)},
    )


def handshake_failure_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc.strerror or type(exc).__name__)
    if isinstance(exc, TimeoutError):
        return "handshake timed out"
    return str(exc) or type(exc).__name__


def _peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
