"""One gallery's templates and its search: an exact scan, or a graph for large galleries.

Every entry lives in a *slot*: its ids, its tag mask, its float32 vector and whether it
is alive. New entries first wait in a *pending* set, searched exactly, until the shard's
background merger moves them into the HNSW graph a few hundred at a time, so an upsert
never holds searches back for longer than one such chunk. A gallery builds its graph only
once it holds ``index_min`` entries (smaller ones are always scanned); the graph holds
each vector projected on the gallery's principal directions (matcher/projection.py),
refitted whenever the graph is rebuilt.

Search plan, per query (measured switch point in docs/benchmarks.md):
- a filter is resolved through the tag posting lists (matcher/tags.py); if at most
  ``exact_factor * sqrt(live)`` indexed entries pass it (``live``: the graph's live
  entries), they are scanned exactly;
- otherwise, and for unfiltered searches, each graph segment proposes ``ef_search *
  rerank_share`` candidates (divided by ``selectivity / overfetch`` with a filter), those
  failing the filter are dropped, and it is asked again for four times as many while
  too few passed (an exact scan is the last resort).
The limit grows with the square root of the gallery because the two costs cross there:
a scan costs in proportion to the entries passing, ``selectivity * live``, and a
filtered graph search in proportion to its over-fetch, ``1 / selectivity``; they are
equal where ``selectivity * live`` is proportional to ``sqrt(live)``.
Every hit's similarity is the one canonical similarity (matcher/scan.py), so it is
exact and the same whichever path, shard or batch found it; only which entries the
graph proposes is approximate.

A graph may be split into segments (``graph_segments``) that a search visits in
parallel, each proposing its own candidates (matcher/graph.py).

Thread safety (hnswlib's rules: concurrent searches are safe, concurrent insertions are
safe, an insertion or a deletion mark concurrent with a search is not, and resizing
or saving is safe with nothing): searches hold the gallery's read lock; upserts,
deletes, merges and the swap at the end of a compaction hold its write lock. A
compaction builds its new graph without the lock, reading vectors under short holds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facegate.metrics import MATCHER_SEARCH
from matcher import projection, scan
from matcher.graph import SegmentedGraph
from matcher.params import IndexParams
from matcher.rwlock import ReadWriteLock
from matcher.tags import TagPostings

GROWTH = 1.5
INITIAL_CAPACITY = 1024
# Below this many dead entries a graph is never rebuilt, whatever the ratio.
MIN_DEAD_FOR_COMPACTION = 1024
# With the graph, ask for at most this many neighbours before scanning exactly.
MAX_GRAPH_NEIGHBOURS = 8192
COMPACTION_CHUNK = 10_000

Plan = Literal["exact", "hnsw"]


@dataclass(frozen=True)
class EntryBatch:
    event_ids: Sequence[str]
    subject_ids: Sequence[str]
    vectors: np.ndarray
    """n x dim float32, unit rows."""
    tag_masks: np.ndarray
    """n uint64."""

    def __post_init__(self) -> None:
        n = len(self.event_ids)
        if len(self.subject_ids) != n or self.vectors.shape[0] != n or len(self.tag_masks) != n:
            raise ValueError("entry batch fields differ in length")
        if len(set(self.event_ids)) != n:
            raise ValueError("an event id appears twice in one batch")

    def __len__(self) -> int:
        return len(self.event_ids)


@dataclass(frozen=True)
class Hit:
    event_id: str
    subject_id: str
    similarity: float


@dataclass(frozen=True)
class GalleryState:
    """Everything of a gallery but its graph, as plain arrays (for snapshots)."""

    gallery_id: str
    model_id: str
    dim: int
    params: IndexParams
    vectors: np.ndarray
    masks: np.ndarray
    alive: np.ndarray
    indexed: np.ndarray
    event_ids: list[str]
    subject_ids: list[str]
    free: list[int]
    pending: np.ndarray
    projection: np.ndarray | None
    graph_capacities: list[int]
    """Per graph segment; empty = the gallery has no graph yet."""
    graph_dead: list[int]
    """Entries marked deleted, per graph segment."""


@dataclass(frozen=True)
class GalleryStats:
    count: int
    deleted: int
    memory_bytes: int
    params: IndexParams


class Gallery:
    def __init__(
        self, gallery_id: str, model_id: str, dim: int, params: IndexParams = IndexParams()
    ) -> None:
        self.gallery_id = gallery_id
        self.model_id = model_id
        self.dim = dim
        self.params = params
        self._lock = ReadWriteLock()
        self._compacting = threading.Lock()
        self._capacity = 0
        self._next_slot = 0
        self._free: list[int] = []
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._masks = np.zeros(0, dtype=np.uint64)
        self._alive = np.zeros(0, dtype=bool)
        self._indexed = np.zeros(0, dtype=bool)
        # The tag mask of alive, indexed slots and 0 elsewhere.
        self._search_masks = np.zeros(0, dtype=np.uint64)
        self._event_ids: list[str] = []  # "" = free slot
        self._subject_ids: list[str] = []
        self._by_event: dict[str, int] = {}
        # A subject's slot, or its slots when it has several: no set object per subject.
        self._by_subject: dict[str, int | tuple[int, ...]] = {}
        self._postings = TagPostings()
        self._pending: dict[int, None] = {}  # slots waiting for the graph, in order
        # Slots merged while a compaction builds its graph (None: no compaction running).
        self._merged_log: list[int] | None = None
        self._id_bytes = 0
        self._projection: np.ndarray | None = None
        self._fitted_on = 0
        """Live entries when the projection was fitted (growth past refit_growth times
        this triggers a rebuild)."""
        self._graph: SegmentedGraph | None = None  # once the gallery is large enough
        self._grow(INITIAL_CAPACITY)

    # ------------------------------------------------------------------ writes

    def upsert(self, batch: EntryBatch) -> None:
        """Add the entries, replacing any with the same event id."""
        vectors = np.ascontiguousarray(batch.vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must be n x {self.dim}")
        with self._lock.write():
            self._remove(self._by_event[e] for e in batch.event_ids if e in self._by_event)
            slots = self._take_slots(len(batch))
            self._vectors[slots] = vectors
            self._masks[slots] = np.asarray(batch.tag_masks, dtype=np.uint64)
            self._alive[slots] = True
            for slot, event_id, subject_id in zip(
                slots, batch.event_ids, batch.subject_ids, strict=True
            ):
                self._event_ids[slot] = event_id
                self._subject_ids[slot] = subject_id
                self._by_event[event_id] = slot
                self._add_subject_slot(subject_id, slot)
                self._id_bytes += len(event_id) + len(subject_id)
                self._pending[slot] = None

    def delete(self, event_ids: Iterable[str]) -> int:
        with self._lock.write():
            return self._remove([self._by_event[e] for e in event_ids if e in self._by_event])

    def delete_subject(self, subject_id: str) -> int:
        with self._lock.write():
            return self._remove(self._subject_slots(subject_id))

    def clear_tag_bit(self, bit: int) -> None:
        if not 0 <= bit < 64:
            raise ValueError("tag bit must be 0..63")
        with self._lock.write():
            self._masks &= ~np.uint64(1 << bit)
            self._search_masks &= ~np.uint64(1 << bit)
            self._postings.clear(bit)

    def _remove(self, slots: Iterable[int]) -> int:
        removed = 0
        for slot in list(slots):
            event_id, subject_id = self._event_ids[slot], self._subject_ids[slot]
            del self._by_event[event_id]
            remaining = tuple(s for s in self._subject_slots(subject_id) if s != slot)
            if not remaining:
                del self._by_subject[subject_id]
            else:
                self._by_subject[subject_id] = remaining[0] if len(remaining) == 1 else remaining
            self._id_bytes -= len(event_id) + len(subject_id)
            self._event_ids[slot] = self._subject_ids[slot] = ""
            self._alive[slot] = False
            self._search_masks[slot] = 0
            if self._indexed[slot]:
                assert self._graph is not None
                self._graph.mark_deleted(slot)
            else:
                del self._pending[slot]
                self._free.append(slot)
            removed += 1
        return removed

    def _subject_slots(self, subject_id: str) -> tuple[int, ...]:
        held = self._by_subject.get(subject_id, ())
        return (held,) if isinstance(held, int) else held

    def _add_subject_slot(self, subject_id: str, slot: int) -> None:
        held = self._by_subject.get(subject_id)
        self._by_subject[subject_id] = (
            slot if held is None else (*self._subject_slots(subject_id), slot)
        )

    def _take_slots(self, count: int) -> list[int]:
        reused = [self._free.pop() for _ in range(min(count, len(self._free)))]
        fresh = count - len(reused)
        if self._next_slot + fresh > self._capacity:
            self._grow(max(math.ceil(self._capacity * GROWTH), self._next_slot + fresh))
        slots = reused + list(range(self._next_slot, self._next_slot + fresh))
        self._next_slot += fresh
        return slots

    def _grow(self, capacity: int) -> None:
        extra = capacity - self._capacity
        self._vectors = np.concatenate((self._vectors, np.zeros((extra, self.dim), np.float32)))
        self._masks = np.concatenate((self._masks, np.zeros(extra, np.uint64)))
        self._alive = np.concatenate((self._alive, np.zeros(extra, bool)))
        self._indexed = np.concatenate((self._indexed, np.zeros(extra, bool)))
        self._search_masks = np.concatenate((self._search_masks, np.zeros(extra, np.uint64)))
        self._event_ids.extend([""] * extra)
        self._subject_ids.extend([""] * extra)
        self._capacity = capacity

    # --------------------------------------------------------- the graph

    def _graph_vectors(self, slots: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
        vectors: np.ndarray = self._vectors[slots]
        return vectors if matrix is None else vectors @ matrix

    def _new_graph(self, capacity: int, matrix: np.ndarray | None) -> SegmentedGraph:
        p = self.params
        return SegmentedGraph.create(
            self.dim if matrix is None else matrix.shape[1],
            p.graph_segments,
            capacity,
            m=p.m,
            ef_construction=p.ef_construction,
            ef_search=p.ef_search,
        )

    def _fit_projection(self, slots: np.ndarray) -> np.ndarray | None:
        dims = self.params.projection_dim
        if not dims or dims >= self.dim:
            return None
        return projection.fit(self._vectors[slots], dims)

    def pending_count(self) -> int:
        return len(self._pending)

    def merge_pending(self, limit: int | None = None, num_threads: int = 1) -> int:
        """Move up to ``limit`` (default: one chunk) pending entries into the graph;
        nothing while the gallery is too small to have one."""
        limit = self.params.merge_chunk if limit is None else limit
        with self._lock.write():
            if self._graph is None:
                if len(self._by_event) < self.params.index_min:
                    return 0
                pending = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
                self._projection = self._fit_projection(pending)
                self._fitted_on = len(pending)
                self._graph = self._new_graph(len(pending), self._projection)
            slots = list(self._pending)[:limit]
            if not slots:
                return 0
            rows = np.asarray(slots, dtype=np.int64)
            self._graph.add(self._graph_vectors(rows, self._projection), rows, num_threads, GROWTH)
            for slot in slots:
                del self._pending[slot]
            self._indexed[rows] = True
            self._search_masks[rows] = self._masks[rows]
            self._postings.add(rows, self._masks[rows])
            if self._merged_log is not None:
                self._merged_log.extend(slots)
            return len(slots)

    def flush(self, num_threads: int = 1) -> None:
        """Merge everything pending (bulk loads), in chunks of 10,000."""
        with self._lock.write():
            # Size the graph for exactly what is pending: a bulk load leaves no slack.
            if self._graph is not None:
                pending = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
                self._graph.reserve(pending, 1.0)
        while self.merge_pending(10_000, num_threads):
            pass

    def needs_compaction(self) -> bool:
        if self._graph is None:
            return False
        dead = self._graph.dead
        grown = (
            self._projection is not None
            and self.params.refit_growth > 0
            and self._graph.live >= self.params.refit_growth * max(self._fitted_on, 1)
        )
        return grown or (
            dead >= MIN_DEAD_FOR_COMPACTION and dead > self.params.compact_ratio * self._graph.count
        )

    def compact(self, num_threads: int = 1) -> bool:
        """Rebuild the graph from the live entries (and refit its projection); searches
        go on meanwhile."""
        if self._graph is None or not self._compacting.acquire(blocking=False):
            return False
        try:
            with self._lock.write():
                self._merged_log = []
                slots = np.flatnonzero(self._indexed & self._alive)
                matrix = self._fit_projection(slots)
            fresh = self._new_graph(max(INITIAL_CAPACITY, math.ceil(len(slots) * GROWTH)), matrix)
            added: list[np.ndarray] = []
            for start in range(0, len(slots), COMPACTION_CHUNK):
                # A short read lock per chunk: writers are never held up for long, and a
                # slot's vector never changes while the slot stays in use.
                with self._lock.read():
                    chunk = slots[start : start + COMPACTION_CHUNK]
                    chunk = chunk[self._alive[chunk]]
                    vectors = self._graph_vectors(chunk, matrix)
                fresh.add(vectors, chunk, num_threads, GROWTH)
                added.append(chunk)
            with self._lock.write():
                late = np.asarray(self._merged_log or [], dtype=np.int64)
                late = late[self._alive[late]]
                if len(late):
                    fresh.add(self._graph_vectors(late, matrix), late, num_threads, GROWTH)
                    added.append(late)
                in_fresh = np.concatenate(added) if added else np.zeros(0, np.int64)
                died = in_fresh[~self._alive[in_fresh]]  # deleted while the graph was built
                for slot in died:
                    fresh.mark_deleted(int(slot))
                keep = np.zeros(self._capacity, dtype=bool)
                keep[in_fresh] = True
                freed = np.flatnonzero(self._indexed & ~keep)
                self._indexed[freed] = False
                self._free.extend(int(s) for s in freed)
                self._graph = fresh
                self._projection = matrix
                self._fitted_on = len(slots)
                self._postings.rebuild(self._search_masks[: self._next_slot])
            return True
        finally:
            with self._lock.write():
                self._merged_log = None
            self._compacting.release()

    # ---------------------------------------------------------------- search

    def set_ef_search(self, ef: int) -> None:
        with self._lock.write():
            self.params = replace(self.params, ef_search=ef)
            if self._graph is not None:
                self._graph.set_ef(ef)

    def plan(self, tag_mask: int = 0) -> Plan:
        """The path :meth:`search` takes for this filter now."""
        with self._lock.read():
            return "exact" if isinstance(self._matching(tag_mask, None), np.ndarray) else "hnsw"

    def search(
        self,
        probe: np.ndarray,
        k: int,
        *,
        min_similarity: float = -1.0,
        tag_mask: int = 0,
        plan: Plan | None = None,
    ) -> list[Hit]:
        """The best ``k`` live entries with similarity >= ``min_similarity`` that share a
        bit with ``tag_mask`` (0 = no filter), by decreasing similarity, ties by event id.

        ``plan`` forces a path (benchmarks, tests); None lets the planner choose.
        """
        query = np.ascontiguousarray(probe, dtype=np.float32).reshape(self.dim)
        started = time.perf_counter()
        with self._lock.read():
            found = self._scan(query, self._pending_matching(tag_mask), k, min_similarity)
            matching = self._matching(tag_mask, plan)
            if isinstance(matching, np.ndarray):
                found.extend(self._scan(query, matching, k, min_similarity))
                chosen: Plan = "exact"
            else:
                found.extend(self._graph_search(query, k, min_similarity, tag_mask, matching))
                chosen = "hnsw"
            MATCHER_SEARCH.labels(chosen).observe(time.perf_counter() - started)
            found.sort(key=lambda pair: (-pair[1], self._event_ids[pair[0]]))
            return [Hit(self._event_ids[s], self._subject_ids[s], sim) for s, sim in found[:k]]

    def search_exact(
        self, probe: np.ndarray, k: int, *, min_similarity: float = -1.0, tag_mask: int = 0
    ) -> list[Hit]:
        """:meth:`search` by scanning every candidate (the ground truth)."""
        return self.search(probe, k, min_similarity=min_similarity, tag_mask=tag_mask, plan="exact")

    def _matching(self, tag_mask: int, plan: Plan | None) -> np.ndarray | int:
        """The indexed live slots passing the filter (to scan), or an estimate of how many
        pass (to search the graph).

        Only a filter small enough to scan is resolved slot by slot: a filter passing most
        of a large gallery costs no pass over it, and neither does an unfiltered search.
        """
        n = self._next_slot
        live = 0 if self._graph is None else self._graph.live
        if tag_mask:
            listed = self._postings.listed(tag_mask)  # counts stale entries too: an upper bound
            exact = plan == "exact" or (plan is None and listed <= self.params.exact_max(live))
            if exact or live == 0:
                return self._postings.candidates(tag_mask, self._search_masks)
            return min(listed, live)
        if plan == "exact" or live == 0:
            return np.flatnonzero(self._indexed[:n] & self._alive[:n])
        return live

    def _all_matching(self, tag_mask: int) -> np.ndarray:
        matching = self._matching(tag_mask, "exact")
        assert isinstance(matching, np.ndarray)
        return matching

    def _pending_matching(self, tag_mask: int) -> np.ndarray:
        slots = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
        if tag_mask and len(slots):
            slots = slots[(self._masks[slots] & np.uint64(tag_mask)) != 0]
        return slots

    def _scan(
        self, query: np.ndarray, slots: np.ndarray, k: int, min_similarity: float
    ) -> list[tuple[int, float]]:
        if len(slots) == 0:
            return []
        approximate = scan.similarities(self._vectors, slots, query)
        chosen = slots[scan.candidates(approximate, k, min_similarity, scan.FLOAT32_MARGIN)]
        return self._rescore(query, chosen, min_similarity)

    def _rescore(
        self, query: np.ndarray, slots: np.ndarray, min_similarity: float
    ) -> list[tuple[int, float]]:
        exact = scan.canonical(self._vectors[slots], query)
        return [
            (int(s), float(v)) for s, v in zip(slots, exact, strict=True) if v >= min_similarity
        ]

    def _graph_search(
        self, query: np.ndarray, k: int, min_similarity: float, tag_mask: int, passing: int
    ) -> list[tuple[int, float]]:
        assert self._graph is not None
        live = self._graph.live
        wanted = min(passing, k)
        depth = max(k, math.ceil(self.params.ef_search * self.params.rerank_share))
        factor = self.params.overfetch * live / max(passing, 1) if tag_mask else 1.0
        asked = min(live, math.ceil(depth * factor))
        graph_query = query if self._projection is None else query @ self._projection
        while True:
            try:
                slots = self._graph.query(graph_query, self._segment_ask(asked, live))
            except RuntimeError:  # hnswlib found fewer than `asked` (many deletions)
                return self._scan(query, self._all_matching(tag_mask), k, min_similarity)
            if tag_mask:
                slots = slots[(self._search_masks[slots] & np.uint64(tag_mask)) != 0]
            if len(slots) >= wanted or asked >= live:
                return self._scan(query, slots, k, min_similarity)
            if asked >= MAX_GRAPH_NEIGHBOURS:
                return self._scan(query, self._all_matching(tag_mask), k, min_similarity)
            asked = min(live, asked * 4, MAX_GRAPH_NEIGHBOURS)

    def _segment_ask(self, asked: int, live: int) -> int:
        """Candidates each graph segment is asked for when the whole graph is asked for
        ``asked``.

        Up to twice ef_search, every segment is asked for all of them: a filter passing
        most entries puts its top-k only a little deeper than the unfiltered top-k, and
        a segment asked for its share alone searches no deeper than ef_search and misses
        some (recall@10 0.988 at 50% of 1M, against 0.996). A deeper over-fetch (a
        selective filter) is shared between the segments, as its passing entries are,
        which halves its cost (10% of 1M: 7 ms instead of 13, recall 1.0).
        """
        assert self._graph is not None
        if asked >= live:
            return asked
        whole = min(asked, 2 * self.params.ef_search)
        return max(whole, -(-asked // self._graph.segments))

    # ----------------------------------------------------------- persistence

    def export_state(self) -> GalleryState:
        """The slot arrays, for a snapshot. ``vectors`` is a view, not a copy (a million
        templates are 2 GB): write it out under the read lock (matcher/persist.py)."""
        n = self._next_slot
        return GalleryState(
            gallery_id=self.gallery_id,
            model_id=self.model_id,
            dim=self.dim,
            params=self.params,
            vectors=self._vectors[:n],
            masks=self._masks[:n].copy(),
            alive=self._alive[:n].copy(),
            indexed=self._indexed[:n].copy(),
            event_ids=list(self._event_ids[:n]),
            subject_ids=list(self._subject_ids[:n]),
            free=list(self._free),
            pending=np.fromiter(self._pending, dtype=np.int64, count=len(self._pending)),
            projection=self._projection,
            graph_capacities=[] if self._graph is None else self._graph.capacities(),
            graph_dead=[] if self._graph is None else self._graph.dead_per_segment(),
        )

    def reading(self) -> Any:
        """The read lock, for callers that must see one consistent state."""
        return self._lock.read()

    def save_graph(self, paths: Sequence[Path]) -> None:
        """Write the graph's segments to ``paths``, one each (none without a graph)."""
        if self._graph is not None:
            self._graph.save(paths)

    @classmethod
    def restore(cls, state: GalleryState, graph_paths: Sequence[Path]) -> Gallery:
        gallery = cls(state.gallery_id, state.model_id, state.dim, state.params)
        n = len(state.masks)
        if n > gallery._capacity:
            gallery._grow(n)
        gallery._vectors[:n] = state.vectors
        gallery._masks[:n] = state.masks
        gallery._alive[:n] = state.alive
        gallery._indexed[:n] = state.indexed
        gallery._event_ids[:n] = state.event_ids
        gallery._subject_ids[:n] = state.subject_ids
        gallery._free = list(state.free)
        gallery._pending = dict.fromkeys(int(s) for s in state.pending)
        gallery._next_slot = n
        searchable = state.alive & state.indexed
        gallery._search_masks[:n] = np.where(searchable, state.masks, np.uint64(0))
        for slot in np.flatnonzero(state.alive):
            event_id, subject_id = state.event_ids[slot], state.subject_ids[slot]
            gallery._by_event[event_id] = int(slot)
            gallery._add_subject_slot(subject_id, int(slot))
            gallery._id_bytes += len(event_id) + len(subject_id)
        gallery._postings.rebuild(gallery._search_masks[:n])
        gallery._projection = state.projection
        # Snapshots do not keep the fit's size: count growth from this start.
        gallery._fitted_on = int(np.count_nonzero(searchable))
        if state.graph_capacities:
            gallery._graph = SegmentedGraph.load(
                graph_paths,
                state.dim if state.projection is None else state.projection.shape[1],
                state.graph_capacities,
                state.graph_dead,
                state.params.ef_search,
            )
        return gallery

    # ---------------------------------------------------------------- stats

    def stats(self) -> GalleryStats:
        with self._lock.read():
            count = len(self._by_event)
            dead = 0 if self._graph is None else self._graph.dead
            return GalleryStats(count, dead, self._memory_bytes(), self.params)

    def _memory_bytes(self) -> int:
        arrays = sum(
            a.nbytes
            for a in (self._vectors, self._masks, self._alive, self._indexed, self._search_masks)
        )
        graph = 0
        if self._graph is not None:
            dims = self.dim if self._projection is None else self._projection.shape[1]
            graph = self._graph.memory_bytes(dims, self.params.m)
        # Python objects: each id string (~49 bytes + its text) and the dict/list slots.
        python = self._id_bytes + len(self._by_event) * (2 * 49 + 2 * 8 + 104 + 80)
        return arrays + graph + python
