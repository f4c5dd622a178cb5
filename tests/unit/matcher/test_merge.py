"""Sharding: entries placed by ``shard_of`` on 3 in-process shards, searched one by one
and merged, answer like one shard holding everything; placement is stable and even."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facegate.v1 import matcher_pb2
from matcher.gallery import Hit
from matcher.merge import merge_hits, merge_results
from matcher.params import IndexParams
from matcher.placement import shard_of, split_by_shard
from matcher.shard import Shard, ShardConfig
from matcher.writes import ShardEntry

MODEL = "synthetic@000000000000"
DIM = 16
GALLERY = "gallery-a"
SHARDS = 3
# Tags 0..7 in use, each on about a third of the entries; bit 40 is never set.
USED_BITS = 8
UNUSED_BIT = 40


@dataclass(frozen=True)
class Data:
    event_ids: list[str]
    subject_ids: list[str]
    vectors: np.ndarray
    masks: np.ndarray

    def entries(self, gallery: str = GALLERY) -> list[ShardEntry]:
        return [
            ShardEntry(gallery, e, s, MODEL, v, int(m))
            for e, s, v, m in zip(
                self.event_ids, self.subject_ids, self.vectors, self.masks, strict=True
            )
        ]


def make_data(rng: np.random.Generator, n: int, dim: int = DIM) -> Data:
    """Clustered unit vectors (a few events per subject, as real galleries have) and tag
    masks of independent bits."""
    subjects = max(1, n // 4)
    centres = rng.standard_normal((subjects, dim))
    owner = rng.integers(0, subjects, n)
    rows = centres[owner] + 0.5 * rng.standard_normal((n, dim))
    vectors = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    bits = rng.random((n, USED_BITS)) < 0.3
    masks = (bits * (1 << np.arange(USED_BITS))).sum(axis=1).astype(np.uint64)
    # UUIDs from the seeded generator: ids of the form real event ids have, reproducibly.
    event_ids = [str(uuid.UUID(int=int(rng.integers(0, 1 << 62)) << 64 | i)) for i in range(n)]
    return Data(event_ids, [f"subject-{o:05d}" for o in owner], vectors, masks)


def open_shard(directory: Path, index: int, count: int, params: IndexParams) -> Shard:
    return Shard.open(ShardConfig(directory, index=index, count=count, params=params))


@dataclass
class Cluster:
    """n shards holding the entries placed on them, and one shard holding all."""

    root: Path
    params: IndexParams
    shards: list[Shard]
    single: Shard

    def load(self, data: Data) -> None:
        entries = data.entries()
        for shard, part in zip(
            self.shards, split_by_shard(entries, lambda e: e.event_id, SHARDS), strict=True
        ):
            if part:
                shard.upsert(part)
        self.single.upsert(entries)

    def reopen(self) -> None:
        """Close and recover every shard: recovery indexes every pending entry in HNSW."""
        for shard in (*self.shards, self.single):
            shard.close()
        self.shards = [
            open_shard(self.root / f"shard-{i}", i, SHARDS, self.params) for i in range(SHARDS)
        ]
        self.single = open_shard(self.root / "single", 0, 1, self.params)

    def merged(
        self, probes: list[np.ndarray], *, k: int, min_similarity: float, tag_mask: int
    ) -> list[list[Hit]]:
        per_shard = [
            shard.search(
                GALLERY,
                [(MODEL, p) for p in probes],
                k=k,
                min_similarity=min_similarity,
                tag_mask=tag_mask,
            )
            for shard in self.shards
        ]
        return merge_results(per_shard, k)

    def close(self) -> None:
        for shard in (*self.shards, self.single):
            shard.close()


def make_cluster(root: Path, params: IndexParams) -> Cluster:
    shards = [open_shard(root / f"shard-{i}", i, SHARDS, params) for i in range(SHARDS)]
    return Cluster(root, params, shards, open_shard(root / "single", 0, 1, params))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    built = make_cluster(tmp_path, IndexParams())
    try:
        yield built
    finally:
        built.close()


def random_mask(rng: np.random.Generator) -> int:
    roll = rng.random()
    if roll < 0.3:
        return 0
    if roll < 0.4:
        return 1 << UNUSED_BIT
    bits = rng.choice(USED_BITS, size=int(rng.integers(1, 4)), replace=False)
    return int(sum(1 << int(b) for b in bits))


def random_probes(rng: np.random.Generator, data: Data) -> list[np.ndarray]:
    """Near-duplicates of gallery entries (many high similarities) and unrelated vectors."""
    probes = []
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.7:
            base = data.vectors[rng.integers(0, len(data.vectors))].astype(np.float64)
            base = base + 0.2 * rng.standard_normal(DIM)
        else:
            base = rng.standard_normal(DIM)
        probes.append((base / np.linalg.norm(base)).astype(np.float32))
    return probes


def assert_same(merged: list[Hit], single: list[Hit]) -> None:
    """The same hits in the same order with the same similarities, to the last bit: every path
    re-scores with one definition of similarity (float64, rounded to float32)."""
    assert merged == single


# ------------------------------------------------------------------ exact (small galleries)


def test_merged_equals_single_shard_on_small_galleries(cluster: Cluster) -> None:
    """Galleries this small are scanned exactly, so the merge must match exactly, for any
    probe count, k, lowest similarity and tag filter, including empty results."""
    rng = np.random.default_rng(7)
    data = make_data(rng, 240)
    cluster.load(data)
    counts = [s.stats(GALLERY).count for s in cluster.shards]
    assert sum(counts) == 240
    assert min(counts) > 0
    empty_seen = full_seen = 0
    for _ in range(300):
        probes = random_probes(rng, data)
        k = int(rng.integers(1, 51))
        min_similarity = float(rng.choice([-1.0, rng.uniform(0.0, 1.0), 0.5, 0.85]))
        tag_mask = random_mask(rng)
        merged = cluster.merged(probes, k=k, min_similarity=min_similarity, tag_mask=tag_mask)
        single = cluster.single.search(
            GALLERY,
            [(MODEL, p) for p in probes],
            k=k,
            min_similarity=min_similarity,
            tag_mask=tag_mask,
        )
        assert len(merged) == len(single) == len(probes)
        for got, expected in zip(merged, single, strict=True):
            assert_same(got, expected)
            empty_seen += not expected
            full_seen += len(expected) == k
    assert empty_seen, "the random queries should give some empty results"
    assert full_seen, "the random queries should give some results of k hits"


def test_merged_equals_single_after_deletes_and_replacements(cluster: Cluster) -> None:
    rng = np.random.default_rng(11)
    data = make_data(rng, 200)
    cluster.load(data)
    # Replace a quarter of the events with new vectors and tags, delete a tenth, and
    # one subject: routed by placement, as the gateway does.
    replaced = make_data(rng, 50)
    changed = Data(data.event_ids[:50], data.subject_ids[:50], replaced.vectors, replaced.masks)
    cluster.load(changed)
    doomed = data.event_ids[50:70]
    for index, part in enumerate(split_by_shard(doomed, lambda e: e, SHARDS)):
        cluster.shards[index].delete(GALLERY, part)
    cluster.single.delete(GALLERY, doomed)
    subject = data.subject_ids[100]
    for shard in (*cluster.shards, cluster.single):
        shard.delete_subject(GALLERY, subject)
        shard.clear_tag_bit(GALLERY, 3)
    total = sum(s.stats(GALLERY).count for s in cluster.shards)
    assert total == cluster.single.stats(GALLERY).count < 200
    for _ in range(100):
        probes = random_probes(rng, data)
        k = int(rng.integers(1, 51))
        tag_mask = random_mask(rng)
        merged = cluster.merged(probes, k=k, min_similarity=-1.0, tag_mask=tag_mask)
        single = cluster.single.search(
            GALLERY, [(MODEL, p) for p in probes], k=k, min_similarity=-1.0, tag_mask=tag_mask
        )
        for got, expected in zip(merged, single, strict=True):
            assert_same(got, expected)
            assert all(h.subject_id != subject for h in got)
            assert tag_mask != 1 << 3 or not got


def test_unknown_gallery_merges_to_empty_results(cluster: Cluster) -> None:
    probe = np.ones(DIM, dtype=np.float32)
    per_shard = [
        s.search("nobody", [(MODEL, probe)] * 2, k=5, min_similarity=-1.0) for s in cluster.shards
    ]
    assert merge_results(per_shard, 5) == [[], []]


# ------------------------------------------------------------------ HNSW (bigger galleries)


def exact_top_k(
    data: Data, probe: np.ndarray, *, k: int, min_similarity: float, tag_mask: int
) -> list[str]:
    sims = data.vectors @ probe
    keep = sims >= min_similarity
    if tag_mask:
        keep &= (data.masks & np.uint64(tag_mask)) != 0
    order = sorted(np.flatnonzero(keep), key=lambda i: (-sims[i], data.event_ids[i]))
    return [data.event_ids[i] for i in order[:k]]


def test_merged_hnsw_results_reach_the_exact_top_k(tmp_path: Path) -> None:
    """Shards big enough (and an exact_factor small enough) that the planner takes HNSW for
    unfiltered and filtered searches: the merge finds >= 99% of the exact top-k, and
    every hit it returns is a true one with its exact similarity."""
    dim = DIM
    params = IndexParams(exact_factor=2.5, index_min=100)
    built = make_cluster(tmp_path, params)
    try:
        rng = np.random.default_rng(3)
        data = make_data(rng, 1800, dim)
        built.load(data)
        built.reopen()  # recovery merges every pending entry into the HNSW indexes
        by_id = {e: i for i, e in enumerate(data.event_ids)}
        wide, narrow = 1 << 0, 1 << 1 | 1 << 2
        for shard in built.shards:
            gallery = shard._galleries[GALLERY]  # the planner's choice, for this test only
            assert gallery.pending_count() == 0
            assert gallery.plan(0) == gallery.plan(wide) == "hnsw"
        found = expected_total = 0
        for _ in range(150):
            base = data.vectors[rng.integers(0, len(data.vectors))] + 0.3 * rng.standard_normal(dim)
            probe = (base / np.linalg.norm(base)).astype(np.float32)
            k = int(rng.choice([1, 10, 50]))
            min_similarity = float(rng.choice([-1.0, 0.3, 0.6]))
            tag_mask = int(rng.choice([0, wide, narrow]))
            expected = exact_top_k(
                data, probe, k=k, min_similarity=min_similarity, tag_mask=tag_mask
            )
            [got] = built.merged([probe], k=k, min_similarity=min_similarity, tag_mask=tag_mask)
            ids = [h.event_id for h in got]
            assert len(ids) == len(set(ids)) <= k
            for hit in got:
                row = by_id[hit.event_id]
                similarity = float(data.vectors[row] @ probe)
                assert hit.similarity == pytest.approx(similarity, abs=1e-5)
                assert hit.similarity >= min_similarity
                assert hit.subject_id == data.subject_ids[row]
                assert not tag_mask or int(data.masks[row]) & tag_mask
            assert [h.similarity for h in got] == sorted((h.similarity for h in got), reverse=True)
            found += len(set(ids) & set(expected))
            expected_total += len(expected)
        assert expected_total > 1000, expected_total
        assert found / expected_total >= 0.99, (found, expected_total)
    finally:
        built.close()


# ------------------------------------------------------------------ merge rules


def test_merge_orders_by_similarity_then_event_id_and_keeps_k() -> None:
    a = [Hit("e3", "s", 0.9), Hit("e1", "s", 0.5)]
    b = [Hit("e2", "s", 0.9), Hit("e0", "s", 0.1)]
    c: list[Hit] = []
    merged = merge_hits([a, b, c], 3)
    assert [h.event_id for h in merged] == ["e2", "e3", "e1"]
    assert merge_hits([a, b, c], 50) == [b[0], a[0], a[1], b[1]]
    assert merge_hits([c, c], 5) == []


def test_merge_keeps_the_best_copy_of_a_duplicated_event() -> None:
    """An event on two shards (mid-move) counts once, with its better similarity."""
    old = Hit("e1", "s1", 0.2)
    new = Hit("e1", "s1", 0.8)
    other = Hit("e2", "s2", 0.4)
    assert merge_hits([[old, other], [new]], 2) == [new, other]
    assert merge_hits([[new], [other, old]], 3) == [new, other]


def test_merge_results_works_on_protobuf_hits_per_probe() -> None:
    def hit(event: str, similarity: float) -> matcher_pb2.MatcherHit:
        return matcher_pb2.MatcherHit(event_id=event, subject_id="s", similarity=similarity)

    shard0 = [[hit("a", 0.5), hit("b", 0.25)], []]
    shard1 = [[hit("c", 0.75)], [hit("d", 0.125)]]
    merged = merge_results([shard0, shard1], 2)
    assert [[h.event_id for h in probe] for probe in merged] == [["c", "a"], ["d"]]


def test_merge_results_refuses_mismatched_answers() -> None:
    hit = Hit("e", "s", 0.0)
    with pytest.raises(ValueError, match="different numbers of probes"):
        merge_results([[[hit]], [[hit], []]], 5)
    with pytest.raises(ValueError, match="no shard"):
        merge_results([], 5)


# ------------------------------------------------------------------ placement


def test_placement_is_the_documented_hash() -> None:
    """Fixed values: the rule must not change between processes, machines or versions
    (Python's hash() would differ per process)."""
    assert [shard_of(f"event-{i}", 3) for i in range(12)] == [0, 2, 1, 1, 2, 1, 2, 1, 2, 0, 0, 1]
    assert shard_of("a4c0bd3f-1f0e-4a39-9e34-5d0c2f1b7c11", 7) == 4
    assert shard_of("", 5) == 1
    assert shard_of("événement", 1000) == 594
    assert all(shard_of(f"event-{i}", 1) == 0 for i in range(50))


def test_placement_is_roughly_uniform() -> None:
    rng = np.random.default_rng(5)
    ids = [str(uuid.UUID(int=int(rng.integers(0, 1 << 63)) << 64 | i)) for i in range(42_000)]
    for count in (2, 3, 7):
        tally = np.bincount([shard_of(e, count) for e in ids], minlength=count)
        expected = len(ids) / count
        assert np.all(np.abs(tally - expected) < 0.04 * expected), (count, tally)
    # Sequential ids, which differ in one character, spread as well.
    tally = np.bincount([shard_of(f"event-{i}", 3) for i in range(30_000)], minlength=3)
    assert np.all(np.abs(tally - 10_000) < 400), tally


def test_placement_refuses_no_shards() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shard_of("e", 0)


def test_split_by_shard_keeps_order_within_each_shard() -> None:
    ids = [f"event-{i}" for i in range(100)]
    groups = split_by_shard(ids, lambda e: e, 3)
    assert len(groups) == 3
    assert sorted(e for g in groups for e in g) == sorted(ids)
    for index, group in enumerate(groups):
        assert all(shard_of(e, 3) == index for e in group)
        assert group == sorted(group, key=ids.index)
