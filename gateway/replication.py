"""Carrying committed changes from the store to the matcher shards (the outbox).

The store is the record: a write is acknowledged once its transaction commits, and that
transaction also adds a row to ``changes`` naming what changed (an event, a tag bit
cleared, a gallery dropped). After the commit the gateway applies the change to the
matchers and removes the row. If the gateway dies in between, or a matcher is down, the
row stays and :class:`Replicator`'s background pass applies it later (any gateway does
it: the rows are in the shared store). Applying is idempotent and reads the event's
*current* state from the store rather than a copy in the row, so replaying an old change
can never bring back an outdated template or a deleted event.

Together with the search-time check against the store (a matcher hit whose event is no
longer active is dropped, gateway/search.py), this gives the guarantee of
docs/adr/0006: a committed event becomes searchable as soon as the matchers are
reachable, and a deleted one is never returned, whichever single process crashes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import ExitStack

from sqlalchemy import Connection

from facegate.errors import FacegateError
from gateway.faces import Template
from gateway.periodic import Periodic
from gateway.ports import Clock, IndexEntry, TemplateIndex, system_clock_ms
from gateway.store import changes
from gateway.store.changes import KIND_CLEAR_TAG_BIT, KIND_DROP_GALLERY, KIND_EVENT
from gateway.store.database import Database
from gateway.store.events import active_event_rows
from gateway.store.records import Change, EventRow

log = logging.getLogger(__name__)


_LOCK_STRIPES = 64
_REPLAY_BATCH = 500


def index_entry(row: EventRow) -> IndexEntry:
    """The matchers' copy of an active event."""
    return IndexEntry(
        gallery_id=row.gallery_id,
        event_id=row.event_id,
        subject_id=row.subject_id,
        template=Template.from_bytes(row.model_id, row.template),
        tag_mask=row.tag_mask,
    )


def record_change(
    conn: Connection,
    gallery_id: str,
    kind: str,
    *,
    now_ms: int,
    event_id: str | None = None,
    bit: int | None = None,
) -> Change:
    """Add a changes row in the caller's transaction; push it after the commit."""
    change_id = changes.add_change(
        conn, gallery_id=gallery_id, kind=kind, event_id=event_id, bit=bit, now_ms=now_ms
    )
    return Change(id=change_id, gallery_id=gallery_id, kind=kind, event_id=event_id, bit=bit)


def record_event_changes(
    conn: Connection, gallery_id: str, event_ids: Sequence[str], *, now_ms: int
) -> list[Change]:
    """:func:`record_change` of several events, in one statement."""
    ids = changes.add_event_changes(conn, gallery_id=gallery_id, event_ids=event_ids, now_ms=now_ms)
    return [
        Change(id=i, gallery_id=gallery_id, kind=KIND_EVENT, event_id=e, bit=None)
        for i, e in zip(ids, event_ids, strict=True)
    ]


class Replicator:
    """Applies changes rows to the matchers: right after a request commits them
    (:meth:`push`), and in the background for whatever is left (:meth:`replay`)."""

    def __init__(
        self,
        database: Database,
        matcher: TemplateIndex,
        *,
        clock_ms: Clock = system_clock_ms,
    ) -> None:
        self._database = database
        self._matcher = matcher
        self._clock_ms = clock_ms
        # Applying one event's change reads its state then writes the matcher; two
        # requests doing that for the same event must not interleave, or an older read
        # could be written last. Striped locks bound the memory.
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._background: Periodic | None = None

    def push(self, pending: Sequence[Change]) -> bool:
        """Apply the changes a request just committed. False when a matcher could not be
        reached: the rows stay and the background pass retries them. The request is
        acknowledged either way, because its write is committed."""
        try:
            self._apply(pending)
        except FacegateError as error:
            log.warning("matcher update deferred to replay: %s", error.message)
            return False
        return True

    def replay(self, *, min_age_ms: int = 0) -> int:
        """Apply every pending change older than ``min_age_ms`` (by id order); the
        number applied. Raises the first matcher failure after applying what it could."""
        applied = 0
        while True:
            # min_age_ms 0 means every pending change, even one of this millisecond.
            older_than = self._clock_ms() - min_age_ms if min_age_ms else None
            with self._database.read() as conn:
                batch = changes.pending_changes(conn, _REPLAY_BATCH, older_than_ms=older_than)
            if not batch:
                return applied
            self._apply(batch)
            applied += len(batch)
            if len(batch) < _REPLAY_BATCH:
                return applied

    def start(self, interval_s: float) -> None:
        """Replay in the background every ``interval_s`` (changes older than that: newer
        ones are still being pushed by their requests)."""
        min_age_ms = int(interval_s * 1000)

        def step() -> None:
            try:
                applied = self.replay(min_age_ms=min_age_ms)
            except FacegateError as error:
                log.warning("replay to the matchers failed, will retry: %s", error.message)
                return
            if applied:
                log.info("replayed %d committed changes to the matchers", applied)

        self._background = Periodic("facegate-replicator", step)
        self._background.start(interval_s)

    def stop(self) -> None:
        if self._background is not None:
            self._background.stop()
            self._background = None

    def _apply(self, pending: Sequence[Change]) -> None:
        """In order, except that a run of event changes goes as one batch (one read, one
        upsert per shard)."""
        applied: list[int] = []
        try:
            run: list[Change] = []
            for change in pending:
                if change.kind == KIND_EVENT:
                    run.append(change)
                    continue
                if run:
                    self._apply_events(run)
                    applied += [c.id for c in run]
                    run = []
                self._apply_one(change)
                applied.append(change.id)
            if run:
                self._apply_events(run)
                applied += [c.id for c in run]
        finally:
            if applied:
                with self._database.write() as conn:
                    changes.remove_changes(conn, applied)

    def _apply_one(self, change: Change) -> None:
        if change.kind == KIND_CLEAR_TAG_BIT:
            assert change.bit is not None
            self._matcher.clear_tag_bit(change.gallery_id, change.bit)
        elif change.kind == KIND_DROP_GALLERY:
            self._matcher.drop_gallery(change.gallery_id)
        else:
            raise ValueError(f"unknown change kind {change.kind!r}")

    def _apply_events(self, run: Sequence[Change]) -> None:
        """Make the matchers hold what the store holds for these events: the active ones
        upserted, the others deleted."""
        keys = sorted({(c.gallery_id, c.event_id or "") for c in run})
        stripes = sorted({hash(event_id) % _LOCK_STRIPES for _, event_id in keys})
        with ExitStack() as held:
            for stripe in stripes:  # in one order everywhere: no deadlock between pushes
                held.enter_context(self._stripes[stripe])
            by_gallery: dict[str, list[str]] = {}
            for gallery_id, event_id in keys:
                by_gallery.setdefault(gallery_id, []).append(event_id)
            with self._database.read() as conn:
                found = {g: active_event_rows(conn, g, ids) for g, ids in by_gallery.items()}
            rows = {(g, e): found[g].get(e) for g, e in keys}
            upserts = [index_entry(row) for row in rows.values() if row is not None]
            if upserts:
                self._matcher.upsert(upserts)
            gone: dict[str, list[str]] = {}
            for (gallery_id, event_id), row in rows.items():
                if row is None:
                    gone.setdefault(gallery_id, []).append(event_id)
            for gallery_id, event_ids in gone.items():
                self._matcher.delete(gallery_id, event_ids)
