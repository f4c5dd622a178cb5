"""The immutable rows the store's functions return (times in ms since the epoch, UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventStatus = Literal["A", "D"]


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    access_key_id: str
    secret_ciphertext: bytes
    created_ms: int


@dataclass(frozen=True)
class Gallery:
    """``count`` is the number of event rows the gallery holds, active and deleted: the
    slots in use out of ``size``."""

    id: str
    tenant_id: str
    name: str
    description: str
    size: int
    face_minimum_quality_score: float
    created_ms: int
    count: int


@dataclass(frozen=True)
class Application:
    """``api_key_hash`` is the sha256 of the key; the key itself is never stored."""

    id: str
    tenant_id: str
    gallery_id: str
    name: str
    description: str
    api_key_hash: bytes
    api_key_hint: str
    face_minimum_quality_score: float
    created_ms: int


@dataclass(frozen=True)
class Tag:
    gallery_id: str
    bit: int
    name: str


@dataclass(frozen=True)
class EventRow:
    """One slot of a gallery. ``tag_mask`` is unsigned (0..2**64-1) here, whatever the
    storage; ``template`` holds float32 little-endian values."""

    row_id: int
    gallery_id: str
    event_id: str
    subject_id: str
    status: EventStatus
    tag_mask: int
    model_id: str
    template: bytes
    attributes_json: str
    last_updated_ms: int


@dataclass(frozen=True)
class Change:
    """An outbox entry to replay into the matcher; ``kind`` is one of ``changes.KINDS``."""

    id: int
    gallery_id: str
    kind: str
    event_id: str | None
    bit: int | None
