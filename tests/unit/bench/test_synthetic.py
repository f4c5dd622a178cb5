"""bench.synthetic: the matcher benchmark's templates, tags and ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from bench import synthetic
from bench.synthetic import (
    ALL_BIT,
    TAG_SHARES,
    TopK,
    cluster_of,
    clustered_templates,
    exact_topk,
    exact_topk_filters,
    queries,
    recall,
    recall_above,
    recall_genuine,
    selected,
    spectrum,
    tag_masks,
)


def _brute(vectors: np.ndarray, probes: np.ndarray, k: int, rows: np.ndarray) -> TopK:
    """Full sort of every allowed row, ties by index: the reference."""
    q = probes.shape[0]
    idx = np.full((q, k), -1, dtype=np.int64)
    sim = np.full((q, k), -np.inf, dtype=np.float32)
    for i in range(q):
        s = (vectors[rows] @ probes[i]).astype(np.float32)
        order = np.lexsort((rows, -s))[:k]
        idx[i, : order.size] = rows[order]
        sim[i, : order.size] = s[order]
    return TopK(idx, sim)


@pytest.mark.parametrize("n", [1000, 12_345, 100_000])
def test_tag_shares_are_exact(n: int) -> None:
    masks = tag_masks(n, seed=3)
    assert masks.dtype == np.uint64
    for bit, share in TAG_SHARES.items():
        assert selected(masks, 1 << bit).size == round(share * n), (bit, share)
    assert selected(masks, 1 << ALL_BIT).size == n
    assert selected(masks, 0).size == n
    assert round(0.1 * n) <= selected(masks, 0b11).size <= round(0.11 * n)  # OR filter


def test_tag_bits_are_independent_draws() -> None:
    masks = tag_masks(100_000, seed=0)
    ten, one = selected(masks, 1 << 0), selected(masks, 1 << 1)
    # Independent draws: about 10% of the 1% entries also carry the 10% bit.
    overlap = np.intersect1d(ten, one).size / one.size
    assert 0.05 < overlap < 0.15
    assert not np.array_equal(tag_masks(1000, seed=0), tag_masks(1000, seed=1))


def test_bad_tag_shares() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.63"):
        tag_masks(10, shares={64: 0.5})
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        tag_masks(10, shares={1: 1.5})


def test_templates_are_unit_float32_and_reproducible() -> None:
    x = clustered_templates(3000, 64, clusters=300, seed=7)
    assert x.dtype == np.float32
    assert x.shape == (3000, 64)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(x, clustered_templates(3000, 64, clusters=300, seed=7))
    assert not np.array_equal(x, clustered_templates(3000, 64, clusters=300, seed=8))
    q, labels = queries(50, 64, clusters=300, seed=7)
    assert q.dtype == np.float32
    assert labels.shape == (50,)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)


def test_spectrum_participation_ratio() -> None:
    lam = spectrum(512, 80.0)
    assert lam.sum() == pytest.approx(1.0)
    assert lam.sum() ** 2 / (lam**2).sum() == pytest.approx(80.0, rel=1e-6)
    assert np.all(np.diff(lam) <= 0)
    np.testing.assert_allclose(spectrum(16, None), 1 / 16)
    np.testing.assert_allclose(spectrum(16, 16.0), 1 / 16)


def test_cosines_look_like_face_templates() -> None:
    dim, clusters = 512, 1500
    x = clustered_templates(6000, dim, clusters=clusters, seed=1)
    labels = cluster_of(np.arange(6000), clusters)
    sims = x @ x.T
    same = labels[:, None] == labels[None, :]
    upper = np.triu(np.ones_like(same), 1)
    genuine = sims[same & upper]
    impostor = sims[~same & upper]
    assert abs(float(impostor.mean())) < 0.01
    assert 0.08 < float(impostor.std()) < 0.13  # lfw-dev, shipped model: 0.105
    assert 0.68 < float(genuine.mean()) < 0.80  # lfw-dev: 0.74
    # Isotropic centres and noise (the plain mixture) are much more nearly orthogonal.
    iso = clustered_templates(2000, dim, clusters=500, seed=1, effective_dim=None)
    iso_labels = cluster_of(np.arange(2000), 500)
    iso_sims = (iso @ iso.T)[iso_labels[:, None] != iso_labels[None, :]]
    assert float(iso_sims.std()) < 0.06


def test_query_neighbours_are_in_its_cluster() -> None:
    clusters = 2000
    x = clustered_templates(20_000, 512, clusters=clusters, seed=2)
    q, labels = queries(200, 512, clusters=clusters, seed=2)
    assert not np.any(np.isclose(q @ x.T, 1.0, atol=1e-6))  # never a gallery row
    sims = q @ x.T
    nearest = np.argmax(sims, axis=1)
    assert np.mean(cluster_of(nearest, clusters) == labels) > 0.95
    # The whole cluster (10 templates here) comes first most of the time.
    top10 = np.argsort(-sims, axis=1)[:, :10]
    assert np.mean(cluster_of(top10, clusters) == labels[:, None]) > 0.9


@pytest.mark.parametrize("tag_mask", [0, 1 << 0, 1 << 1, 1 << 3, 0b110])
def test_exact_topk_matches_brute_force(tag_mask: int) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5000, 24)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    probes = x[:7] + 0.1 * rng.standard_normal((7, 24)).astype(np.float32)
    masks = tag_masks(5000, seed=4)
    got = exact_topk(x, probes, 10, masks=masks, tag_mask=tag_mask, block_rows=777)
    want = _brute(x, probes, 10, selected(masks, tag_mask))
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.similarities, want.similarities, rtol=1e-5, atol=1e-6)


def test_exact_topk_short_filters_and_query_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "QUERY_BLOCK", 3)  # several query blocks
    x = clustered_templates(4000, 32, clusters=400, seed=9)
    probes, _ = queries(8, 32, clusters=400, seed=9)
    # Bit 3 is on round(0.0001 * 4000) = 0 entries, bit 2 on 4: fewer than k.
    masks = tag_masks(4000, seed=1)
    filters = [0, 1 << 2, 1 << 3, 1 << 1]
    got = exact_topk_filters(x, probes, 5, masks, filters, block_rows=500)
    for tag_mask, result in zip(filters, got, strict=True):
        want = _brute(x, probes, 5, selected(masks, tag_mask))
        np.testing.assert_array_equal(result.indices, want.indices)
    assert np.all(got[1].indices[:, 4] == -1)
    assert np.all(got[1].similarities[:, 4] == -np.inf)
    assert len(got[1].rows(0)) == 4
    assert np.all(got[2].indices == -1)
    with pytest.raises(ValueError, match="needs masks"):
        exact_topk_filters(x, probes, 5, None, [1])


def test_recall_measures() -> None:
    truth = TopK(
        np.array([[3, 1, 2], [5, -1, -1]], dtype=np.int64),
        np.array([[0.9, 0.5, 0.2], [0.45, -np.inf, -np.inf]], dtype=np.float32),
    )
    assert recall([[3, 1, 2], [5]], truth) == pytest.approx(1.0)
    assert recall([[3, 7, 8], [9]], truth) == pytest.approx(1 / 4)
    # Above 0.41: {3, 1} and {5}; the miss of 2 (0.2) does not count.
    assert recall_above([[3, 1, 9], [5]], truth, 0.41) == pytest.approx(1.0)
    assert recall_above([[3, 9, 2], []], truth, 0.41) == pytest.approx(1 / 3)
    assert np.isnan(recall_above([[3], [5]], truth, 0.99))
    # Clusters of 4: rows 1, 2, 3 are cluster 1, 2, 3 and row 5 is cluster 1.
    clusters = np.array([3, 1], dtype=np.int64)
    assert recall_genuine([[3, 9, 9], [5]], truth, clusters, 4) == pytest.approx(1.0)
    assert recall_genuine([[1, 2, 9], [5]], truth, clusters, 4) == pytest.approx(1 / 2)
    assert np.isnan(recall_genuine([[3], [5]], truth, np.array([0, 0]), 4))
