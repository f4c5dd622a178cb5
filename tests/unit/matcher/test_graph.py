"""The segmented graph: where entries live, what a query returns, deletions, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from matcher.graph import SegmentedGraph

DIM = 16


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.standard_normal((n, DIM)).astype(np.float32)
    unit: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


def filled(segments: int, n: int = 900) -> tuple[SegmentedGraph, np.ndarray]:
    vectors = unit_rows(np.random.default_rng(segments), n)
    graph = SegmentedGraph.create(DIM, segments, 100, m=16, ef_construction=100, ef_search=200)
    slots = np.arange(n, dtype=np.int64)
    graph.add(vectors, slots, num_threads=2, growth=1.0)
    return graph, vectors


@pytest.mark.parametrize("segments", [1, 2, 3])
def test_a_query_returns_each_segments_nearest(segments: int) -> None:
    graph, vectors = filled(segments)
    assert graph.segments == segments
    assert graph.count == graph.live == 900
    probe = vectors[17]
    labels = graph.query(probe, 5)
    assert len(labels) == 5 * segments
    for segment in range(segments):
        mine = np.arange(segment, 900, segments)
        nearest = mine[np.argsort(-(vectors[mine] @ probe))[:5]]
        assert set(labels[labels % segments == segment]) == set(nearest)


def test_entries_live_in_the_segment_their_slot_names() -> None:
    graph, _ = filled(3)
    assert graph.capacities() == [300, 300, 300]
    more = np.array([900, 903, 906, 909], dtype=np.int64)  # all in segment 0
    graph.reserve(more, 2.0)
    assert graph.capacities() == [608, 300, 300]
    graph.add(unit_rows(np.random.default_rng(1), 4), more, num_threads=1, growth=2.0)
    assert graph.count == 904
    assert graph.capacities() == [608, 300, 300]
    graph.add(unit_rows(np.random.default_rng(2), 2), more[:2] + 1, num_threads=1, growth=2.0)
    assert graph.capacities() == [608, 604, 300]  # segment 1 was full: grown on adding


def test_deletions_are_counted_per_segment_and_never_returned() -> None:
    graph, vectors = filled(2, n=40)
    for slot in (0, 2, 4, 1):
        graph.mark_deleted(slot)
    assert graph.dead_per_segment() == [3, 1]
    assert graph.dead == 4
    assert graph.live == 36
    labels = graph.query(vectors[0], 40)  # more than either segment holds alive
    assert sorted(labels) == [3, *range(5, 40)]


def test_a_saved_graph_loads_the_same(tmp_path: Path) -> None:
    graph, vectors = filled(2)
    graph.mark_deleted(7)
    paths = [tmp_path / "a.bin", tmp_path / "b.bin"]
    graph.save(paths)
    loaded = SegmentedGraph.load(
        paths, DIM, graph.capacities(), graph.dead_per_segment(), ef_search=200
    )
    assert (loaded.count, loaded.dead, loaded.capacities()) == (900, 1, graph.capacities())
    for probe in vectors[:20]:
        assert list(loaded.query(probe, 10)) == list(graph.query(probe, 10))
