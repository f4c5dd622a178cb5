"""Exact similarities: blocked scans of the float32 vectors and the one canonical value.

A similarity is defined once: the float64 inner product of the stored float32 vectors,
rounded to float32 (:func:`canonical`). Scans compute float32 products (BLAS), which
differ from the canonical value by far less than ``FLOAT32_MARGIN``; so a scan keeps
every entry within twice that margin of its k-th best and re-scores those canonically,
which yields exactly the canonical top-k whichever path, shard or batch found them.
"""

from __future__ import annotations

import numpy as np

SCAN_BLOCK = 4096
# |float32 product - float64 product| for unit vectors of a few thousand dimensions.
FLOAT32_MARGIN = 1e-5


def similarities(vectors: np.ndarray, rows: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """float32 similarities of ``probe`` to ``vectors[rows]``, in cache-sized blocks."""
    out = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), SCAN_BLOCK):
        block = rows[start : start + SCAN_BLOCK]
        out[start : start + len(block)] = vectors[block] @ probe
    return out


def candidates(approximate: np.ndarray, k: int, min_similarity: float, margin: float) -> np.ndarray:
    """Positions that may belong to the exact top-k at or above ``min_similarity``, given
    approximate similarities within ``margin`` of the exact ones."""
    keep = approximate >= min_similarity - 2 * margin
    if np.count_nonzero(keep) > k:
        kth = np.partition(approximate[keep], -k)[-k]
        keep &= approximate >= kth - 2 * margin
    return np.flatnonzero(keep)


def canonical(vectors: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """The canonical similarities of ``probe`` to the rows of ``vectors``."""
    exact: np.ndarray = (vectors.astype(np.float64) @ probe.astype(np.float64)).astype(np.float32)
    return exact
