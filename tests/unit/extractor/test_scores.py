"""ScoreMap: monotone similarity -> 0..9999 map, floor semantics, and its inverse."""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings

import numpy as np
import pytest

from extractor.scores import ScoreMap
from facegate.contract import DEFAULT_THRESHOLD, MAX_SCORE

# A realistic calibration shape: steep at the top, knots at awkward similarities.
KNOTS = ((0.05, 0), (0.21, 3000), (0.33, 6000), (0.37, 7000), (0.43, 8000), (0.9, MAX_SCORE))


@pytest.fixture
def score_map() -> ScoreMap:
    return ScoreMap(KNOTS)


def test_knots_map_exactly(score_map: ScoreMap) -> None:
    for similarity, score in KNOTS:
        assert score_map.score(similarity) == score
    assert score_map.knots == KNOTS


def test_monotone_on_a_dense_grid(score_map: ScoreMap) -> None:
    grid = np.linspace(-1.0, 1.0, 20001)
    scores = score_map.scores(grid)
    assert scores.dtype == np.int32
    assert np.all(np.diff(scores) >= 0)
    assert scores.min() == 0
    assert scores.max() == MAX_SCORE


def test_floor_between_knots() -> None:
    linear = ScoreMap([(0.0, 0), (1.0, MAX_SCORE)])
    # 0.7 * 9999 = 6999.3 -> 6999 (floor, not round); just below 1.0 stays below 9999.
    assert linear.score(0.7) == 6999
    assert linear.score(0.99995) == 9998
    assert linear.score(0.5) == 4999


def test_clipped_to_score_range(score_map: ScoreMap) -> None:
    assert score_map.score(-1.0) == 0
    assert score_map.score(0.0) == 0
    assert score_map.score(1.0) == MAX_SCORE
    assert score_map.score(5.0) == MAX_SCORE
    assert score_map.score(math.inf) == MAX_SCORE
    assert score_map.score(-math.inf) == 0


def test_nan_similarity_never_gives_an_out_of_range_score(score_map: ScoreMap) -> None:
    # Either refused or clamped; never int32's minimum from casting NaN.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with contextlib.suppress(ValueError):
            assert 0 <= score_map.score(math.nan) <= MAX_SCORE


def test_vector_and_scalar_agree(score_map: ScoreMap) -> None:
    rng = np.random.default_rng(7)
    sims = rng.uniform(-0.2, 1.0, 500)
    assert score_map.scores(sims).tolist() == [score_map.score(float(s)) for s in sims]


@pytest.mark.parametrize("score", [1, 2999, 3000, 4567, 6999, DEFAULT_THRESHOLD, 7001, 9998])
def test_similarity_is_the_threshold_for_a_score(score_map: ScoreMap, score: int) -> None:
    threshold = score_map.similarity(score)
    assert score_map.score(threshold) >= score
    assert score_map.score(float(np.nextafter(threshold, -np.inf))) < score


def test_similarity_is_an_exact_inverse_for_every_score(score_map: ScoreMap) -> None:
    """score(similarity(s)) >= s and one ulp lower < s, for every s in 1..9999."""
    wanted = np.arange(1, MAX_SCORE + 1)
    thresholds = np.array([score_map.similarity(int(s)) for s in wanted])
    at = score_map.scores(thresholds)
    below = score_map.scores(np.nextafter(thresholds, -np.inf))
    too_low = wanted[at < wanted]
    too_high = wanted[below >= wanted]
    assert too_low.size == 0, f"score(similarity(s)) < s for {too_low.size} scores: {too_low[:8]}"
    assert too_high.size == 0, f"similarity(s) is not the smallest for {too_high[:8]}"


def test_similarity_bounds(score_map: ScoreMap) -> None:
    assert score_map.similarity(0) == KNOTS[0][0]
    assert score_map.similarity(MAX_SCORE) == pytest.approx(KNOTS[-1][0], abs=1e-12)
    for bad in (-1, MAX_SCORE + 1):
        with pytest.raises(ValueError, match="outside"):
            score_map.similarity(bad)


