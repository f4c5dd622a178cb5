"""numpy's OpenBLAS thread count, set at run time.

The matcher runs BLAS on one thread. A query's parallelism is its graph's segments
(matcher/graph.py) and the concurrent requests; OpenBLAS's own threads would add none
under load and, after each multi-threaded scan, busy-wait for a while (about 0.1 s)
on the cores a segment search needs next. Measured at 100k templates on 2 cores: graph
searches right after exact scans took 2.4 ms at p50 instead of 1.3.
"""

from __future__ import annotations

import ctypes
from typing import Any


def _openblas() -> list[tuple[Any, Any]]:
    """(set, get) thread-count functions of every OpenBLAS loaded in this process."""
    found: list[tuple[Any, Any]] = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line})
    except OSError:
        return found
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", ""):
            for prefix in ("scipy_openblas", "openblas"):
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    found.append((setter, getter))
    return found


def set_blas_threads(count: int) -> int | None:
    """Set numpy's OpenBLAS thread count; the previous count, or None if numpy has no
    OpenBLAS (another BLAS keeps its own setting)."""
    import numpy  # noqa: F401  (loads OpenBLAS, so that it can be found)

    libs = _openblas()
    if not libs:
        return None
    previous = int(libs[0][1]())
    for setter, _ in libs:
        setter(count)
    return previous
