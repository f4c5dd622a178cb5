"""In-memory fakes of the gateway's ports (gateway/ports.py), for unit tests of the
domain that load no model and start no server.

:class:`FakeExtractor` reads an image's bytes as ``b"<person>#<photo>"``: the template
is a unit vector derived from ``<person>`` plus a little noise from the whole image, so
two photos of one person score far above the default threshold and two people far
below it, deterministically. :class:`FakeIndex` holds entries in dicts and searches them
exactly (cosine, tag masks, the score threshold through the same score map).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from extractor.scores import ScoreMap
from facegate.contract import MAX_SCORE
from facegate.errors import ErrorType, FacegateError
from facegate.faces import Box, FaceAttributes, Point
from gateway.faces import Face, Template
from gateway.ports import IndexEntry, IndexHit

DIM = 128
MODEL_ID = "fake-recognizer"
SCORE_MAP = ScoreMap([(-1.0, 0), (0.0, 3000), (0.2, 5000), (0.4, 7000), (1.0, MAX_SCORE)])
"""Two strangers (similarity about 0 +- 0.09 in 128 dimensions) score about 3000, far
below the default threshold 7000 (similarity 0.4); identical templates 9999."""
_PHOTO_NOISE = 0.1


def _unit(seed_bytes: bytes) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(seed_bytes).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(DIM)
    unit: np.ndarray = vector / np.linalg.norm(vector)
    return unit


def template_of(image: bytes) -> Template:
    """The template :class:`FakeExtractor` gives ``image``."""
    person = image.split(b"#", 1)[0]
    vector = _unit(person) + _PHOTO_NOISE * _unit(image)
    return Template(MODEL_ID, (vector / np.linalg.norm(vector)).astype(np.float32))


class FakeExtractor:
    """Every image holds one face of quality :attr:`quality`, except the images in
    :attr:`faceless`; :attr:`failures` calls from now on fail as Unavailable."""

    def __init__(self, *, quality: float = 0.9) -> None:
        self.quality = quality
        self.faceless: set[bytes] = set()
        self.failures = 0
        self.calls = 0
        self._lock = threading.Lock()

    def enrolment_face(self, image: bytes, *, min_quality: float | None) -> Face:
        face = self._face(image)
        if min_quality is not None and self.quality < min_quality:
            raise FacegateError(
                ErrorType.POOR_QUALITY, f"Face quality {self.quality} is below {min_quality}."
            )
        return face

    def probe_face(self, image: bytes) -> Face:
        return self._face(image)

    def probe_faces(self, images: Sequence[bytes]) -> list[Face]:
        return [self._face(image) for image in images]

    def all_faces(self, image: bytes, *, limit: int) -> list[FaceAttributes]:
        return [self._face(image).attributes][:limit]

    def score_map(self) -> ScoreMap:
        return SCORE_MAP

    def _face(self, image: bytes) -> Face:
        with self._lock:
            self.calls += 1
            if self.failures > 0:
                self.failures -= 1
                raise FacegateError(ErrorType.UNAVAILABLE, "The extractor is unavailable.")
        if image in self.faceless:
            raise FacegateError(ErrorType.NO_FACE, "No face was found in the provided image.")
        return Face(self._attributes(), template_of(image))

    def _attributes(self) -> FaceAttributes:
        return FaceAttributes(
            face_area=Box(10, 20, 110, 140),
            head_area=Box(0, 0, 120, 160),
            right_eye_center=Point(40, 60),
            left_eye_center=Point(80, 60),
            frontal_face_score=0.95,
            face_roll=1.5,
            face_pan=-3.0,
            face_tilt=2.0,
            face_score=0.99,
            face_quality_score=self.quality,
        )


class FakeIndex:
    """One shard holding every gallery. :attr:`operations` logs each write in the order
    applied; while :attr:`down`, every call fails as Unavailable."""

    def __init__(self) -> None:
        self.galleries: dict[str, dict[str, IndexEntry]] = {}
        self.operations: list[tuple[str, str, str]] = []
        self.down = False
        self._lock = threading.Lock()

    def event_ids(self, gallery_id: str) -> set[str]:
        with self._lock:
            return set(self.galleries.get(gallery_id, {}))

    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        with self._lock:
            self._require_up()
            for entry in entries:
                self.galleries.setdefault(entry.gallery_id, {})[entry.event_id] = entry
                self.operations.append(("upsert", entry.gallery_id, entry.event_id))

    def delete(self, gallery_id: str, event_ids: Sequence[str]) -> None:
        with self._lock:
            self._require_up()
            for event_id in event_ids:
                self.galleries.get(gallery_id, {}).pop(event_id, None)
                self.operations.append(("delete", gallery_id, event_id))

    def clear_tag_bit(self, gallery_id: str, bit: int) -> None:
        with self._lock:
            self._require_up()
            entries = self.galleries.get(gallery_id, {})
            for event_id, entry in entries.items():
                entries[event_id] = replace(entry, tag_mask=entry.tag_mask & ~(1 << bit))
            self.operations.append(("clear_tag_bit", gallery_id, str(bit)))

    def drop_gallery(self, gallery_id: str) -> None:
        with self._lock:
            self._require_up()
            self.galleries.pop(gallery_id, None)
            self.operations.append(("drop_gallery", gallery_id, ""))

    def search(
        self, gallery_id: str, probe: Template, *, k: int, min_similarity: float, tag_mask: int
    ) -> list[IndexHit]:
        with self._lock:
            self._require_up()
            candidates = [
                entry
                for entry in self.galleries.get(gallery_id, {}).values()
                if entry.template.model_id == probe.model_id
                and (tag_mask == 0 or entry.tag_mask & tag_mask)
            ]
        scored = []
        for entry in candidates:
            similarity = float(entry.template.embedding @ probe.embedding)
            if similarity >= min_similarity:
                hit = IndexHit(entry.event_id, entry.subject_id, similarity)
                scored.append((-similarity, entry.event_id, hit))
        scored.sort(key=lambda item: (item[0], item[1]))
        return [hit for _, _, hit in scored[:k]]

    def _require_up(self) -> None:
        if self.down:
            raise FacegateError(ErrorType.UNAVAILABLE, "Matcher shard 0 is unavailable.")


class ManualClock:
    """Milliseconds that move only when a test says so."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms
