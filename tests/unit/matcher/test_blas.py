"""numpy's OpenBLAS thread count, set at run time."""

import numpy as np

from matcher.blas import set_blas_threads


def test_set_blas_threads_reports_the_count_it_replaces() -> None:
    original = set_blas_threads(1)
    assert original is not None, "numpy's wheel ships OpenBLAS"
    try:
        assert set_blas_threads(2) == 1
        assert set_blas_threads(1) == 2
        a = np.arange(64.0).reshape(8, 8)
        np.testing.assert_array_equal(a @ np.eye(8), a)  # still computes on one thread
    finally:
        set_blas_threads(original)
