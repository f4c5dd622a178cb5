"""One gallery's templates and its search: HNSW for speed, an exact scan for filters.

Every entry lives in a *slot* (its HNSW label). A slot holds the entry's ids, its tag
mask, a bfloat16 copy of its vector (matcher/scan.py) and whether it is alive. New
entries first wait in a small *pending* set, searched exactly, until the shard's
background merger moves them into the HNSW index a few hundred at a time; so an upsert
never holds searches back for longer than one such chunk.

Search plan, per query (measured switch point in docs/benchmarks.md):
- the live entries that pass the tag filter are counted (a vectorised mask test);
- at most ``exact_max`` of them: an exact bfloat16 scan of those entries, re-scored
  with their float32 vectors, which gives exactly the top-k;
- more: HNSW over the whole gallery asking for ``k / selectivity * overfetch``
  neighbours, keeping those that pass the filter, asking again for four times as many
  while too few passed, and scanning exactly as a last resort.
Either way the hits are re-scored with one definition of similarity (float64 inner
product of the stored float32 vectors, rounded to float32), so every score is exact and
the same whichever path found it; only which entries HNSW finds is approximate.

Thread safety (hnswlib's rules: concurrent searches are safe, concurrent insertions are
safe, an insertion or a deletion mark concurrent with a search is not, and resizing
or saving is safe with nothing): searches hold the gallery's read lock; upserts,
deletes, merges and the swap at the end of a compaction hold its write lock. A
compaction builds its new index without holding any lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import hnswlib
import numpy as np

from matcher import scan
from matcher.rwlock import ReadWriteLock
from matcher.tags import TagPostings

GROWTH = 1.5
INITIAL_CAPACITY = 1024
# Below this many dead entries an index is never rebuilt, whatever the ratio.
MIN_DEAD_FOR_COMPACTION = 1024
# With the HNSW path, ask for at most this many neighbours before scanning exactly.
MAX_HNSW_NEIGHBOURS = 4096
# Unfiltered searches of a gallery this small are scanned exactly.
SMALL_GALLERY = 256
COMPACTION_CHUNK = 10_000
# How far hnswlib's float32 similarities may be from the canonical float64 ones.
RESCORE_MARGIN = 1e-5


Plan = Literal["exact", "hnsw"]


@dataclass(frozen=True)
class IndexParams:
    m: int = 32
    """HNSW links per node (hnswlib M)."""
    ef_construction: int = 200
    """HNSW candidate list while building."""
    ef_search: int = 256
    """HNSW candidate list while searching (at least k is used)."""
    exact_max: int = 32_768
    """A filter leaving at most this many live entries is scanned exactly."""
    overfetch: float = 2.0
    """With a filter on the HNSW path, ask for k / selectivity times this."""
    merge_chunk: int = 128
    """Pending entries moved into HNSW per write-lock hold."""
    compact_ratio: float = 0.25
    """Rebuild the index once dead entries exceed this share of it."""


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
    """Everything of a gallery but its HNSW index, as plain arrays (for snapshots)."""

    gallery_id: str
    model_id: str
    dim: int
    params: IndexParams
    bf16: np.ndarray
    masks: np.ndarray
    alive: np.ndarray
    indexed: np.ndarray
    event_ids: list[str]
    subject_ids: list[str]
    free: list[int]
    pending_slots: np.ndarray
    pending_vectors: np.ndarray
    dead: int
    index_capacity: int


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
        self._bf16 = np.zeros((0, dim), dtype=np.uint16)
        self._masks = np.zeros(0, dtype=np.uint64)
        self._alive = np.zeros(0, dtype=bool)
        self._indexed = np.zeros(0, dtype=bool)
        # The tag mask of alive, indexed slots and 0 elsewhere: one pass answers a filter.
        self._search_masks = np.zeros(0, dtype=np.uint64)
        self._event_ids: list[str] = []  # "" = free slot
        self._subject_ids: list[str] = []
        self._by_event: dict[str, int] = {}
        # A subject's slot, or its slots when it has several: no set object per subject.
        self._by_subject: dict[str, int | tuple[int, ...]] = {}
        self._postings = TagPostings()
        self._pending: dict[int, np.ndarray] = {}  # slot -> float32 vector, insertion order
        # Slots merged while a compaction builds its index (None: no compaction running).
        self._merged_log: list[int] | None = None
        self._dead = 0
        self._id_bytes = 0
        self._index = self._new_index(INITIAL_CAPACITY)
        self._grow(INITIAL_CAPACITY)

    # ------------------------------------------------------------------ writes

    def upsert(self, batch: EntryBatch) -> None:
        """Add the entries, replacing any with the same event id."""
        vectors = np.ascontiguousarray(batch.vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must be n x {self.dim}")
        encoded = scan.encode(vectors)
        with self._lock.write():
            self._remove(self._by_event[e] for e in batch.event_ids if e in self._by_event)
            slots = self._take_slots(len(batch))
            self._bf16[slots] = encoded
            self._masks[slots] = np.asarray(batch.tag_masks, dtype=np.uint64)
            self._alive[slots] = True
            for slot, event_id, subject_id, vector in zip(
                slots, batch.event_ids, batch.subject_ids, vectors, strict=True
            ):
                self._event_ids[slot] = event_id
                self._subject_ids[slot] = subject_id
                self._by_event[event_id] = slot
                self._add_subject_slot(subject_id, slot)
                self._id_bytes += len(event_id) + len(subject_id)
                self._pending[slot] = vector

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
                self._index.mark_deleted(slot)
                self._dead += 1
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
        self._bf16 = np.concatenate((self._bf16, np.zeros((extra, self.dim), np.uint16)))
        self._masks = np.concatenate((self._masks, np.zeros(extra, np.uint64)))
        self._alive = np.concatenate((self._alive, np.zeros(extra, bool)))
        self._indexed = np.concatenate((self._indexed, np.zeros(extra, bool)))
        self._search_masks = np.concatenate((self._search_masks, np.zeros(extra, np.uint64)))
        self._event_ids.extend([""] * extra)
        self._subject_ids.extend([""] * extra)
        self._capacity = capacity

    def _new_index(self, capacity: int) -> Any:
        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(
            max_elements=capacity, M=self.params.m, ef_construction=self.params.ef_construction
        )
        index.set_ef(self.params.ef_search)
        index.set_num_threads(1)
        return index

    # ------------------------------------------------------------- merging

    def pending_count(self) -> int:
        return len(self._pending)

    def merge_pending(self, limit: int | None = None, num_threads: int = 1) -> int:
        """Move up to ``limit`` (default: one chunk) pending entries into HNSW."""
        limit = self.params.merge_chunk if limit is None else limit
        with self._lock.write():
            slots = list(self._pending)[:limit]
            if not slots:
                return 0
            needed = self._index.get_current_count() + len(slots)
            if needed > self._index.get_max_elements():
                self._index.resize_index(max(needed, math.ceil(needed * GROWTH)))
            vectors = np.stack([self._pending[s] for s in slots])
            self._index.add_items(vectors, np.asarray(slots, dtype=np.int64), num_threads)
            for slot in slots:
                del self._pending[slot]
            self._indexed[slots] = True
            self._search_masks[slots] = self._masks[slots]
            self._postings.add(np.asarray(slots, dtype=np.int64), self._masks[slots])
            if self._merged_log is not None:
                self._merged_log.extend(slots)
            return len(slots)

    def flush(self, num_threads: int = 1) -> None:
        """Merge everything pending (bulk loads), in chunks of 10,000."""
        with self._lock.write():
            # Size the index for exactly what is pending: a bulk load leaves no slack.
            needed = self._index.get_current_count() + len(self._pending)
            if needed > self._index.get_max_elements():
                self._index.resize_index(needed)
        while self.merge_pending(10_000, num_threads):
            pass

    def needs_compaction(self) -> bool:
        count = self._index.get_current_count()
        return (
            self._dead >= MIN_DEAD_FOR_COMPACTION and self._dead > self.params.compact_ratio * count
        )

    def compact(self, num_threads: int = 1) -> bool:
        """Rebuild the index without its dead entries; searches go on meanwhile."""
        if not self._compacting.acquire(blocking=False):
            return False
        try:
            with self._lock.write():
                self._merged_log = []
                slots = np.flatnonzero(self._indexed & self._alive)
            fresh = self._new_index(max(INITIAL_CAPACITY, math.ceil(len(slots) * GROWTH)))
            added: list[np.ndarray] = []
            for start in range(0, len(slots), COMPACTION_CHUNK):
                # A short read lock per chunk: writers are never held up for long, and a
                # slot's vector never changes while it stays in the old index. (hnswlib
                # will not return a vector marked deleted, so those are skipped.)
                with self._lock.read():
                    chunk = slots[start : start + COMPACTION_CHUNK]
                    chunk = chunk[self._alive[chunk]]
                    vectors = self._exact_vectors(chunk)
                fresh.add_items(vectors, chunk, num_threads)
                added.append(chunk)
            with self._lock.write():
                late = np.asarray(self._merged_log or [], dtype=np.int64)
                late = late[self._alive[late]]
                if len(late):
                    needed = fresh.get_current_count() + len(late)
                    if needed > fresh.get_max_elements():
                        fresh.resize_index(math.ceil(needed * GROWTH))
                    fresh.add_items(self._exact_vectors(late), late, num_threads)
                    added.append(late)
                in_fresh = np.concatenate(added) if added else np.zeros(0, np.int64)
                died = in_fresh[~self._alive[in_fresh]]  # deleted while the index was built
                for slot in died:
                    fresh.mark_deleted(int(slot))
                keep = np.zeros(self._capacity, dtype=bool)
                keep[in_fresh] = True
                freed = np.flatnonzero(self._indexed & ~keep)
                self._indexed[freed] = False
                self._free.extend(int(s) for s in freed)
                self._index = fresh
                self._dead = len(died)
                self._postings.rebuild(self._search_masks[: self._next_slot])
            return True
        finally:
            with self._lock.write():
                self._merged_log = None
            self._compacting.release()

    def _exact_vectors(self, slots: np.ndarray) -> np.ndarray:
        """float32 vectors of slots; indexed ones come from the HNSW store."""
        if len(slots) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.empty((len(slots), self.dim), dtype=np.float32)
        in_index = self._indexed[slots]
        if in_index.any():
            out[in_index] = self._index.get_items(slots[in_index], return_type="numpy")
        for position in np.flatnonzero(~in_index):
            out[position] = self._pending[int(slots[position])]
        return out

    # ---------------------------------------------------------------- search

    def set_ef_search(self, ef: int) -> None:
        with self._lock.write():
            self.params = replace(self.params, ef_search=ef)
            self._index.set_ef(ef)

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
        with self._lock.read():
            found = self._scan(query, self._pending_matching(tag_mask), k, min_similarity)
            matching = self._matching(tag_mask, plan)
            if isinstance(matching, np.ndarray):
                found.extend(self._scan(query, matching, k, min_similarity))
            else:
                found.extend(self._hnsw(query, k, min_similarity, tag_mask, matching))
            found.sort(key=lambda pair: (-pair[1], self._event_ids[pair[0]]))
            return [Hit(self._event_ids[s], self._subject_ids[s], sim) for s, sim in found[:k]]

    def search_exact(
        self, probe: np.ndarray, k: int, *, min_similarity: float = -1.0, tag_mask: int = 0
    ) -> list[Hit]:
        """:meth:`search` by scanning every candidate (the ground truth)."""
        return self.search(probe, k, min_similarity=min_similarity, tag_mask=tag_mask, plan="exact")

    def _matching(self, tag_mask: int, plan: Plan | None) -> np.ndarray | int:
        """The indexed live slots passing the filter (to scan), or an estimate of how many
        pass (to search HNSW).

        Only a filter small enough to scan is resolved slot by slot: a filter passing most
        of a large gallery costs no pass over it, and neither does an unfiltered search.
        """
        n = self._next_slot
        live: int = self._index.get_current_count() - self._dead
        if tag_mask:
            listed = self._postings.listed(tag_mask)  # counts stale entries too: an upper bound
            if plan == "exact" or live == 0 or (plan is None and listed <= self.params.exact_max):
                return self._postings.candidates(tag_mask, self._search_masks)
            return min(listed, live)
        if plan == "exact" or live == 0 or (plan is None and live <= SMALL_GALLERY):
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
        approximate = scan.similarities(self._bf16, slots, query)
        return self._rescore(
            query, slots[scan.candidates(approximate, k, min_similarity)], min_similarity
        )

    def _rescore(
        self, query: np.ndarray, slots: np.ndarray, min_similarity: float
    ) -> list[tuple[int, float]]:
        """The one definition of a similarity: the float64 inner product of the stored
        float32 vectors, rounded to float32. Every path ends here, so an entry scores
        the same whichever plan found it, on one shard or another."""
        exact = (self._exact_vectors(slots).astype(np.float64) @ query.astype(np.float64)).astype(
            np.float32
        )
        return [
            (int(s), float(v)) for s, v in zip(slots, exact, strict=True) if v >= min_similarity
        ]

    def _hnsw(
        self,
        query: np.ndarray,
        k: int,
        min_similarity: float,
        tag_mask: int,
        candidates: int,
    ) -> list[tuple[int, float]]:
        live = self._index.get_current_count() - self._dead
        wanted = min(candidates, k)
        factor = self.params.overfetch * live / max(candidates, 1) if tag_mask else 1.0
        asked = min(live, math.ceil(k * factor))
        while True:
            try:
                labels, distances = self._index.knn_query(query, k=asked, num_threads=1)
            except RuntimeError:  # hnswlib found fewer than `asked` (many deletions)
                return self._scan(query, self._all_matching(tag_mask), k, min_similarity)
            slots = labels[0].astype(np.int64)
            approximate = 1.0 - distances[0]
            if tag_mask:
                passing = (self._search_masks[slots] & np.uint64(tag_mask)) != 0
                slots, approximate = slots[passing], approximate[passing]
            lowest = 1.0 - float(distances[0][-1])
            if len(slots) >= wanted or asked >= live or lowest < min_similarity:
                # hnswlib's float32 SIMD products differ from the canonical ones by far
                # less than the margin: re-score every entry that could reach the top k.
                near = approximate >= min_similarity - RESCORE_MARGIN
                if np.count_nonzero(near) > k:
                    kth = np.partition(approximate[near], -k)[-k]
                    near &= approximate >= kth - RESCORE_MARGIN
                return self._rescore(query, slots[near], min_similarity)
            if asked >= MAX_HNSW_NEIGHBOURS:
                return self._scan(query, self._all_matching(tag_mask), k, min_similarity)
            asked = min(live, asked * 4, MAX_HNSW_NEIGHBOURS)

    # ----------------------------------------------------------- persistence

    def export_state(self) -> GalleryState:
        """A consistent copy of the slot arrays, for a snapshot (the index is saved by
        :meth:`save_index` under the same read lock, see matcher/persist.py)."""
        n = self._next_slot
        pending = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
        return GalleryState(
            gallery_id=self.gallery_id,
            model_id=self.model_id,
            dim=self.dim,
            params=self.params,
            bf16=self._bf16[:n].copy(),
            masks=self._masks[:n].copy(),
            alive=self._alive[:n].copy(),
            indexed=self._indexed[:n].copy(),
            event_ids=list(self._event_ids[:n]),
            subject_ids=list(self._subject_ids[:n]),
            free=list(self._free),
            pending_slots=pending,
            pending_vectors=np.stack([self._pending[int(s)] for s in pending])
            if len(pending)
            else np.zeros((0, self.dim), np.float32),
            dead=self._dead,
            index_capacity=self._index.get_max_elements(),
        )

    def reading(self) -> Any:
        """The read lock, for callers that must see one consistent state."""
        return self._lock.read()

    def save_index(self, path: Path) -> None:
        self._index.save_index(str(path))

    @classmethod
    def restore(cls, state: GalleryState, index_path: Path) -> Gallery:
        gallery = cls(state.gallery_id, state.model_id, state.dim, state.params)
        n = len(state.masks)
        if n > gallery._capacity:
            gallery._grow(n)
        gallery._bf16[:n] = state.bf16
        gallery._masks[:n] = state.masks
        gallery._alive[:n] = state.alive
        gallery._indexed[:n] = state.indexed
        gallery._event_ids[:n] = state.event_ids
        gallery._subject_ids[:n] = state.subject_ids
        gallery._free = list(state.free)
        gallery._pending = {
            int(s): v for s, v in zip(state.pending_slots, state.pending_vectors, strict=True)
        }
        gallery._next_slot = n
        searchable = state.alive & state.indexed
        gallery._search_masks[:n] = np.where(searchable, state.masks, np.uint64(0))
        for slot in np.flatnonzero(state.alive):
            event_id, subject_id = state.event_ids[slot], state.subject_ids[slot]
            gallery._by_event[event_id] = int(slot)
            gallery._add_subject_slot(subject_id, int(slot))
            gallery._id_bytes += len(event_id) + len(subject_id)
        gallery._dead = state.dead
        gallery._postings.rebuild(gallery._search_masks[:n])
        index = hnswlib.Index(space="ip", dim=state.dim)
        index.load_index(str(index_path), max_elements=state.index_capacity)
        index.set_ef(state.params.ef_search)
        index.set_num_threads(1)
        gallery._index = index
        return gallery

    # ---------------------------------------------------------------- stats

    def stats(self) -> GalleryStats:
        with self._lock.read():
            count = len(self._by_event)
            return GalleryStats(count, self._dead, self._memory_bytes(), self.params)

    def _memory_bytes(self) -> int:
        arrays = self._bf16.nbytes + self._masks.nbytes + self._alive.nbytes + self._indexed.nbytes
        links0 = 2 * self.params.m * 4 + 4
        per_element = self.dim * 4 + 8 + links0 + 4
        upper = (self.params.m * 4 + 4) / max(math.log(self.params.m), 1.0)
        hnsw = int(self._index.get_max_elements() * (per_element + upper))
        # Python objects: each id string (~49 bytes + its text) and the dict/list slots.
        live = len(self._by_event)
        python = self._id_bytes + live * (2 * 49 + 2 * 8 + 2 * 104)
        pending = len(self._pending) * (self.dim * 4 + 112)
        return arrays + hnsw + python + pending
