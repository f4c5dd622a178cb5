"""Which shard holds an entry: the placement rule the gateway and the shards share.

An entry lives on shard ``shard_of(event_id, n)``: the first 8 bytes of the BLAKE2b
digest of the event id's UTF-8 bytes, read as a little-endian unsigned integer, modulo
the number of shards n. The rule must give the same answer in every process, on every
machine and in every version, or a write and a later delete of the same event would
reach different shards; so it is a fixed cryptographic hash and never Python's
``hash()``, which is salted per process. Any set of distinct ids, however alike, spreads
evenly over the shards.

Only the event id is hashed, not the gallery: a gallery's entries spread over every
shard, so one large gallery uses every shard's CPU for its searches. Consequences for
the gateway:

- ``Upsert`` and ``Delete`` go to the shard of each event id (see :func:`split_by_shard`);
- ``DeleteSubject``, ``ClearTagBit``, ``DropGallery``, ``Search`` and gallery ``Stats``
  go to every shard (a subject's events live anywhere), ``Search`` results merged by
  :mod:`matcher.merge`.

Changing n moves most entries (plain modulo, not consistent hashing): resharding means
rebuilding the shards from the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

DIGEST_BYTES = 8


def shard_of(event_id: str, shard_count: int) -> int:
    """The index 0..shard_count-1 of the shard that holds ``event_id``."""
    if shard_count < 1:
        raise ValueError(f"shard_count must be at least 1, not {shard_count}")
    digest = hashlib.blake2b(event_id.encode("utf-8"), digest_size=DIGEST_BYTES).digest()
    return int.from_bytes(digest, "little") % shard_count


def split_by_shard(
    items: Iterable[T], event_id: Callable[[T], str], shard_count: int
) -> list[list[T]]:
    """``items`` grouped by the shard of their event id (index i = shard i), each group in
    the original order, so a batched write keeps its order on every shard."""
    groups: list[list[T]] = [[] for _ in range(shard_count)]
    for item in items:
        groups[shard_of(event_id(item), shard_count)].append(item)
    return groups
