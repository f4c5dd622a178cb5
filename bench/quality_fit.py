"""Fitting and checking the faceQualityScore model (used by ``bench.calibrate``).

Target: a photo is *good* when the median similarity to its own mates reaches the
given threshold (the calibration uses FMR 1e-5). A logistic regression over the
standardised QualityFeatures and unit embedding predicts that; a measurement whose
fitted weight has the wrong sign (bigger faces must not lower quality, say) is dropped
and the fit repeated, so quality is monotone in the right direction even outside the
calibration data. Embedding components have no expected sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.metrics import EmbeddingSet
from extractor.quality import QualityFeatures, QualityModel

EXPECTED_SIGN = {
    "log_eye_distance": 1.0,
    "abs_pan": -1.0,
    "abs_tilt": -1.0,
    "face_score": 1.0,
    "sharpness": 1.0,
    "contrast": 1.0,
    "embedding_norm": 1.0,
}
L2_PENALTY = 1e-2
REJECT_FRACTIONS = (0.0, 0.02, 0.05, 0.10, 0.20)


def mate_utility(es: EmbeddingSet) -> np.ndarray:
    """Median similarity of each image to the other images of its identity (NaN: none)."""
    codes = es.label_codes()
    utility = np.full(len(es), np.nan)
    for code in np.unique(codes):
        members = np.flatnonzero((codes == code) & es.valid)
        if len(members) < 2:
            continue
        sims = es.vectors[members] @ es.vectors[members].T
        np.fill_diagonal(sims, np.nan)
        utility[members] = np.nanmedian(sims, axis=1)
    return utility


def utility_against(
    clean: EmbeddingSet, probes: EmbeddingSet, originals: Sequence[int]
) -> np.ndarray:
    """Median similarity of each probe to the clean photos of its identity, leaving out
    the clean photo it was made from (NaN where the probe failed)."""
    codes = clean.label_codes()
    utility = np.full(len(probes), np.nan)
    for row, original in enumerate(originals):
        if not probes.valid[row]:
            continue
        mates = np.flatnonzero((codes == codes[original]) & clean.valid)
        mates = mates[mates != original]
        if len(mates):
            utility[row] = float(np.median(clean.vectors[mates] @ probes.vectors[row]))
    return utility


def _logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (x standardised)."""
    design = np.hstack((x, np.ones((len(x), 1))))
    beta = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], L2_PENALTY * len(x))
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (p - y) + penalty * beta
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta[:-1], float(beta[-1])


def fit_quality(
    features: Sequence[QualityFeatures | None],
    embeddings: np.ndarray,
    utility: np.ndarray,
    threshold: float,
) -> QualityModel:
    """Fit on the rows that have a face (features not None) and a utility.

    ``embeddings`` holds one unit embedding per row (anything where there is no face).
    """
    rows = [i for i, f in enumerate(features) if f is not None and np.isfinite(utility[i])]
    measured = np.stack([features[i].vector() for i in rows])  # type: ignore[union-attr]
    x = np.hstack((measured, embeddings[rows].astype(np.float64)))
    y = (utility[rows] >= threshold).astype(np.float64)
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-9)
    z = np.clip((x - mean) / std, -4.0, 4.0)
    names = QualityFeatures.names()
    signs = np.array([EXPECTED_SIGN[n] for n in names] + [0.0] * embeddings.shape[1])
    active = np.ones(x.shape[1], dtype=bool)
    while True:
        weights_active, bias = _logistic(z[:, active], y)
        weights = np.zeros(x.shape[1])
        weights[active] = weights_active
        wrong = active & (weights * signs < 0)
        if not wrong.any():
            break
        active &= ~wrong
    return QualityModel(
        features=names,
        embedding_dim=embeddings.shape[1],
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        weights=tuple(float(v) for v in weights),
        bias=bias,
    )


@dataclass(frozen=True)
class ErcPoint:
    rejected: float
    fnmr: float
    genuine_pairs: int


def error_versus_reject(
    es: EmbeddingSet, quality: np.ndarray, threshold: float, images: np.ndarray | None = None
) -> list[ErcPoint]:
    """FNMR at a fixed threshold after discarding the lowest-quality share of probes.

    Over the genuine pairs among ``images`` (default: all); an image without a face
    has quality -inf, so it is the first to be discarded. A pair counts when both of
    its images are kept.
    """
    chosen = np.arange(len(es)) if images is None else images
    q = np.where(np.isfinite(quality[chosen]), quality[chosen], -np.inf)
    codes = es.label_codes()[chosen]
    points = []
    for fraction in REJECT_FRACTIONS:
        cut = round(fraction * len(chosen))
        kept = np.ones(len(chosen), dtype=bool)
        kept[np.argsort(q, kind="stable")[:cut]] = False
        accepted = total = 0
        for code in np.unique(codes[kept]):
            members = chosen[kept & (codes == code)]
            k = len(members)
            if k < 2:
                continue
            ok = es.valid[members]
            sims = es.vectors[members] @ es.vectors[members].T
            sims[~(ok[:, None] & ok[None, :])] = -np.inf
            upper = sims[np.triu_indices(k, 1)]
            accepted += int(np.count_nonzero(upper >= threshold))
            total += len(upper)
        points.append(ErcPoint(fraction, 1.0 - accepted / total if total else 0.0, total))
    return points
