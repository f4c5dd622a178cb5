"""Rebuilding the matchers from the store: every active event's template sent again to
the shard that holds it under the current placement.

For changing the number of shards (placement depends on it), or replacing a shard whose
data directory was lost: start the new, empty shards, then run `facegate matcher
resync` against them. Upserts are idempotent, so running it against shards that already
hold the events changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.ports import TemplateIndex
from gateway.replication import index_entry
from gateway.store import events, galleries, tenants
from gateway.store.database import Database

PAGE = 1000


def resync(
    database: Database,
    matcher: TemplateIndex,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Upsert every active event of every gallery; the number sent."""
    with database.read() as conn:
        gallery_ids = [
            gallery.id
            for tenant in tenants.list_tenants(conn)
            for gallery in galleries.list_galleries(conn, tenant.id)
        ]
    sent = 0
    for gallery_id in gallery_ids:
        after = 0
        while True:
            with database.read() as conn:
                rows = events.active_rows_after(conn, gallery_id, after_row_id=after, limit=PAGE)
            if not rows:
                break
            matcher.upsert([index_entry(row) for row in rows])
            sent += len(rows)
            after = rows[-1].row_id
            if progress is not None:
                progress(sent)
    return sent
