"""A gallery's tags: at most 64 names, each one bit of an event's 64-bit tag mask.

Deleting a tag clears its bit from every event, in the store and (through the outbox)
in the matchers, so the bit can later serve a new tag without labelling old events.
Until the matchers have cleared it, the bit is not handed out again: tag creation
counts the bits of pending clears as used, in the same transaction that picks one.
"""

from __future__ import annotations

from facegate.errors import ErrorType, FacegateError
from gateway.deps import GatewayDeps
from gateway.enrolment import require_printable
from gateway.replication import record_change
from gateway.store import tags
from gateway.store.changes import KIND_CLEAR_TAG_BIT
from gateway.store.records import Application

MAX_TAG_LENGTH = 128


def _tag_name(name: str, what: str = "name") -> str:
    require_printable(name, what)
    if not name.strip():
        raise FacegateError(ErrorType.INVALID_REQUEST, f"{what} must not be empty.")
    if len(name) > MAX_TAG_LENGTH:
        raise FacegateError(
            ErrorType.INVALID_REQUEST, f"{what} must be at most {MAX_TAG_LENGTH} characters."
        )
    return name


class Tagging:
    def __init__(self, deps: GatewayDeps) -> None:
        self._deps = deps

    def list(self, application: Application) -> list[str]:
        with self._deps.database.read() as conn:
            return [tag.name for tag in tags.list_tags(conn, application.gallery_id)]

    def create(self, application: Application, name: str) -> None:
        name = _tag_name(name)
        with self._deps.database.write() as conn:
            # Bits still being cleared in the matchers are not handed out (store/tags.py).
            tags.create_tag(conn, application.gallery_id, name, self._deps.clock())

    def rename(self, application: Application, old_name: str, new_name: str) -> None:
        _tag_name(old_name)
        new_name = _tag_name(new_name, "newName")
        with self._deps.database.write() as conn:
            tags.rename_tag(conn, application.gallery_id, old_name, new_name)

    def delete(self, application: Application, name: str) -> None:
        _tag_name(name)
        gallery_id = application.gallery_id
        now_ms = self._deps.clock()
        with self._deps.database.write() as conn:
            tag = tags.delete_tag(conn, gallery_id, name)
            change = record_change(conn, gallery_id, KIND_CLEAR_TAG_BIT, bit=tag.bit, now_ms=now_ms)
        self._deps.replicator.push([change])
