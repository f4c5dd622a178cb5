"""One gallery: exact results, HNSW recall, filters, writes, compaction, persistence."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from matcher import scan
from matcher.gallery import EntryBatch, Gallery
from matcher.params import IndexParams
from matcher.persist import load_gallery, save_gallery

DIM = 64


def unit_rows(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    unit: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


def clustered(rng: np.random.Generator, n: int, clusters: int = 50) -> np.ndarray:
    centres = unit_rows(rng, clusters)
    rows = centres[rng.integers(0, clusters, n)] + 0.6 * unit_rows(rng, n) / np.sqrt(2)
    unit: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


def batch(vectors: np.ndarray, masks: np.ndarray, prefix: str = "e", start: int = 0) -> EntryBatch:
    ids = [f"{prefix}{i:06d}" for i in range(start, start + len(vectors))]
    return EntryBatch(
        ids, [f"s{i // 2:06d}" for i in range(start, start + len(vectors))], vectors, masks
    )


def brute_force(
    vectors: np.ndarray,
    masks: np.ndarray,
    probe: np.ndarray,
    *,
    k: int,
    min_similarity: float,
    tag_mask: int,
    prefix: str = "e",
) -> list[tuple[str, float]]:
    sims = vectors @ probe
    keep = sims >= min_similarity
    if tag_mask:
        keep &= (masks & np.uint64(tag_mask)) != 0
    order = sorted(np.flatnonzero(keep), key=lambda i: (-sims[i], f"{prefix}{i:06d}"))[:k]
    return [(f"{prefix}{i:06d}", float(sims[i])) for i in order]


def random_masks(rng: np.random.Generator, n: int) -> np.ndarray:
    masks = np.zeros(n, dtype=np.uint64)
    masks[rng.random(n) < 0.3] |= np.uint64(1)
    masks[rng.random(n) < 0.02] |= np.uint64(2)
    masks[rng.random(n) < 0.5] |= np.uint64(1 << 63)
    return masks


@pytest.fixture(scope="module")
def big() -> tuple[Gallery, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    vectors, masks = clustered(rng, 20_000), random_masks(rng, 20_000)
    gallery = Gallery("g", "m", DIM, IndexParams(exact_factor=7.0))
    gallery.upsert(batch(vectors, masks))
    gallery.flush(num_threads=2)
    return gallery, vectors, masks


def test_float32_scan_stays_within_its_margin_of_the_canonical_similarity() -> None:
    rng = np.random.default_rng(0)
    vectors, probe = unit_rows(rng, 20_000, 512), unit_rows(rng, 1, 512)[0]
    approximate = scan.similarities(vectors, np.arange(20_000), probe)
    assert np.max(np.abs(approximate - scan.canonical(vectors, probe))) <= scan.FLOAT32_MARGIN


def test_scan_candidates_always_contain_the_exact_top_k() -> None:
    rng = np.random.default_rng(1)
    margin = 0.01
    for _ in range(50):
        exact = rng.uniform(-1, 1, 500)
        approximate = exact + rng.uniform(-margin, margin, 500)
        k, floor = int(rng.integers(1, 20)), float(rng.uniform(-1, 0.9))
        chosen = set(scan.candidates(approximate.astype(np.float32), k, floor, margin).tolist())
        eligible = np.flatnonzero(exact >= floor)
        top = eligible[np.argsort(-exact[eligible])][:k]
        assert set(top.tolist()) <= chosen


@pytest.mark.parametrize("tag_mask", [0, 1, 2, 1 << 63, 3])
@pytest.mark.parametrize("min_similarity", [-1.0, 0.3])
def test_exact_search_equals_brute_force(tag_mask: int, min_similarity: float) -> None:
    rng = np.random.default_rng(tag_mask + 11)
    vectors, masks = unit_rows(rng, 3000), random_masks(rng, 3000)
    gallery = Gallery("g", "m", DIM)
    gallery.upsert(batch(vectors, masks))
    gallery.merge_pending(limit=2000)  # part indexed, part still pending
    probes = vectors[:20] * 0.9 + unit_rows(rng, 20) * 0.1
    for probe in probes / np.linalg.norm(probes, axis=1, keepdims=True):
        got = gallery.search_exact(probe, 10, min_similarity=min_similarity, tag_mask=tag_mask)
        want = brute_force(
            vectors, masks, probe, k=10, min_similarity=min_similarity, tag_mask=tag_mask
        )
        assert [h.event_id for h in got] == [w[0] for w in want]
        np.testing.assert_allclose([h.similarity for h in got], [w[1] for w in want], atol=1e-6)


@pytest.mark.parametrize("tag_mask", [0, 1, 1 << 63, 2])
def test_planned_search_finds_what_the_exact_scan_finds(
    big: tuple[Gallery, np.ndarray, np.ndarray], tag_mask: int
) -> None:
    gallery, vectors, _ = big
    rng = np.random.default_rng(3)
    probes = vectors[rng.integers(0, len(vectors), 100)] + 0.3 * unit_rows(rng, 100)
    found = expected = 0
    for probe in probes / np.linalg.norm(probes, axis=1, keepdims=True):
        exact = {h.event_id for h in gallery.search_exact(probe, 10, tag_mask=tag_mask)}
        got = gallery.search(probe, 10, tag_mask=tag_mask)
        assert [h.similarity for h in got] == sorted((h.similarity for h in got), reverse=True)
        found += len(exact & {h.event_id for h in got})
        expected += len(exact)
    assert found / expected >= 0.99
    assert gallery.plan(tag_mask) == ("exact" if tag_mask == 2 else "hnsw")


@pytest.mark.parametrize("segments", [1, 3])
def test_a_projected_graph_finds_what_the_exact_scan_finds(segments: int) -> None:
    """A graph over projected vectors (here 128-d templates on 32 directions), in one
    segment or several, proposes candidates; re-scoring them with the full vectors keeps
    recall and exact scores."""
    rng = np.random.default_rng(4)
    dim = 128
    centres = unit_rows(rng, 300, dim)
    vectors = centres[rng.integers(0, 300, 8000)] + 0.5 * unit_rows(rng, 8000, dim)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    params = IndexParams(projection_dim=32, ef_search=256, graph_segments=segments)
    gallery = Gallery("g", "m", dim, params)
    gallery.upsert(batch(vectors, np.zeros(8000, dtype=np.uint64)))
    gallery.flush(num_threads=2)
    assert gallery.plan(0) == "hnsw"
    found = 0
    for probe in vectors[rng.integers(0, 8000, 100)]:
        exact = gallery.search_exact(probe, 10)
        got = gallery.search(probe, 10)
        found += len({h.event_id for h in exact} & {h.event_id for h in got})
        common = {h.event_id: h.similarity for h in exact}
        for hit in got:
            if hit.event_id in common:
                assert hit.similarity == common[hit.event_id]
    assert found / 1000 >= 0.99


def test_a_gallery_builds_its_graph_once_large_enough() -> None:
    rng = np.random.default_rng(13)
    vectors = unit_rows(rng, 300)
    gallery = Gallery("g", "m", DIM, IndexParams(index_min=200))
    gallery.upsert(batch(vectors[:150], np.zeros(150, dtype=np.uint64)))
    assert gallery.merge_pending() == 0  # too small: scanned, no graph
    assert gallery.plan(0) == "exact"
    assert gallery.search(vectors[7], 1)[0].event_id == "e000007"
    gallery.upsert(batch(vectors[150:], np.zeros(150, dtype=np.uint64), start=150))
    gallery.flush()
    assert gallery.pending_count() == 0
    assert gallery.plan(0) == "hnsw"
    assert gallery.search(vectors[250], 1)[0].event_id == "e000250"


def test_similarities_from_the_index_are_exact(big: tuple[Gallery, np.ndarray, np.ndarray]) -> None:
    gallery, vectors, _ = big
    for hit in gallery.search(vectors[123], 5):
        index = int(hit.event_id[1:])
        assert hit.similarity == pytest.approx(float(vectors[index] @ vectors[123]), abs=1e-5)


def test_writes_change_what_is_found() -> None:
    rng = np.random.default_rng(5)
    vectors = unit_rows(rng, 500)
    gallery = Gallery("g", "m", DIM)
    gallery.upsert(batch(vectors, np.zeros(500, dtype=np.uint64)))
    gallery.flush()
    assert gallery.search(vectors[10], 1)[0].event_id == "e000010"
    # An upsert with the same event id replaces the entry.
    gallery.upsert(EntryBatch(["e000010"], ["other"], vectors[20:21], np.ones(1, np.uint64)))
    top = gallery.search(vectors[20], 2)
    assert {h.event_id for h in top} == {"e000010", "e000020"}
    assert next(h for h in top if h.event_id == "e000010").subject_id == "other"
    assert gallery.search(vectors[10], 1)[0].event_id != "e000010"
    assert gallery.search(vectors[20], 5, tag_mask=1)[0].event_id == "e000010"
    # Deletes by event and by subject (s000030 owns e000060 and e000061).
    assert gallery.delete(["e000001", "missing"]) == 1
    assert gallery.delete_subject("s000030") == 2
    for gone in (1, 60, 61):
        assert all(h.event_id != f"e{gone:06d}" for h in gallery.search(vectors[gone], 10))
    assert gallery.stats().count == 497
    # Clearing a tag bit removes it from every entry.
    gallery.clear_tag_bit(0)
    assert gallery.search(vectors[20], 5, tag_mask=1) == []


def test_threshold_cuts_the_list() -> None:
    rng = np.random.default_rng(6)
    vectors = unit_rows(rng, 400)
    gallery = Gallery("g", "m", DIM)
    gallery.upsert(batch(vectors, np.zeros(400, dtype=np.uint64)))
    gallery.flush()
    hits = gallery.search(vectors[7], 50, min_similarity=0.999)
    assert [h.event_id for h in hits] == ["e000007"]
    assert gallery.search(-vectors[7], 50, min_similarity=0.999) == []


@pytest.mark.parametrize("segments", [1, 2])
def test_compaction_drops_dead_entries_and_keeps_results(segments: int) -> None:
    """With 2 segments, deleting the even slots empties segment 0 entirely."""
    rng = np.random.default_rng(8)
    vectors = clustered(rng, 6000)
    gallery = Gallery("g", "m", DIM, IndexParams(compact_ratio=0.2, graph_segments=segments))
    gallery.upsert(batch(vectors, np.zeros(6000, dtype=np.uint64)))
    gallery.flush(num_threads=2)
    gallery.delete([f"e{i:06d}" for i in range(0, 6000, 2)])
    assert gallery.needs_compaction()
    probes = vectors[1:200:2]
    before = [[h.event_id for h in gallery.search_exact(p, 10)] for p in probes]
    assert [[h.event_id for h in gallery.search(p, 10)] for p in probes[:20]] == before[:20]
    assert gallery.compact(num_threads=2)
    assert gallery.stats().deleted == 0
    assert not gallery.needs_compaction()
    after = [[h.event_id for h in gallery.search_exact(p, 10)] for p in probes]
    assert after == before
    # Freed slots are reused by later entries, which are found.
    fresh = unit_rows(rng, 100)
    gallery.upsert(batch(fresh, np.zeros(100, dtype=np.uint64), prefix="n"))
    gallery.flush()
    assert gallery.search(fresh[5], 1)[0].event_id == "n000005"
    assert gallery.search(vectors[1], 1)[0].event_id == "e000001"


@pytest.mark.parametrize("segments", [1, 2])
def test_searches_run_while_writes_and_merges_happen(segments: int) -> None:
    rng = np.random.default_rng(9)
    vectors = unit_rows(rng, 4000)
    gallery = Gallery("g", "m", DIM, IndexParams(merge_chunk=64, graph_segments=segments))
    gallery.upsert(batch(vectors[:2000], np.zeros(2000, dtype=np.uint64)))
    gallery.flush()
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        try:
            while not stop.is_set():
                probe = vectors[int(rng.integers(0, 1000))]  # never deleted below
                hits = gallery.search(probe, 5)
                assert hits[0].similarity > 0.999
        except BaseException as error:  # reported to the main thread
            errors.append(error)

    def writer() -> None:
        try:
            for start in range(2000, 4000, 100):
                gallery.upsert(
                    batch(vectors[start : start + 100], np.zeros(100, np.uint64), start=start)
                )
                gallery.merge_pending()
                gallery.delete([f"e{start - 1000:06d}"])
        except BaseException as error:  # reported to the main thread
            errors.append(error)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    writer_thread = threading.Thread(target=writer)
    writer_thread.start()
    writer_thread.join()
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    gallery.flush()
    assert gallery.search(vectors[3999], 1)[0].event_id == "e003999"


def test_save_and_load_give_the_same_gallery(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    vectors, masks = unit_rows(rng, 3000), random_masks(rng, 3000)
    gallery = Gallery("gallery one", "model@1", DIM)
    gallery.upsert(batch(vectors, masks))
    gallery.merge_pending(limit=2500)
    gallery.delete(["e000003", "e002900"])
    save_gallery(gallery, tmp_path / "saved")
    loaded = load_gallery(tmp_path / "saved")
    assert (loaded.gallery_id, loaded.model_id, loaded.dim) == ("gallery one", "model@1", DIM)
    assert loaded.stats().count == gallery.stats().count == 2998
    assert loaded.stats().deleted == gallery.stats().deleted == 1  # e002900 was pending
    assert loaded.plan(0) == gallery.plan(0) == "hnsw"
    assert loaded.pending_count() == gallery.pending_count()
    for probe in vectors[:30]:
        for tag_mask in (0, 1):
            assert loaded.search(probe, 10, tag_mask=tag_mask) == gallery.search(
                probe, 10, tag_mask=tag_mask
            )
    with pytest.raises(FileExistsError):
        save_gallery(gallery, tmp_path / "saved")
    small = Gallery("small", "model@1", DIM)
    small.upsert(batch(vectors[:50], masks[:50]))
    save_gallery(small, tmp_path / "small")
    restored = load_gallery(tmp_path / "small")
    assert restored.search(vectors[5], 3) == small.search(vectors[5], 3)


def test_a_snapshot_from_before_graph_segments_still_loads(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    vectors, masks = unit_rows(rng, 3000), random_masks(rng, 3000)
    gallery = Gallery("g", "m", DIM, IndexParams(graph_segments=1))
    gallery.upsert(batch(vectors, masks))
    gallery.flush()
    gallery.delete(["e000010"])
    save_gallery(gallery, tmp_path / "old")
    meta_path = tmp_path / "old" / "gallery.json"
    meta = json.loads(meta_path.read_text())
    del meta["params"]["graph_segments"]
    meta["index_capacity"] = meta.pop("graph_capacities")[0]
    meta["dead"] = meta.pop("graph_dead")[0]
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "old" / "hnsw-0.bin").rename(tmp_path / "old" / "hnsw.bin")
    loaded = load_gallery(tmp_path / "old")
    assert loaded.params.graph_segments == 1
    assert loaded.stats().deleted == 1
    for probe in vectors[:20]:
        assert loaded.search(probe, 10) == gallery.search(probe, 10)


def test_bad_batches_are_refused() -> None:
    gallery = Gallery("g", "m", DIM)
    rng = np.random.default_rng(11)
    with pytest.raises(ValueError, match="differ in length"):
        EntryBatch(["a", "b"], ["s"], unit_rows(rng, 2), np.zeros(2, np.uint64))
    with pytest.raises(ValueError, match="twice"):
        EntryBatch(["a", "a"], ["s", "s"], unit_rows(rng, 2), np.zeros(2, np.uint64))
    with pytest.raises(ValueError, match="n x 64"):
        gallery.upsert(EntryBatch(["a"], ["s"], unit_rows(rng, 1, 32), np.zeros(1, np.uint64)))
    with pytest.raises(ValueError, match=r"0\.\.63"):
        gallery.clear_tag_bit(64)


@pytest.mark.parametrize("segments", [1, 2])
def test_compaction_keeps_writes_made_while_it_runs(segments: int) -> None:
    """Entries merged and deleted while the new index is being built end up right."""
    rng = np.random.default_rng(12)
    vectors = clustered(rng, 4000)
    gallery = Gallery("g", "m", DIM, IndexParams(compact_ratio=0.1, graph_segments=segments))
    gallery.upsert(batch(vectors[:3000], np.zeros(3000, dtype=np.uint64)))
    gallery.flush()
    gallery.delete([f"e{i:06d}" for i in range(0, 1200)])
    assert gallery.needs_compaction()

    def writer() -> None:
        for start in range(3000, 4000, 100):
            gallery.upsert(
                batch(vectors[start : start + 100], np.zeros(100, np.uint64), start=start)
            )
            gallery.merge_pending(limit=100)
            gallery.delete([f"e{start - 1500:06d}"])  # was alive when compaction began

    thread = threading.Thread(target=writer)
    thread.start()
    assert gallery.compact(num_threads=2)
    thread.join()
    gallery.flush()
    deleted = set(range(1200)) | {s - 1500 for s in range(3000, 4000, 100)}
    for index in range(0, 4000, 37):
        hits = gallery.search_exact(vectors[index], 1)
        if index in deleted:
            assert all(h.event_id != f"e{index:06d}" for h in hits)
        else:
            assert hits[0].event_id == f"e{index:06d}"
    assert gallery.stats().count == 4000 - len(deleted)


def test_the_exact_scan_limit_grows_with_the_square_root_of_the_graph() -> None:
    params = IndexParams(exact_factor=50.0)
    assert params.exact_max(1_000_000) == 50_000
    assert params.exact_max(10_000) == 5_000
    assert params.exact_max(0) == 0
