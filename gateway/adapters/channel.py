"""The gRPC channel every client of an internal service uses."""

from __future__ import annotations

import grpc

from facegate.settings import TlsSettings
from facegate.tls import grpc_channel_credentials

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
    """A channel to ``address``, over TLS when ``tls`` is enabled (its files are read
    now: a renewed client certificate is used by channels opened later)."""
    if tls is not None and tls.enabled:
        return grpc.secure_channel(address, grpc_channel_credentials(tls), CHANNEL_OPTIONS)
    return grpc.insecure_channel(address, CHANNEL_OPTIONS)
