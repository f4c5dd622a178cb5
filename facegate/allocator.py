"""glibc's allocator, tuned for servers that handle image-sized buffers.

A request's body, its base64 text, the decoded image and each protobuf copy of it are
megabytes each. glibc serves such blocks with fresh ``mmap`` regions (or trims the heap
after freeing them), so every request faults its buffers in page by page again; in a
virtual machine each fault is expensive, and this was most of the REST shim's and the
gRPC hops' time for a 4 MB probe (docs/benchmarks.md, "large-body"). Raising the mmap
and trim thresholds keeps such blocks in the heap for reuse; blocks above the mmap
threshold (a full-size decode of a large photo) are still returned to the system.

Operators who tune glibc themselves (``MALLOC_*`` variables or ``GLIBC_TUNABLES``) keep
their settings; other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""Blocks up to this size come from the heap and are reused."""
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024
"""Free memory at the top of a heap kept before it is returned to the system."""

# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

log = logging.getLogger(__name__)


def tune_allocator() -> bool:
    """Set the thresholds unless the environment tunes glibc; True when they were set."""
    if any(name.startswith("MALLOC_") for name in os.environ) or (
        "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")
    ):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    if not done:
        log.warning("glibc refused the allocator thresholds; keeping its defaults")
    return done
