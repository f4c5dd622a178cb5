"""A request body as the REST shim reads it: its bytes, refused past the size limit, and
their SHA-256, which the SigV4 check needs.

Reading a multi-megabyte body keeps the event loop's thread busy (uvicorn hands it over in
small pieces), so a large body's hash is computed on a worker thread while the rest is
still arriving (hashlib releases the GIL): by the time the body is whole, most of it is
hashed. A small body is hashed at once on the loop's thread, where a thread hop would cost
more than it saves.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

HASH_AHEAD_BYTES = 1 << 20
"""Bytes gathered before they are handed to the hashing thread together."""


class _Hasher:
    """SHA-256 of the pieces added, in order; pieces are hashed ahead on worker threads
    once enough have gathered, one batch after the other."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._gathered: list[bytes] = []
        self._gathered_bytes = 0
        self._ahead: asyncio.Future[None] | None = None
        self._hex: str | None = None

    def add(self, piece: bytes) -> None:
        self._gathered.append(piece)
        self._gathered_bytes += len(piece)
        if self._gathered_bytes >= HASH_AHEAD_BYTES:
            self._hash_ahead()

    def _hash_ahead(self) -> None:
        pieces, self._gathered, self._gathered_bytes = self._gathered, [], 0
        self._ahead = asyncio.ensure_future(self._after(self._ahead, pieces))

    async def _after(self, before: asyncio.Future[None] | None, pieces: list[bytes]) -> None:
        if before is not None:
            await before
        await asyncio.to_thread(self._update, pieces)

    def _update(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self._sha.update(piece)

    async def hexdigest(self) -> str:
        if self._hex is None:
            if self._ahead is not None:
                if self._gathered:
                    self._hash_ahead()
                await self._ahead
            self._update(self._gathered)
            self._gathered = []
            self._hex = self._sha.hexdigest()
        return self._hex


class Body:
    """A whole request body and, on demand, its SHA-256."""

    def __init__(self, data: bytes, hasher: _Hasher) -> None:
        self.data = data
        self._hasher = hasher

    async def sha256_hex(self) -> str:
        return await self._hasher.hexdigest()


async def read_body(
    headers: list[tuple[bytes, bytes]], receive: Receive, limit: int
) -> Body | None:
    """The whole body, or None as soon as it is known to exceed ``limit``."""
    for name, value in headers:
        if name == b"content-length":
            try:
                if int(value) > limit:
                    return None
            except ValueError:
                pass
    hasher = _Hasher()
    pieces: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        piece: bytes = message.get("body", b"")
        size += len(piece)
        if size > limit:
            return None
        if piece:
            pieces.append(piece)
            hasher.add(piece)
        if not message.get("more_body", False):
            break
    return Body(b"".join(pieces), hasher)
