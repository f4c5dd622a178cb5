"""The gRPC channel every client of an internal service uses."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc

from facegate.settings import TlsSettings
from facegate.tls import ClientCertificate

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # A restarted service should be used again within a couple of seconds, not after
    # gRPC's default reconnect backoff (which grows to two minutes).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # A name resolving to several pods (a headless Service: dns:///host:port)
    # spreads calls over all of them instead of pinning one connection.
    ("grpc.lb_policy_name", "round_robin"),
]


def open_channel(address: str, tls: TlsSettings | None = None) -> grpc.Channel:
    """A channel to ``address``, over TLS when ``tls`` is enabled, presenting the
    certificate its files hold now and, once they are renewed, the new one."""
    if tls is not None and tls.enabled:
        return RenewingChannel(address, ClientCertificate(tls))
    return grpc.insecure_channel(address, CHANNEL_OPTIONS)


class RenewingChannel(grpc.Channel):
    """A TLS channel whose client certificate follows its files: after a renewal, new
    calls go over a channel opened with the new certificate. Calls already under way
    finish on the old one, which is closed at the next renewal or with this channel
    (renewals are weeks apart). Stubs hold this channel's multicallables, which pick the
    current channel at each call."""

    def __init__(self, address: str, certificate: ClientCertificate) -> None:
        self._address = address
        self._certificate = certificate
        self._lock = threading.Lock()
        self._channel = self._open(certificate.credentials)
        self._retired: grpc.Channel | None = None

    def _open(self, credentials: grpc.ChannelCredentials) -> grpc.Channel:
        return grpc.secure_channel(self._address, credentials, CHANNEL_OPTIONS)

    def current(self) -> grpc.Channel:
        renewed = self._certificate.renewed()
        if renewed is not None:
            with self._lock:
                if self._retired is not None:
                    self._retired.close()
                self._retired, self._channel = self._channel, self._open(renewed)
        return self._channel

    def subscribe(
        self, callback: Callable[[grpc.ChannelConnectivity], None], try_to_connect: bool = False
    ) -> None:
        self.current().subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        self._channel.unsubscribe(callback)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Renewing(self, "unary_unary", method, args, kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Renewing(self, "unary_stream", method, args, kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Renewing(self, "stream_unary", method, args, kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Renewing(self, "stream_stream", method, args, kwargs)

    def close(self) -> None:
        with self._lock:
            if self._retired is not None:
                self._retired.close()
            self._channel.close()

    def __enter__(self) -> RenewingChannel:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _Renewing:
    """A multicallable of :class:`RenewingChannel`: the same rpc, on whichever channel
    is current when it is called."""

    def __init__(
        self,
        channel: RenewingChannel,
        kind: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._channel = channel
        self._kind = kind
        self._method = method
        self._args = args
        self._kwargs = kwargs
        self._bound: tuple[grpc.Channel, Any] | None = None

    def _callable(self) -> Any:
        current = self._channel.current()
        bound = self._bound
        if bound is None or bound[0] is not current:
            made = getattr(current, self._kind)(self._method, *self._args, **self._kwargs)
            bound = self._bound = (current, made)
        return bound[1]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._callable()(*args, **kwargs)

    def future(self, *args: Any, **kwargs: Any) -> Any:
        return self._callable().future(*args, **kwargs)

    def with_call(self, *args: Any, **kwargs: Any) -> Any:
        return self._callable().with_call(*args, **kwargs)
