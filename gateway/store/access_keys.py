"""Tenants' SigV4 key pairs: at most two active at once (so one can be replaced without
downtime), each with when it was created, last used and revoked."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, insert, or_, select, update

from facegate.errors import ErrorType, FacegateError
from gateway.store.records import AccessKey, Tenant
from gateway.store.schema import access_keys, tenants

MAX_ACTIVE_KEYS = 2


def add_access_key(
    conn: Connection,
    *,
    tenant_id: str,
    access_key_id: str,
    secret_ciphertext: bytes,
    now_ms: int,
) -> AccessKey:
    """Adds a key pair to the tenant; INVALID_REQUEST when it already has
    MAX_ACTIVE_KEYS active ones, NOT_FOUND when there is no such tenant."""
    _lock_tenant(conn, tenant_id)
    active = [key for key in list_access_keys(conn, tenant_id) if key.revoked_ms == 0]
    if len(active) >= MAX_ACTIVE_KEYS:
        raise FacegateError(
            ErrorType.INVALID_REQUEST,
            f"The tenant already has {MAX_ACTIVE_KEYS} active access keys "
            f"({', '.join(key.access_key_id for key in active)}); revoke one first.",
        )
    key = AccessKey(access_key_id, tenant_id, secret_ciphertext, now_ms, 0, 0)
    conn.execute(insert(access_keys).values(vars(key)))
    return key


def list_access_keys(conn: Connection, tenant_id: str) -> list[AccessKey]:
    """The tenant's key pairs, revoked ones included, oldest first."""
    rows = conn.execute(
        select(access_keys)
        .where(access_keys.c.tenant_id == tenant_id)
        .order_by(access_keys.c.created_ms, access_keys.c.access_key_id)
    )
    return [_access_key(row) for row in rows]


def active_access_key(conn: Connection, access_key_id: str) -> tuple[Tenant, AccessKey] | None:
    """The key pair of that id and its tenant, None when it is unknown or revoked."""
    row = conn.execute(
        select(access_keys, tenants.c.name, tenants.c.created_ms.label("tenant_created_ms"))
        .join(tenants, tenants.c.id == access_keys.c.tenant_id)
        .where(access_keys.c.access_key_id == access_key_id, access_keys.c.revoked_ms == 0)
    ).first()
    if row is None:
        return None
    return Tenant(row.tenant_id, row.name, row.access_key_id, row.tenant_created_ms), _access_key(
        row
    )


def revoke_access_key(
    conn: Connection, tenant_id: str, access_key_id: str, *, now_ms: int
) -> AccessKey:
    """Revokes one of the tenant's keys (again: no change). NOT_FOUND when the tenant has
    no such key; INVALID_REQUEST for its last active key, which would lock it out."""
    _lock_tenant(conn, tenant_id)
    keys = list_access_keys(conn, tenant_id)
    key = next((k for k in keys if k.access_key_id == access_key_id), None)
    if key is None:
        raise FacegateError(ErrorType.NOT_FOUND, f"Access key {access_key_id} not found.")
    if key.revoked_ms:
        return key
    if sum(1 for k in keys if k.revoked_ms == 0) == 1:
        raise FacegateError(
            ErrorType.INVALID_REQUEST,
            f"{access_key_id} is the tenant's only active access key; create its "
            "replacement first.",
        )
    conn.execute(
        update(access_keys)
        .where(access_keys.c.access_key_id == access_key_id)
        .values(revoked_ms=now_ms)
    )
    return AccessKey(
        key.access_key_id,
        key.tenant_id,
        key.secret_ciphertext,
        key.created_ms,
        key.last_used_ms,
        now_ms,
    )


def record_use(conn: Connection, access_key_id: str, *, now_ms: int, resolution_ms: int) -> None:
    """Sets the key's last use to now unless it was recorded less than ``resolution_ms``
    ago (by any gateway), so that recording costs at most one row update per key and
    resolution however many gateways serve it."""
    conn.execute(
        update(access_keys)
        .where(
            access_keys.c.access_key_id == access_key_id,
            or_(
                access_keys.c.last_used_ms == 0,
                access_keys.c.last_used_ms <= now_ms - resolution_ms,
            ),
        )
        .values(last_used_ms=now_ms)
    )


def _lock_tenant(conn: Connection, tenant_id: str) -> None:
    """Locks the tenant's row until the transaction ends (PostgreSQL; on SQLite the write
    transaction already excludes other writers), so that concurrent key changes of one
    tenant cannot both pass the count of active keys."""
    found = conn.execute(
        select(tenants.c.id).where(tenants.c.id == tenant_id).with_for_update()
    ).scalar_one_or_none()
    if found is None:
        raise FacegateError(ErrorType.NOT_FOUND, "Tenant not found.")


def _access_key(row: Row[Any]) -> AccessKey:
    return AccessKey(
        access_key_id=row.access_key_id,
        tenant_id=row.tenant_id,
        secret_ciphertext=bytes(row.secret_ciphertext),
        created_ms=row.created_ms,
        last_used_ms=row.last_used_ms,
        revoked_ms=row.revoked_ms,
    )
