"""bench.metrics on synthetic data with known answers."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from numpy.typing import NDArray

from bench import metrics
from bench.metrics import (
    EmbeddingSet,
    best_threshold,
    count_pairs,
    evaluate_identification,
    evaluate_verification,
    genuine_scores,
    identification_split,
    impostor_scores,
    kfold_accuracy,
    roc_auc,
    roc_table,
    tar_at_far,
    threshold_at_rate,
)

LOWEST = float(np.nextafter(-np.inf, np.inf))


def _random_set(
    n: int, n_ids: int, dim: int = 8, seed: int = 1, failed: tuple[int, ...] = ()
) -> EmbeddingSet:
    rng = np.random.default_rng(seed)
    labels = [f"id{int(x):02d}" for x in rng.integers(0, n_ids, n)]
    vectors: list[NDArray[np.float64] | None] = list(rng.normal(size=(n, dim)))
    for i in failed:
        vectors[i] = None
    return EmbeddingSet.from_optional(vectors, labels)


def _brute_force(es: EmbeddingSet) -> tuple[list[float], list[float]]:
    genuine: list[float] = []
    impostor: list[float] = []
    for i, j in itertools.combinations(range(len(es)), 2):
        if es.valid[i] and es.valid[j]:
            score = float(np.dot(es.vectors[i], es.vectors[j]))
        else:
            score = -math.inf
        (genuine if es.labels[i] == es.labels[j] else impostor).append(score)
    return genuine, impostor


# ----------------------------------------------------------------- embedding set


def test_embedding_set_normalises_and_keeps_failures() -> None:
    es = EmbeddingSet.from_optional([[3.0, 4.0], None, [0.0, 2.0]], ["a", "a", "b"])
    np.testing.assert_allclose(es.vectors, [[0.6, 0.8], [0.0, 0.0], [0.0, 1.0]])
    assert es.valid.tolist() == [True, False, True]
    assert es.n_failed == 1
    assert len(es) == 3
    with pytest.raises(ValueError, match="normalised"):
        EmbeddingSet(np.array([[1.0, 1.0]]), np.array([True]), ("a",))
    with pytest.raises(ValueError, match="norm"):
        EmbeddingSet.from_optional([[0.0, 0.0]], ["a"])


# ---------------------------------------------------------------- pair scores


@pytest.mark.parametrize("block", [3, 7, 2048])
def test_all_pairs_blockwise_equals_brute_force(block: int) -> None:
    es = _random_set(61, 9, failed=(0, 17, 60))
    genuine, impostor = _brute_force(es)
    assert count_pairs(es.labels) == (len(genuine), len(impostor))
    got_impostor = impostor_scores(es, block=block)
    np.testing.assert_allclose(np.sort(got_impostor), np.sort(impostor), atol=1e-12)
    np.testing.assert_allclose(np.sort(genuine_scores(es)), np.sort(genuine), atol=1e-12)
    # The failed images' pairs are all there, as -inf.
    assert np.isneginf(got_impostor).sum() == np.isneginf(impostor).sum() > 0


def test_impostor_sample_is_seeded_distinct_and_impostor() -> None:
    es = _random_set(80, 5)
    _, total = count_pairs(es.labels)
    sample = impostor_scores(es, max_pairs=100, sample_size=60, seed=3)
    assert sample.shape == (60,)
    np.testing.assert_array_equal(
        sample, impostor_scores(es, max_pairs=100, sample_size=60, seed=3)
    )
    assert total > 100
    pairs = metrics._sample_impostor_pairs(es.label_codes(), 500, seed=5)
    assert pairs.shape == (500, 2)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    assert len({(int(a), int(b)) for a, b in pairs}) == 500
    assert all(es.labels[a] != es.labels[b] for a, b in pairs)
    # Every sampled score is the score of a real impostor pair.
    _, impostor = _brute_force(es)
    ref = np.sort(impostor)
    pos = np.clip(np.searchsorted(ref, sample), 1, len(ref) - 1)
    nearest = np.minimum(np.abs(ref[pos] - sample), np.abs(ref[pos - 1] - sample))
    assert nearest.max() < 1e-12


# ---------------------------------------------------------------- verification


def test_perfect_separation_gives_tar_one() -> None:
    genuine = np.linspace(0.6, 1.0, 50)
    impostor = np.linspace(-1.0, 0.5, 10_000)
    for far in (1e-1, 1e-3, 1e-4, 1e-6):
        r = tar_at_far(genuine, impostor, far)
        assert r.tar == 1.0
        assert r.threshold <= 0.6
    r = tar_at_far(genuine, impostor, 1e-6)
    assert not r.resolvable
    assert r.threshold == np.nextafter(0.5, 1.0)
    assert r.far_achieved == 0.0


def test_tar_at_far_exact_constructed_case() -> None:
    impostor = np.arange(1000) / 1000.0  # distinct, highest 0.999
    # FAR 1e-2 allows 10 accepts: 0.990..0.999; threshold just above 0.989.
    genuine = np.array([0.995] * 50 + [0.989] * 30 + [0.5] * 20)
    r = tar_at_far(genuine, impostor, 1e-2)
    assert r.threshold == np.nextafter(0.989, 1.0)
    assert r.false_accepts == 10
    assert r.far_achieved == 0.01
    assert r.tar == 0.5
    assert (r.n_genuine, r.n_impostor, r.resolvable) == (100, 1000, True)


def test_tar_at_far_ties_are_conservative() -> None:
    impostor = np.array([0.9] * 20 + [0.1] * 980)
    r = tar_at_far(np.array([0.9, 0.95]), impostor, 1e-2)
    # Accepting 0.9 would accept 20 impostors (2% > 1%): the threshold goes above it.
    assert r.threshold == np.nextafter(0.9, 1.0)
    assert r.far_achieved == 0.0
    assert r.tar == 0.5
    r = tar_at_far(np.array([0.9, 0.95]), impostor, 2e-2)
    assert r.threshold == np.nextafter(0.1, 1.0)
    assert (r.far_achieved, r.tar) == (0.02, 1.0)


def test_threshold_at_rate_edges() -> None:
    # 0.29 * 100 is 28.999999999999996 in floating point: 29 accepts must be allowed.
    scores = np.arange(100, dtype=np.float64)
    assert threshold_at_rate(scores, 0.29) == np.nextafter(70.0, np.inf)
    # Rate 1 accepts every score but still not a failure (-inf).
    assert threshold_at_rate(scores, 1.0) == LOWEST
    assert tar_at_far([-np.inf, 0.5], scores, 1.0).tar == 0.5
    with pytest.raises(ValueError, match="no negative"):
        threshold_at_rate([], 0.1)


def test_failed_genuine_pairs_are_misses_at_every_threshold() -> None:
    # Two identities of two photos; one photo of "a" failed.
    es = EmbeddingSet.from_optional(
        [[1.0, 0.0, 0.0], None, [0.0, 1.0, 0.0], [0.0, 0.9, 0.1]], ["a", "a", "b", "b"]
    )
    result = evaluate_verification(es, fars=(1.0, 0.5))
    assert (result.n_images, result.n_failed, result.n_genuine, result.n_impostor) == (4, 1, 2, 4)
    assert [r.tar for r in result.tar_at_far] == [0.5, 0.5]
    assert not result.impostor_sampled


def test_roc_table_and_auc() -> None:
    impostor = np.arange(1_000_000) / 1_000_000.0
    genuine = np.array([0.9999995, 0.99995, 0.9995, 0.995, 0.5])
    table = roc_table(genuine, impostor)
    assert [p.fmr for p in table.points] == list(metrics.DEFAULT_FMRS)
    np.testing.assert_allclose([p.fnmr for p in table.points], [0.2, 0.2, 0.4, 0.6, 0.8, 0.8])
    np.testing.assert_allclose([p.fmr_achieved for p in table.points], metrics.DEFAULT_FMRS)
    assert roc_auc([0.7, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1], [0.7, 0.8]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5]) == 0.5
    assert roc_auc([0.3, 0.5, 0.7], [0.4, 0.5]) == pytest.approx(3.5 / 6)


def test_results_convert_to_json() -> None:
    r = tar_at_far([0.5], [0.1, 0.2], 1.0)
    d = r.to_dict()
    assert d["tar"] == 1.0
    assert isinstance(d["n_impostor"], int)
    json.dumps(evaluate_verification(_random_set(30, 4)).to_dict(), allow_nan=False)
    table = roc_table([0.5], [np.inf, 0.1], (0.0,)).to_dict()
    assert table["points"][0]["threshold"] is None  # +inf


# --------------------------------------------------------------- LFW 10-fold


def test_best_threshold() -> None:
    assert best_threshold([0.1, 0.2, 0.3, 0.4], [False, False, True, True]) == (0.25, 1.0)
    # All candidates tie at 0.5: the lowest (accept everything finite) wins.
    assert best_threshold([0.1, 0.2], [True, False]) == (0.1, 0.5)
    # Only impostors: accept none.
    assert best_threshold([0.1, 0.2], [False, False]) == (math.inf, 1.0)
    # A failure is never accepted, so a same pair at -inf is an error.
    assert best_threshold([-np.inf, 0.3], [True, True]) == (0.3, 0.5)


def test_kfold_accuracy_known_answer() -> None:
    # 10 folds of 2 pairs: (same, 0.9) and (different, 0.1); fold 3's impostor
    # scores 0.95. Every training set picks t = 0.5, so fold 3 scores 1/2.
    scores = np.tile([0.9, 0.1], 10)
    same = np.tile([True, False], 10)
    scores[7] = 0.95
    result = kfold_accuracy(scores, same)
    assert result.fold_accuracies == (1.0,) * 3 + (0.5,) + (1.0,) * 6
    assert result.fold_thresholds == (0.5,) * 10
    assert result.mean == pytest.approx(0.95)
    assert result.std == pytest.approx(0.15)
    assert result.n_failed_pairs == 0


def test_kfold_accuracy_counts_failed_pairs() -> None:
    scores = np.tile([0.9, 0.1], 10)
    same = np.tile([True, False], 10)
    scores[0] = -np.inf  # a failed same pair in fold 0
    result = kfold_accuracy(scores, same)
    assert result.fold_accuracies[0] == 0.5
    assert result.n_failed_pairs == 1
    es = EmbeddingSet.from_optional([[1.0, 0.0], [1.0, 0.1], None], ["a", "a", "a"])
    lfw = metrics.lfw_accuracy(es, [(0, 1)] * 5 + [(0, 2)] * 5, [True] * 10, n_folds=10)
    assert lfw.mean == 0.5


# ------------------------------------------------------------- identification


def _basis(*weights: tuple[int, float]) -> list[float]:
    v = [0.0] * 8
    for axis, w in weights:
        v[axis] = w
    rest = 1.0 - sum(w * w for _, w in weights)
    v[7 if v[7] == 0.0 else 6] += math.sqrt(max(rest, 0.0))
    return v


def _identification_set(
    fail: tuple[str, ...] = (),
) -> tuple[EmbeddingSet, list[str]]:
    """Gallery: a1=e0, b1=e1, c1=e2, d=e3, e=e4 (d, e distractors).

    Mated probes: a2 top a1 at 0.9 (hit); a3 top d at 0.8 (miss); b2 failed (miss);
    c2 top c1 at 0.7 (hit). Non-mated: f tops b1 at 0.75, g tops e at 0.5.
    Listed out of order, with file names that sort differently from the list.
    """
    rows: dict[str, tuple[str, str, list[float]]] = {
        "a3": ("A", "A_0003.jpg", _basis((0, 0.6), (3, 0.8))),
        "a2": ("A", "A_0002.jpg", _basis((0, 0.9), (5, 0.3))),
        "a1": ("A", "A_0001.jpg", _basis((0, 1.0))),
        "b2": ("B", "B_0002.jpg", _basis((1, 1.0))),
        "b1": ("B", "B_0001.jpg", _basis((1, 1.0))),
        "c2": ("C", "C_0009.jpg", _basis((2, 0.7))),
        "c1": ("C", "C_0001.jpg", _basis((2, 1.0))),
        "g": ("G", "G_0001.jpg", _basis((4, 0.5))),
        "f": ("F", "F_0001.jpg", _basis((1, 0.75))),
        "e": ("E", "E_0001.jpg", _basis((4, 1.0))),
        "d": ("D", "D_0001.jpg", _basis((3, 1.0))),
    }
    failed = {"b2", *fail}
    es = EmbeddingSet.from_optional(
        [None if key in failed else vec for key, (_, _, vec) in rows.items()],
        [label for label, _, _ in rows.values()],
    )
    return es, [name for _, name, _ in rows.values()]


def test_identification_split_protocol() -> None:
    es, names = _identification_set()
    split = identification_split(es.labels, names)
    keys = ["a3", "a2", "a1", "b2", "b1", "c2", "c1", "g", "f", "e", "d"]

    def as_keys(indices: tuple[int, ...]) -> list[str]:
        return [keys[i] for i in indices]

    assert as_keys(split.mates) == ["a1", "b1", "c1"]
    assert as_keys(split.distractors) == ["d", "e"]
    assert as_keys(split.mated_probes) == ["a2", "a3", "b2", "c2"]
    assert as_keys(split.nonmated_probes) == ["f", "g"]
    odd = identification_split(["x", "y", "z"], ["1", "1", "1"])
    assert (odd.distractors, odd.nonmated_probes) == ((0,), (1, 2))


def test_identification_exact_rank1_and_fnir() -> None:
    es, names = _identification_set()
    r = evaluate_identification(es, names, fpir=0.01)
    assert (r.n_gallery, r.n_mates, r.n_distractors, r.n_failed_enrolments) == (5, 3, 2, 0)
    assert (r.n_mated_probes, r.n_nonmated_probes) == (4, 2)
    assert (r.n_failed_mated_probes, r.n_failed_nonmated_probes) == (1, 0)
    assert r.rank1_hits == 2
    assert r.rank1_hit_rate == 0.5
    # 2 non-mated probes, FPIR 1%: no false positive allowed -> t just above 0.75.
    assert r.threshold == pytest.approx(0.75)
    assert r.threshold > 0.75
    assert (r.false_positives, r.fpir_achieved) == (0, 0.0)
    # a2 (0.9) passes; a3 wrong mate, b2 failed, c2 at 0.7 < t: 3 misses.
    assert (r.fnir_misses, r.fnir) == (3, 0.75)

    r = evaluate_identification(es, names, fpir=0.5)
    assert r.threshold == pytest.approx(0.5)
    assert (r.false_positives, r.fpir_achieved) == (1, 0.5)
    assert (r.fnir_misses, r.fnir) == (2, 0.5)


def test_identification_failed_mate_and_failed_nonmated_probe() -> None:
    es, names = _identification_set(fail=("a1", "f"))
    r = evaluate_identification(es, names, fpir=0.01)
    assert (r.n_gallery, r.n_failed_enrolments) == (4, 1)
    assert r.n_failed_nonmated_probes == 1
    # a2 has no mate enrolled: a miss even though it has a top candidate.
    assert (r.rank1_hits, r.rank1_hit_rate) == (1, 0.25)
    # The failed non-mated probe returns no candidate; g's 0.5 now sets t.
    assert r.threshold == pytest.approx(0.5)
    assert r.threshold > 0.5
    assert r.false_positives == 0
    assert (r.fnir_misses, r.fnir) == (3, 0.75)
    json.dumps(r.to_dict(), allow_nan=False)
