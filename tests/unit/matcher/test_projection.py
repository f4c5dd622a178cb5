"""The graph's projection: orthonormal top principal directions of the gallery."""

from __future__ import annotations

import numpy as np

from matcher import projection


def test_projection_keeps_the_directions_the_vectors_vary_along() -> None:
    rng = np.random.default_rng(0)
    dim, used = 64, 6
    basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0][:, :used]
    vectors = (rng.standard_normal((3000, used)) * np.arange(used, 0, -1)) @ basis.T
    vectors += 0.01 * rng.standard_normal((3000, dim))
    matrix = projection.fit(vectors.astype(np.float32), used)
    assert matrix.shape == (dim, used)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix.T @ matrix, np.eye(used), atol=1e-5)
    # The fitted directions span the generating subspace: projecting loses ~nothing.
    kept = np.linalg.norm(vectors @ matrix, axis=1) / np.linalg.norm(vectors, axis=1)
    assert kept.min() > 0.99


def test_large_galleries_are_fitted_on_a_sample() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((projection.SAMPLE + 5000, 16)).astype(np.float32)
    vectors[:, 0] *= 10  # the dominant direction
    matrix = projection.fit(vectors, 2)
    assert abs(float(matrix[0, 0])) > 0.99