@pytest.mark.parametrize(
    "knots",
    [
        [(0.5, 0)],
        [],
        [(0.1, 0), (0.1, MAX_SCORE)],
        [(0.2, 0), (0.1, MAX_SCORE)],
        [(0.1, 0), (0.2, 5000), (0.3, 5000), (0.4, MAX_SCORE)],
        [(0.1, 0), (0.2, 6000), (0.3, 5000), (0.4, MAX_SCORE)],
        [(0.1, 1), (0.9, MAX_SCORE)],
        [(0.1, 0), (0.9, 9000)],
        [(0.1, 0), (0.9, 10000)],
        [(0.1, 0), (math.nan, 5000), (0.9, MAX_SCORE)],
        [(0.1, 0), (0.5, 5000), (math.inf, MAX_SCORE)],
    ],
    ids=[
        "one-knot",
        "no-knots",
        "flat-similarity",
        "decreasing-similarity",
        "flat-score",
        "decreasing-score",
        "not-from-0",
        "not-to-9999",
        "past-9999",
        "nan-similarity",
        "infinite-similarity",
    ],
)
def test_invalid_knots_rejected(knots: list[tuple[float, int]]) -> None:
    with pytest.raises(ValueError, match="knots"):
        ScoreMap(knots)


def test_nominal_fmr_is_a_decade_per_thousand_at_the_knots(score_map: ScoreMap) -> None:
    assert score_map.nominal_fmr(6000) == pytest.approx(1e-3)
    assert score_map.nominal_fmr(7000) == pytest.approx(1e-4)
    assert score_map.nominal_fmr(8000) == pytest.approx(1e-5)
    assert score_map.nominal_fmr(0) == 1.0


def test_nominal_fmr_carries_the_last_decade_on_above_the_calibration(
    score_map: ScoreMap,
) -> None:
    # The last decade (7000 -> 8000) spans 0.06 of similarity: 0.06 more is 1e-6.
    one_more = score_map.score(0.43 + 0.06)
    assert 8000 < one_more < MAX_SCORE
    assert score_map.nominal_fmr(one_more) == pytest.approx(1e-6, rel=0.01)
    fmrs = [score_map.nominal_fmr(s) for s in range(0, MAX_SCORE + 1, 37)]
    assert all(a >= b for a, b in itertools.pairwise(fmrs))


@pytest.mark.parametrize("fpir", [1e-2, 1e-3])
@pytest.mark.parametrize("events", [1, 2, 10, 100, 1000, 4252, 10**5, 10**6, 10**8])
def test_threshold_for_fpir_is_the_lowest_that_meets_the_rate(
    score_map: ScoreMap, fpir: float, events: int
) -> None:
    def model(threshold: int) -> float:
        return 1 - (1 - score_map.nominal_fmr(threshold)) ** events

    threshold = score_map.threshold_for_fpir(fpir, events)
    if threshold < MAX_SCORE:
        assert model(threshold) <= fpir * (1 + 1e-9)
    assert model(threshold - 1) >= fpir * (1 - 1e-6)


def test_threshold_for_fpir_follows_the_scale_and_grows_with_the_gallery(
    score_map: ScoreMap,
) -> None:
    # One comparison: FPIR is the FMR, 1e-2 at 5000.
    assert score_map.threshold_for_fpir(1e-2, 1) == 5000
    assert score_map.threshold_for_fpir(1e-3, 1) == 6000
    # A thousand events: a thousand times rarer per comparison, three decades up.
    assert score_map.threshold_for_fpir(1e-2, 1000) == 7998  # FMR 1.005e-5
    sizes = [1, 10, 10**3, 10**5, 10**7, 10**9, 10**12]
    thresholds = [score_map.threshold_for_fpir(1e-2, n) for n in sizes]
    assert thresholds == sorted(thresholds)
    assert thresholds[-1] == MAX_SCORE
    with pytest.raises(ValueError, match="fpir"):
        score_map.threshold_for_fpir(0.0, 10)
