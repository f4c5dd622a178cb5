"""Runs facegate's extractor over a labelled image set.

Each LFW photo is labelled with the person nearest its centre; a bystander's face can
be larger. So, as LFW's protocol intends, the face whose box centre is nearest the
photo's centre is the one evaluated (the peer gets the same rule).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from bench.dataset import LabelledImage
from bench.metrics import EmbeddingSet
from extractor.pipeline import Face, FaceExtractor
from extractor.quality import QualityFeatures
from extractor.selection import FaceSelection
from facegate.errors import FacegateError


@dataclass(frozen=True)
class PipelineRun:
    embeddings: EmbeddingSet
    features: tuple[QualityFeatures | None, ...]
    qualities: np.ndarray
    """faceQualityScore per image, NaN where no face was found."""
    file_names: tuple[str, ...]
    seconds: float
    failures: dict[str, int]
    """Error type -> count, for images that gave no template."""


def central(faces: Sequence[Face], width: int, height: int) -> Face:
    """The face whose box centre is nearest the photo's centre."""

    def distance(face: Face) -> float:
        box = face.attributes.face_area
        return float(
            np.hypot((box.left + box.right - width) / 2, (box.top + box.bottom - height) / 2)
        )

    return min(faces, key=distance)


def run_pipeline(
    extractor: FaceExtractor,
    images: Sequence[LabelledImage],
    *,
    payloads: Sequence[bytes] | None = None,
    clients: int = 4,
    as_probes: bool = False,
) -> PipelineRun:
    """Template of the central face of every image (None when no face is found).

    ``payloads`` replaces the files' bytes (e.g. degraded copies), one per image.
    ``as_probes`` takes the face the service takes from a probe (its most prominent
    face, extractor/selection.py) instead of the labelled central face.
    """
    data = list(payloads) if payloads is not None else [i.path.read_bytes() for i in images]

    def one(index: int) -> tuple[np.ndarray | None, QualityFeatures | None, float, str]:
        try:
            if as_probes:
                extraction = extractor.extract(data[index], selection=FaceSelection.PROMINENT)
            else:
                extraction = extractor.extract(data[index], limit=extractor.config.max_faces)
        except FacegateError as error:
            return None, None, float("nan"), error.error_type.type_name
        if not extraction.faces:
            return None, None, float("nan"), "NoFace"
        face = central(extraction.faces, extraction.width, extraction.height)
        quality = face.attributes.face_quality_score
        return face.embedding, face.quality_features, quality, ""

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, range(len(images))))
    seconds = time.perf_counter() - started
    failures: dict[str, int] = {}
    for _, _, _, failure in results:
        if failure:
            failures[failure] = failures.get(failure, 0) + 1
    return PipelineRun(
        embeddings=EmbeddingSet.from_optional(
            [r[0] for r in results], [image.identity for image in images]
        ),
        features=tuple(r[1] for r in results),
        qualities=np.array([r[2] for r in results]),
        file_names=tuple(image.path.name for image in images),
        seconds=seconds,
        failures=failures,
    )
