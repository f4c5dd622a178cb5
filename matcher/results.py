"""What a shard answers: scored hits and statistics."""

from __future__ import annotations

from dataclasses import dataclass

from matcher.gallery import IndexParams


@dataclass(frozen=True)
class ScoredHit:
    event_id: str
    subject_id: str
    score: int
    similarity: float


@dataclass(frozen=True)
class ShardStats:
    shard_index: int
    shard_count: int
    applied_sequence: int
    count: int
    deleted: int
    memory_bytes: int
    params: IndexParams
