"""The writes a shard accepts and their validation.

A write is validated completely before it is logged, so a logged write always applies
(matcher/convert.py gives each write's form in the log).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from facegate.errors import invalid_request

MAX_ID_LENGTH = 256
TAG_BITS = 64


class WriteKind(enum.IntEnum):
    UPSERT = 1
    DELETE = 2
    DELETE_SUBJECT = 3
    CLEAR_TAG_BIT = 4
    DROP_GALLERY = 5


@dataclass(frozen=True)
class ShardEntry:
    gallery_id: str
    event_id: str
    subject_id: str
    model_id: str
    vector: np.ndarray
    """float32, unit length (normalised by :func:`check_entry`)."""
    tag_mask: int


@dataclass(frozen=True)
class Upsert:
    entries: tuple[ShardEntry, ...]


@dataclass(frozen=True)
class Delete:
    gallery_id: str
    event_ids: tuple[str, ...]


@dataclass(frozen=True)
class DeleteSubject:
    gallery_id: str
    subject_id: str


@dataclass(frozen=True)
class ClearTagBit:
    gallery_id: str
    bit: int


@dataclass(frozen=True)
class DropGallery:
    gallery_id: str


Write = Upsert | Delete | DeleteSubject | ClearTagBit | DropGallery


def check_id(value: str, what: str) -> str:
    if not value:
        raise invalid_request(f"{what} must not be empty.")
    if len(value) > MAX_ID_LENGTH:
        raise invalid_request(f"{what} is longer than {MAX_ID_LENGTH} characters.")
    return value


def unit_vector(values: np.ndarray, what: str) -> np.ndarray:
    """The vector scaled to unit length; zero, NaN or infinite vectors are refused."""
    vector = np.asarray(values, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(vector.astype(np.float64)))
    if not math.isfinite(norm) or norm < 1e-6:
        raise invalid_request(f"{what} is not a valid template (zero, NaN or infinite values).")
    return (vector / norm).astype(np.float32)


def check_entry(entry: ShardEntry) -> ShardEntry:
    check_id(entry.gallery_id, "gallery_id")
    check_id(entry.event_id, "event_id")
    check_id(entry.subject_id, "subject_id")
    check_id(entry.model_id, "template model_id")
    if not 0 <= entry.tag_mask < 1 << TAG_BITS:
        raise invalid_request("tag_mask must fit in 64 bits.")
    vector = unit_vector(entry.vector, f"template of event {entry.event_id}")
    return ShardEntry(
        entry.gallery_id, entry.event_id, entry.subject_id, entry.model_id, vector, entry.tag_mask
    )


def check_bit(bit: int) -> int:
    if not 0 <= bit < TAG_BITS:
        raise invalid_request(f"tag bit must be between 0 and {TAG_BITS - 1}.")
    return bit
