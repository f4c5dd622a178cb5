"""Tags: up to 64 names per gallery, each owning one bit of the events' tag masks."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select, update

from facegate.errors import ErrorType, FacegateError
from gateway.store.changes import KIND_CLEAR_TAG_BIT
from gateway.store.common import gallery_not_found, lock_gallery, to_stored_mask
from gateway.store.records import Tag
from gateway.store.schema import changes, events, tags

MAX_TAGS = 64
_ALL_BITS = (1 << MAX_TAGS) - 1


def list_tags(conn: Connection, gallery_id: str) -> list[Tag]:
    """The gallery's tags in creation order."""
    rows = conn.execute(
        select(tags.c.bit, tags.c.name)
        .where(tags.c.gallery_id == gallery_id)
        .order_by(tags.c.created_ms, tags.c.bit)
    )
    return [Tag(gallery_id, row.bit, row.name) for row in rows]


def create_tag(conn: Connection, gallery_id: str, name: str, now_ms: int) -> Tag:
    """Adds a tag on the lowest free bit; DUPLICATE when the name is taken,
    INVALID_REQUEST when all 64 bits are. A bit whose clearing has not reached the
    matchers yet (a pending ``clear_tag_bit`` change) is not free: the late clear would
    strip it from the new tag's events."""
    _lock(conn, gallery_id)
    existing = list_tags(conn, gallery_id)
    if any(tag.name == name for tag in existing):
        raise _duplicate(name)
    clearing = conn.execute(
        select(changes.c.bit).where(
            changes.c.gallery_id == gallery_id, changes.c.kind == KIND_CLEAR_TAG_BIT
        )
    ).scalars()
    used = {tag.bit for tag in existing} | set(clearing)
    free = next((bit for bit in range(MAX_TAGS) if bit not in used), None)
    if free is None:
        if len(existing) < MAX_TAGS:
            raise FacegateError(
                ErrorType.UNAVAILABLE,
                "Deleted tags are still being removed from the matchers; retry shortly.",
            )
        raise FacegateError(ErrorType.INVALID_REQUEST, f"A gallery has at most {MAX_TAGS} tags.")
    conn.execute(insert(tags).values(gallery_id=gallery_id, bit=free, name=name, created_ms=now_ms))
    return Tag(gallery_id, free, name)


def rename_tag(conn: Connection, gallery_id: str, old: str, new: str) -> Tag:
    """Renames a tag, keeping its bit; NOT_FOUND, or DUPLICATE when ``new`` is taken."""
    _lock(conn, gallery_id)
    tag = _find(conn, gallery_id, old)
    if new == old:
        return tag
    if _by_name(conn, gallery_id, new) is not None:
        raise _duplicate(new)
    conn.execute(
        update(tags).where(tags.c.gallery_id == gallery_id, tags.c.bit == tag.bit).values(name=new)
    )
    return Tag(gallery_id, tag.bit, new)


def delete_tag(conn: Connection, gallery_id: str, name: str) -> Tag:
    """Deletes a tag and clears its bit in every event row of the gallery, so that a tag
    reusing the bit later does not label the old events; NOT_FOUND."""
    _lock(conn, gallery_id)
    tag = _find(conn, gallery_id, name)
    conn.execute(delete(tags).where(tags.c.gallery_id == gallery_id, tags.c.bit == tag.bit))
    bit = to_stored_mask(1 << tag.bit)
    keep = to_stored_mask(_ALL_BITS ^ (1 << tag.bit))
    conn.execute(
        update(events)
        .where(events.c.gallery_id == gallery_id, events.c.tag_mask.bitwise_and(bit) != 0)
        .values(tag_mask=events.c.tag_mask.bitwise_and(keep))
    )
    return tag


def tag_mask(conn: Connection, gallery_id: str, names: Sequence[str]) -> int:
    """The mask with the bits of ``names`` (repeats allowed); INVALID_REQUEST names the
    first that is not a tag of the gallery."""
    bits = {tag.name: tag.bit for tag in list_tags(conn, gallery_id)}
    mask = 0
    for name in names:
        bit = bits.get(name)
        if bit is None:
            raise FacegateError(ErrorType.INVALID_REQUEST, f"Tag {name} does not exist.")
        mask |= 1 << bit
    return mask


def tag_names(conn: Connection, gallery_id: str, mask: int) -> list[str]:
    """The names of the gallery's tags whose bits ``mask`` sets, in creation order."""
    return [tag.name for tag in list_tags(conn, gallery_id) if mask >> tag.bit & 1]


def _lock(conn: Connection, gallery_id: str) -> None:
    # Serialises the tag changes of a gallery, so two of them never pick the same bit.
    if lock_gallery(conn, gallery_id) is None:
        raise gallery_not_found()


def _by_name(conn: Connection, gallery_id: str, name: str) -> Tag | None:
    bit = conn.execute(
        select(tags.c.bit).where(tags.c.gallery_id == gallery_id, tags.c.name == name)
    ).scalar_one_or_none()
    return None if bit is None else Tag(gallery_id, bit, name)


def _find(conn: Connection, gallery_id: str, name: str) -> Tag:
    tag = _by_name(conn, gallery_id, name)
    if tag is None:
        raise FacegateError(ErrorType.NOT_FOUND, f"Tag {name} not found.")
    return tag


def _duplicate(name: str) -> FacegateError:
    return FacegateError(ErrorType.DUPLICATE, f"Tag {name} already exists.")
