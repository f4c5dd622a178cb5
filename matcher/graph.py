"""A gallery's HNSW graph, split into segments that one search visits in parallel.

A search's cost grows only slowly with the graph's size, so searching a segment of N/S
entries costs nearly as much as searching all N: S segments at the same ef cost about S
times the CPU of one graph, but, searched at once on S cores, answer in about the time
of one while exploring S times as many candidates. At a high recall that is the same
CPU as one graph at a larger ef, for about half the latency (at 1M, 2 segments at ef
512: recall@10 0.993 in 2.6 ms; one graph needs ef 1024 and 4.5 ms); at a low recall it
costs more CPU than one graph (docs/matcher.md, "Graph segments").

An entry's segment is its slot modulo S, so a label alone says where it lives.

Thread safety is the caller's (matcher/gallery.py holds its read/write lock around
every call); hnswlib releases the GIL while it searches or inserts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np


@cache
def _search_pool() -> ThreadPoolExecutor:
    """Threads that search the other segments while the caller searches the first."""
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="graph-segment")


class SegmentedGraph:
    def __init__(self, graphs: Sequence[Any], dead: Sequence[int]) -> None:
        self._graphs = list(graphs)
        self._dead = list(dead)

    @classmethod
    def create(
        cls, dim: int, segments: int, capacity: int, *, m: int, ef_construction: int, ef_search: int
    ) -> SegmentedGraph:
        """An empty graph with room for ``capacity`` entries in all."""
        per_segment = max(1, math.ceil(capacity / segments))
        graphs = []
        for _ in range(segments):
            graph = hnswlib.Index(space="ip", dim=dim)
            graph.init_index(max_elements=per_segment, M=m, ef_construction=ef_construction)
            graphs.append(_searching(graph, ef_search))
        return cls(graphs, [0] * segments)

    @classmethod
    def load(
        cls,
        paths: Sequence[Path],
        dim: int,
        capacities: Sequence[int],
        dead: Sequence[int],
        ef_search: int,
    ) -> SegmentedGraph:
        graphs = []
        for path, capacity in zip(paths, capacities, strict=True):
            graph = hnswlib.Index(space="ip", dim=dim)
            graph.load_index(str(path), max_elements=capacity)
            graphs.append(_searching(graph, ef_search))
        return cls(graphs, dead)

    @property
    def segments(self) -> int:
        return len(self._graphs)

    def segment_of(self, slots: np.ndarray) -> np.ndarray:
        return slots % len(self._graphs)

    @property
    def count(self) -> int:
        """Entries in the graph, including those marked deleted."""
        return sum(g.get_current_count() for g in self._graphs)

    @property
    def dead(self) -> int:
        return sum(self._dead)

    @property
    def live(self) -> int:
        return self.count - self.dead

    def capacities(self) -> list[int]:
        return [g.get_max_elements() for g in self._graphs]

    def dead_per_segment(self) -> list[int]:
        return list(self._dead)

    def reserve(self, slots: np.ndarray, growth: float) -> None:
        """Make room for ``slots``, growing a full segment to ``growth`` times its need."""
        added = np.bincount(self.segment_of(slots), minlength=len(self._graphs))
        for graph, extra in zip(self._graphs, added, strict=True):
            needed = graph.get_current_count() + int(extra)
            if needed > graph.get_max_elements():
                graph.resize_index(max(needed, math.ceil(needed * growth)))

    def add(self, vectors: np.ndarray, slots: np.ndarray, num_threads: int, growth: float) -> None:
        """Insert ``vectors`` labelled by their ``slots``, first growing any segment too
        small (see :meth:`reserve`)."""
        self.reserve(slots, growth)
        segment = self.segment_of(slots)
        for index, graph in enumerate(self._graphs):
            mine = segment == index
            if mine.any():
                graph.add_items(vectors[mine], slots[mine], num_threads)

    def mark_deleted(self, slot: int) -> None:
        index = slot % len(self._graphs)
        self._graphs[index].mark_deleted(slot)
        self._dead[index] += 1

    def set_ef(self, ef: int) -> None:
        for graph in self._graphs:
            graph.set_ef(ef)

    def query(self, vector: np.ndarray, k: int) -> np.ndarray:
        """Up to ``k`` labels from each segment, all segments searched at once.

        Raises RuntimeError when a segment finds fewer than it was asked for (hnswlib's
        signal that deletions cut its graph apart)."""
        asks = [
            (graph, vector, min(k, graph.get_current_count() - dead))
            for graph, dead in zip(self._graphs, self._dead, strict=True)
        ]
        others = [_search_pool().submit(_search_segment, *ask) for ask in asks[1:]]
        found = [_search_segment(*asks[0]), *(future.result() for future in others)]
        labels: np.ndarray = np.concatenate(found).astype(np.int64)
        return labels

    def save(self, paths: Sequence[Path]) -> None:
        for graph, path in zip(self._graphs, paths, strict=True):
            graph.save_index(str(path))

    def memory_bytes(self, dim: int, m: int) -> int:
        """hnswlib's allocation: per entry the vector, its label, its level-0 links and,
        on average, its upper-level links."""
        links0 = 2 * m * 4 + 4
        upper = (m * 4 + 4) / max(math.log(m), 1.0)
        per_entry = dim * 4 + 8 + links0 + 4 + upper
        return int(sum(g.get_max_elements() for g in self._graphs) * per_entry)


def _searching(graph: Any, ef_search: int) -> Any:
    graph.set_ef(ef_search)
    graph.set_num_threads(1)
    return graph


def _search_segment(graph: Any, vector: np.ndarray, k: int) -> np.ndarray:
    if k <= 0:
        return np.zeros(0, dtype=np.uint64)
    labels, _ = graph.knn_query(vector, k=k, num_threads=1)
    found: np.ndarray = labels[0]
    return found
