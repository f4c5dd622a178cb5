"""A gallery's graph projection is refitted as the gallery grows: the directions fitted
on its first entries must not decide forever how later, different entries are found."""

from __future__ import annotations

import numpy as np

from matcher.gallery import EntryBatch, Gallery
from matcher.params import IndexParams

DIM = 128


def people(rng: np.random.Generator, basis: np.ndarray, n: int) -> np.ndarray:
    """``n`` unit vectors living (mostly) in the span of ``basis`` rows, 3 per person."""
    centres = rng.standard_normal((n // 3 + 1, len(basis))) @ basis
    rows = centres[np.arange(n) // 3] + 0.3 * rng.standard_normal((n, len(basis))) @ basis
    rows += 0.02 * rng.standard_normal((n, DIM))
    result: np.ndarray = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return result


def entries(vectors: np.ndarray, start: int) -> EntryBatch:
    ids = [f"e{start + i:06d}" for i in range(len(vectors))]
    return EntryBatch(ids, ids, vectors, np.zeros(len(vectors), dtype=np.uint64))


def recall(gallery: Gallery, probes: np.ndarray) -> float:
    found = total = 0
    for probe in probes:
        exact = {h.event_id for h in gallery.search_exact(probe, 10)}
        found += len(exact & {h.event_id for h in gallery.search(probe, 10)})
        total += len(exact)
    return found / total


def test_growth_refits_the_projection_and_restores_recall() -> None:
    rng = np.random.default_rng(7)
    # Two populations in orthogonal 24-d subspaces: the first fills the gallery first.
    basis = np.linalg.qr(rng.standard_normal((DIM, 48)))[0].T
    first, later = people(rng, basis[:24], 600), people(rng, basis[24:], 3000)
    params = IndexParams(index_min=500, projection_dim=32, ef_search=64, refit_growth=4.0)
    gallery = Gallery("g", "m", DIM, params)
    gallery.upsert(entries(first, 0))
    gallery.flush()  # the projection is fitted on the first population only
    assert not gallery.needs_compaction()
    gallery.upsert(entries(later, len(first)))
    gallery.flush()
    probes = later[rng.integers(0, len(later), 60)]
    before = recall(gallery, probes)
    assert gallery.needs_compaction()  # 3,600 entries >= 4 x 600 fitted on
    assert gallery.compact()
    after = recall(gallery, probes)
    assert not gallery.needs_compaction()
    assert after >= 0.95
    assert after > before + 0.2, (before, after)


def test_no_refit_when_disabled_or_not_grown() -> None:
    rng = np.random.default_rng(8)
    basis = np.linalg.qr(rng.standard_normal((DIM, 24)))[0].T
    vectors = people(rng, basis, 1500)
    off = Gallery("g", "m", DIM, IndexParams(index_min=500, projection_dim=16, refit_growth=0))
    off.upsert(entries(vectors[:500], 0))
    off.flush()
    off.upsert(entries(vectors[500:], 500))
    off.flush()
    assert not off.needs_compaction()
    on = Gallery("g", "m", DIM, IndexParams(index_min=500, projection_dim=16))
    on.upsert(entries(vectors[:500], 0))
    on.flush()
    on.upsert(entries(vectors[500:1400], 500))
    on.flush()
    assert not on.needs_compaction()  # 1,400 < 4 x 500
