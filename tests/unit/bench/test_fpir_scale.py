"""FPIR measurement helpers: thresholds from probes' best scores, blended distractors."""

from __future__ import annotations

import numpy as np
import pytest

from bench.fpir_scale import Distractors, fpir_at, model_fpir, threshold_at_fpir
from extractor.scores import ScoreMap
from facegate.contract import MAX_SCORE

SCORE_MAP = ScoreMap(
    [(-1.0, 0), (0.1, 4000), (0.2, 5000), (0.3, 6000), (0.4, 7000), (0.5, 8000), (1.0, MAX_SCORE)]
)


def test_threshold_at_fpir_lets_through_at_most_the_rate() -> None:
    best = np.linspace(0.0, 0.49, 100)  # scores 3000 ... 7900
    threshold = threshold_at_fpir(best, 0.01, SCORE_MAP)
    scores = SCORE_MAP.scores(best)
    assert np.mean(scores >= threshold) <= 0.01
    assert np.mean(scores >= threshold - 1) > 0.01
    assert threshold_at_fpir(best, 1.0, SCORE_MAP) == 0


def test_fpir_at_counts_probes_at_or_above() -> None:
    assert fpir_at(np.array([0.1, 0.4, 0.5, 0.6]), 0.5) == 0.5


def test_model_fpir_grows_with_the_gallery() -> None:
    assert model_fpir(SCORE_MAP, 7000, 1) == pytest.approx(1e-4)
    assert model_fpir(SCORE_MAP, 7000, 10_000) == pytest.approx(1 - (1 - 1e-4) ** 10_000)


def test_distractors_blend_two_different_people() -> None:
    gallery = np.eye(4, dtype=np.float32)
    identities = np.array(["a", "a", "b", "b"])
    drawn = Distractors(gallery, identities, seed=1).draw(500)
    assert drawn.shape == (500, 4)
    assert np.allclose(np.linalg.norm(drawn, axis=1), 1.0, atol=1e-6)
    # Two people's templates, one of each: a's and b's halves both weigh 1/sqrt(2).
    assert np.allclose(drawn[:, :2].sum(axis=1), 2**-0.5, atol=1e-6)
    assert np.allclose(drawn[:, 2:].sum(axis=1), 2**-0.5, atol=1e-6)
