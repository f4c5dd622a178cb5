"""The projection the HNSW graph of a large gallery is built on.

Graph search cost is dominated by distance computations, and face templates vary along
far fewer directions than they have dimensions (the shipped 512-d model's templates
have an effective dimension near 80 on lfw-dev). So a large gallery's graph holds each
vector projected on its gallery's principal directions; the graph proposes candidates
and every candidate is re-scored with its full float32 vector (matcher/scan.py). At a
million templates this halves the latency at equal recall and keeps a quarter of the
bytes per vector in the graph (docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np

SAMPLE = 50_000
"""Vectors used to fit a projection (a random sample of the gallery beyond that)."""


def fit(vectors: np.ndarray, dims: int, seed: int = 0) -> np.ndarray:
    """``dim x dims`` float32 matrix of the top principal directions (uncentred: inner
    products, not distances, are what the graph approximates)."""
    rows = vectors
    if len(rows) > SAMPLE:
        rows = rows[np.random.default_rng(seed).choice(len(rows), SAMPLE, replace=False)]
    second_moment = rows.T.astype(np.float64) @ rows.astype(np.float64) / max(len(rows), 1)
    eigenvalues, eigenvectors = np.linalg.eigh(second_moment)
    order = np.argsort(eigenvalues)[::-1][:dims]
    return np.ascontiguousarray(eigenvectors[:, order], dtype=np.float32)
