"""Match scores: a fixed, monotone map from cosine similarity to an integer 0..9999.

The map is piecewise linear through knots calibrated on lfw-dev impostor pairs so that
each thousand of score above 3000 is one decade of false-match rate: a score of 7000
is the similarity at which 1 in 10,000 impostor pairs matches (FMR 1e-4), 6000 is
FMR 1e-3, 8000 FMR 1e-5, and so on (the table for the shipped model is in
docs/scores.md). The map is strictly increasing, so thresholds on scores and on
similarities are interchangeable, and it is per recognizer: a score means the same
false-match rate whichever model produced it.

A score is the rate of one comparison. A search compares the probe with every event of
the gallery, so a person who is not enrolled raises a false candidate at a threshold
about as often as ``events x FMR`` (:meth:`ScoreMap.threshold_for_fpir`; ADR 0010).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np

from facegate.contract import MAX_SCORE

SCORE_AT_FMR_ONE = 3000
SCORE_PER_DECADE = 1000
"""Score 3000 + 1000 k is FMR 10^-k at every calibrated knot (k = 1 ... 5 for lfw-dev)."""


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

    def nominal_fmr(self, score: int) -> float:
        """The false-match rate of one comparison at a threshold of ``score``: the
        scale's 10^-(score - 3000) / 1000 up to the highest calibrated decade, and above
        it the last decade's width in similarity carried on (an extrapolation: the
        calibration set has too few impostor pairs to measure smaller rates)."""
        decades = self._decade_score(self.similarity(score))
        return float(min(1.0, 10.0 ** (-(decades - SCORE_AT_FMR_ONE) / SCORE_PER_DECADE)))

    def threshold_for_fpir(self, fpir: float, comparisons: int) -> int:
        """The lowest score threshold at which a search over ``comparisons`` events
        for a person who is not enrolled returns a candidate at most ``fpir`` of the
        time, by the model FPIR = 1 - (1 - FMR)^comparisons (independent comparisons)
        and :meth:`nominal_fmr`."""
        if not 0.0 < fpir < 1.0:
            raise ValueError("fpir must be between 0 and 1")
        fmr = -math.expm1(math.log1p(-fpir) / max(comparisons, 1))
        decades = SCORE_AT_FMR_ONE - SCORE_PER_DECADE * math.log10(fmr)
        (low_sim, low_score), (top_sim, top_score) = self._top_decades()
        if decades <= top_score:
            return math.ceil(decades)
        similarity = top_sim + (decades - top_score) / (top_score - low_score) * (top_sim - low_sim)
        return min(MAX_SCORE, math.ceil(float(np.interp(similarity, self._sims, self._scores))))

    def _decade_score(self, similarity: float) -> float:
        """The score the scale's decades give ``similarity``: the map itself up to the
        highest calibrated decade, extended with its last decade's width above."""
        (low_sim, low_score), (top_sim, top_score) = self._top_decades()
        if similarity <= top_sim:
            return float(np.interp(similarity, self._sims, self._scores))
        return top_score + (similarity - top_sim) / (top_sim - low_sim) * (top_score - low_score)

    def _top_decades(self) -> tuple[tuple[float, int], tuple[float, int]]:
        decades = [
            (sim, score)
            for sim, score in self.knots
            if SCORE_AT_FMR_ONE < score < MAX_SCORE
            and (score - SCORE_AT_FMR_ONE) % SCORE_PER_DECADE == 0
        ]
        if len(decades) < 2:
            raise ValueError("the score map has fewer than two calibrated decades")
        return decades[-2], decades[-1]

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
