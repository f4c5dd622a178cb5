"""How a shard builds and searches its galleries' indexes.

The one declaration of these parameters and their defaults: the settings hold an
``IndexParams`` (``MatcherSettings.index``, each field read from
``FACEGATE_MATCHER_<FIELD>``), and snapshots record the one a gallery was built with.
Kept apart from matcher/gallery.py so that reading the settings imports no index code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class IndexParams:
    m: int = 64
    """HNSW links per node (hnswlib M): more = better recall, more memory."""
    ef_construction: int = 400
    """HNSW candidate list while building: more = better graph, slower inserts."""
    ef_search: int = 512
    """HNSW candidate list while searching (at least the candidates asked for)."""
    graph_segments: int = 2
    """Segments a large gallery's graph is split into, searched in parallel by one query:
    lower latency at a given recall for more CPU per query (matcher/graph.py,
    docs/matcher.md)."""
    projection_dim: int = 128
    """Dimensions the graph's vectors are projected to; 0 = the full vectors."""
    rerank_share: float = 0.4
    """Candidates the graph proposes for exact re-scoring, as a share of ef_search (at
    least k): the graph's ordering on projected vectors is good, not exact."""
    index_min: int = 2048
    """A gallery builds its graph once it holds this many entries; smaller are scanned."""
    exact_factor: float = 50.0
    """A tag filter leaving at most this many times the square root of the graph's live
    entries is scanned exactly, not via HNSW (the two costs cross there:
    :meth:`exact_max`)."""
    overfetch: float = 2.0
    """With a filter on the graph path, ask for rerank / selectivity times this."""
    merge_chunk: int = 128
    """Pending entries moved into the graph per write-lock hold."""
    compact_ratio: float = 0.25
    """Rebuild the graph once dead entries exceed this share of it."""
    refit_growth: float = 4.0
    """Rebuild the graph (refitting its projection) once it holds this many times the
    entries its projection was fitted on: a projection fitted on a gallery's first
    entries must not decide forever which directions later entries are searched along.
    Geometric, so all rebuilds together cost about a third of one build. 0 = never."""

    def exact_max(self, live: int) -> int:
        """Most entries a filter may leave to be scanned exactly in a graph of ``live``
        entries (the measured crossing of the two paths' costs: docs/benchmarks.md)."""
        return math.ceil(self.exact_factor * math.sqrt(live))
