"""The accuracy benchmark's pure parts on hand-made inputs: the verification folds, the
gallery/probe split, refusal accounting, both views of every figure, the report text and
the figures. No service and no model is started."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.accuracy_api import ApiRun, Enrolment, InProcess, det_scores, run_figures
from bench.accuracy_protocol import (
    IdentificationPlan,
    SearchAnswers,
    VerificationPairs,
    draw_verification_pairs,
    identification_figures,
    kfold_with_refusals,
    mated_probes,
    plan_identification,
    refusal_rate,
    target,
    verification_figures,
)
from bench.accuracy_report import cmc_curves, det_points, draw_cmc, draw_det, render, summary
from bench.dataset import LabelledImage
from bench.metrics import kfold_accuracy

INF = math.inf


def _labels(multi: int, photos: int, single: int) -> list[str]:
    """``multi`` people with ``photos`` photos each, then ``single`` one-photo people."""
    labels = [f"m{i:02d}" for i in range(multi) for _ in range(photos)]
    return labels + [f"s{i:02d}" for i in range(single)]


def _images(labels: list[str], names: list[str] | None = None) -> list[LabelledImage]:
    names = names or [f"{label}_{k:04d}.jpg" for k, label in enumerate(labels)]
    return [
        LabelledImage(Path("/nowhere") / label / name, label)
        for label, name in zip(labels, names, strict=True)
    ]


# ------------------------------------------------------------------ verification folds


def _pairs(seed: int = 0) -> tuple[list[str], VerificationPairs]:
    labels = _labels(multi=30, photos=4, single=40)
    return labels, draw_verification_pairs(labels, n_folds=3, pairs_per_fold=20, seed=seed)


def test_folds_are_deterministic_for_a_seed_and_change_with_it() -> None:
    _, one = _pairs(seed=7)
    _, again = _pairs(seed=7)
    _, other = _pairs(seed=8)
    for name in ("first", "second", "same", "fold"):
        np.testing.assert_array_equal(getattr(one, name), getattr(again, name))
    assert not np.array_equal(one.first, other.first)


def test_folds_have_the_right_sizes_and_kinds_of_pairs() -> None:
    labels, pairs = _pairs()
    assert len(pairs) == 3 * 40
    for fold in range(3):
        in_fold = pairs.fold == fold
        assert np.count_nonzero(in_fold & pairs.same) == 20
        assert np.count_nonzero(in_fold & ~pairs.same) == 20
    seen = set()
    for a, b, same in zip(pairs.first, pairs.second, pairs.same, strict=True):
        assert a != b
        assert (labels[a] == labels[b]) == same
        key = (min(a, b), max(a, b))
        assert key not in seen, "a pair drawn twice"
        seen.add(key)


def test_folds_are_identity_disjoint() -> None:
    labels, pairs = _pairs()
    fold_of: dict[str, set[int]] = {}
    for a, b, fold in zip(pairs.first, pairs.second, pairs.fold, strict=True):
        for photo in (a, b):
            fold_of.setdefault(labels[photo], set()).add(int(fold))
    assert all(len(folds) == 1 for folds in fold_of.values())


def test_genuine_pairs_spread_over_people_before_repeating_one() -> None:
    # One fold: a person with 10 photos (45 pairs) and five with two (one pair each).
    labels = ["big"] * 10 + [f"p{i}" for i in range(5) for _ in range(2)]
    pairs = draw_verification_pairs(labels, n_folds=1, pairs_per_fold=6, seed=3)
    people = [labels[a] for a, same in zip(pairs.first, pairs.same, strict=True) if same]
    assert sorted(people) == ["big", "p0", "p1", "p2", "p3", "p4"]


def test_a_fold_without_enough_pairs_is_an_error() -> None:
    labels = _labels(multi=4, photos=2, single=4)
    with pytest.raises(ValueError, match="genuine pairs"):
        draw_verification_pairs(labels, n_folds=2, pairs_per_fold=3, seed=0)
    # Five photos of one person, two of another: 11 genuine pairs, only 10 impostor pairs.
    labels = ["a"] * 5 + ["b"] * 2
    with pytest.raises(ValueError, match="10 impostor pairs"):
        draw_verification_pairs(labels, n_folds=1, pairs_per_fold=11, seed=0)
    assert len(draw_verification_pairs(labels, n_folds=1, pairs_per_fold=10, seed=0)) == 20


# ------------------------------------------------------------------ gallery/probe split


def test_plan_enrols_in_file_name_order_and_halves_the_singles() -> None:
    labels = ["a", "a", "a", "b", "b", *(f"s{i}" for i in range(7))]
    names = [
        "a_3.jpg",
        "a_1.jpg",
        "a_2.jpg",
        "b_2.jpg",
        "b_1.jpg",
        *(f"s{i}.jpg" for i in range(7)),
    ]
    plan = plan_identification(_images(labels, names), seed=5)
    assert dict(plan.enrolment_order) == {"a": (1, 2, 0), "b": (4, 3)}
    singles = set(range(5, 12))
    assert len(plan.distractors) == 3
    assert len(plan.nonmated) == 4
    assert set(plan.distractors) | set(plan.nonmated) == singles
    assert plan_identification(_images(labels, names), seed=5) == plan
    others = {plan_identification(_images(labels, names), seed=s).distractors for s in range(6)}
    assert len(others) > 1, "the distractors do not depend on the seed"


def test_mated_probes_are_every_photo_but_the_enrolled_one() -> None:
    plan = IdentificationPlan(
        enrolment_order={"a": (0, 1, 2), "b": (3, 4)}, distractors=(), nonmated=()
    )
    # a: its first photo was refused, its second enrolled; b: nothing enrolled.
    assert mated_probes(plan, {"a": 1}) == [(0, "a"), (2, "a"), (4, "b")]
    assert mated_probes(plan, {"a": 0, "b": 3}) == [(1, "a"), (2, "a"), (4, "b")]


# ------------------------------------------------------------------ refusals


def test_refusal_rate_counts_by_type_most_first() -> None:
    rate = refusal_rate([None, "NoFace", "MultipleFaces", None, "MultipleFaces", "HTTP 404"])
    assert rate.requests == 6
    assert rate.refused == 4
    assert rate.rate == pytest.approx(4 / 6)
    assert list(rate.by_type.items()) == [("MultipleFaces", 2), ("HTTP 404", 1), ("NoFace", 1)]
    assert refusal_rate([None, None]).to_dict() == {
        "requests": 2,
        "refused": 0,
        "rate": 0.0,
        "by_type": {},
    }


# ------------------------------------------------------------------ verification figures


def _two_folds() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.array([9000, 8000, -INF, 1000, 2000, 3000, 9000, 8500, 7000, 1000, -INF, 1500])
    same = np.array([True] * 3 + [False] * 3 + [True] * 3 + [False] * 3)
    fold = np.array([0] * 6 + [1] * 6)
    return scores.astype(np.float64), same, fold


def test_kfold_counts_a_refused_pair_wrong_for_users_and_drops_it_otherwise() -> None:
    scores, same, fold = _two_folds()
    users, accepted = kfold_with_refusals(scores, same, fold)
    # Thresholds from the other fold's accepted pairs: midpoints (1500+7000)/2, (3000+8000)/2.
    assert users.fold_thresholds == (4250.0, 5500.0)
    assert users.fold_accuracies == pytest.approx((5 / 6, 5 / 6))
    assert users.n_failed_pairs == 2
    assert accepted.fold_accuracies == (1.0, 1.0)
    assert accepted.n_pairs == 10
    # A refused impostor pair, scored -inf, would be a right rejection to kfold_accuracy:
    # the users' view must not count it so.
    assert kfold_accuracy(scores, same, folds=fold).mean > users.mean
    keep = np.isfinite(scores)
    assert kfold_accuracy(scores[keep], same[keep], folds=fold[keep]).mean == accepted.mean


def test_fmr_and_fnmr_in_both_views() -> None:
    scores = np.array([9000, 6000, -INF, 8000, 7500, 1000, -INF, 2000], dtype=np.float64)
    same = np.array([True] * 4 + [False] * 4)
    fold = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    figures = verification_figures(scores, same, fold, fmr=0.25, threshold=7000)
    assert figures.refused_pairs == 2
    # Users: a refused genuine pair is a false non-match, a refused impostor no false match.
    assert figures.users.fmr_at_default == 0.25
    assert figures.users.fnmr_at_default == 0.5
    assert figures.users.pairs == 8
    assert figures.accepted.fmr_at_default == pytest.approx(1 / 3)
    assert figures.accepted.fnmr_at_default == pytest.approx(1 / 3)
    assert figures.accepted.pairs == 6
    # One false match allowed among four impostors: the threshold sits above the second.
    assert figures.users.tar_at_fmr.threshold == pytest.approx(2000)
    assert figures.users.tar_at_fmr.tar == 0.75


# ------------------------------------------------------------------ identification figures


def _answers() -> SearchAnswers:
    return SearchAnswers(
        mate_rank=np.array([1, 2, 0, 1, 0]),
        mate_score=np.array([8000, 7200, -INF, 6500, -INF]),
        # The third was refused; the fifth's person could not be enrolled.
        mated_accepted=np.array([True, True, False, True, False]),
        nonmated_top=np.array([7100, 3000, -INF, 5000]),
        nonmated_accepted=np.array([True, True, False, True]),
    )


def test_identification_users_view_counts_refusals_as_misses() -> None:
    users = identification_figures(_answers(), ranks=3, fpir=0.25, threshold=7000).users
    assert users.mated_searches == 5
    assert users.nonmated_searches == 4
    assert users.cmc == pytest.approx((0.4, 0.6, 0.6))
    assert users.rank1 == 0.4
    # One false positive allowed among four: the threshold sits just above 5000.
    assert 5000 < users.threshold_at_fpir < 5001
    assert users.fpir_achieved == 0.25
    assert users.fnir_at_fpir == pytest.approx(3 / 5)
    assert users.fpir_at_default == 0.25
    assert users.fnir_at_default == pytest.approx(4 / 5)


def test_identification_accepted_view_leaves_refusals_out() -> None:
    accepted = identification_figures(_answers(), ranks=3, fpir=0.25, threshold=7000).accepted
    assert accepted.mated_searches == 3
    assert accepted.nonmated_searches == 3
    assert accepted.cmc == pytest.approx((2 / 3, 1.0, 1.0))
    assert 7100 < accepted.threshold_at_fpir < 7101
    assert accepted.fpir_achieved == 0.0
    assert accepted.fnir_at_fpir == pytest.approx(2 / 3)
    assert accepted.fpir_at_default == pytest.approx(1 / 3)


def test_target_directions() -> None:
    assert target(0.004, 0.005, at_most=True).met
    assert not target(0.006, 0.005, at_most=True).met
    assert target(0.996, 0.996, at_most=False).met
    assert not target(0.99, 0.996, at_most=False).met


# ------------------------------------------------------------------ report


def test_det_points_at_every_score() -> None:
    genuine = np.array([3.0, 5.0, -INF])
    impostor = np.array([1.0, 4.0])
    fmr, fnmr = det_points(genuine, impostor)
    # thresholds 1, 3, 4, 5
    np.testing.assert_allclose(fmr, [1.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(fnmr, [1 / 3, 1 / 3, 2 / 3, 2 / 3])


def _run() -> tuple[VerificationPairs, ApiRun, InProcess]:
    _, pairs = _pairs()
    api_scores = np.where(pairs.same, 8000.0, 2000.0)
    api_scores[[0, 25]] = -INF
    verify_refusals: list[str | None] = [None] * len(pairs)
    verify_refusals[0] = verify_refusals[25] = "MultipleFaces"
    enrolment = Enrolment(
        attempts=[None, "NoFace", None, None],
        identities=[None, None, None],
        photo={"a": 0, "b": 2},
        subject={"a": "s-a", "b": "s-b"},
    )
    api = ApiRun(enrolment, api_scores, verify_refusals, _answers(), [None, None, "PoorQuality"])
    local = InProcess(np.where(pairs.same, 8100.0, 1900.0), _answers(), {})
    return pairs, api, local


def _result() -> dict[str, Any]:
    pairs, api, local = _run()
    return {
        "machine": "a machine",
        "command": "python -m bench.accuracy_api",
        "wall_s": dict.fromkeys(
            ("total", "service_start", "enrol", "verify", "search", "in_process"), 1.0
        ),
        "protocol": {
            "dataset": "lfw-dev",
            "photos": 160,
            "identities": 70,
            "seed": 0,
            "clients": 4,
            "folds": 3,
            "pairs_per_fold": 20,
            "genuine_pairs": 60,
            "impostor_pairs": 60,
            "gallery_identities": 30,
            "distractors": 20,
            "mated_searches": 5,
            "nonmated_searches": 4,
            "search_limit": 10,
            "default_threshold": 7000,
            "tar_fmr": 1e-3,
            "fpir": 0.01,
        },
        **run_figures(pairs, api, local),
        "figures": {"det": "docs/figures/accuracy-det.png", "cmc": "docs/figures/accuracy-cmc.png"},
    }


def test_run_figures_compare_the_api_with_in_process() -> None:
    result = _result()
    ver = result["verification"]
    assert ver["api"]["refused_pairs"] == 2
    assert ver["api"]["users"]["accuracy"]["mean"] == pytest.approx(1 - 2 / 120)
    assert ver["api"]["accepted"]["accuracy"]["mean"] == 1.0
    assert ver["difference"]["accuracy_10fold"] == pytest.approx(
        ver["api"]["users"]["accuracy"]["mean"] - 1.0
    )
    assert result["refusals"]["enrolment_attempts"]["rate"] == 0.25
    assert result["refusals"]["probes"]["refused"] == 3
    assert result["refusals"]["probes"]["requests"] == 123
    assert result["refusals"]["probes"]["by_type"] == {"MultipleFaces": 2, "PoorQuality": 1}
    assert result["targets"]["fta_probes"]["met"] is False
    assert result["targets"]["rank1"]["met"] is False


def test_render_and_summary_show_every_figure_and_target() -> None:
    result = _result()
    text = render(result)
    assert "| 10-fold accuracy (mean ± std) |" in text
    assert "| FNIR at FPIR 0.01 |" in text
    assert (
        "| failure to acquire, all probe requests | 123 | 3 | 0.0244 "
        "| MultipleFaces 2, PoorQuality 1 |" in text
    )
    assert "failure to acquire, probes ≤ 0.005: 0.0244, NOT met" in text
    assert "![DET](figures/accuracy-det.png)" in text
    assert "![CMC](figures/accuracy-cmc.png)" in text
    assert "NOT met" in summary(result)


def test_figures_are_drawn(tmp_path: Path) -> None:
    pairs, api, local = _run()
    draw_det(tmp_path / "det.png", det_scores(pairs, api, local), 7000)
    draw_cmc(tmp_path / "cmc.png", cmc_curves(_result()))
    for name in ("det.png", "cmc.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_det_scores_split_genuine_and_impostor_per_view() -> None:
    pairs, api, local = _run()
    curves = det_scores(pairs, api, local)
    users_genuine, users_impostor = next(iter(curves.values()))
    assert users_genuine.shape[0] + users_impostor.shape[0] == len(pairs)
    accepted_genuine, accepted_impostor = list(curves.values())[1]
    assert accepted_genuine.shape[0] + accepted_impostor.shape[0] == len(pairs) - 2
    assert all(np.isfinite(s).all() for s in (accepted_genuine, accepted_impostor))
    # Pair 0 is genuine and pair 25 an impostor (fold 0: 20 genuine, then 20 impostor).
    assert np.count_nonzero(np.isneginf(users_genuine)) == 1
    assert np.count_nonzero(np.isneginf(users_impostor)) == 1
