"""Synthetic face-like templates for the matcher benchmark, and their exact ground truth.

Model: a mixture on the unit sphere. Each cluster stands for one person; its centre
is a random unit vector, and each template of that person is::

    normalise(centre + spread * noise),   noise ~ N(0, diag(lam)),  sum(lam) = 1

With ``lam = 1/dim`` everywhere (``effective_dim=None``) the noise is
``gaussian / sqrt(dim)`` and the centres are uniform on the sphere. Real templates are
not isotropic: on lfw-dev the shipped recognizer (EdgeFace-S, 512-d) has an embedding
covariance whose participation ratio ``(sum lam)^2 / sum lam^2`` is about 80, not
512, so impostor cosines spread with a standard deviation of 0.105 instead of the
isotropic 0.044, and genuine pairs average 0.74. The defaults copy those figures: the
centres and the noise share a power-law spectrum ``lam_i ~ i^-alpha`` whose
participation ratio is ``effective_dim`` = 80, and ``spread`` = 0.59. Measured on the
generator: impostor cosine mean 0.000, standard deviation 0.104, share above 0.41
(the shipped model's score 7000) 1.1e-4 — the real model's calibrated FMR 1e-4 there —
and genuine cosine mean 0.74. So, as with real templates, a template's nearest
neighbours are its own cluster's, clusters are nearly orthogonal (cosine near 0), and a
million-template gallery has a realistic tail of impostors near the threshold.

Template ``i`` of a gallery belongs to cluster ``i % clusters``; queries are fresh
templates (never in the gallery) of uniformly drawn clusters. Everything is float32,
generated in blocks, and reproducible from ``seed``.

Tags (:func:`tag_masks`) give exact selectivities: the bit ``b`` of :data:`TAG_SHARES`
is set on exactly ``round(share * n)`` entries chosen without replacement, each bit
independently of the others; bit 63 is on every entry. A search filter of ``1 << b``
therefore passes exactly that share (filter 0 means no filter: 100%).

:func:`exact_topk` is the ground truth: the exact top-k by fp32 cosine under a tag
filter, computed blockwise so memory stays bounded whatever the gallery size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]
U64 = NDArray[np.uint64]

DEFAULT_SPREAD = 0.59
"""Noise norm relative to the unit centre: genuine cosine about 1 / (1 + spread^2) = 0.74."""

DEFAULT_EFFECTIVE_DIM = 80.0
"""Participation ratio of the centre and noise spectrum (lfw-dev, shipped model: ~80)."""

TEMPLATES_PER_CLUSTER = 4
"""Default gallery templates per cluster (person) in the benchmark."""

ALL_BIT = 63
"""Tag bit set on every entry."""

TAG_SHARES: Mapping[int, float] = {
    0: 0.10,
    1: 0.01,
    2: 0.001,
    3: 0.0001,
    4: 0.0002,
    5: 0.0005,
    6: 0.002,
    7: 0.005,
    8: 0.02,
    9: 0.05,
    10: 0.2,
    11: 0.5,
    ALL_BIT: 1.0,
}
"""Tag bit -> exact share of entries carrying it. Bits 0..2 are the headline
selectivities (10%, 1%, 0.1%); the others fill in the planner's switch-point sweep."""

BLOCK_ROWS = 65_536
"""Rows generated or scored at once: a (1024 x BLOCK_ROWS) float32 tile is 256 MiB."""

QUERY_BLOCK = 1024
"""Queries scored at once by :func:`exact_topk_filters`."""


def spectrum(dim: int, effective_dim: float | None = DEFAULT_EFFECTIVE_DIM) -> NDArray[np.float64]:
    """Variances ``lam`` (sum 1) of a power law ``i^-alpha`` with the given participation ratio.

    ``None`` (or ``effective_dim >= dim``) gives the isotropic ``1/dim``.
    """
    if dim < 1:
        raise ValueError(f"dim must be positive, not {dim}")
    if effective_dim is None or effective_dim >= dim:
        return np.full(dim, 1.0 / dim)
    if effective_dim < 1:
        raise ValueError(f"effective_dim must be at least 1, not {effective_dim}")
    ranks = np.arange(1, dim + 1, dtype=np.float64)

    def ratio(alpha: float) -> float:
        lam = ranks**-alpha
        return float(lam.sum() ** 2 / (lam**2).sum())

    low, high = 0.0, 1.0
    while ratio(high) > effective_dim:
        high *= 2.0
    for _ in range(100):  # the ratio falls monotonically with alpha
        mid = (low + high) / 2.0
        if ratio(mid) > effective_dim:
            low = mid
        else:
            high = mid
    lam = ranks ** -((low + high) / 2.0)
    result: NDArray[np.float64] = lam / lam.sum()
    return result


