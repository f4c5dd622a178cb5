"""Helpers shared by the repository modules."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from itertools import islice
from typing import TypeVar

from sqlalchemy import Connection, Executable, select
from sqlalchemy.exc import IntegrityError

from facegate.errors import ErrorType, FacegateError
from gateway.store.schema import galleries

T = TypeVar("T")

# Stays well below every database's limit on bound parameters per statement.
CHUNK = 500


def chunks(items: Collection[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size``, for IN clauses."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def try_execute(conn: Connection, statement: Executable) -> IntegrityError | None:
    """Runs ``statement`` in a savepoint and returns the constraint violation it raised, if
    any (a concurrent transaction may have taken the same unique key since the caller
    looked); the caller's transaction stays usable either way."""
    try:
        with conn.begin_nested():
            conn.execute(statement)
    except IntegrityError as error:
        return error
    return None


def lock_gallery(conn: Connection, gallery_id: str) -> int | None:
    """Locks the gallery's row until the transaction ends (PostgreSQL; on SQLite the
    write transaction already excludes other writers) and returns its size, or None when
    it does not exist. Every change that counts or numbers the gallery's rows (slots, tag
    bits) takes this lock first, so concurrent ones run one after the other."""
    size: int | None = conn.execute(
        select(galleries.c.size).where(galleries.c.id == gallery_id).with_for_update()
    ).scalar_one_or_none()
    return size


_BIT_63 = 1 << 63
_MASK_RANGE = 1 << 64


def to_stored_mask(mask: int) -> int:
    """The signed 64-bit value storing the unsigned tag mask ``mask`` (bit 63 becomes the
    sign, as both databases' BIGINT are signed)."""
    if not 0 <= mask < _MASK_RANGE:
        raise ValueError(f"tag mask {mask} is outside 0..2**64-1")
    return mask - _MASK_RANGE if mask & _BIT_63 else mask


def from_stored_mask(value: int) -> int:
    """The unsigned tag mask a stored signed value stands for."""
    return value + _MASK_RANGE if value < 0 else value


def gallery_not_found() -> FacegateError:
    return FacegateError(ErrorType.NOT_FOUND, "Gallery not found.")
