"""What a shard tells of itself: its statistics."""

from __future__ import annotations

from dataclasses import dataclass

from matcher.params import IndexParams


@dataclass(frozen=True)
class ShardStats:
    shard_index: int
    shard_count: int
    applied_sequence: int
    count: int
    deleted: int
    memory_bytes: int
    params: IndexParams
