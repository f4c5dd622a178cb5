"""The gRPC channel every client of an internal service uses."""

from __future__ import annotations

import grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def open_channel(address: str) -> grpc.Channel:
    # A restarted service should be used again within a couple of seconds, not after
    # gRPC's default reconnect backoff (which grows to two minutes).
    return grpc.insecure_channel(
        address,
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
            # A name resolving to several pods (a headless Service: dns:///host:port)
            # spreads calls over all of them instead of pinning one connection.
            ("grpc.lb_policy_name", "round_robin"),
        ],
    )
