"""1:N search and 1:1 verification.

Search asks the matcher shards for the best events, then keeps only those the store
still holds as active: the store is the record, and a matcher may briefly lag behind
it (a delete committed but not yet replicated, docs/adr/0006). The matcher is asked for
more events than the caller's limit so that dropping a stale hit does not shorten the
answer. Candidates are the hits grouped by subject, in the order of each subject's best
hit; ``limit`` counts events, as NEC ID does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from extractor.scores import ScoreMap
from facegate.contract import (
    DEFAULT_CANDIDATES,
    DEFAULT_FACES,
    DEFAULT_THRESHOLD,
    MAX_CANDIDATES,
    MAX_FACES,
    MAX_SCORE,
)
from facegate.errors import ErrorType, FacegateError
from facegate.faces import FaceAttributes
from gateway.deps import GatewayDeps
from gateway.enrolment import require_id, require_image, subject_not_found
from gateway.faces import Face
from gateway.store import events, tags
from gateway.store.records import Application


@dataclass(frozen=True)
class SearchStatistics:
    """What a search of a gallery compares, and the thresholds its size calls for."""

    active_events: int
    threshold_fpir_1e2: int
    """Lowest threshold at which at most 1% of searches for people who are not enrolled
    return a candidate (ADR 0010)."""
    threshold_fpir_1e3: int


def search_statistics(active_events: int, score_map: ScoreMap) -> SearchStatistics:
    return SearchStatistics(
        active_events=active_events,
        threshold_fpir_1e2=score_map.threshold_for_fpir(1e-2, active_events),
        threshold_fpir_1e3=score_map.threshold_for_fpir(1e-3, active_events),
    )


@dataclass(frozen=True)
class EventMatch:
    event_id: str
    score: int


@dataclass(frozen=True)
class CandidateMatch:
    subject_id: str
    score: int
    events: tuple[EventMatch, ...]


@dataclass(frozen=True)
class SearchResult:
    candidates: tuple[CandidateMatch, ...]
    attributes: FaceAttributes


def group_by_subject(hits: Sequence[tuple[str, str, int]]) -> tuple[CandidateMatch, ...]:
    """(subject id, event id, score) in descending score order -> candidates, each
    subject once at the position of its best event."""
    grouped: dict[str, list[EventMatch]] = {}
    for subject_id, event_id, score in hits:
        grouped.setdefault(subject_id, []).append(EventMatch(event_id, score))
    return tuple(
        CandidateMatch(subject_id, matches[0].score, tuple(matches))
        for subject_id, matches in grouped.items()
    )


def best_score(score_map: ScoreMap, probe: Face, references: Sequence[np.ndarray]) -> int:
    """The highest score of the probe against references of the same model."""
    if not references:
        raise ValueError("no references")
    similarities = np.stack(references) @ probe.vector
    return score_map.score(float(similarities.max()))


class Matching:
    def __init__(self, deps: GatewayDeps) -> None:
        self._deps = deps

    def extract(self, image: bytes, *, limit: int | None) -> list[FaceAttributes]:
        """Attributes of the image's faces, largest first; NoFace when there is none."""
        require_image(image, "faces")
        limit = DEFAULT_FACES if limit is None else limit
        if not 1 <= limit <= MAX_FACES:
            raise FacegateError(
                ErrorType.INVALID_REQUEST, f"limit must be between 1 and {MAX_FACES}."
            )
        faces = self._deps.extractor.all_faces(image, limit=limit)
        if not faces:
            raise FacegateError(ErrorType.NO_FACE, "No face was found in the provided image.")
        return faces

    def search(
        self,
        application: Application,
        probe: bytes,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        limit: int = DEFAULT_CANDIDATES,
        tag_names: Sequence[str] = (),
    ) -> SearchResult:
        require_image(probe, "probe")
        if not 0 <= threshold <= MAX_SCORE:
            raise FacegateError(
                ErrorType.INVALID_REQUEST, f"threshold must be between 0 and {MAX_SCORE}."
            )
        if not 1 <= limit <= MAX_CANDIDATES:
            raise FacegateError(
                ErrorType.INVALID_REQUEST, f"limit must be between 1 and {MAX_CANDIDATES}."
            )
        gallery_id = application.gallery_id
        mask = 0
        if tag_names:
            with self._deps.database.read() as conn:
                mask = tags.tag_mask(conn, gallery_id, tag_names)
        face = self._deps.extractor.probe_face(probe)
        # The index compares similarities; scores are the recognizer's map of them.
        score_map = self._deps.extractor.score_map()
        hits = self._deps.matcher.search(
            gallery_id,
            face.template,
            k=min(MAX_CANDIDATES, 2 * limit),
            min_similarity=score_map.similarity(threshold),
            tag_mask=mask,
        )
        with self._deps.database.read() as conn:
            active = events.active_event_ids(conn, gallery_id, [h.event_id for h in hits])
        live = [h for h in hits if h.event_id in active]
        scores = score_map.scores(np.array([h.similarity for h in live], dtype=np.float64))
        kept = [
            (h.subject_id, h.event_id, int(score)) for h, score in zip(live, scores, strict=True)
        ]
        return SearchResult(group_by_subject(kept[:limit]), face.attributes)

    def verify_subject(self, application: Application, subject_id: str, probe: bytes) -> int:
        """The probe's score against the subject's best-matching active event."""
        require_id(subject_id, "id")
        require_image(probe, "probe")
        with self._deps.database.read() as conn:
            rows = events.active_events(conn, application.gallery_id, subject_id)
        if not rows:
            raise subject_not_found(subject_id)
        face = self._deps.extractor.probe_face(probe)
        references = [
            np.frombuffer(row.template, dtype="<f4")
            for row in rows
            if row.model_id == face.template.model_id
        ]
        if not references:
            raise FacegateError(
                ErrorType.INVALID_REQUEST,
                f"Subject {subject_id} has no template of model {face.template.model_id}.",
            )
        return best_score(self._deps.extractor.score_map(), face, references)

    def verify_faces(self, face_image: bytes, probe: bytes) -> int:
        """The score of two images' faces, no gallery involved."""
        require_image(face_image, "face")
        require_image(probe, "probe")
        reference, candidate = self._deps.extractor.probe_faces([face_image, probe])
        return best_score(self._deps.extractor.score_map(), candidate, [reference.vector])