def _normalise_rows(x: F32) -> F32:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def centres(
    clusters: int,
    dim: int,
    *,
    effective_dim: float | None = DEFAULT_EFFECTIVE_DIM,
    seed: int = 0,
) -> F32:
    """The ``(clusters, dim)`` unit centres of the mixture (the same for a given seed)."""
    if clusters < 1:
        raise ValueError(f"clusters must be positive, not {clusters}")
    scale = np.sqrt(spectrum(dim, effective_dim)).astype(np.float32)
    rng = np.random.default_rng([seed, 0])
    out = np.empty((clusters, dim), dtype=np.float32)
    for start in range(0, clusters, BLOCK_ROWS):
        block = rng.standard_normal((min(BLOCK_ROWS, clusters - start), dim), dtype=np.float32)
        out[start : start + block.shape[0]] = _normalise_rows(block * scale)
    return out


def _members(
    labels: I64,
    centre: F32,
    spread: float,
    scale: F32,
    rng: np.random.Generator,
) -> F32:
    dim = centre.shape[1]
    out = np.empty((labels.shape[0], dim), dtype=np.float32)
    for start in range(0, labels.shape[0], BLOCK_ROWS):
        rows = labels[start : start + BLOCK_ROWS]
        noise = rng.standard_normal((rows.shape[0], dim), dtype=np.float32)
        noise *= np.float32(spread) * scale
        noise += centre[rows]
        out[start : start + rows.shape[0]] = _normalise_rows(noise)
    return out


def clustered_templates(
    n: int,
    dim: int,
    *,
    clusters: int,
    spread: float = DEFAULT_SPREAD,
    effective_dim: float | None = DEFAULT_EFFECTIVE_DIM,
    seed: int = 0,
) -> F32:
    """``(n, dim)`` float32 unit rows; row ``i`` is a template of cluster ``i % clusters``."""
    if n < 0:
        raise ValueError(f"n must not be negative, not {n}")
    centre = centres(clusters, dim, effective_dim=effective_dim, seed=seed)
    scale = np.sqrt(spectrum(dim, effective_dim)).astype(np.float32)
    labels = np.arange(n, dtype=np.int64) % clusters
    return _members(labels, centre, spread, scale, np.random.default_rng([seed, 1]))


def cluster_of(index: I64 | int, clusters: int) -> I64:
    """The cluster of gallery template(s) ``index`` (see :func:`clustered_templates`)."""
    return np.asarray(index, dtype=np.int64) % clusters


def queries(
    count: int,
    dim: int,
    *,
    clusters: int,
    spread: float = DEFAULT_SPREAD,
    effective_dim: float | None = DEFAULT_EFFECTIVE_DIM,
    seed: int = 0,
    query_seed: int = 1,
) -> tuple[F32, I64]:
    """``count`` fresh templates of the gallery's clusters (same ``seed``) and their clusters.

    The clusters are drawn uniformly; the templates are new draws, never gallery rows.
    """
    centre = centres(clusters, dim, effective_dim=effective_dim, seed=seed)
    scale = np.sqrt(spectrum(dim, effective_dim)).astype(np.float32)
    rng = np.random.default_rng([seed, 2, query_seed])
    labels = rng.integers(0, clusters, size=count, dtype=np.int64)
    return _members(labels, centre, spread, scale, rng), labels


def tag_masks(n: int, seed: int = 0, shares: Mapping[int, float] = TAG_SHARES) -> U64:
    """``(n,)`` uint64 tag masks: bit ``b`` on exactly ``round(shares[b] * n)`` entries."""
    masks = np.zeros(n, dtype=np.uint64)
    rng = np.random.default_rng([seed, 3])
    for bit in sorted(shares):
        if not 0 <= bit <= 63:
            raise ValueError(f"tag bit {bit} is outside 0..63")
        share = shares[bit]
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share {share} of bit {bit} is outside 0..1")
        count = round(share * n)
        chosen = np.arange(n) if count == n else rng.choice(n, size=count, replace=False)
        masks[chosen] |= np.uint64(1 << bit)
    return masks


def selected(masks: U64, tag_mask: int) -> I64:
    """Indices of the entries a search with ``tag_mask`` may return (0 = all)."""
    if tag_mask == 0:
        return np.arange(masks.shape[0], dtype=np.int64)
    return np.flatnonzero(masks & np.uint64(tag_mask)).astype(np.int64)


@dataclass(frozen=True)
class TopK:
    """Exact top-k of each query, best first, ties by increasing index.

    Attributes:
        indices: ``(q, k)`` int64 gallery rows; -1 where fewer than k entries pass.
        similarities: ``(q, k)`` float32 cosines; ``-inf`` where the index is -1.
    """

    indices: I64
    similarities: F32

    def rows(self, query: int) -> list[int]:
        """The valid indices of one query, best first."""
        found = self.indices[query]
        return [int(i) for i in found[found >= 0]]


