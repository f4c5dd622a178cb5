"""Match scores: a fixed, monotone map from cosine similarity to an integer 0..9999.

The map is piecewise linear through knots calibrated on lfw-dev impostor pairs so that
each thousand of score above 3000 is one decade of false-match rate: a score of 7000
is the similarity at which 1 in 10,000 impostor pairs matches (FMR 1e-4), 6000 is
FMR 1e-3, 8000 FMR 1e-5, and so on (the table for the shipped model is in
docs/scores.md). The map is strictly increasing, so thresholds on scores and on
similarities are interchangeable, and it is per recognizer: a score means the same
false-match rate whichever model produced it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

MAX_SCORE = 9999
DEFAULT_THRESHOLD = 7000


class ScoreMap:
    def __init__(self, knots: Sequence[tuple[float, int]]) -> None:
        sims = np.array([k[0] for k in knots], dtype=np.float64)
        scores = np.array([k[1] for k in knots], dtype=np.float64)
        if not np.all(np.isfinite(sims)):
            raise ValueError("score knots must be finite")
        if len(knots) < 2 or np.any(np.diff(sims) <= 0) or np.any(np.diff(scores) <= 0):
            raise ValueError("score knots must be at least two, strictly increasing in both axes")
        if scores[0] != 0 or scores[-1] != MAX_SCORE:
            raise ValueError(f"score knots must span 0..{MAX_SCORE}")
        self.knots = tuple((float(s), int(v)) for s, v in knots)
        self._sims = sims
        self._scores = scores
        self._thresholds: dict[int, float] = {}

    def score(self, similarity: float) -> int:
        return int(self.scores(np.asarray([similarity]))[0])

    def scores(self, similarities: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`score`: int32 scores for an array of similarities."""
        if np.any(np.isnan(similarities)):
            raise ValueError("similarity is NaN")
        mapped = np.interp(similarities, self._sims, self._scores)
        scores: np.ndarray = np.clip(np.floor(mapped), 0, MAX_SCORE).astype(np.int32)
        return scores

    def similarity(self, score: int) -> float:
        """The smallest similarity whose score is at least ``score`` (for thresholds)."""
        if not 0 <= score <= MAX_SCORE:
            raise ValueError(f"score {score} is outside 0..{MAX_SCORE}")
        if score == 0:
            return self.knots[0][0]
        cached = self._thresholds.get(score)
        if cached is None:
            cached = self._thresholds[score] = self._smallest_reaching(score)
        return cached

    def _smallest_reaching(self, score: int) -> float:
        # Bisection over the ordered bit patterns of non-negative-offset floats: exact
        # (the answer is one float, not an approximation) and at most 64 steps.
        low, high = _ordered(self.knots[0][0]), _ordered(self.knots[-1][0])
        while low < high:
            middle = (low + high) // 2
            if self.score(_unordered(middle)) >= score:
                high = middle
            else:
                low = middle + 1
        return _unordered(low)


def _ordered(value: float) -> int:
    """Map a float to an integer with the same order (negative floats included)."""
    bits: int = struct.unpack("<q", struct.pack("<d", value))[0]
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def _unordered(key: int) -> float:
    bits = key if key >= 0 else (-key) | -0x8000000000000000
    value: float = struct.unpack("<d", struct.pack("<q", bits))[0]
    return value
