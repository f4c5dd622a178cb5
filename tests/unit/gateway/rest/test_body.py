"""Reading request bodies: the bytes as sent, their SHA-256 (hashed ahead on a worker
thread for large bodies), and the size limit."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import pytest

from gateway.rest.body import HASH_AHEAD_BYTES, read_body


def _receive(pieces: list[bytes]) -> Any:
    queue = list(pieces)

    async def receive() -> dict[str, Any]:
        piece = queue.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(queue)}

    return receive


def _read(pieces: list[bytes], limit: int, length: int | None = None) -> Any:
    headers = [] if length is None else [(b"content-length", str(length).encode())]

    async def run() -> tuple[bytes, str] | None:
        body = await read_body(headers, _receive(pieces), limit)
        return None if body is None else (body.data, await body.sha256_hex())

    return asyncio.run(run())


@pytest.mark.parametrize(
    "sizes",
    [
        [],
        [0],
        [100],
        [65536] * 3,
        [65536] * 40 + [17],  # several batches hashed ahead, and a tail
        [HASH_AHEAD_BYTES],
        [HASH_AHEAD_BYTES - 1, 1, 5],
    ],
)
def test_body_and_hash_are_those_sent(sizes: list[int]) -> None:
    pieces = [os.urandom(size) for size in sizes] or [b""]
    whole = b"".join(pieces)
    assert _read(pieces, limit=len(whole) + 1) == (whole, hashlib.sha256(whole).hexdigest())


def test_bodies_over_the_limit_are_refused() -> None:
    assert _read([b"x" * 600, b"x" * 600], limit=1000) is None
    assert _read([b"x"], limit=1000, length=1001) is None
    assert _read([b"x" * 1000], limit=1000, length=1000) is not None