def _merge(best_idx: I64, best_sim: F32, cand_idx: I64, cand_sim: F32, k: int) -> tuple[I64, F32]:
    idx = np.concatenate([best_idx, cand_idx], axis=1)
    sim = np.concatenate([best_sim, cand_sim], axis=1)
    # Primary key: similarity, descending; then the index, ascending (-1 fillers sort last
    # because their similarity is -inf).
    order = np.lexsort((idx, -sim), axis=1)[:, :k]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(sim, order, axis=1)


def exact_topk_filters(
    vectors: F32,
    probes: F32,
    k: int,
    masks: U64 | None,
    filters: Sequence[int],
    *,
    block_rows: int = BLOCK_ROWS,
) -> list[TopK]:
    """Exact fp32 top-k of ``probes`` under each tag filter, in one pass over ``vectors``.

    Entry ``i`` passes filter ``f`` when ``f == 0`` or ``masks[i] & f != 0``. Memory is
    bounded by one ``(QUERY_BLOCK, block_rows)`` tile whatever the gallery size.
    """
    if k < 1:
        raise ValueError(f"k must be positive, not {k}")
    if masks is None and any(f != 0 for f in filters):
        raise ValueError("a tag filter needs masks")
    n, q = vectors.shape[0], probes.shape[0]
    idx_out = [np.full((q, k), -1, dtype=np.int64) for _ in filters]
    sim_out = [np.full((q, k), -np.inf, dtype=np.float32) for _ in filters]
    for q0 in range(0, q, QUERY_BLOCK):
        qs = slice(q0, min(q, q0 + QUERY_BLOCK))
        probe = np.ascontiguousarray(probes[qs], dtype=np.float32)
        best = [(idx[qs], sim[qs]) for idx, sim in zip(idx_out, sim_out, strict=True)]
        for start in range(0, n, block_rows):
            stop = min(n, start + block_rows)
            sims = probe @ vectors[start:stop].T
            for f, tag_mask in enumerate(filters):
                if tag_mask == 0:
                    cols = None
                else:
                    assert masks is not None
                    cols = np.flatnonzero(masks[start:stop] & np.uint64(tag_mask))
                    if cols.size == 0:
                        continue
                part = sims if cols is None else sims[:, cols]
                width = part.shape[1]
                if width > k:
                    top = np.argpartition(-part, k - 1, axis=1)[:, :k]
                else:
                    top = np.broadcast_to(np.arange(width), (part.shape[0], width))
                cand_sim = np.take_along_axis(part, top, axis=1)
                cand_idx = (top if cols is None else cols[top]).astype(np.int64) + start
                best[f] = _merge(best[f][0], best[f][1], cand_idx, cand_sim, k)
        for f, (idx, sim) in enumerate(best):
            idx_out[f][qs], sim_out[f][qs] = idx, sim
    return [TopK(i, s) for i, s in zip(idx_out, sim_out, strict=True)]


def exact_topk(
    vectors: F32,
    probes: F32,
    k: int,
    *,
    masks: U64 | None = None,
    tag_mask: int = 0,
    block_rows: int = BLOCK_ROWS,
) -> TopK:
    """Exact fp32 top-k under one tag filter (see :func:`exact_topk_filters`)."""
    return exact_topk_filters(vectors, probes, k, masks, [tag_mask], block_rows=block_rows)[0]


def recall_where(found: Sequence[Sequence[int]], truth: TopK, counted: NDArray[np.bool_]) -> float:
    """Pooled recall over the true top-k entries where ``counted`` (``(q, k)``) is True.

    ``found[q]`` is what the system under test returned for query ``q`` (gallery rows).
    NaN when no true entry is counted.
    """
    hits = total = 0
    for q, rows in enumerate(found):
        ok = (truth.indices[q] >= 0) & counted[q]
        want = {int(i) for i in truth.indices[q][ok]}
        total += len(want)
        hits += len(want.intersection(rows))
    return hits / total if total else float("nan")


def recall(found: Sequence[Sequence[int]], truth: TopK) -> float:
    """Pooled recall: the share of all true top-k entries that ``found`` also returns.

    NaN when the truth is empty (no entry passes the filter).
    """
    return recall_where(found, truth, np.ones(truth.indices.shape, dtype=np.bool_))


def recall_above(found: Sequence[Sequence[int]], truth: TopK, threshold: float) -> float:
    """Like :func:`recall`, counting only true entries with similarity >= ``threshold``.

    Every entry a search at that threshold should return, genuine or not: at a million
    templates most of them are impostors (the threshold's false-match rate times the
    gallery size). NaN when no true entry reaches the threshold.
    """
    return recall_where(found, truth, truth.similarities >= threshold)


def recall_genuine(
    found: Sequence[Sequence[int]], truth: TopK, query_clusters: I64, clusters: int
) -> float:
    """Like :func:`recall`, counting only true entries of the query's own cluster.

    The same person's other templates: the matches a user must not miss. NaN when none
    is in the true top-k.
    """
    own = cluster_of(truth.indices, clusters) == query_clusters[: truth.indices.shape[0], None]
    return recall_where(found, truth, own)
