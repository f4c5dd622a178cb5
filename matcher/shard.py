"""A matcher shard: its galleries, their durability, and their upkeep.

Writes are validated, appended to the write-ahead log (fsynced), then applied, all under
one lock, so the log order is the apply order and a write is acknowledged only once it
is durable. Searches never take that lock. A maintenance thread moves pending entries
into the HNSW indexes, compacts indexes with many dead entries (on its own thread, as it
takes a while), and writes a snapshot once enough log has accumulated; after a snapshot
the log is truncated through its sequence. Opening a shard loads the newest complete
snapshot and replays the log after it (ADR 0005).
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facegate.contract import MAX_CANDIDATES
from facegate.errors import ErrorType, FacegateError, invalid_request
from matcher.convert import write_from_log, write_to_log
from matcher.gallery import EntryBatch, Gallery, GalleryStats, Hit
from matcher.params import IndexParams
from matcher.persist import fsync_path, load_gallery, save_gallery
from matcher.results import ShardStats
from matcher.wal import WalError, WriteAheadLog
from matcher.writes import (
    ClearTagBit,
    Delete,
    DeleteSubject,
    DropGallery,
    ShardEntry,
    Upsert,
    Write,
    check_bit,
    check_entry,
    check_id,
    unit_vector,
)

log = logging.getLogger(__name__)

SNAPSHOTS = "snapshots"
WAL_DIR = "wal"
SNAPSHOT_META = "shard.json"
# Snapshot once the log since the last one reaches this fraction (1/n) of the entries.
SNAPSHOT_SHARE = 10


@dataclass(frozen=True)
class ShardConfig:
    data_dir: Path
    index: int = 0
    count: int = 1
    params: IndexParams = field(default_factory=IndexParams)
    snapshot_after_records: int = 50_000
    """Write a snapshot once the log holds this many records after the last one (or a
    tenth of the shard's entry count, if that is more)."""
    maintenance_interval_s: float = 0.02
    build_threads: int = 1
    """Threads hnswlib uses when merging and compacting."""


class Shard:
    def __init__(
        self,
        config: ShardConfig,
        wal: WriteAheadLog,
        *,
        galleries: dict[str, Gallery],
        sequence: int,
        snapshot_sequence: int,
    ) -> None:
        self.config = config
        self._wal = wal
        self._galleries = galleries
        self._sequence = sequence
        self._snapshot_sequence = snapshot_sequence
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._compactions: dict[str, threading.Thread] = {}
        self._maintenance = threading.Thread(
            target=self._maintain, name=f"matcher-shard-{config.index}", daemon=True
        )
        self._maintenance.start()

    @classmethod
    def open(cls, config: ShardConfig) -> Shard:
        """Recover from disk: the newest complete snapshot, then the log after it."""
        started = time.perf_counter()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        galleries, snapshot_sequence = _load_snapshot(config.data_dir / SNAPSHOTS)
        wal = WriteAheadLog.open(config.data_dir / WAL_DIR)
        replayed = 0
        for _, kind, payload in wal.replay(after=snapshot_sequence):
            _apply(galleries, write_from_log(kind, payload), config.params)
            replayed += 1
        for gallery in galleries.values():
            gallery.flush(config.build_threads)
        log.info(
            "shard %d/%d recovered: snapshot %d, %d log records replayed, %d galleries, %.1f s",
            config.index,
            config.count,
            snapshot_sequence,
            replayed,
            len(galleries),
            time.perf_counter() - started,
        )
        return cls(
            config,
            wal,
            galleries=galleries,
            sequence=wal.last_sequence,
            snapshot_sequence=snapshot_sequence,
        )

    # ------------------------------------------------------------------ writes

    def upsert(self, entries: Sequence[ShardEntry]) -> int:
        if not entries:
            raise invalid_request("entries must not be empty.")
        checked = tuple(check_entry(e) for e in entries)
        with self._write_lock:
            # A gallery created by this very batch takes the model of its first entry.
            models = {g: (g_.model_id, g_.dim) for g, g_ in self._galleries.items()}
            seen: set[tuple[str, str]] = set()
            for entry in checked:
                held = models.setdefault(entry.gallery_id, (entry.model_id, len(entry.vector)))
                if held != (entry.model_id, len(entry.vector)):
                    raise invalid_request(
                        f"gallery {entry.gallery_id!r} holds {held[1]}-d templates of model "
                        f"{held[0]!r}, not {len(entry.vector)}-d templates of "
                        f"{entry.model_id!r}."
                    )
                if (entry.gallery_id, entry.event_id) in seen:
                    raise invalid_request("an event appears twice in one upsert.")
                seen.add((entry.gallery_id, entry.event_id))
            return self._commit(Upsert(checked))

    def delete(self, gallery_id: str, event_ids: Sequence[str]) -> int:
        check_id(gallery_id, "gallery_id")
        for event_id in event_ids:
            check_id(event_id, "event_id")
        with self._write_lock:
            return self._commit(Delete(gallery_id, tuple(event_ids)))

    def delete_subject(self, gallery_id: str, subject_id: str) -> int:
        check_id(gallery_id, "gallery_id")
        check_id(subject_id, "subject_id")
        with self._write_lock:
            return self._commit(DeleteSubject(gallery_id, subject_id))

    def clear_tag_bit(self, gallery_id: str, bit: int) -> int:
        check_id(gallery_id, "gallery_id")
        check_bit(bit)
        with self._write_lock:
            return self._commit(ClearTagBit(gallery_id, bit))

    def drop_gallery(self, gallery_id: str) -> int:
        check_id(gallery_id, "gallery_id")
        with self._write_lock:
            return self._commit(DropGallery(gallery_id))

    def _commit(self, write: Write) -> int:
        kind, payload = write_to_log(write)
        try:
            sequence = self._wal.append(kind, payload)
        except WalError as error:
            log.exception("write-ahead log failed")
            raise FacegateError(
                ErrorType.UNAVAILABLE,
                "The matcher cannot make writes durable; it needs a restart.",
            ) from error
        _apply(self._galleries, write, self.config.params)
        self._sequence = sequence
        return sequence

    # ------------------------------------------------------------------ search

    def search(
        self,
        gallery_id: str,
        probes: Sequence[tuple[str, np.ndarray]],
        *,
        k: int,
        min_similarity: float,
        tag_mask: int = 0,
    ) -> list[list[Hit]]:
        """Per probe (model id, vector): the best ``k`` entries whose cosine similarity to
        it is at least ``min_similarity``.

        A probe must be a template of the gallery's model and dimension: similarities
        between templates of different models mean nothing.
        """
        check_id(gallery_id, "gallery_id")
        if not 1 <= k <= MAX_CANDIDATES:
            raise invalid_request(f"k must be between 1 and {MAX_CANDIDATES}.")
        if not (math.isfinite(min_similarity) and -1.0 <= min_similarity <= 1.0):
            raise invalid_request("min_similarity must be between -1 and 1.")
        if not 0 <= tag_mask < 1 << 64:
            raise invalid_request("tag_mask must fit in 64 bits.")
        if not probes:
            raise invalid_request("at least one probe is needed.")
        gallery = self._galleries.get(gallery_id)
        results: list[list[Hit]] = []
        for position, (model_id, values) in enumerate(probes):
            probe = unit_vector(values, f"probe {position}")
            if gallery is None:
                results.append([])
                continue
            if (model_id, len(probe)) != (gallery.model_id, gallery.dim):
                raise invalid_request(
                    f"probe {position} is a {len(probe)}-d template of model {model_id!r}; "
                    f"gallery {gallery_id!r} holds {gallery.dim}-d templates of "
                    f"{gallery.model_id!r}."
                )
            results.append(
                gallery.search(probe, k, min_similarity=min_similarity, tag_mask=tag_mask)
            )
        return results

    # ------------------------------------------------------------ stats, upkeep

    def stats(self, gallery_id: str | None = None) -> ShardStats:
        galleries = list(self._galleries.values())
        if gallery_id is not None:
            galleries = [g for g in galleries if g.gallery_id == gallery_id]
        parts = [g.stats() for g in galleries]
        return ShardStats(
            shard_index=self.config.index,
            shard_count=self.config.count,
            applied_sequence=self._sequence,
            count=sum(p.count for p in parts),
            deleted=sum(p.deleted for p in parts),
            memory_bytes=sum(p.memory_bytes for p in parts),
            params=self.config.params,
        )

    def gallery_stats(self) -> dict[str, GalleryStats]:
        """Each gallery's own counts (metrics)."""
        return {gallery_id: g.stats() for gallery_id, g in list(self._galleries.items())}

    def snapshot(self) -> tuple[int, Path]:
        """Write every gallery to a new snapshot directory, then truncate the log."""
        root = self.config.data_dir / SNAPSHOTS
        with self._write_lock:  # no write lands between the sequence and the state
            sequence = self._sequence
            target = root / f"{sequence:020d}"
            if not target.exists():
                staging = root / f"{sequence:020d}.tmp"
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                for number, gallery in enumerate(self._galleries.values()):
                    save_gallery(gallery, staging / f"{number:06d}")
                (staging / SNAPSHOT_META).write_text(str(sequence), encoding="utf-8")
                staging.rename(target)
                fsync_path(root)
            self._snapshot_sequence = sequence
        self._wal.truncate_through(sequence)
        for old in root.iterdir():
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
        return sequence, target

    def _maintain(self) -> None:
        while not self._stop.wait(self.config.maintenance_interval_s):
            try:
                self._upkeep()
            except Exception:  # the thread must outlive any one failure
                log.exception("matcher maintenance failed")

    def _upkeep(self) -> None:
        for gallery in list(self._galleries.values()):
            # merge_pending returns 0 once nothing is left, or while the gallery is too
            # small to have a graph (its pending entries are then simply scanned).
            while not self._stop.is_set() and gallery.merge_pending(
                num_threads=self.config.build_threads
            ):
                pass
            running = self._compactions.get(gallery.gallery_id)
            if gallery.needs_compaction() and (running is None or not running.is_alive()):
                worker = threading.Thread(
                    target=gallery.compact, args=(self.config.build_threads,), daemon=True
                )
                self._compactions[gallery.gallery_id] = worker
                worker.start()
        # A snapshot rewrites every gallery, so wait for log proportional to their size
        # (the cost per write stays bounded however large the shard grows), but not much
        # more (recovery replays it: re-inserting into HNSW is the slow part of a restart).
        entries = sum(g.stats().count for g in list(self._galleries.values()))
        due = max(self.config.snapshot_after_records, entries // SNAPSHOT_SHARE)
        if self._sequence - self._snapshot_sequence >= due:
            self.snapshot()

    def close(self) -> None:
        """Stop upkeep and, if anything was written since the last snapshot, write one, so
        the next start loads it instead of replaying the log."""
        self._stop.set()
        self._maintenance.join(timeout=30)
        for worker in self._compactions.values():
            worker.join(timeout=300)
        if self._sequence > self._snapshot_sequence:
            self.snapshot()
        self._wal.close()


def _apply(galleries: dict[str, Gallery], write: Write, params: IndexParams) -> None:
    """Apply a validated (or replayed) write to the in-memory galleries."""
    if isinstance(write, Upsert):
        by_gallery: dict[str, list[ShardEntry]] = {}
        for entry in write.entries:
            by_gallery.setdefault(entry.gallery_id, []).append(entry)
        for gallery_id, entries in by_gallery.items():
            gallery = galleries.get(gallery_id)
            if gallery is None:
                first = entries[0]
                gallery = Gallery(gallery_id, first.model_id, len(first.vector), params)
                galleries[gallery_id] = gallery
            gallery.upsert(
                EntryBatch(
                    event_ids=[e.event_id for e in entries],
                    subject_ids=[e.subject_id for e in entries],
                    vectors=np.stack([e.vector for e in entries]),
                    tag_masks=np.array([e.tag_mask for e in entries], dtype=np.uint64),
                )
            )
        return
    gallery = galleries.get(write.gallery_id)
    if isinstance(write, DropGallery):
        galleries.pop(write.gallery_id, None)
    elif gallery is None:
        return
    elif isinstance(write, Delete):
        gallery.delete(write.event_ids)
    elif isinstance(write, DeleteSubject):
        gallery.delete_subject(write.subject_id)
    elif isinstance(write, ClearTagBit):
        gallery.clear_tag_bit(write.bit)


def _load_snapshot(root: Path) -> tuple[dict[str, Gallery], int]:
    """The newest complete snapshot (a directory renamed into place), or nothing."""
    if not root.exists():
        return {}, 0
    complete = sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not complete:
        return {}, 0
    newest = complete[-1]
    sequence = int((newest / SNAPSHOT_META).read_text(encoding="utf-8"))
    galleries = {}
    for part in sorted(p for p in newest.iterdir() if p.is_dir()):
        gallery = load_gallery(part)
        galleries[gallery.gallery_id] = gallery
    return galleries, sequence
