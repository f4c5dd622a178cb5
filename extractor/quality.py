"""faceQualityScore: the estimated chance that a face will match its own mates.

Quality is a logistic model over a few measurements of the face — its size (distance
between the eyes), pose (|pan|, |tilt|), the detector's confidence, the sharpness and
contrast of the aligned crop, the length of the recognizer's raw embedding (recognizers
trained with margin losses give short embeddings to faces they cannot read) — and over
the unit embedding itself, which carries what the recognizer "sees" of occlusion,
make-up or an unusual capture. Its weights are fitted by ``python -m bench.calibrate``
on lfw-dev photos plus degraded copies of them (low resolution, blur, heavy JPEG,
darkness, noise, occlusion) against whether each photo's median similarity to its own
(clean) mates reaches the FMR 1e-5 threshold (score 8000). The score reads as that
probability, in [0, 1], and is monotone in each measurement with the sign the fit found.

lfw-dev has almost no profile views and no faces a few pixels wide, so no fit can learn
what those do to recognition. Two fixed priors, multiplied in, cover them: quality
halves at 55 degrees off-axis (pan and tilt combined) and at 12 pixels between the
eyes, and falls steeply beyond (logistic curves of width 6 degrees and 2.5 pixels).
The error-versus-reject curve that shows it predicts recognition errors is in
docs/quality.md.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields
from typing import Any

import numpy as np


@dataclass(frozen=True)
class QualityFeatures:
    log_eye_distance: float
    abs_pan: float
    abs_tilt: float
    face_score: float
    sharpness: float
    """log(1 + variance of the Laplacian of the aligned grey crop)."""
    contrast: float
    """log(1 + standard deviation of the aligned grey crop's inner face)."""
    embedding_norm: float

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def vector(self) -> np.ndarray:
        return np.array(astuple(self), dtype=np.float64)


def sharpness(aligned_crop: np.ndarray) -> float:
    import cv2  # imported here: matcher pods read quality models without needing OpenCV

    grey = cv2.cvtColor(aligned_crop, cv2.COLOR_BGR2GRAY)
    return math.log1p(float(cv2.Laplacian(grey, cv2.CV_64F).var()))


def contrast(aligned_crop: np.ndarray) -> float:
    import cv2

    # Eyes to mouth of the 112 x 112 ArcFace crop: background and hair left out.
    inner = cv2.cvtColor(aligned_crop[40:100, 28:84], cv2.COLOR_BGR2GRAY)
    return math.log1p(float(inner.std()))


def eye_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[1] - landmarks[0]))


POSE_HALF_DEGREES = 55.0
POSE_WIDTH_DEGREES = 6.0
EYE_DISTANCE_HALF_PX = 12.0
EYE_DISTANCE_WIDTH_PX = 2.5


def prior(features: QualityFeatures) -> float:
    """The fixed pose and size factor, in (0, 1]."""
    off_axis = math.hypot(features.abs_pan, features.abs_tilt)
    pose = _falling((off_axis - POSE_HALF_DEGREES) / POSE_WIDTH_DEGREES)
    eyes = math.exp(features.log_eye_distance)
    size = _falling((EYE_DISTANCE_HALF_PX - eyes) / EYE_DISTANCE_WIDTH_PX)
    return pose * size


def _falling(x: float) -> float:
    """1 / (1 + e^x), without overflow."""
    return math.exp(-x) / (1.0 + math.exp(-x)) if x > 0 else 1.0 / (1.0 + math.exp(x))


@dataclass(frozen=True)
class QualityModel:
    """Logistic regression over the measurements followed by the unit embedding.

    ``mean``, ``std`` and ``weights`` cover the ``features`` first, then each of the
    ``embedding_dim`` embedding components (standardised and clipped to 4 SD alike).
    """

    features: tuple[str, ...]
    embedding_dim: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        if self.features != QualityFeatures.names():
            raise ValueError(
                f"quality model features {self.features} do not match {QualityFeatures.names()}"
            )
        width = len(self.features) + self.embedding_dim
        if not len(self.mean) == len(self.std) == len(self.weights) == width:
            raise ValueError(f"quality model arrays must all have {width} values")
        if not all(math.isfinite(v) and v > 0 for v in self.std):
            raise ValueError("quality model standard deviations must be positive")

    def inputs(self, features: QualityFeatures, embedding: np.ndarray) -> np.ndarray:
        if embedding.shape != (self.embedding_dim,):
            raise ValueError(f"quality model expects a {self.embedding_dim}-d embedding")
        return np.concatenate((features.vector(), embedding.astype(np.float64)))

    def fitted(self, features: QualityFeatures, embedding: np.ndarray) -> float:
        """The logistic part alone (what the calibration fits)."""
        x = self.inputs(features, embedding)
        if not np.all(np.isfinite(x)):
            return 0.0  # an unmeasurable face is not usable
        z = np.clip((x - np.asarray(self.mean)) / np.asarray(self.std), -4.0, 4.0)
        return _falling(-float(z @ np.asarray(self.weights) + self.bias))

    def score(self, features: QualityFeatures, embedding: np.ndarray) -> float:
        """faceQualityScore: the fitted probability times the pose and size prior."""
        fitted = self.fitted(features, embedding)
        return fitted * prior(features) if fitted > 0 else 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QualityModel:
        return cls(
            features=tuple(str(n) for n in data["features"]),
            embedding_dim=int(data["embedding_dim"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            weights=tuple(float(v) for v in data["weights"]),
            bias=float(data["bias"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "embedding_dim": self.embedding_dim,
            "mean": list(self.mean),
            "std": list(self.std),
            "weights": list(self.weights),
            "bias": self.bias,
        }
