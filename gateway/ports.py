"""What the gateway's domain asks of the services around it: narrow typed ports that
take and return plain dataclasses.

The gRPC clients of gateway/adapters/ implement them for the running service; the unit
tests of the domain use in-memory fakes (tests/support/fakes.py). The store is no port:
the domain uses gateway.store's functions on a real database (SQLite in tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from extractor.scores import ScoreMap
from facegate.faces import FaceAttributes
from gateway.faces import Face, Template

Clock = Callable[[], int]
"""Milliseconds since the Unix epoch: what the domain stamps rows with and compares
leases, back-offs and the age of outbox rows against."""


def system_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class IndexEntry:
    """The matchers' copy of an active event."""

    gallery_id: str
    event_id: str
    subject_id: str
    template: Template
    tag_mask: int
    """Bit i set: the event carries the gallery's tag number i (0..63)."""


@dataclass(frozen=True)
class IndexHit:
    event_id: str
    subject_id: str
    similarity: float
    """Cosine similarity of probe and template (the index knows no score scale)."""


class Extractor(Protocol):
    """Image bytes -> faces, attributes and templates. Failures are FacegateErrors: the
    extractor's own (NoFace, PoorQuality, MultipleFaces, ...) or Unavailable/Timeout."""

    def enrolment_face(self, image: bytes, *, min_quality: float | None) -> Face:
        """The face to enrol: the most prominent one, which no other face may rival in
        size (NoFace / MultipleFaces / PoorQuality otherwise)."""
        ...

    def probe_face(self, image: bytes) -> Face:
        """The most prominent face of a probe (NoFace when there is none)."""
        ...

    def probe_faces(self, images: Sequence[bytes]) -> list[Face]:
        """:meth:`probe_face` of several images."""
        ...

    def all_faces(self, image: bytes, *, limit: int) -> list[FaceAttributes]:
        """Attributes of up to ``limit`` faces, largest first (no templates)."""
        ...

    def score_map(self) -> ScoreMap:
        """The recognizer's similarity -> score map."""
        ...


class TemplateIndex(Protocol):
    """The matcher shards as one index of every gallery's active templates. Writes are
    idempotent; failures are FacegateErrors (Unavailable/Timeout naming the shard)."""

    def upsert(self, entries: Sequence[IndexEntry]) -> None: ...

    def delete(self, gallery_id: str, event_ids: Sequence[str]) -> None: ...

    def clear_tag_bit(self, gallery_id: str, bit: int) -> None:
        """Bit ``bit`` cleared from the tag mask of every event of the gallery."""
        ...

    def drop_gallery(self, gallery_id: str) -> None: ...

    def search(
        self, gallery_id: str, probe: Template, *, k: int, min_similarity: float, tag_mask: int
    ) -> list[IndexHit]:
        """At most ``k`` hits of similarity at least ``min_similarity``, most similar
        first (ties by event id); ``tag_mask`` 0 = every event, else the events carrying
        any of its bits."""
        ...
